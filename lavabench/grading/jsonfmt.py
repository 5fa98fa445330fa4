"""`json`: the response is valid JSON (optionally against a JSON Schema, optionally equal to
the reference). A ```json fence around the whole response is allowed, as IFEval allows it.

For `response_format` runs two figures are kept apart: `format_ok` says the output parsed
and validated against `schema` (the schema-valid rate), and with `field_accuracy: true` the
score is the share of the reference object's top-level fields the response got right (field
accuracy), correct only when all are. Output that does not parse is *unparsed*
(`format_ok` false), as a tool call with malformed arguments is."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from lavabench.errors import ConfigError, DatasetError
from lavabench.grading.base import Grade, verdict
from lavabench.grading.options import check_options
from lavabench.grading.text import strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {
    "schema": (dict,),
    "compare_reference": (bool,),
    "strict": (bool,),
    "field_accuracy": (bool,),
}
_OPEN_FENCE = re.compile(r"^```[ \t]*(?:json)?[ \t]*\n?", re.IGNORECASE)
_MISSING = object()


def strip_fence(text: str) -> str:
    """Remove one ``` / ```json fence around the whole text (IFEval's json_format rule)."""
    s = text.strip()
    s = _OPEN_FENCE.sub("", s, count=1)
    if s.endswith("```"):
        s = s[:-3]
    return s.strip()


def parse_json(text: str, strict: bool = True) -> Any:
    """The JSON value of the response, or `_MISSING`. Not strict: the first {...} or [...]
    that parses, for chatty models that add a sentence around the object."""
    body = strip_fence(strip_reasoning(text))
    try:
        return json.loads(body)
    except ValueError:
        pass
    if strict:
        return _MISSING
    decoder = json.JSONDecoder()
    for i, ch in enumerate(body):
        if ch in "{[":
            try:
                return decoder.raw_decode(body, i)[0]
            except ValueError:
                continue
    return _MISSING


def _validator(schema: Mapping[str, Any]) -> Any:
    import jsonschema

    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        raise ConfigError(
            f"dataset.grader_options.schema: not a valid JSON Schema ({e.message})"
        ) from None
    return cls(schema)


def json_grader(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the response parses as JSON, validates against `schema` (if given) and,
    with `compare_reference: true`, equals the reference parsed as JSON.

    Graded even without a reference (validity needs none). `strict` (default true): the
    whole response must be the JSON value; false: the first object found in the text.
    `extracted` is the value re-serialised compactly, or None.
    """
    check_options("json", options, _OPTIONS)
    value = parse_json(response_text, bool(options.get("strict", True)))
    if value is _MISSING:
        return Grade(False, 0.0, None, format_ok=False)
    extracted = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    ok = True
    schema = options.get("schema")
    if schema is not None:
        errors = list(_validator(schema).iter_errors(value))
        ok = not errors
    if options.get("field_accuracy", False) and reference is not None:
        score = _field_share(value, _reference(reference))
        return Grade(ok and score == 1.0, score, extracted, format_ok=ok)
    if ok and options.get("compare_reference", False) and reference is not None:
        ok = value == _reference(reference)
    graded = verdict(ok, extracted)
    return Grade(graded.correct, graded.score, extracted, format_ok=ok or schema is None)


def _reference(reference: str) -> Any:
    try:
        return json.loads(reference)
    except ValueError:
        raise DatasetError(f"json: reference {reference[:60]!r} is not valid JSON") from None


def _field_share(value: Any, expected: Any) -> float:
    """Share of the reference object's top-level fields equal in `value` (0 if not an object)."""
    if not isinstance(expected, dict) or not expected:
        raise DatasetError("json: field_accuracy needs a reference JSON object with fields")
    if not isinstance(value, dict):
        return 0.0
    return sum(value.get(k, _MISSING) == v for k, v in expected.items()) / len(expected)
