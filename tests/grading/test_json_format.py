"""`json` for response_format runs: schema-valid (format_ok) kept beside field accuracy."""

from __future__ import annotations

from lavabench.grading.registry import get_grader

GRADE = get_grader("json")
SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}  # fmt: skip
OPTS = {"schema": SCHEMA, "field_accuracy": True}
REF = '{"name": "Ada", "age": 36}'


def test_all_fields_right_is_correct_and_valid() -> None:
    g = GRADE('{"age": 36, "name": "Ada"}', REF, OPTS)
    assert (g.correct, g.score, g.format_ok) == (True, 1.0, True)


def test_half_the_fields_scores_half_and_stays_schema_valid() -> None:
    g = GRADE('{"age": 37, "name": "Ada"}', REF, OPTS)
    assert (g.correct, g.score, g.format_ok) == (False, 0.5, True)


def test_schema_invalid_is_a_format_failure_with_its_field_score() -> None:
    g = GRADE('{"name": "Ada", "age": "36"}', REF, OPTS)
    assert (g.correct, g.score, g.format_ok) == (False, 0.5, False)


def test_not_json_is_unparsed() -> None:
    g = GRADE('{"name": "Ada", "age": ', REF, OPTS)
    assert (g.correct, g.score, g.format_ok, g.extracted) == (False, 0.0, False, None)


def test_without_schema_valid_json_is_format_ok_even_when_wrong() -> None:
    g = GRADE('{"b": 1}', '{"a": 1}', {"compare_reference": True})
    assert (g.correct, g.format_ok) == (False, True)
