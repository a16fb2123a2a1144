"""Ludwig, imported once per process with its config schema checked against JSON Schema once.

Every ``ModelConfig.from_dict`` (each ``LudwigModel(config)``, each ``LudwigModel.load``, two
per model) ends in ``ludwig.config_validation.validation.check_schema``, which calls
``jsonschema.validate``. That function first validates the *schema itself* against the
Draft 7 meta-schema and only then the config; Ludwig's schema is large, so the meta-schema pass
took about 4 s of every call here (cProfile: 55 of 57 s loading seven one-epoch models), the
same work each time for a schema Ludwig builds once and caches (``get_schema`` is an
``lru_cache``).

jsonschema's documentation says to use a validator's own ``validate`` when the schema is known
to be valid. :func:`install` does exactly that for Ludwig's ``check_schema``: the schema is
checked against the meta-schema the first time it is seen, and every config is still validated
against it in full, raising the same ``ValidationError`` (the best match) as before, which
Ludwig turns into its ``ConfigValidationError`` as before.
"""

from __future__ import annotations

import threading
from typing import Any

_LOCK = threading.Lock()
_CHECKED: dict[tuple[int, int], Any] = {}  # (validator class, schema) ids -> the schema, kept


def _validate_with_checked_schema(
    instance: Any, schema: Any, cls: Any = None, **kwargs: Any
) -> None:
    from jsonschema import exceptions, validators  # noqa: PLC0415

    cls = cls or validators.validator_for(schema)
    key = (id(cls), id(schema))
    with _LOCK:
        if key not in _CHECKED:
            cls.check_schema(schema)  # raises SchemaError, as jsonschema.validate does
            _CHECKED[key] = schema  # holding it keeps its id from being reused
    error = exceptions.best_match(cls(schema, **kwargs).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Makes Ludwig's config check skip re-validating its own, unchanged schema (idempotent)."""
    from ludwig.config_validation import validation  # noqa: PLC0415 - ~10 s import

    validation.validate = _validate_with_checked_schema


def ludwig_model_class() -> Any:
    """``ludwig.api.LudwigModel``, with :func:`install` applied."""
    from ludwig.api import LudwigModel  # noqa: PLC0415 - ~10 s import, only where needed

    install()
    return LudwigModel
