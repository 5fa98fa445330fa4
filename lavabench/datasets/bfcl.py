"""BFCL (Berkeley Function Calling Leaderboard v4) files -> prompts that carry OpenAI tools.

One question file per category, `BFCL_v4_<category>.json` (JSON Lines despite the name), and
for categories with a ground truth `possible_answer/BFCL_v4_<category>.json` beside it. Each
question offers its functions in BFCL's own schema dialect; they are turned into OpenAI
`tools` here, once per item:

- type names: `dict` -> `object`, `float` -> `number`, `tuple` -> `array`, `any` -> no
  `type` (any JSON value); the rest (`string`, `integer`, `boolean`, `array`) as they are;
- names: OpenAI-style APIs (Fireworks included) accept only `[A-Za-z0-9_-]{1,64}`, and BFCL
  names have dots (`math.factorial`), so every other character becomes `_` on the way out
  (BFCL does the same); the reference keeps both names so the grader maps calls back.

The reference is canonical JSON {"category", "functions": [{"name", "wire_name",
"parameters"}], "ground_truth"}, with the *original* BFCL parameters, because the grader's type
rules are BFCL's (an integer is a valid `float`, not the other way round). An item that offers
no function (4 in live_irrelevance) is sent without `tools`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lavabench.datasets.prompt import Message, Prompt, prompt_sha256
from lavabench.errors import DatasetError

MAX_LISTED = 20
_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
_WIRE_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
# what each category tests -> how it is graded (grading/toolcall.py)
CATEGORY_KINDS = {
    "simple": "simple",
    "simple_python": "simple",
    "live_simple": "simple",
    "multiple": "multiple",
    "live_multiple": "multiple",
    "parallel": "parallel",
    "live_parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "live_parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
    "live_irrelevance": "irrelevance",
    "live_relevance": "relevance",
}
WITHOUT_ANSWERS = ("irrelevance", "relevance")


def category_of(path: str | Path) -> str:
    """`BFCL_v4_live_simple.json` -> `live_simple`; DatasetError for a name BFCL does not use."""
    stem = Path(path).name.removesuffix(".json").removesuffix(".jsonl")
    category = re.sub(r"^BFCL_v\d+_", "", stem)
    if category not in CATEGORY_KINDS:
        raise DatasetError(
            f"{path}: not a BFCL question file name (BFCL_v4_<category>.json with a category "
            f"among {', '.join(sorted(CATEGORY_KINDS))})"
        )
    return category


def wire_name(name: str) -> str:
    """The tool name as sent: characters outside [A-Za-z0-9_-] become `_`, cut to 64."""
    return _WIRE_NAME_BAD.sub("_", name)[:64]


def openai_schema(schema: Any) -> Any:
    """BFCL's JSON-Schema dialect -> JSON Schema (recursively: properties, items, ...)."""
    if isinstance(schema, list):
        return [openai_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            if value == "any":
                continue  # no type: any JSON value
            out[key] = _TYPES.get(value, value)
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: openai_schema(prop) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "anyOf", "oneOf", "allOf"):
            out[key] = openai_schema(value)
        else:
            out[key] = value
    return out


def tools_for(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BFCL `function` entries -> OpenAI `tools` (names renamed, schemas converted)."""
    tools = []
    for fn in functions:
        spec: dict[str, Any] = {"name": wire_name(fn["name"])}
        if fn.get("description"):
            spec["description"] = fn["description"]
        spec["parameters"] = openai_schema(fn.get("parameters") or {"type": "dict"})
        tools.append({"type": "function", "function": spec})
    return tools


def _lines(path: Path, problems: list[str]) -> list[tuple[str, Any]]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read BFCL file ({e.strerror})") from None
    out = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if raw.strip():
            try:
                out.append((f"{path}:{n}", json.loads(raw)))
            except ValueError as e:
                problems.append(f"{path}:{n}: not valid JSON ({e})")
    return out


def _answers(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: BFCL answer file missing; it must sit in possible_answer/ beside the "
            "question file (as in ../shared/datasets/bfcl/)"
        )
    answers = {}
    for where, obj in _lines(path, problems):
        if not isinstance(obj, dict) or not isinstance(obj.get("ground_truth"), list):
            problems.append(f"{where}: field 'ground_truth': must be a list of calls")
            continue
        answers[str(obj.get("id"))] = obj["ground_truth"]
    return answers


def _item(
    where: str, obj: Any, kind: str, answers: Mapping[str, Any] | None, problems: list[str]
) -> tuple[str, list[Message], list[dict[str, Any]], str] | None:
    """(id, messages, tools, reference) of one question row, or None (problems noted)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        problems.append(f"{where}: field 'id': must be a string")
        return None
    turns, functions = obj.get("question"), obj.get("function")
    if not (isinstance(turns, list) and turns and isinstance(turns[0], list) and turns[0]):
        problems.append(f"{where}: field 'question': must be a list of turns of messages")
        return None
    ok = all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in turns[0])
    if not ok or not isinstance(functions, list):
        problems.append(f"{where}: messages need string 'content'; 'function' must be a list")
        return None
    if not all(isinstance(f, dict) and isinstance(f.get("name"), str) for f in functions):
        problems.append(f"{where}: field 'function': every entry needs a string 'name'")
        return None
    names = [wire_name(f["name"]) for f in functions]
    if len(set(names)) != len(names):
        problems.append(f"{where}: field 'function': two names collide once renamed: {names}")
        return None
    truth: list[Any] = []
    if answers is not None:
        if obj["id"] not in answers:
            problems.append(f"{where}: id {obj['id']!r} has no ground truth in possible_answer/")
            return None
        truth = answers[obj["id"]]
    reference = {
        "category": kind,
        "functions": [
            {"name": f["name"], "wire_name": w, "parameters": f.get("parameters") or {}}
            for f, w in zip(functions, names, strict=True)
        ],
        "ground_truth": truth,
    }
    messages = [Message(str(m.get("role", "user")), m["content"]) for m in turns[0]]
    ref = json.dumps(reference, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return obj["id"], messages, tools_for(functions), ref


def load_bfcl(
    path: str, dataset: str, system_prompt: str | None = None, tool_choice_json: str | None = None
) -> list[Prompt]:
    """Every item of one BFCL category file, validated first (one DatasetError lists all)."""
    file = Path(path)
    category = category_of(file)
    kind = CATEGORY_KINDS[category]
    problems: list[str] = []
    answers = None
    if kind not in WITHOUT_ANSWERS:
        answers = _answers(file.parent / "possible_answer" / file.name, problems)
    prompts = []
    for where, obj in _lines(file, problems):
        item = _item(where, obj, kind, answers, problems)
        if item is None:
            continue
        item_id, messages, tools, reference = item
        if system_prompt:
            messages.insert(0, Message("system", system_prompt))
        # no functions (4 live_irrelevance items): no `tools` at all (OpenAI rejects `[]`;
        # Fireworks does not document it)
        tools_json = json.dumps(tools, ensure_ascii=False, separators=(",", ":")) if tools else None
        prompts.append(
            Prompt(
                dataset=dataset,
                item_id=item_id,
                messages=tuple(messages),
                reference=reference,
                prompt_sha256=prompt_sha256(messages, tools_json),
                group=category,
                tools_json=tools_json,
                tool_choice_json=tool_choice_json,
            )
        )
    if problems:
        listing = "\n".join(f"  {p}" for p in problems[:MAX_LISTED])
        more = (
            f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        )
        raise DatasetError(
            f"{path}: {len(problems)} problem(s) in BFCL dataset {dataset!r}; nothing was "
            f"loaded:\n{listing}{more}"
        )
    if not prompts:
        raise DatasetError(f"{path}: BFCL dataset {dataset!r} has no rows")
    return prompts
