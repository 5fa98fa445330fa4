"""Datasets: a JSONL file plus a spec in, rendered and hashed chat prompts out.

Every row is validated before anything is returned, and all problems are reported in one
DatasetError, so a bad file stops a run before a single paid request is sent and is fixed
in one pass. Rendering is deterministic and each prompt carries the sha256 of its exact
messages, so records from different runs can be matched prompt for prompt.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import random
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lavabench.errors import ConfigError, DatasetError

MAX_LISTED_PROBLEMS = 20


@dataclass(frozen=True)
class Message:
    """One chat message as sent on the wire."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        """The OpenAI-style message object."""
        return {"role": self.role, "content": self.content}


def messages_sha256(messages: Iterable[Message]) -> str:
    """sha256 of the canonical JSON of `messages`: identical prompts hash identically."""
    canonical = json.dumps(
        [m.as_dict() for m in messages],
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Prompt:
    """One rendered dataset item, ready to send; `reference` is None when it has no answer."""

    dataset: str
    item_id: str
    messages: tuple[Message, ...]
    reference: str | None
    prompt_sha256: str

    def message_dicts(self) -> list[dict[str, str]]:
        """`messages` as the list of dicts a chat-completions request body takes."""
        return [m.as_dict() for m in self.messages]


def _frozen_options() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives, which row fields to read, how to render and how to grade it.

    `path` is used as given; `from_mapping` resolves a relative config path against the
    project directory. `limit` keeps the first N rows after the optional seeded shuffle.
    Values are checked on construction; errors name the `dataset.<field>` config key.
    """

    name: str
    path: str
    id_field: str = "id"
    input_field: str = "question"
    reference_field: str = "answer"
    system_prompt: str | None = None
    user_template: str = "{input}"
    grader: str = "numeric"
    grader_options: Mapping[str, Any] = field(default_factory=_frozen_options, hash=False)
    limit: int | None = None
    shuffle: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("name", "path", "id_field", "input_field", "reference_field", "grader"):
            _check_str(key, getattr(self, key))
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError(
                f"dataset.system_prompt: must be a string or null, got {_kind(self.system_prompt)}"
            )
        _check_user_template(self.user_template)
        if not isinstance(self.grader_options, Mapping):
            raise ConfigError(
                "dataset.grader_options: must be a mapping of option names to values, "
                f"got {_kind(self.grader_options)}"
            )
        object.__setattr__(self, "grader_options", MappingProxyType(_plain(self.grader_options)))
        if self.limit is not None and (not _is_int(self.limit) or self.limit < 1):
            raise ConfigError(
                f"dataset.limit: must be a positive integer or null (all rows), got {self.limit!r}"
            )
        if not isinstance(self.shuffle, bool):
            raise ConfigError(f"dataset.shuffle: must be true or false, got {self.shuffle!r}")
        if not _is_int(self.seed):
            raise ConfigError(f"dataset.seed: must be an integer, got {self.seed!r}")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], base_dir: str | os.PathLike[str]) -> DatasetSpec:
        """Build a spec from the `dataset` config group; a relative `path` joins `base_dir`."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"dataset: must be a mapping of dataset settings, got {_kind(d)}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ConfigError(
                f"dataset.{unknown[0]}: unknown key (unknown: {', '.join(unknown)}); "
                f"known keys: {', '.join(known)}"
            )
        for key in ("name", "path"):
            if d.get(key) is None:
                raise ConfigError(f"dataset.{key}: missing; every dataset needs a {key}")
        values = dict(d)
        _check_str("path", values["path"])
        if not os.path.isabs(values["path"]):
            values["path"] = os.path.normpath(os.path.join(os.fspath(base_dir), values["path"]))
        if values.get("grader_options", ...) is None:
            values["grader_options"] = {}
        return cls(**values)


def render_prompt(
    spec: DatasetSpec, item_id: str, input_text: str, reference: str | None
) -> Prompt:
    """Render one item: optional system message, then the user template filled with the input."""
    messages: list[Message] = []
    if spec.system_prompt:
        messages.append(Message("system", spec.system_prompt))
    messages.append(Message("user", spec.user_template.format(input=input_text)))
    return Prompt(
        dataset=spec.name,
        item_id=item_id,
        messages=tuple(messages),
        reference=reference,
        prompt_sha256=messages_sha256(messages),
    )


_Report = Callable[..., None]


@dataclass(frozen=True)
class _Row:
    item_id: str
    input_text: str
    reference: str | None


def load_prompts(spec: DatasetSpec) -> list[Prompt]:
    """Validate every row of the dataset file, then render the selected rows in order.

    Nothing is returned unless the whole file is valid; the DatasetError lists up to
    MAX_LISTED_PROBLEMS problems as `path:line: field 'x': what is wrong`.
    """
    data = _read(spec.path)
    rows, problems = _parse_rows(spec, data)
    if problems:
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        listing = "\n".join(f"  {p}" for p in shown)
        if more:
            listing += f"\n  ... and {more} more"
        raise DatasetError(
            f"{spec.path}: {len(problems)} problem(s) in dataset {spec.name!r}; nothing was "
            f"loaded:\n{listing}\n"
            f"Fix these rows: each line must be one JSON object with a non-empty "
            f"{spec.id_field!r} (string or integer, unique) and a non-empty string "
            f"{spec.input_field!r}; {spec.reference_field!r} is optional (string or number). "
            "If the file uses other field names, set dataset.id_field, dataset.input_field "
            "and dataset.reference_field."
        )
    if not rows:
        raise DatasetError(
            f"{spec.path}: dataset {spec.name!r} has no rows; add one JSON object per line"
        )
    if spec.shuffle:
        random.Random(spec.seed).shuffle(rows)
    if spec.limit is not None:
        rows = rows[: spec.limit]
    return [render_prompt(spec, r.item_id, r.input_text, r.reference) for r in rows]


def dataset_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of the dataset file's bytes, recorded in run metadata to pin the exact data."""
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise DatasetError(
            f"{os.fspath(path)}: cannot read dataset file ({e.strerror}); "
            f"resolved path: {Path(path).resolve()}"
        ) from None


# --- reading and validation ----------------------------------------------------------------


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetError(
            f"{path}: dataset file not found (resolved path: {Path(path).resolve()}); "
            "check dataset.path (a relative path is taken from the project directory) "
            "or create the file"
        ) from None
    except OSError as e:
        raise DatasetError(
            f"{path}: cannot read dataset file ({e.strerror}); "
            f"resolved path: {Path(path).resolve()}"
        ) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def _parse_rows(spec: DatasetSpec, data: bytes) -> tuple[list[_Row], list[str]]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    rows: list[_Row] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(data.split(b"\n"), start=1):

        def problem(what: str, field_name: str | None = None, lineno: int = lineno) -> None:
            where = f"field {field_name!r}" if field_name is not None else "row"
            problems.append(f"{spec.path}:{lineno}: {where}: {what}")

        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problem(f"not valid UTF-8 (byte {e.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text, parse_constant=_reject_constant)
        except ValueError as e:
            detail = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else e
            problem(f"not valid JSON ({detail})")
            continue
        if not isinstance(obj, dict):
            problem(f"must be a JSON object, got {_kind(obj)}")
            continue

        item_id = _row_id(obj, spec.id_field, problem)
        if item_id is not None:
            if item_id in first_line:
                problem(
                    f"duplicate id {item_id!r} (first used on line {first_line[item_id]})",
                    spec.id_field,
                )
                item_id = None
            else:
                first_line[item_id] = lineno
        input_text = _row_input(obj, spec.input_field, problem)
        ok, reference = _row_reference(obj, spec.reference_field, problem)
        if item_id is not None and input_text is not None and ok:
            rows.append(_Row(item_id, input_text, reference))
    return rows, problems


def _row_id(obj: dict[str, Any], key: str, problem: _Report) -> str | None:
    value = obj.get(key)
    if value is None:
        problem("missing (or null)", key)
        return None
    if _is_int(value):
        return str(value)
    if not isinstance(value, str):
        problem(f"must be a string or integer, got {_kind(value)}", key)
        return None
    if not value.strip():
        problem("is empty", key)
        return None
    return value


def _row_input(obj: dict[str, Any], key: str, problem: _Report) -> str | None:
    value = obj.get(key)
    if value is None:
        problem("missing (or null)", key)
        return None
    if not isinstance(value, str):
        problem(f"must be a string, got {_kind(value)}", key)
        return None
    if not value.strip():
        problem("is empty", key)
        return None
    return value


def _row_reference(obj: dict[str, Any], key: str, problem: _Report) -> tuple[bool, str | None]:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return True, value
    if _is_int(value):
        return True, str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            problem(f"must be a finite number, got {value!r}", key)
            return False, None
        return True, repr(value)
    problem(f"must be a string or number (or absent), got {_kind(value)}", key)
    return False, None


# --- config checks ---------------------------------------------------------------------------


def _check_user_template(template: Any) -> None:
    key = "dataset.user_template"
    if not isinstance(template, str):
        raise ConfigError(f"{key}: must be a string containing {{input}}, got {_kind(template)}")
    hint = "only {input} may be used; write a literal brace as {{ or }}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"{key}: {template!r} is not a valid template ({e}); {hint}") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    nested = [spec for _, _, spec, _ in parsed if spec and "{" in spec]
    other = sorted({n for n in names if n != "input"})
    if other or nested:
        found = ", ".join("{" + n + "}" for n in other) or "a nested field"
        raise ConfigError(f"{key}: {template!r} references {found}; {hint}")
    if "input" not in names:
        raise ConfigError(
            f"{key}: {template!r} does not contain {{input}}, so every prompt would be the "
            "same; put {input} where the dataset row's text goes"
        )
    try:
        template.format(input="x")
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key}: {template!r} cannot be rendered ({e}); {hint}") from None


def _check_str(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"dataset.{key}: must be a non-empty string, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", type(None): "null", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)


def _plain(value: Any) -> Any:
    """Deep-copy mappings and lists into plain dicts and lists (e.g. from an OmegaConf node)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_plain(v) for v in value]
    return value
