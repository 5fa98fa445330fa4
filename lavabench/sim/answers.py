"""Answer keys: which item a prompt asks about, and whether a model gets it right.

"Simulator truth" (shared/docs/statistics.md): each item has a fixed difficulty d in [0, 1)
shared by every model and seed-repeat, and a model answers correctly with probability
P = 1 / (1 + exp(-(skill - d) / 0.08)). The draw compared with P is a hash of
(seed, model, question, request seed), so a model is consistent on an item, models agree on
which items are hard, and paired comparisons gain power as they do on real models.

A request is an item when its last user message contains the item's question verbatim
(substring match): prompt templates may wrap the question in instructions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from lavabench.sim.determinism import unit

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

    def __init__(self, items: Iterable[Item]) -> None:
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
        """The item whose question occurs in `text`, or None."""
        hit = self._cache.get(text, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        item = None
        if self._pattern is not None and len(text) >= self._min_len:
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
        return cls(items)


def _read_key(path: Path, seed: int) -> list[Item]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"sim.answer_keys: cannot read {path}: {exc.strerror}") from exc
    items = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise ValueError(f"{where}: expected a JSON object")
        item_id, question, answer = row.get("id"), row.get("question"), row.get("answer")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            raise ValueError(f"{where}: 'id' must be a non-empty string")
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"{where}: 'question' must be a non-empty string")
        if isinstance(answer, int | float) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip():
            raise ValueError(f"{where}: 'answer' must be a non-empty string")
        difficulty = unit(seed, "difficulty", question)
        items.append(Item(item_id, question, answer.strip(), difficulty))
    return items
