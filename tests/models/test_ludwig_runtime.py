"""Ludwig's config check with the meta-schema pass done once: the same verdicts, less work."""

from __future__ import annotations

import copy

import jsonschema
import pytest

from stock_mlops.models import ludwig_runtime

SCHEMA = {
    "type": "object",
    "properties": {"epochs": {"type": "integer", "minimum": 1}, "name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
INSTANCES = [
    {"name": "a", "epochs": 3},
    {"name": "a", "epochs": 0},
    {"epochs": 2},
    {"name": 5},
    {"name": "a", "extra": True},
    [],
]


def _verdict(validate, instance):
    try:
        validate(instance=instance, schema=SCHEMA, cls=jsonschema.Draft7Validator)
    except jsonschema.ValidationError as error:
        return error.message, list(error.absolute_path)
    return None


@pytest.mark.parametrize("instance", INSTANCES, ids=[str(i) for i in INSTANCES])
def test_every_config_gets_jsonschemas_own_verdict(instance):
    expected = _verdict(jsonschema.validate, instance)
    assert _verdict(ludwig_runtime._validate_with_checked_schema, instance) == expected


def test_the_schema_itself_is_checked_once_and_a_broken_schema_still_fails(monkeypatch):
    calls = []
    check = jsonschema.Draft7Validator.check_schema
    monkeypatch.setattr(
        jsonschema.Draft7Validator,
        "check_schema",
        classmethod(lambda cls, schema: (calls.append(1), check(schema))[1]),
    )
    schema = copy.deepcopy(SCHEMA)
    for _ in range(3):
        ludwig_runtime._validate_with_checked_schema(
            {"name": "a"}, schema, cls=jsonschema.Draft7Validator
        )
    assert len(calls) == 1
    with pytest.raises(jsonschema.SchemaError):
        ludwig_runtime._validate_with_checked_schema(
            {"name": "a"}, {"type": 5}, cls=jsonschema.Draft7Validator
        )


@pytest.mark.slow
def test_ludwig_still_refuses_a_bad_config_and_accepts_a_good_one(tiny_ludwig_config):
    from ludwig.error import ConfigValidationError
    from ludwig.schema.model_types.base import ModelConfig

    ludwig_runtime.install()
    from ludwig.config_validation import validation

    assert validation.validate is ludwig_runtime._validate_with_checked_schema
    ModelConfig.from_dict(copy.deepcopy(tiny_ludwig_config))
    # Ludwig's own check went through it: its schema (cached per call form) was checked once.
    schema = validation.get_schema(model_type="ecd")  # as check_schema calls it
    assert any(s is schema for s in ludwig_runtime._CHECKED.values())
    bad = copy.deepcopy(tiny_ludwig_config)
    bad["trainer"]["epochs"] = "many"
    with pytest.raises(ConfigValidationError, match="'many' is not of type 'integer'"):
        ModelConfig.from_dict(bad)
