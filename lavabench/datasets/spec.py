"""Datasets: a data file (or folder) plus a spec in, rendered and hashed chat prompts out.

Formats: JSONL, CSV (with a header, or headerless with `columns`), JSON (a list, or a list
under `records_key`), and a folder of such files (`files` glob; each file's stem is the
item's group, e.g. an MMLU subject or a BBH task). Built-in specs for public sets name a
`source` and a `path` relative to the data root (LAVABENCH_DATA_MIRROR, else the pull cache;
see `data_root`), so the same YAML works offline against a mirror.

Every row is validated before anything is returned, and all problems are reported in one
DatasetError, so a bad file stops a run before a single paid request is sent and is fixed
in one pass. Rendering is deterministic and each prompt carries the sha256 of its exact
messages, so records from different runs can be matched prompt for prompt.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import random
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lavabench.datasets.compact import PromptTable
from lavabench.datasets.prompt import Message, Prompt, prompt_sha256
from lavabench.errors import ConfigError, DatasetError

MAX_LISTED_PROBLEMS = 20


def _frozen_options() -> Mapping[str, Any]:
    return MappingProxyType({})


FORMATS = ("auto", "jsonl", "csv", "json", "bfcl")
TOOL_CHOICES = ("auto", "none", "required", "any")
RESPONSE_FORMATS = ("text", "json_object", "json_schema", "grammar")
DATA_MIRROR_ENV = "LAVABENCH_DATA_MIRROR"
DATA_CACHE_ENV = "LAVABENCH_DATA_CACHE"
DEFAULT_CACHE = "~/.cache/lavabench/datasets"
_SPLIT_SUFFIX = re.compile(r"_(?:test|dev|val|train|validation)$")
_TEMPLATE_FIXED = ("input", "choices", "group", "group_words")


def data_root(cache_dir: str | None = None) -> Path:
    """Where specs with a `source` find their files: $LAVABENCH_DATA_MIRROR if set (offline
    machines, CI), else the pull cache ($LAVABENCH_DATA_CACHE, else `cache_dir`, else
    ~/.cache/lavabench/datasets)."""
    mirror = os.environ.get(DATA_MIRROR_ENV)
    if mirror:
        return Path(mirror).expanduser().resolve()
    return cache_root(cache_dir)


def cache_root(cache_dir: str | None = None) -> Path:
    """The pull cache: $LAVABENCH_DATA_CACHE, else `cache_dir`, else the default."""
    chosen = os.environ.get(DATA_CACHE_ENV) or cache_dir or DEFAULT_CACHE
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives, which row fields to read, how to render and how to grade it.

    `path` is used as given; `from_mapping` resolves a relative config path against the
    project directory. Built-in specs of public sets leave `path` null and set `data_path`,
    relative to `data_root()` (mirror or pull cache), plus `source` (canonical URLs and
    sha256s, used by `lavabench data pull`). `limit` keeps
    the first N rows after the optional seeded shuffle (a seeded sample). Values are checked
    on construction; errors name the `dataset.<field>` config key.

    Field mapping: `id_field` null numbers rows per group ("<group>/<n>", 1-based);
    `reference_fields` makes the reference a canonical JSON object of those fields (the
    pseudo-field "choices" is the parsed option list), for graders that need more than a
    string (code, ifeval, multiple choice with option texts); `reference_pattern` keeps its
    first group of the reference (GSM8K's "#### N"). `choices_field` is a list field or a
    list of columns, rendered as `{choices}` ("A. text" lines). Templates may use {input},
    {choices}, {group}, {group_words} and any of `metadata_fields`.
    Few-shot: `few_shot_n` examples from `few_shot_path` (same field mapping; same group
    when the rows have groups) go before the item as user/assistant turns, the assistant
    turn rendered with `few_shot_answer_template` ({reference} and the template fields).

    Tools and structured output (sent as Fireworks takes them; see wire/protocol.chat_body):
    `tools_field` names a row field holding that item's OpenAI `tools` list; `tool_choice`
    (`auto`, `none`, `required`, `any` or {type: function, function: {name}}) and
    `response_format` ({type: json_object} or {type: json_schema, json_schema: ...}) apply
    to every item. `format: bfcl` reads a BFCL category file instead (datasets/bfcl.py):
    messages, tools and the reference come from BFCL's own fields.
    """

    name: str
    path: str
    id_field: str | None = "id"
    input_field: str = "question"
    reference_field: str | None = "answer"
    system_prompt: str | None = None
    user_template: str = "{input}"
    grader: str = "numeric"
    grader_options: Mapping[str, Any] = field(default_factory=_frozen_options, hash=False)
    limit: int | None = None
    shuffle: bool = False
    seed: int = 0
    format: str = "auto"
    files: str = "*"
    columns: tuple[str, ...] | None = None
    records_key: str | None = None
    reference_fields: tuple[str, ...] | None = None
    reference_pattern: str | None = None
    choices_field: str | tuple[str, ...] | None = None
    metadata_fields: tuple[str, ...] = ()
    few_shot_path: str | None = None
    few_shot_n: int = 0
    few_shot_answer_template: str = "{reference}"
    source: Mapping[str, Any] | None = field(default=None, hash=False)
    data_path: str | None = None
    description: str | None = None
    tools_field: str | None = None
    tool_choice: Any = field(default=None, hash=False)
    response_format: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        for key in ("name", "path", "input_field", "grader"):
            _check_str(key, getattr(self, key))
        _check_tool_settings(self)
        for key in ("id_field", "reference_field", "records_key", "few_shot_path", "tools_field"):
            if getattr(self, key) is not None:
                _check_str(key, getattr(self, key))
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ConfigError(
                f"dataset.system_prompt: must be a string or null, got {_kind(self.system_prompt)}"
            )
        for key in ("columns", "reference_fields", "metadata_fields"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, _str_tuple(key, value))
        if self.choices_field is not None and not isinstance(self.choices_field, str):
            object.__setattr__(
                self, "choices_field", _str_tuple("choices_field", self.choices_field)
            )
        extra = tuple(self.metadata_fields)
        _check_user_template(self.user_template, extra)
        _check_template(
            "dataset.few_shot_answer_template",
            self.few_shot_answer_template,
            (*extra, "reference"),
            required=None,
        )
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
        if self.format not in FORMATS:
            raise ConfigError(
                f"dataset.format: must be one of {', '.join(FORMATS)}, got {self.format!r}"
            )
        _check_str("files", self.files)
        if not _is_int(self.few_shot_n) or self.few_shot_n < 0:
            raise ConfigError(
                f"dataset.few_shot_n: must be an integer >= 0, got {self.few_shot_n!r}"
            )
        if self.few_shot_n and self.few_shot_path is None:
            raise ConfigError("dataset.few_shot_path: required when dataset.few_shot_n > 0")
        if self.reference_pattern is not None:
            try:
                compiled = re.compile(self.reference_pattern)
            except (re.error, TypeError) as e:
                raise ConfigError(f"dataset.reference_pattern: not a regex ({e})") from None
            if compiled.groups < 1:
                raise ConfigError("dataset.reference_pattern: needs one capturing group")
        if self.source is not None:
            if not isinstance(self.source, Mapping):
                raise ConfigError(f"dataset.source: must be a mapping, got {_kind(self.source)}")
            object.__setattr__(self, "source", MappingProxyType(_plain(self.source)))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], base_dir: str | os.PathLike[str]) -> DatasetSpec:
        """Build a spec from the `dataset` config group. A relative `path` (and
        `few_shot_path`) joins `base_dir`, or `data_root()` when the spec has a `data_path`."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"dataset: must be a mapping of dataset settings, got {_kind(d)}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in d if k not in known)
        if unknown:
            raise ConfigError(
                f"dataset.{unknown[0]}: unknown key (unknown: {', '.join(unknown)}); "
                f"known keys: {', '.join(known)}"
            )
        values = dict(d)
        if values.get("path") is None and values.get("data_path") is not None:
            _check_str("data_path", values["data_path"])
            values["path"] = str(data_root() / values["data_path"])
        for key in ("name", "path"):
            if values.get(key) is None:
                raise ConfigError(
                    f"dataset.{key}: missing; every dataset needs a {key}"
                    + (" (or a data_path under the data root)" if key == "path" else "")
                )
        _check_str("path", values["path"])
        root = data_root() if values.get("data_path") else Path(os.fspath(base_dir))
        for key in ("path", "few_shot_path"):
            value = values.get(key)
            if isinstance(value, str) and not os.path.isabs(value):
                values[key] = os.path.normpath(os.path.join(root, value))
        if values.get("grader_options", ...) is None:
            values["grader_options"] = {}
        if values.get("metadata_fields", ...) is None:
            values["metadata_fields"] = ()
        return cls(**values)


def _check_tool_settings(spec: DatasetSpec) -> None:
    """`tool_choice` and `response_format` in the shapes Fireworks accepts (a wrong one would
    be a 400 on every request, so it fails here, before any is sent)."""
    choice = spec.tool_choice
    if choice is not None:
        choice = _plain(choice)
        named = (
            isinstance(choice, dict)
            and choice.get("type") == "function"
            and isinstance(choice.get("function"), dict)
            and isinstance(choice["function"].get("name"), str)
        )
        if choice not in TOOL_CHOICES and not named:
            raise ConfigError(
                f"dataset.tool_choice: must be one of {', '.join(TOOL_CHOICES)} or "
                f"{{type: function, function: {{name: ...}}}}, got {choice!r}"
            )
        object.__setattr__(spec, "tool_choice", choice)
    fmt = spec.response_format
    if fmt is not None:
        if not isinstance(fmt, Mapping) or fmt.get("type") not in RESPONSE_FORMATS:
            raise ConfigError(
                "dataset.response_format: must be a mapping with type one of "
                f"{', '.join(RESPONSE_FORMATS)}, got {fmt!r}"
            )
        if fmt["type"] == "json_schema" and not isinstance(fmt.get("json_schema"), Mapping):
            raise ConfigError("dataset.response_format.json_schema: required, a mapping")
        object.__setattr__(spec, "response_format", MappingProxyType(_plain(fmt)))


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_plain(value), ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _choice_lines(choices: Sequence[str]) -> str:
    if all(_LETTER_PREFIX.match(c) for c in choices):
        return "\n".join(choices)
    return "\n".join(f"{_LETTERS[i]}. {c}" for i, c in enumerate(choices))


_LETTERS = string.ascii_uppercase
_LETTER_PREFIX = re.compile(r"^\s*\(?[A-Z][).]")


def _fields_for(row: _Row) -> dict[str, str]:
    values = {
        "input": row.input_text,
        "choices": _choice_lines(row.choices),
        "group": row.group or "",
        "group_words": (row.group or "").replace("_", " "),
    }
    values.update(row.metadata)
    return values


def render_prompt(
    spec: DatasetSpec,
    item_id: str,
    input_text: str,
    reference: str | None,
    *,
    row: _Row | None = None,
    shots: Sequence[_Row] = (),
) -> Prompt:
    """Render one item: optional system message, few-shot turns, then the user template."""
    if row is None:
        row = _Row(item_id, input_text, reference)
    messages: list[Message] = []
    if spec.system_prompt:
        messages.append(Message("system", spec.system_prompt))
    for shot in shots:
        values = _fields_for(shot)
        messages.append(Message("user", spec.user_template.format(**values).lstrip("\n")))
        shown = shot.shot_answer if shot.shot_answer is not None else shot.reference
        answer = spec.few_shot_answer_template.format(reference=shown or "", **values)
        messages.append(Message("assistant", answer))
    user = spec.user_template.format(**_fields_for(row)).lstrip("\n")
    messages.append(Message("user", user))
    return Prompt(
        dataset=spec.name,
        item_id=item_id,
        messages=tuple(messages),
        reference=reference,
        prompt_sha256=prompt_sha256(messages, row.tools_json),
        group=row.group,
        metadata=tuple(row.metadata.items()),
        tools_json=row.tools_json,
        tool_choice_json=_json_or_none(spec.tool_choice),
        response_format_json=_json_or_none(spec.response_format),
    )


_Report = Callable[..., None]
_NO_METADATA: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)  # slots: a large dataset holds one per item while loading
class _Row:
    item_id: str
    input_text: str
    reference: str | None
    group: str | None = None
    choices: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    shot_answer: str | None = None
    tools_json: str | None = None


def load_prompts(spec: DatasetSpec) -> PromptTable:
    """Validate every row of the dataset, then render the selected rows in order, packed
    (datasets/compact.py: a large dataset's prompts as objects were most of a run's memory).

    Nothing is returned unless the whole dataset (and its few-shot split) is valid; the
    DatasetError lists up to MAX_LISTED_PROBLEMS problems as `path:line: field 'x': what`.
    """
    if spec.format == "bfcl":
        from lavabench.datasets.bfcl import load_bfcl

        calls = load_bfcl(spec.path, spec.name, spec.system_prompt, _json_or_none(spec.tool_choice))
        if spec.shuffle:
            random.Random(spec.seed).shuffle(calls)
        return PromptTable(calls[: spec.limit] if spec.limit is not None else calls)
    rows = _load_rows(spec, spec.path, require_id=spec.id_field is not None)
    if spec.shuffle:
        random.Random(spec.seed).shuffle(rows)
    if spec.limit is not None:
        rows = rows[: spec.limit]
    shots_by_group: dict[str | None, list[_Row]] = {}
    if spec.few_shot_n and spec.few_shot_path:
        for shot in _load_rows(spec, spec.few_shot_path, require_id=False):
            shots_by_group.setdefault(shot.group, []).append(shot)
    prompts = PromptTable()
    for r in rows:
        shots = shots_by_group.get(r.group) or shots_by_group.get(None) or []
        prompts.append(
            render_prompt(
                spec, r.item_id, r.input_text, r.reference, row=r, shots=shots[: spec.few_shot_n]
            )
        )
    return prompts


def _load_rows(spec: DatasetSpec, path: str, require_id: bool) -> list[_Row]:
    rows: list[_Row] = []
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    pattern = spec.files if require_id or path == spec.path else "*" + Path(spec.files).suffix
    for file_path, group in _data_files(spec, path, pattern):
        try:
            data = _read(file_path)
        except DatasetError as exc:
            if spec.source is None or Path(file_path).exists():
                raise
            raise DatasetError(
                f"{exc}. This built-in dataset is not on this machine yet: run "
                f"`lavabench data pull {spec.name}`, or set LAVABENCH_DATA_MIRROR to a folder "
                "that holds it (e.g. ../shared/datasets)"
            ) from None
        # JSONL is parsed line by line as it is validated (100,000 parsed rows held at once
        # were most of a large run's peak RSS); its parse problems still come first
        parsed: list[str] = []
        checked: list[str] = []
        records = _records(spec, file_path, data, parsed)
        del data
        _validate(spec, records, group, rows, checked, first_seen, require_id)
        problems += parsed + checked
    if problems:
        shown = problems[:MAX_LISTED_PROBLEMS]
        more = len(problems) - len(shown)
        listing = "\n".join(f"  {p}" for p in shown)
        if more:
            listing += f"\n  ... and {more} more"
        raise DatasetError(
            f"{path}: {len(problems)} problem(s) in dataset {spec.name!r}; nothing was "
            f"loaded:\n{listing}\n"
            f"Fix these rows: each row must be one record with a non-empty "
            f"{spec.id_field!r} (string or integer, unique) and a non-empty string "
            f"{spec.input_field!r}; {spec.reference_field!r} is optional (string or number). "
            "If the file uses other field names, set dataset.id_field, dataset.input_field "
            "and dataset.reference_field."
        )
    if not rows:
        raise DatasetError(
            f"{path}: dataset {spec.name!r} has no rows; add one JSON object per line"
        )
    return rows


def _data_files(spec: DatasetSpec, path: str, pattern: str) -> list[tuple[str, str | None]]:
    """(file, group) pairs: the file itself (no group), or a folder's matching files sorted.
    The few-shot folder is read with the data glob's extension only (dev files are named
    differently from test files)."""
    p = Path(path)
    if p.is_dir():
        found = sorted(f for f in p.rglob(pattern) if f.is_file())
        if not found:
            raise DatasetError(
                f"{path}: no files matching {pattern!r} in this folder; check dataset.path "
                "and dataset.files"
            )
        return [(str(f), _SPLIT_SUFFIX.sub("", f.stem)) for f in found]
    return [(path, None)]


_Record = tuple[str, Any]  # (location "path:line", parsed value or _BAD)
_BAD = object()


def _file_format(spec: DatasetSpec, path: str) -> str:
    if spec.format != "auto":
        return spec.format
    suffix = Path(path).suffix.lower()
    return {".csv": "csv", ".json": "json"}.get(suffix, "jsonl")


def _records(spec: DatasetSpec, path: str, data: bytes, problems: list[str]) -> Iterable[_Record]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    fmt = _file_format(spec, path)
    if fmt == "jsonl":
        return _jsonl_records(path, data, problems)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        problems.append(f"{path}: row: not valid UTF-8 (byte {e.start + 1} of the file)")
        return []
    if fmt == "csv":
        return _csv_records(spec, path, text, problems)
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        problems.append(f"{path}: row: not valid JSON ({e})")
        return []
    if spec.records_key is not None:
        if not isinstance(obj, dict) or not isinstance(obj.get(spec.records_key), list):
            problems.append(f"{path}: field {spec.records_key!r}: must be a list of records")
            return []
        obj = obj[spec.records_key]
    if not isinstance(obj, list):
        problems.append(f"{path}: row: must be a JSON list of records (or set dataset.records_key)")
        return []
    key = spec.records_key or ""
    return [(f"{path}:{key}[{i}]", rec) for i, rec in enumerate(obj)]


def _jsonl_records(path: str, data: bytes, problems: list[str]) -> Iterator[_Record]:
    """One parsed line at a time (lines split on b"\\n" only, as `bytes.split` would)."""
    for lineno, line in enumerate(io.BytesIO(data), start=1):
        raw = line[:-1] if line.endswith(b"\n") else line
        where = f"{path}:{lineno}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(f"{where}: row: not valid UTF-8 (byte {e.start + 1} of the line)")
            continue
        if not text.strip():
            continue
        try:
            value = json.loads(text, parse_constant=_reject_constant)
        except ValueError as e:
            detail = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else e
            problems.append(f"{where}: row: not valid JSON ({detail})")
            continue
        yield where, value


def _csv_records(spec: DatasetSpec, path: str, text: str, problems: list[str]) -> list[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = list(spec.columns) if spec.columns is not None else None
    out: list[_Record] = []
    start = 1
    try:
        for values in reader:
            where = f"{path}:{start}"
            start = reader.line_num + 1
            if not values or not any(v.strip() for v in values):
                continue
            if header is None:
                header = values
                continue
            if len(values) != len(header):
                problems.append(
                    f"{where}: row: has {len(values)} columns, expected {len(header)} "
                    f"({', '.join(header)})"
                )
                continue
            out.append((where, dict(zip(header, values, strict=True))))
    except csv.Error as e:
        problems.append(f"{path}:{reader.line_num}: row: not valid CSV ({e})")
    return out


def _validate(
    spec: DatasetSpec,
    records: Iterable[_Record],
    group: str | None,
    rows: list[_Row],
    problems: list[str],
    first_seen: dict[str, str],
    require_id: bool,
) -> None:
    count = 0
    for where, obj in records:
        count += 1

        def problem(what: str, field_name: str | None = None, where: str = where) -> None:
            place = f"field {field_name!r}" if field_name is not None else "row"
            problems.append(f"{where}: {place}: {what}")

        if not isinstance(obj, dict):
            problem(f"must be a JSON object, got {_kind(obj)}")
            continue
        ok = True
        if spec.id_field is not None and require_id:
            item_id = _row_id(obj, spec.id_field, problem)
        else:
            item_id = f"{group}/{count}" if group else str(count)
        if item_id is not None:
            if item_id in first_seen:
                line = first_seen[item_id].rsplit(":", 1)[-1]
                problem(f"duplicate id {item_id!r} (first used on line {line})", spec.id_field)
                item_id = None
            else:
                first_seen[item_id] = where
        input_text = _row_input(obj, spec.input_field, problem)
        choices = _row_choices(spec, obj, problem)
        ok = choices is not None
        ref_ok, reference = _row_reference_any(spec, obj, choices or (), problem)
        metadata: dict[str, str] = {}
        for name in spec.metadata_fields:
            value = obj.get(name, _BAD)
            if value is _BAD:
                problem("missing", name)
                ok = False
            elif value is None:
                metadata[name] = ""
            elif isinstance(value, str | int | float) and not isinstance(value, bool):
                metadata[name] = str(value)
            else:
                problem(f"must be a string or number, got {_kind(value)}", name)
                ok = False
        tools_json = _row_tools(spec, obj, problem)
        ok = ok and (spec.tools_field is None or tools_json is not None)
        if item_id is not None and input_text is not None and ok and ref_ok:
            plain = obj.get(spec.reference_field) if spec.reference_field else None
            shot = None if plain is None else str(plain)
            rows.append(
                # no metadata (most datasets): one shared empty mapping, not a dict per item
                _Row(item_id, input_text, reference, group, tuple(choices or ()),
                     metadata or _NO_METADATA, shot, tools_json)
            )  # fmt: skip


def _row_tools(spec: DatasetSpec, obj: dict[str, Any], problem: _Report) -> str | None:
    """The row's OpenAI `tools` list as JSON text (`tools_field`), or None."""
    if spec.tools_field is None:
        return None
    tools = obj.get(spec.tools_field)
    ok = isinstance(tools, list) and bool(tools)
    for tool in tools if ok else ():  # type: ignore[union-attr]
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not (tool.get("type") == "function" and isinstance(fn, dict)
                and isinstance(fn.get("name"), str)):  # fmt: skip
            ok = False
    if not ok:
        problem(
            "must be a non-empty list of {type: function, function: {name, parameters}} "
            "objects (OpenAI tools)",
            spec.tools_field,
        )
        return None
    return json.dumps(tools, ensure_ascii=False, separators=(",", ":"))


def _row_choices(spec: DatasetSpec, obj: dict[str, Any], problem: _Report) -> list[str] | None:
    key = spec.choices_field
    if key is None:
        return []
    if isinstance(key, str):
        value = obj.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            problem(f"must be a non-empty list of strings, got {_kind(value)}", key)
            return None
        return list(value)
    out = []
    for column in key:
        value = obj.get(column)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            problem(f"missing or not a string (got {_kind(value)})", column)
            return None
        out.append(str(value))
    return out


def _row_reference_any(
    spec: DatasetSpec, obj: dict[str, Any], choices: Sequence[str], problem: _Report
) -> tuple[bool, str | None]:
    if spec.reference_fields:
        ref: dict[str, Any] = {}
        for name in spec.reference_fields:
            if name == "choices":
                ref[name] = list(choices)
            elif name not in obj or obj[name] is None:
                problem("missing (or null); it is one of dataset.reference_fields", name)
                return False, None
            else:
                ref[name] = obj[name]
        return True, json.dumps(ref, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if spec.reference_field is None:
        return True, None
    ok, reference = _row_reference(obj, spec.reference_field, problem)
    if ok and reference is not None and spec.reference_pattern is not None:
        m = re.search(spec.reference_pattern, reference, re.DOTALL)
        if m is None or m.group(1) is None:
            problem(
                f"does not match dataset.reference_pattern {spec.reference_pattern!r}",
                spec.reference_field,
            )
            return False, None
        reference = m.group(1).strip()
    return ok, reference


def dataset_sha256(path: str | os.PathLike[str], *, pair: bool = True) -> str:
    """sha256 of the dataset file's bytes, recorded in run metadata to pin the exact data.
    For a folder: sha256 of the sorted "relative/path sha256" lines of every file in it.
    A BFCL question file with its ground truth in `possible_answer/` beside it: the same
    listing over both files, since the answers decide every grade."""
    answers = Path(path).parent / "possible_answer" / Path(path).name
    if pair and answers.is_file() and Path(path).is_file():
        pair_lines = f"{Path(path).name} {dataset_sha256(path, pair=False)}\n"
        pair_lines += f"possible_answer/{answers.name} {dataset_sha256(answers, pair=False)}\n"
        return hashlib.sha256(pair_lines.encode("utf-8")).hexdigest()
    if Path(path).is_dir():
        root = Path(path)
        lines = [
            f"{f.relative_to(root).as_posix()} {dataset_sha256(f)}\n"
            for f in sorted(root.rglob("*"))
            if f.is_file()
        ]
        return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
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


def _check_user_template(template: Any, extra: Sequence[str] = ()) -> None:
    _check_template("dataset.user_template", template, extra, required="input")


def _check_template(key: str, template: Any, extra: Sequence[str], required: str | None) -> None:
    allowed = (*_TEMPLATE_FIXED, *extra)
    if not isinstance(template, str):
        raise ConfigError(f"{key}: must be a string containing {{input}}, got {_kind(template)}")
    names_hint = ", ".join("{" + n + "}" for n in allowed)
    hint = f"only {names_hint} may be used; write a literal brace as {{{{ or }}}}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"{key}: {template!r} is not a valid template ({e}); {hint}") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    nested = [spec for _, _, spec, _ in parsed if spec and "{" in spec]
    other = sorted({n for n in names if n not in allowed})
    if other or nested:
        found = ", ".join("{" + n + "}" for n in other) or "a nested field"
        raise ConfigError(f"{key}: {template!r} references {found}; {hint}")
    if required is not None and required not in names:
        raise ConfigError(
            f"{key}: {template!r} does not contain {{input}}, so every prompt would be the "
            "same; put {input} where the dataset row's text goes"
        )
    try:
        template.format(**dict.fromkeys(allowed, "x"))
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{key}: {template!r} cannot be rendered ({e}); {hint}") from None


def _str_tuple(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"dataset.{key}: must be a list of field names, got {_kind(value)}")
    for item in value:
        _check_str(key, item)
    return tuple(value)


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
