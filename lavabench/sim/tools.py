"""Simulated tool calling on BFCL items: which calls a model makes, and how they are streamed.

The key is BFCL's own files (a `BFCL_v<N>_<category>.json` question file among the answer
keys, its ground truth in `possible_answer/` beside it). A request is an item when its last
user message and the names of the tools it offers match the item's (several BFCL questions
share a text, never with the same tools). Per request one draw decides the outcome:

- right (probability = the model's skill on the category, `dataset_skill["bfcl_<category>"]`,
  so graded accuracy has that expected value): the ground truth's calls, each argument its
  first allowed value of the declared type (left out where BFCL allows omission and no value
  fits); irrelevance items: no call, a short text; relevance items: the first tool, called
  with its required arguments;
- wrong, one of: malformed arguments (share `tool_malformed_share`: the JSON cut in half, an
  *unparsed* answer), else a wrong argument value or a missing call (even odds); on an
  irrelevance item, a call of the first tool.

`tool_choice` is honoured: `none` never calls, `required`/`any` always call, a named
function is the only one called. Arguments stream as fragments of 1-12 characters, so
boundaries fall inside strings and escapes as on real servers. The right call is written
independently of lavabench's grader (the simulator imports only itself).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lavabench.sim.determinism import rng, unit

_BFCL_FILE = re.compile(r"^BFCL_v\d+_(?P<category>\w+)\.json$")
_BAD_NAME = re.compile(r"[^A-Za-z0-9_-]")
_PY: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "float": (int, float), "number": (int, float),
       "boolean": bool, "array": list, "tuple": list, "dict": dict, "object": dict}  # fmt: skip
_DEFAULTS: dict[str, Any] = {"string": "example", "integer": 1, "float": 1.0, "number": 1.0, "boolean": True,
             "array": [], "tuple": [], "dict": {}, "object": {}}  # fmt: skip
NO_CALL_TEXT = "None of the available functions can do that, so I will not call one."


def is_bfcl_file(path: Path) -> bool:
    """A BFCL question file (read by ToolKey, not by the text answer key)."""
    return bool(_BFCL_FILE.match(path.name)) and path.parent.name != "possible_answer"


def _kind(category: str) -> str:
    if category.endswith("irrelevance"):
        return "irrelevance"
    if category.endswith("relevance"):
        return "relevance"
    return "calls"


@dataclass(frozen=True, slots=True)
class ToolItem:
    """One BFCL question: its category label, offered functions and expected calls."""

    id: str
    label: str  # "bfcl_simple", "bfcl_live_multiple", ...: the per-category skill key
    kind: str  # calls | irrelevance | relevance
    functions: tuple[Mapping[str, Any], ...]  # {"wire", "parameters"} in offered order
    ground_truth: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ToolPiece:
    """One streamed tool-call delta: a call's opening (id and name) or an argument fragment."""

    index: int
    call_id: str | None
    name: str | None
    arguments: str


def wire_name(name: str) -> str:
    return _BAD_NAME.sub("_", name)[:64]


class ToolKey:
    """BFCL items by (last user text, offered tool names)."""

    def __init__(self, items: Iterable[tuple[tuple[str, tuple[str, ...]], ToolItem]]) -> None:
        self._items: dict[tuple[str, tuple[str, ...]], ToolItem] = {}
        for key, item in items:
            self._items.setdefault(key, item)

    def __len__(self) -> int:
        return len(self._items)

    def find(self, text: str, tool_names: Sequence[str]) -> ToolItem | None:
        return self._items.get((text, tuple(sorted(tool_names))))

    @classmethod
    def load(cls, paths: Sequence[str]) -> ToolKey:
        files: list[Path] = []
        for p in map(Path, paths):
            found = sorted(p.rglob("BFCL_v*.json")) if p.is_dir() else [p]
            files += [f for f in found if is_bfcl_file(f)]
        return cls(entry for f in files for entry in _read(f))


def _read(path: Path) -> list[tuple[tuple[str, tuple[str, ...]], ToolItem]]:
    m = _BFCL_FILE.match(path.name)
    assert m is not None
    category = m.group("category")
    label = "bfcl_" + category.removesuffix("_python")
    answers: dict[str, Any] = {}
    truth_file = path.parent / "possible_answer" / path.name
    if truth_file.is_file():
        for line in truth_file.read_bytes().splitlines():
            if line.strip():
                row = orjson.loads(line)
                answers[str(row["id"])] = row["ground_truth"]
    out = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
            turn = row["question"][0]
            text = next(m["content"] for m in reversed(turn) if m.get("role") == "user")
            fns = tuple(
                {"wire": wire_name(f["name"]), "name": f["name"],
                 "parameters": f.get("parameters") or {}} for f in row["function"]
            )  # fmt: skip
        except (ValueError, KeyError, IndexError, StopIteration, TypeError) as exc:
            raise ValueError(f"sim.answer_keys: {path}:{n}: not a BFCL question ({exc})") from None
        truth = tuple(answers.get(str(row["id"]), ()))
        item = ToolItem(str(row["id"]), label, _kind(category), fns, truth)
        out.append(((text, tuple(sorted(f["wire"] for f in fns))), item))
    return out


# --- what a model calls ----------------------------------------------------------------


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
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
            value = _first_allowed(v if isinstance(v, list) else [v], {})
            if value is not None:
                out[k] = value
        return out
    if isinstance(allowed, list):
        return [_concrete(a) for a in allowed]
    return allowed


def _first_allowed(allowed: list[Any], schema: Mapping[str, Any]) -> Any:
    candidates = [a for a in allowed if a != ""]
    for a in candidates:
        if _fits(a, schema):
            return _concrete(a)
    return None if "" in allowed or not candidates else _concrete(candidates[0])


def right_calls(item: ToolItem) -> list[tuple[str, dict[str, Any]]]:
    """The ground truth's calls as a model that gets them right writes them."""
    by_name = {f["name"]: f for f in item.functions}
    calls = []
    for expected in item.ground_truth:
        ((name, args),) = expected.items()
        fn = by_name.get(name, {"wire": wire_name(name), "parameters": {}})
        props = fn["parameters"].get("properties") or {}
        values = {}
        for arg, allowed in args.items():
            if arg not in props and "" in allowed:
                continue
            value = _first_allowed(allowed, props.get(arg) or {})
            if value is not None:
                values[arg] = value
        calls.append((fn["wire"], values))
    return calls


def schema_call(fn: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A plausible call of `fn`: its required arguments with a value of their type."""
    params = fn.get("parameters") or {}
    props = params.get("properties") or {}
    values = {}
    for arg in params.get("required") or ():
        schema = props.get(arg) or {}
        enum = schema.get("enum")
        values[arg] = enum[0] if enum else _DEFAULTS.get(str(schema.get("type")), "example")
    return fn["wire"], values


def _corrupt(args: dict[str, Any]) -> dict[str, Any]:
    """A wrong argument: the first string or number changed, else an undeclared one."""
    out = dict(args)
    for k, v in args.items():
        if isinstance(v, str):
            out[k] = v + " (somewhere else)"
            return out
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[k] = v + 7919
            return out
    out["unexpected_argument"] = True
    return out


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What the model answers: calls as (wire name, arguments text), or none (text)."""

    calls: tuple[tuple[str, str], ...]
    outcome: str  # right | wrong_argument | missing_call | malformed | irrelevant_call


def plan_calls(
    item: ToolItem | None,
    offered: Sequence[Mapping[str, Any]],
    tool_choice: Any,
    *,
    skill: float,
    malformed_share: float,
    draw: Sequence[str | int],
    seed: int,
) -> ToolPlan:
    """The model's calls for one request (module docstring); `draw` keys the hash."""
    u = unit(seed, "tool", *draw)
    right = u < skill
    mode = "right"
    if not right:
        m = unit(seed, "tool-mode", *draw)
        mode = "malformed" if m < malformed_share else (
            "wrong_argument" if unit(seed, "tool-wrong", *draw) < 0.5 else "missing_call")  # fmt: skip
    fns = [{"wire": t["function"]["name"], "parameters": t["function"].get("parameters") or {}}
           for t in offered]  # fmt: skip
    if item is None or item.kind != "calls":
        relevant = item is not None and item.kind == "relevance"
        call = (right == relevant) or mode == "malformed"
        calls = [schema_call(fns[0])] if call and fns else []
        outcome = "right" if right else ("irrelevant_call" if not relevant else "missing_call")
        if mode == "malformed" and calls:
            outcome = "malformed"
    else:
        calls = right_calls(item)
        outcome = mode
        if mode == "missing_call":
            calls = []
        elif mode == "wrong_argument" and calls:
            calls[0] = (calls[0][0], _corrupt(calls[0][1]))
    calls, outcome = _honour_choice(calls, outcome, tool_choice, fns)
    texts = [(name, orjson.dumps(args).decode()) for name, args in calls]
    if outcome == "malformed" and texts:
        name, text = texts[0]
        texts[0] = (name, text[: max(1, len(text) // 2)])
    return ToolPlan(tuple(texts), outcome)


def _honour_choice(
    calls: list[tuple[str, dict[str, Any]]], outcome: str, choice: Any, fns: list[dict[str, Any]]
) -> tuple[list[tuple[str, dict[str, Any]]], str]:
    if choice == "none" or not fns:
        return [], outcome if not calls else "missing_call"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        kept = [c for c in calls if c[0] == name]
        fn = next(f for f in fns if f["wire"] == name)
        return (kept or [schema_call(fn)]), outcome if kept == calls else "forced_call"
    if choice in ("required", "any") and not calls:
        return [schema_call(fns[0])], "forced_call"
    return calls, outcome


def tool_pieces(
    seed: int, draw: Sequence[str | int], calls: Sequence[tuple[str, str]]
) -> list[ToolPiece]:
    """Each call's opening delta, then its arguments in fragments of 1-12 characters."""
    pieces: list[ToolPiece] = []
    r = rng(seed, "tool-split", *draw)
    for index, (name, arguments) in enumerate(calls):
        call_id = f"call_{r.getrandbits(64):016x}"
        pieces.append(ToolPiece(index, call_id, name, ""))
        at = 0
        while at < len(arguments):
            size = r.randint(1, 12)
            pieces.append(ToolPiece(index, None, None, arguments[at : at + size]))
            at += size
    return pieces


def delta_json(piece: ToolPiece) -> bytes:
    """The `"tool_calls": [...]` member of one streamed delta."""
    if piece.name is not None:
        call: dict[str, Any] = {"index": piece.index, "id": piece.call_id, "type": "function",
                                "function": {"name": piece.name, "arguments": ""}}  # fmt: skip
    else:
        call = {"index": piece.index, "function": {"arguments": piece.arguments}}
    return b'"tool_calls":' + orjson.dumps([call])


def message_calls(pieces: Sequence[ToolPiece]) -> list[dict[str, Any]]:
    """The non-streamed `message.tool_calls` the pieces add up to."""
    calls: list[dict[str, Any]] = []
    for p in pieces:
        if p.name is not None:
            calls.append({"id": p.call_id, "type": "function",
                          "function": {"name": p.name, "arguments": ""}})  # fmt: skip
        else:
            calls[p.index]["function"]["arguments"] += p.arguments
    return calls
