"""`tool_call` grader table: >= 40 realistic calls per rule, built from real BFCL items.

Each rule takes the item's ground truth, writes the call a model would send on the wire
(renamed tools, arguments as JSON text), bends it the way that rule describes, and checks the
grade and the reason. Items whose ground truth contradicts their own schema (a handful in
BFCL; see `_right_value`) are skipped, as no call can pass them.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from lavabench.datasets.bfcl import load_bfcl
from lavabench.grading.registry import get_grader
from lavabench.grading.toolcall import check_calls, parse_calls
from tests.conftest import SHARED_DATASETS

BFCL = SHARED_DATASETS / "bfcl"
pytestmark = pytest.mark.skipif(
    not BFCL.is_dir(), reason=f"BFCL data not found at {BFCL} (present in CI)"
)
GRADE = get_grader("tool_call")
PER_RULE = 40
_PY = {"string": str, "integer": int, "float": (int, float), "boolean": bool, "array": list,
       "tuple": list, "dict": dict}  # fmt: skip


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    kind = schema.get("type")
    if kind not in _PY:
        return True
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, _PY[kind])


def _concrete(allowed: Any) -> Any:
    if isinstance(allowed, dict):
        out = {}
        for k, v in allowed.items():
            value = _right_value(v if isinstance(v, list) else [v], {})
            if value is not None:
                out[k] = value
        return out
    if isinstance(allowed, list):
        return [_concrete(a) for a in allowed]
    return allowed


def _right_value(allowed: list[Any], schema: dict[str, Any]) -> Any:
    """First allowed value of the declared type; None = leave the argument out."""
    candidates = [a for a in allowed if a != ""]
    for a in candidates:
        if _fits(a, schema):
            return _concrete(a)
    return None if "" in allowed or not candidates else _concrete(candidates[0])


def _right_calls(ref: dict[str, Any]) -> list[dict[str, Any]]:
    fns = {f["name"]: f for f in ref["functions"]}
    calls = []
    for expected in ref["ground_truth"]:
        ((name, args),) = expected.items()
        props = fns[name]["parameters"].get("properties", {})
        values = {}
        for arg, allowed in args.items():
            if arg not in props and "" in allowed:
                continue
            value = _right_value(allowed, props.get(arg, {}))
            if value is not None:
                values[arg] = value
        calls.append({"name": fns[name]["wire_name"], "arguments": values})
    return calls


def _wire(calls: list[dict[str, Any]]) -> str:
    return json.dumps([{"id": f"call_{i}", "name": c["name"],
                        "arguments": json.dumps(c["arguments"])} for i, c in enumerate(calls)])  # fmt: skip


def _items(category: str) -> list[tuple[dict[str, Any], str, list[dict[str, Any]]]]:
    """(reference, reference text, right calls) of the category's passable items."""
    out = []
    for p in load_bfcl(str(BFCL / f"BFCL_v4_{category}.json"), category):
        assert p.reference is not None
        ref = json.loads(p.reference)
        calls = _right_calls(ref)
        if GRADE(_wire(calls), p.reference, {}).correct:
            out.append((ref, p.reference, calls))
    return out


@pytest.fixture(scope="module")
def simple() -> list[tuple[dict[str, Any], str, list[dict[str, Any]]]]:
    return _items("simple_python") + _items("multiple")


def _reason(text: str, ref: dict[str, Any]) -> str | None:
    return check_calls(parse_calls(text, ref["functions"]), ref)


def _mutated(simple, mutate) -> list[tuple[str, str, dict[str, Any]]]:
    """Apply `mutate(call, props, required)` -> bool (applied?) to the first call of items."""
    out = []
    for ref, text, calls in simple:
        calls = json.loads(json.dumps(calls))
        fn = next(f for f in ref["functions"] if f["wire_name"] == calls[0]["name"])
        params = fn["parameters"]
        if mutate(calls[0]["arguments"], params.get("properties", {}), params.get("required", [])):
            out.append((_wire(calls), text, ref))
    return out


def test_right_calls_pass_and_nearly_every_item_is_passable(simple) -> None:
    assert len(simple) >= 590  # 600 items; BFCL has 1 whose truth contradicts its schema
    for _ref, text, calls in simple[: PER_RULE * 3]:
        grade = GRADE(_wire(calls), text, {})
        assert grade.correct and grade.format_ok and grade.score == 1.0


def _wrong_value(args, props, required) -> bool:
    for k in required:
        v = args.get(k)
        if isinstance(v, str):
            args[k] = v + " (somewhere else entirely)"
            return True
        if isinstance(v, int | float) and not isinstance(v, bool):
            args[k] = v + 7919
            return True
    return False


def _wrong_type(args, props, required) -> bool:
    for k, v in args.items():
        if props.get(k, {}).get("type") in ("integer", "float") and not isinstance(v, bool):
            args[k] = str(v)
            return True
    return False


def _missing_required(args, props, required) -> bool:
    for k in required:
        if k in args:
            del args[k]
            return True
    return False


def _extra_argument(args, props, required) -> bool:
    args["verbose_debug_mode"] = True
    return True


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (_wrong_value, "is not an allowed value"),
        (_wrong_type, "has the wrong type"),
        (_missing_required, "missing required argument"),
        (_extra_argument, "unknown argument"),
    ],
)
def test_each_broken_rule_fails_for_its_reason(simple, mutate, why) -> None:
    cases = _mutated(simple, mutate)
    assert len(cases) >= PER_RULE
    reasons = Counter()
    for text, reference, ref in cases:
        grade = GRADE(text, reference, {})
        assert grade.correct is False and grade.format_ok is True
        reasons[why in (_reason(text, ref) or "")] += 1
    assert reasons[True] == len(cases), reasons


def test_parallel_calls_pass_in_any_order_and_fail_with_one_missing() -> None:
    items = [i for c in ("parallel", "parallel_multiple") for i in _items(c)]
    swapped = [(text, calls) for _ref, text, calls in items if len(calls) >= 2]
    assert len(swapped) >= PER_RULE
    for text, calls in swapped:
        assert GRADE(_wire(calls[::-1]), text, {}).correct
        assert GRADE(_wire(calls[1:] + calls[:1]), text, {}).correct
        assert GRADE(_wire(calls[1:]), text, {}).correct is False
        assert GRADE(_wire(calls + calls[:1]), text, {}).correct is False


def test_irrelevance_passes_only_without_a_call() -> None:
    prompts = load_bfcl(str(BFCL / "BFCL_v4_irrelevance.json"), "irrelevance")
    assert len(prompts) >= PER_RULE
    for p in prompts:
        ref = json.loads(p.reference or "")
        assert GRADE("[]", p.reference, {}).correct
        fn = ref["functions"][0]
        call = _wire([{"name": fn["wire_name"], "arguments": {}}])
        assert GRADE(call, p.reference, {}).correct is False


def test_relevance_passes_with_any_offered_call() -> None:
    prompts = load_bfcl(str(BFCL / "BFCL_v4_live_relevance.json"), "live_relevance")
    for p in prompts:
        fn = json.loads(p.reference or "")["functions"][0]
        assert GRADE(_wire([{"name": fn["wire_name"], "arguments": {}}]), p.reference, {}).correct
        assert GRADE("[]", p.reference, {}).correct is False


def test_malformed_arguments_are_unparsed_not_wrong(simple) -> None:
    count = 0
    for _ref, text, calls in simple[: PER_RULE * 2]:
        wire = json.loads(_wire(calls))
        good = wire[0]["arguments"]
        for broken in (good[: max(1, len(good) // 2)], json.dumps([1, 2]), "{'single': 'quotes'}"):
            wire[0]["arguments"] = broken
            grade = GRADE(json.dumps(wire), text, {})
            assert grade.correct is False and grade.format_ok is False, broken
            assert (grade.extracted or "").startswith("unparsed:")
            count += 1
    assert count >= PER_RULE * 3


def test_dotted_names_are_renamed_on_the_wire_and_mapped_back(simple) -> None:
    dotted = [(ref, text, calls) for ref, text, calls in simple
              if "." in next(iter(ref["ground_truth"][0]))]  # fmt: skip
    assert len(dotted) >= PER_RULE
    for ref, text, calls in dotted:
        assert "." not in calls[0]["name"]
        grade = GRADE(_wire(calls), text, {})
        assert grade.correct and "." in json.loads(grade.extracted or "")[0]["name"]
        # the original dotted name on the wire is not an offered tool: wrong, not unparsed
        dotted_call = [{**calls[0], "name": next(iter(ref["ground_truth"][0]))}]
        grade = GRADE(_wire(dotted_call), text, {})
        assert grade.correct is False and grade.format_ok is True
