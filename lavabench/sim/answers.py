"""Answer keys: which item a prompt asks about, and whether a model gets it right.

"Simulator truth" (shared/docs/statistics.md): each item has a fixed difficulty d in [0, 1)
shared by every model and seed-repeat, and a model answers correctly with probability
P = 1 / (1 + exp(-(skill - d) / 0.08)). The draw compared with P is a hash of
(seed, model, question, request seed), so a model is consistent on an item, models agree on
which items are hard, and paired comparisons gain power as they do on real models.

A request is an item when its last user message contains the item's question verbatim
(substring match): prompt templates may wrap the question in instructions.

Key files: JSONL rows {"question", "answer", "id"?, "format"?, "dataset"?} (the normalised
form), or the public sets' own files, recognised by their fields: GSM8K (answer after
"####"), MATH-500 (problem/answer), HumanEval (prompt/canonical_solution), AGIEval
(question/label), BBH (a .json file with "examples" of input/target) and headerless MMLU
CSV (question, A-D, answer). A folder is read file by file. `format` tells the replies how
the answer must be written (number, boxed, letter, code, text); see replies.py.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from lavabench.sim.determinism import unit
from lavabench.sim.tools import is_bfcl_file

SKILL_SCALE = 0.08
_CACHE_LIMIT = 4096
_MISS = object()


@dataclass(frozen=True, slots=True)
class Item:
    """One answer-key line; `difficulty` is derived from the seed and the question."""

    id: str
    question: str
    answer: str
    difficulty: float
    format: str = "number"
    dataset: str = ""


def p_correct(skill: float, difficulty: float) -> float:
    """Chance that a model of `skill` answers an item of `difficulty` correctly."""
    return 1.0 / (1.0 + math.exp(-(skill - difficulty) / SKILL_SCALE))


def is_correct(seed: int, model: str, item: Item, skill: float, request_seed: int) -> bool:
    """The deterministic draw: same (seed, model, question, request seed) -> same outcome."""
    u = unit(seed, "correct", model, item.question, request_seed)
    return u < p_correct(skill, item.difficulty)


class AnswerKey:
    """All items of all configured key files, with one precompiled matcher.

    The matcher is one regex alternation of the escaped questions, longest first, so a
    question that contains another one wins. Results are cached per message text because a
    benchmark sends the same prompt to many models.
    """

    def __init__(self, items: Iterable[Item], seed: int = 0) -> None:
        self._seed = seed
        self._by_question: dict[str, Item] = {}
        for item in items:
            self._by_question.setdefault(item.question, item)
        questions = sorted(self._by_question, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, questions))) if questions else None
        self._min_len = len(questions[-1]) if questions else 0
        self._cache: dict[str, Item | None] = {}

    def __len__(self) -> int:
        return len(self._by_question)

    def items(self) -> list[Item]:
        """All items, in load order (first occurrence of each question)."""
        return list(self._by_question.values())

    def find(self, text: str) -> Item | None:
        """The item whose question occurs in `text` (or a judge item), or None."""
        hit = self._cache.get(text, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        item = judge_item(text, self._seed)
        if item is None and self._pattern is not None and len(text) >= self._min_len:
            match = self._pattern.search(text)
            if match is not None:
                item = self._by_question[match.group()]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[text] = item
        return item

    @classmethod
    def load(cls, paths: Sequence[str], seed: int) -> AnswerKey:
        """Read JSONL files of {"id", "question", "answer", ...}; ValueError names file:line."""
        items: list[Item] = []
        for path in paths:
            items.extend(_read_key(Path(path), seed))
        return cls(items, seed)


FORMATS = ("number", "gsm8k", "boxed", "letter", "paren_letter", "code", "json", "text", "judge")

# An LLM-as-judge prompt (lavabench/judge.py) ends with this instruction. The simulated judge
# gives the top score when the reference occurs in the graded response and a low one when it
# does not, so judged accuracy follows real correctness; the judge model's skill decides
# how often it misjudges (a wrong draw shifts the score).
JUDGE_MARKER = "then a final line `Score: N` where N is an integer from 0 to "
_JUDGE_SECTION = re.compile(
    r"Reference answer:\n(?P<reference>.*?)\n\nResponse to grade:\n(?P<response>.*?)\n\nRubric:",
    re.S,
)


def judge_item(text: str, seed: int) -> Item | None:
    """The judge's verdict on the response quoted in a judge prompt, as an answer-key item."""
    at = text.find(JUDGE_MARKER)
    if at < 0:
        return None
    digits = re.match(r"\d+", text[at + len(JUDGE_MARKER) :])
    top = int(digits.group()) if digits else 10
    sections = _JUDGE_SECTION.search(text)
    reference = sections.group("reference").strip() if sections else ""
    response = sections.group("response") if sections else ""
    score = top if reference and reference in response else top // 5
    return Item(
        id="judge",
        question=text,
        answer=str(score),
        difficulty=unit(seed, "judge", text) * 0.5,
        format="judge",
    )


_GENERIC_STEMS = {"test", "dev", "val", "train", "data", "input_data", "validation"}


def dataset_label(path: Path) -> str:
    """The dataset a key file belongs to, for per-dataset skill: its folder name when the
    file is a generic split ("gsm8k/test.jsonl" -> "gsm8k"), else the file's stem."""
    stem = path.stem.split(".")[0]
    return path.parent.name if stem.lower() in _GENERIC_STEMS else stem


def _read_key(path: Path, seed: int) -> list[Item]:
    if path.is_dir():
        items: list[Item] = []
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix in (".jsonl", ".json", ".csv"):
                items.extend(_read_key_file(child, seed, dataset_label(path)))
        return items
    return _read_key_file(path, seed, dataset_label(path))


def _read_key_file(path: Path, seed: int, label: str) -> list[Item]:
    if is_bfcl_file(path) or path.parent.name == "possible_answer":
        return []  # BFCL's tool-call items: sim/tools.py ToolKey reads them
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"sim.answer_keys: cannot read {path}: {exc}") from exc
    rows: list[tuple[str, object]] = []
    if path.suffix == ".csv":
        for n, values in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            if len(values) == 6 and values[5].strip() in ("A", "B", "C", "D"):
                rows.append((f"{path}:{n}", {"question": values[0], "label": values[5]}))
    elif path.suffix == ".json":
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        examples = doc.get("examples") if isinstance(doc, dict) else doc
        for n, row in enumerate(examples if isinstance(examples, list) else [], start=1):
            rows.append((f"{path}:examples[{n - 1}]", row))
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{lineno}", orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc})") from exc
    items = []
    for n, (where, row) in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object")
        parsed = _normalise_row(row, where)
        if parsed is None:
            continue
        question, answer, fmt = parsed
        item_id = row.get("id", row.get("task_id", row.get("unique_id", n)))
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"{where}: 'id' must be a non-empty string")
        difficulty = unit(seed, "difficulty", question)
        dataset = row.get("dataset") if isinstance(row.get("dataset"), str) else label
        items.append(Item(item_id, question, answer, difficulty, fmt, str(dataset)))
    return items


def _normalise_row(row: dict[str, object], where: str) -> tuple[str, str, str] | None:
    """(question, answer, format) from any supported row shape; None skips the row
    (a shape without an answer, such as IFEval's)."""
    if isinstance(row.get("canonical_solution"), str) and isinstance(row.get("prompt"), str):
        prompt = str(row["prompt"])
        return prompt, prompt + str(row["canonical_solution"]), "code"
    if isinstance(row.get("problem"), str) and "answer" in row:
        return str(row["problem"]), str(row["answer"]).strip(), "boxed"
    if isinstance(row.get("input"), str) and isinstance(row.get("target"), str):
        target = str(row["target"]).strip()
        target_fmt = "paren_letter" if re.fullmatch(r"\([A-Z]\)", target) else "text"
        return str(row["input"]), target, target_fmt
    if isinstance(row.get("label"), str) and isinstance(row.get("question"), str):
        return str(row["question"]), str(row["label"]).strip(), "letter"
    if "question" not in row and "prompt" in row and "answer" not in row:
        return None
    question, answer = row.get("question"), row.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"{where}: 'question' must be a non-empty string")
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{where}: 'answer' must be a non-empty string")
    fmt: object = row.get("format")
    if "####" in answer:
        answer = answer.rsplit("####", 1)[1]
        fmt = fmt or "gsm8k"
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"{where}: 'format' must be one of {', '.join(FORMATS)}")
    return question, answer.strip(), str(fmt or "number")
