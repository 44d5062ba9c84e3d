"""The committed JSON Schema must match the result models (regenerate deliberately)."""

from __future__ import annotations

from sae_bench.results.document import SCHEMA_PATH, SCHEMA_VERSION, EvaluationResult, json_schema


def test_committed_schema_matches_models():
    assert SCHEMA_PATH.read_text() == json_schema(), (
        "the result models changed: bump SCHEMA_VERSION if the change is not backward "
        "compatible, then run `python -m sae_bench.results` and commit the schema"
    )


def test_schema_version_is_the_first_field():
    assert next(iter(EvaluationResult.model_fields)) == "schema_version"
    assert EvaluationResult.model_fields["schema_version"].default == SCHEMA_VERSION
