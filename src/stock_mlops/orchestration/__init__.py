"""Dagster orchestration of the daily loop, built from the Kedro project by kedro-dagster.

One Dagster code location per Kedro environment, listed in a generated ``workspace.yaml``:

- ``<team>`` for every team environment (``conf/<team>/globals.yml`` naming a team): job
  ``<team>_daily`` (pipeline ``__default__`` with ``--env <team>``), schedule
  ``<team>_daily_schedule`` and the sensor ``<team>_run_failure_alert``;
- ``competition`` (the default environment, as ``kedro run --pipelines competition``): job
  ``competition`` and ``competition_schedule``.

Every job is partitioned by NYSE session (``YYYY-MM-DD``): a partition key is the ``run_date`` of
the run, so a backfill over a range of sessions is the season replay. Modules:

- :mod:`.locations`: which locations exist, the workspace, load-time runtime parameters (no
  Dagster import, so writing the workspace is quick);
- :mod:`.sessions`: the NYSE partitions and the schedules that skip non-sessions;
- :mod:`.kedro_jobs`: the jobs, from kedro-dagster's translation of the project;
- :mod:`.alerts`: the run-failure alert;
- :mod:`.code_location`: one location's ``Definitions``.

``stock_mlops.definitions`` is what Dagster loads.
"""
