"""The Dagster jobs, from kedro-dagster's translation of the Kedro project (no hand-written copy).

kedro-dagster 0.8.1 turns each pipeline named in ``conf/base/dagster.yml`` into a job: one op per
Kedro node (named after it: ``training.train_forecaster_node`` becomes
``training__train_forecaster_node``), between two ops that call Kedro's
``before_pipeline_run`` / ``after_pipeline_run`` hooks; each op calls the node hooks and each
dataset IO manager the dataset hooks. So a Dagster run goes through the project's hooks as
``kedro run`` does: parameter validation and kedro-mlflow's run (and any hook the project
registers, such as a lock on the team's storage root).

What this module adds, each for a reason found when running the translation:

- **Typed parameters.** Nodes take Pydantic models (``TradingParams``) that Kedro builds from the
  configuration. kedro-dagster makes every ``params:`` input an op config field typed after its
  value, and Dagster config cannot hold a Pydantic model. The op config is therefore built from
  the raw configuration (plain values, editable in the launchpad) and each node validates its
  parameters when it runs, with the project's rules (a ``run_date`` that is not a session is
  refused as at ``kedro run``'s start) and then Kedro's own conversion to the node's models.
- **Run partitions.** Jobs are partitioned by NYSE session; the partition key is the op config
  ``params:run_date`` of every node that reads ``run_date`` (found in the pipeline). kedro-dagster
  reads a partitioned *run* as a partitioned *dataset* (it refuses to save a dict output and keeps
  only one key of a dict input), so its IO managers are shown no partition.
- **Fresh runs in one process.** The catalog is built once, when the code location loads. A run
  worker runs one run, but several runs in one process (a test, ``execute_in_process``) would
  share one save version of the versioned ``forecaster`` and one ``run_info``: a Kedro hook gives
  each run its own.
- **Failures reach Kedro.** A failed op calls Kedro's ``on_pipeline_error`` in the run's process,
  so kedro-mlflow ends its run as FAILED (and any Kedro hook that cleans up on error runs).
  kedro-dagster's own ``on_pipeline_error_sensor`` is not registered: it runs in the daemon, where
  no MLflow run is open, and 0.8.1 calls the error's class name (a string) there.
- **No dagster-mlflow.** kedro-dagster adds a dagster-mlflow resource whenever kedro-mlflow is
  installed and raises ImportError without that package; kedro-mlflow's hooks already own the
  MLflow run, so the resource is switched off during translation.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import kedro_dagster.translator as kd_translator
from kedro.framework.hooks import hook_impl
from kedro.io.core import AbstractVersionedDataset, Version, generate_timestamp
from kedro.pipeline import Node, Pipeline
from kedro.validation.parameter_validator import ParameterValidator
from kedro.validation.utils import resolve_nested_dict_path, set_nested_dict_value
from kedro_dagster.nodes import NodeTranslator
from kedro_dagster.utils import _create_pydantic_model_from_dict, format_node_name
from pydantic import ConfigDict

from stock_mlops.core.params import validate_parameters
from stock_mlops.datasets.run_info import RunInfoDataset
from stock_mlops.orchestration.sessions import nyse_partitions

PARAMS_PREFIX = "params:"
RUN_DATE = "params:run_date"
# dagster.yaml allows one run per value of this tag at a time: a team's sessions run in order.
LOCATION_TAG = "stock_mlops/location"
# Run retries: the daemon starts a failed run again in a new process, every step (outputs kept in
# memory are gone with the old process). No op retry policy: it would repeat order submission and
# training in place.
RETRY_TAGS = {"dagster/max_retries": "2", "dagster/retry_strategy": "ALL_STEPS"}


# ----------------------------------------------------------------------------- parameters
class ParameterCheckingNode(Node):
    """A Kedro node whose ``params:`` inputs arrive as plain values and are validated on run.

    Validation merges them into the run's whole parameter tree first, so the project's checks
    (unknown keys, bounds, ``run_date`` an NYSE session) apply to a launchpad override too.
    """

    raw_params: dict[str, Any]

    @classmethod
    def of(cls, node: Node, raw_params: Mapping[str, Any]) -> ParameterCheckingNode:
        """The same node (function, inputs, outputs, name, namespace, tags) that validates."""
        checking = cls(
            func=node.func,
            inputs=node._inputs,
            outputs=node._outputs,
            name=node._name,
            namespace=node._namespace,
            tags=node.tags,
            confirms=node._confirms,
            preview_fn=node._preview_fn,
        )
        checking.raw_params = dict(raw_params)
        return checking

    @functools.cached_property
    def _kedro_validator(self) -> ParameterValidator:
        # Kedro's own conversion (as at a session's start), scoped to this node's inputs.
        return ParameterValidator({self.name: Pipeline([self])})

    def run(self, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        """Validates the parameter inputs, then runs the node as Kedro does."""
        return super().run(self.typed_inputs(inputs or {}))

    def typed_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """``inputs`` with each ``params:`` value validated and converted to the node's type.

        Raises:
            ParameterError: A value the project refuses (the key is named).
        """
        given = {name: value for name, value in inputs.items() if name.startswith(PARAMS_PREFIX)}
        if not given:
            return inputs
        tree = copy.deepcopy(self.raw_params)
        for name, value in given.items():
            set_nested_dict_value(tree, name.removeprefix(PARAMS_PREFIX), value)
        validate_parameters(tree)
        typed = self._kedro_validator.validate_raw_params(tree)
        return inputs | {
            name: resolve_nested_dict_path(typed, name.removeprefix(PARAMS_PREFIX))
            for name in given
        }


class _RawParameterNodeTranslator(NodeTranslator):
    """kedro-dagster's node translator with op config built from the raw configuration."""

    def __init__(self, *args: Any, raw_params: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._raw_params = raw_params

    def _get_node_parameters_config(self, node: Node) -> type[dg.Config]:
        values = {
            name: resolve_nested_dict_path(self._raw_params, name.removeprefix(PARAMS_PREFIX))
            for name in node.inputs
            if name.startswith(PARAMS_PREFIX)
        }
        return _create_pydantic_model_from_dict(
            name="ParametersConfig",
            params=values,
            __base__=dg.Config,
            __config__=ConfigDict(extra="allow", frozen=False),
        )


# ----------------------------------------------------------------------------- per-run state
class FreshRunHook:
    """Kedro hook: each run saves versioned datasets under its own version and reads its own
    ``run_info`` (the catalog is built once per code location, not once per run)."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        """Gives the run a new save version and releases cached run facts."""
        save_version = generate_timestamp()
        for name in pipeline.datasets():
            dataset = catalog.get(name) if name in catalog else None
            if isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None:
                # Kedro has no public way to re-version a built dataset, and kedro-dagster's IO
                # managers hold these very objects.
                dataset._version = Version(dataset._version.load, save_version)
                dataset._clear_version_cache()
            elif isinstance(dataset, RunInfoDataset):
                catalog.release(name)


# ----------------------------------------------------------------------------- translation
class ProjectTranslator(kd_translator.KedroProjectTranslator):
    """kedro-dagster's translator for one environment, with load-time runtime parameters.

    0.8.1 creates its Kedro session without ``runtime_params``; these are what
    ``kedro run --params`` would give (``storage_root``, ``training.ludwig_config``, ...), fixed
    when the code location loads. Only ``run_date`` changes per run (the partition).
    """

    def __init__(self, env: str, project_path: Path, runtime_params: Mapping[str, Any]) -> None:
        self._runtime_params = dict(runtime_params)
        super().__init__(env=env, project_path=project_path)

    def initialize_kedro(self, conf_source: str | None = None) -> None:
        """Opens the Kedro session and context of the environment (hooks included)."""
        from kedro.framework.project import find_pipelines  # noqa: PLC0415
        from kedro.framework.session import KedroSession  # noqa: PLC0415
        from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

        self._project_metadata = bootstrap_project(self._project_path)
        self._session = KedroSession.create(
            project_path=self._project_path,
            env=self._env,
            conf_source=conf_source,
            runtime_params=self._runtime_params or None,
        )
        self._session_id = self._session.session_id
        self._context = self._session.load_context()
        self._catalog = self._context.catalog
        self._pipelines = find_pipelines()

    @property
    def context(self):  # noqa: ANN201 - KedroContext
        """The Kedro context the jobs were built from (its hook manager calls the hooks)."""
        return self._context

    @property
    def catalog(self):  # noqa: ANN201 - the context's catalog
        """The catalog whose datasets the IO managers load and save."""
        return self._catalog

    @property
    def raw_params(self) -> dict[str, Any]:
        """The environment's parameters as configured (base + env + runtime), before typing."""
        return self._context.config_loader["parameters"]

    def get_defined_pipelines(self, dagster_config: Any, translate_all: bool) -> list[Pipeline]:
        """The pipelines of ``dagster.yml``'s jobs, their nodes validating their parameters."""
        raw = self.raw_params
        return [
            Pipeline([ParameterCheckingNode.of(node, raw) for node in pipeline.nodes])
            for pipeline in super().get_defined_pipelines(dagster_config, translate_all)
        ]

    def translate(self) -> kd_translator.DagsterCodeLocation:
        """``to_dagster()``, with plain-value op config and without the dagster-mlflow resource."""
        self._context._hook_manager.register(FreshRunHook())
        with _patched(
            kd_translator,
            NodeTranslator=functools.partial(
                _RawParameterNodeTranslator, raw_params=self.raw_params
            ),
            is_mlflow_enabled=lambda: False,
        ):
            return self.to_dagster()


@contextlib.contextmanager
def _patched(module: Any, **replacements: Any) -> Iterator[None]:
    """Replaces module attributes for the duration of the block (one translation)."""
    originals = {name: getattr(module, name) for name in replacements}
    for name, value in replacements.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(module, name, value)


# ----------------------------------------------------------------------------- partitions
class _WithoutPartition:
    """An input/output context that hides the run's partition from kedro-dagster's IO managers."""

    has_partition_key = False
    has_asset_partitions = False

    def __init__(self, context: Any) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class _UnpartitionedIOManager(dg.IOManager):
    """Delegates to a kedro-dagster dataset IO manager, showing it no partition: the datasets are
    whole tables and logs, one run per session, not partitioned datasets."""

    def __init__(self, inner: dg.IOManager) -> None:
        self._inner = inner

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        self._inner.handle_output(_WithoutPartition(context), obj)

    def load_input(self, context: dg.InputContext) -> Any:
        return self._inner.load_input(_WithoutPartition(context))


def unpartitioned_io_managers(resources: Mapping[str, Any], env: str) -> dict[str, Any]:
    """kedro-dagster's named resources with every dataset IO manager wrapped."""
    wrapped = dict(resources)
    for key, resource in resources.items():
        if key.startswith(f"{env}__") and key.endswith("_io_manager"):
            wrapped[key] = dg.IOManagerDefinition(
                resource_fn=lambda _init, inner=resource: _UnpartitionedIOManager(inner),
                description=f"{key}: the Kedro dataset, one whole dataset for every session",
            )
    return wrapped


def run_date_ops(pipeline: Pipeline) -> list[str]:
    """The ops (kedro-dagster's names) of the nodes that read ``params:run_date``."""
    return sorted(format_node_name(node.name) for node in pipeline.nodes if RUN_DATE in node.inputs)


def session_config(ops: list[str]) -> dg.PartitionedConfig:
    """Partition key ``YYYY-MM-DD`` -> op config ``params:run_date`` of ``ops``."""

    def run_config(partition_key: str) -> dict[str, Any]:
        return {"ops": {op: {"config": {RUN_DATE: partition_key}} for op in ops}}

    return dg.PartitionedConfig(
        partitions_def=nyse_partitions(), run_config_for_partition_key_fn=run_config
    )


def kedro_failure_hook(translator: ProjectTranslator, name: str) -> dg.HookDefinition:
    """A Dagster failure hook calling Kedro's ``on_pipeline_error`` once per failed run."""
    from kedro.framework.project import pipelines  # noqa: PLC0415

    reported: set[str] = set()

    @dg.failure_hook(name=f"kedro_on_pipeline_error_{name}", required_resource_keys={"kedro_run"})
    def _on_pipeline_error(context: dg.HookContext) -> None:
        # Several ops can fail in one run; Kedro (and its MLflow run) hears it once.
        if context.run_id in reported:
            return
        reported.add(context.run_id)
        run_params = context.resources.kedro_run.run_params
        translator.context._hook_manager.hook.on_pipeline_error(
            error=context.op_exception or RuntimeError(f"op {context.op.name} failed"),
            run_params=run_params,
            pipeline=pipelines.get(run_params["pipeline_name"]),
            catalog=translator.catalog,
        )

    return _on_pipeline_error


def session_job(
    translated: dg.JobDefinition,
    *,
    name: str,
    pipeline_name: str,
    resources: Mapping[str, Any],
    on_failure: dg.HookDefinition,
    location: str,
) -> dg.JobDefinition:
    """kedro-dagster's job renamed, partitioned by NYSE session, with retries and the hook.

    Args:
        translated: The job kedro-dagster made from the pipeline.
        name: The job's public name (``red_daily``, ``competition``).
        pipeline_name: The registered Kedro pipeline it runs; the nodes of it that read
            ``params:run_date`` (and are in the job) get the partition key.
        resources: The location's resources (the wrapped IO managers).
        on_failure: The Kedro failure hook.
        location: The code location (a tag: one run per location at a time).

    Returns:
        The job.
    """
    from kedro.framework.project import pipelines  # noqa: PLC0415

    in_job = {node.name for node in translated.graph.node_defs}
    ops = [op for op in run_date_ops(pipelines[pipeline_name]) if op in in_job]
    return translated.graph.to_job(
        name=name,
        description=(
            f"Kedro pipeline '{pipeline_name}' for one NYSE session: the partition key is "
            "run_date (everything as known at that session's close)."
        ),
        # kedro_run is the translated job's own resource: it names the job's pipeline for hooks.
        resource_defs={
            key: translated.resource_defs[key] if key == "kedro_run" else resources[key]
            for key in translated.resource_defs
        },
        executor_def=translated.executor_def,
        config=session_config(ops),
        tags=RETRY_TAGS | {LOCATION_TAG: location},
        hooks={on_failure},
    )
