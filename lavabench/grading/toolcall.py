"""Pure: `tool_call`, BFCL's AST rules over the tool calls a model made.

The grader reads the row's `tool_calls` (a JSON list of {name, arguments}; `reads` tells the
grade hook so) and the reference written by datasets/bfcl.py ({category, functions,
ground_truth}). A call list passes when there is a one-to-one match of calls to expected calls
(any order: parallel categories) such that each call names the expected function (wire names
mapped back to BFCL's dotted ones) and its arguments pass every rule, in BFCL's order:

1. every `required` parameter of the function is present;
2. no argument the function does not declare, and none the expected call does not list;
3. each value has the declared type, in BFCL's terms (`integer` is not a `float`'s
   superset: an int is a valid `float`, a float is not a valid `integer`; bool is not a
   number; `tuple` and `array` are lists; `dict` an object; `any` anything);
4. each value is among the allowed ones after normalisation (strings: lower case without
   spaces and `,./-_*^`, `'` as `"`; numbers numerically; lists element by element; objects
   key by key, each key's value among its own allowed list);
5. an expected argument left out must allow omission (`""` among its allowed values).

`irrelevance` items pass only with no call; `relevance` items with at least one call of an
offered function. **Unparsed** comes first and is its own outcome: a call whose arguments are
not valid JSON, or not a JSON object, is a format failure (`format_ok` false), not a wrong
answer; a call list that parses has `format_ok` true.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lavabench.errors import DatasetError
from lavabench.grading.base import Grade
from lavabench.grading.options import check_options

_STRIP = re.compile(r"[ ,./\-_*^]")
Call = tuple[str, dict[str, Any]]  # (original function name, arguments)


class Unparsed(ValueError):
    """A call's arguments are not a JSON object: the answer cannot be read."""


def standardize(text: str) -> str:
    """BFCL's string normalisation."""
    return _STRIP.sub("", text).lower().replace("'", '"')


@functools.lru_cache(maxsize=4096)
def _reference(reference: str) -> dict[str, Any]:
    try:
        ref = json.loads(reference)
    except ValueError:
        raise DatasetError(f"tool_call: reference {reference[:60]!r} is not JSON") from None
    if not isinstance(ref, dict) or not {"category", "functions", "ground_truth"} <= set(ref):
        raise DatasetError(
            "tool_call: the reference must be {category, functions, ground_truth} "
            "(written by format: bfcl)"
        )
    return ref


def parse_calls(text: str, functions: Sequence[Mapping[str, Any]]) -> list[Call]:
    """The row's calls as (original name, arguments); Unparsed for unreadable arguments.
    Empty arguments text means no arguments (servers send "" for a no-argument call)."""
    raw = json.loads(text) if text.strip() else []
    if not isinstance(raw, list):
        raise ValueError(f"tool_call: expected the row's JSON list of calls, got {text[:60]!r}")
    by_wire = {f["wire_name"]: f["name"] for f in functions}
    calls = []
    for n, call in enumerate(raw, start=1):
        name = str(call.get("name", ""))
        arguments = call.get("arguments", "")
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError as e:
                raise Unparsed(f"call {n} ({name}): arguments are not valid JSON ({e})") from None
        if not isinstance(arguments, dict):
            kind = type(arguments).__name__
            raise Unparsed(f"call {n} ({name}): arguments are a JSON {kind}, not an object")
        # a name that was not offered (BFCL's dotted original included) matches nothing
        calls.append((by_wire.get(name, f"(not offered) {name}"), arguments))
    return calls


def type_ok(value: Any, schema: Mapping[str, Any]) -> bool:
    """BFCL's type rule for one value against its parameter schema (rule 3)."""
    kind = schema.get("type")
    if kind in (None, "any"):
        return True
    if isinstance(value, bool):
        return kind == "boolean"
    if kind == "integer":
        return isinstance(value, int)
    if kind in ("float", "number"):
        return isinstance(value, int | float)
    if kind == "string":
        return isinstance(value, str)
    if kind in ("array", "tuple"):
        items = schema.get("items")
        if not isinstance(value, list):
            return False
        return not isinstance(items, dict) or all(type_ok(v, items) for v in value)
    if kind in ("dict", "object"):
        return isinstance(value, dict)
    return kind != "boolean"


def value_equal(value: Any, allowed: Any) -> bool:
    """One value against one allowed value (rule 4)."""
    if isinstance(allowed, dict):
        return isinstance(value, dict) and _dict_ok(value, allowed)
    if isinstance(allowed, list):
        return (
            isinstance(value, list)
            and len(value) == len(allowed)
            and all(value_equal(v, a) for v, a in zip(value, allowed, strict=True))
        )
    if isinstance(allowed, str):
        return isinstance(value, str) and standardize(value) == standardize(allowed)
    if isinstance(allowed, bool) or isinstance(value, bool):
        return value is allowed
    if isinstance(allowed, int | float):
        return isinstance(value, int | float) and value == allowed
    return bool(value == allowed)


def _dict_ok(value: dict[str, Any], allowed: dict[str, Any]) -> bool:
    """BFCL's nested-object rule: each key's value among that key's allowed list."""
    for key, v in value.items():
        options = allowed.get(key)
        if options is None:
            return False
        options = options if isinstance(options, list) else [options]
        if not any(value_equal(v, a) for a in options):
            return False
    return all(
        key in value or (isinstance(opts, list) and "" in opts) for key, opts in allowed.items()
    )


def check_call(call: Call, expected: Mapping[str, Any], fn: Mapping[str, Any]) -> str | None:
    """None when `call` satisfies one expected call {name: {arg: [allowed...]}}; else why not."""
    ((name, allowed_args),) = expected.items()
    if call[0] != name:
        return f"called {call[0]}, expected {name}"
    args = call[1]
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    for p in params.get("required") or ():
        if p not in args:
            return f"{name}: missing required argument {p!r}"
    for p, value in args.items():
        if p not in props:
            return f"{name}: unknown argument {p!r}"
        if not type_ok(value, props[p]):
            return f"{name}: argument {p!r} has the wrong type for {props[p].get('type')}"
        if p not in allowed_args:
            return f"{name}: unexpected argument {p!r}"
        if not any(value_equal(value, a) for a in allowed_args[p] if a != ""):
            return f"{name}: argument {p!r} = {value!r} is not an allowed value"
    for p, allowed in allowed_args.items():
        if p not in args and "" not in allowed:
            return f"{name}: missing argument {p!r}"
    return None


def check_calls(calls: list[Call], ref: Mapping[str, Any]) -> str | None:
    """None when the calls pass the item's rules (module docstring); else the first reason."""
    category = ref["category"]
    if category == "irrelevance":
        return None if not calls else f"called {calls[0][0]} on an irrelevant request"
    fns = {f["name"]: f for f in ref["functions"]}
    if category == "relevance":
        if not calls:
            return "no call on a relevant request"
        unknown = [c[0] for c in calls if c[0] not in fns]
        return f"called unknown function {unknown[0]}" if unknown else None
    expected = ref["ground_truth"]
    if len(calls) != len(expected):
        return f"{len(calls)} call(s), expected {len(expected)}"
    return _match(calls, expected, fns, set())


def _match(
    calls: list[Call], expected: list[Any], fns: Mapping[str, Any], used: set[int]
) -> str | None:
    """Assign calls to expected calls one to one in any order (backtracking; n is small)."""
    if not expected:
        return None
    first, rest = expected[0], expected[1:]
    (name,) = first
    fn = fns.get(name, {})
    reason = f"no call matches {name}"
    for i, call in enumerate(calls):
        if i in used:
            continue
        why = check_call(call, first, fn)
        if why is None:
            deeper = _match(calls, rest, fns, used | {i})
            if deeper is None:
                return None
            why = deeper
        reason = why if call[0] == name else reason
    return reason


def tool_call(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Grade the row's tool calls against a BFCL reference (module docstring).

    `extracted` is the calls with original names as compact JSON, or `unparsed: <why>`.
    """
    check_options("tool_call", options, {})
    if reference is None:
        return Grade(None, None, None)
    ref = _reference(reference)
    try:
        calls = parse_calls(response_text, ref["functions"])
    except Unparsed as e:
        return Grade(False, 0.0, f"unparsed: {e}", format_ok=False)
    extracted = json.dumps(
        [{"name": n, "arguments": a} for n, a in calls],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    ok = check_calls(calls, ref) is None
    return Grade(ok, 1.0 if ok else 0.0, extracted, format_ok=True)


tool_call.reads = "tool_calls"  # type: ignore[attr-defined]
