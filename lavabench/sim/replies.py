"""The text a simulated model writes, as a list of tokens.

A token is a word with its leading whitespace, so joining the tokens gives the text and each
streamed content delta is exactly one token. A reply to an answer-key item ends in the form
its dataset's prompt asks for (the item's `format`): "The answer is N." (number),
"#### N" (GSM8K), "\\boxed{X}" (MATH), "Answer: B" (letter), "So the answer is (B)." (BBH),
a ```python block (code) or the bare JSON. A wrong reply has the same shape with a
deterministic wrong answer. Texts are picked by hashing, never at random.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lavabench.sim.answers import Item
from lavabench.sim.determinism import hash64

_TOKEN_RE = re.compile(r"\s*\S+")
_INT_RE = re.compile(r"-?\d+")
_DEC_RE = re.compile(r"-?\d+\.(\d+)")
_CHOICES = "ABCDE"

_OPENERS = (
    "Let's work through this step by step.",
    "We can solve this directly.",
    "First, collect the quantities given in the question.",
    "Reading the problem carefully, we set up the calculation.",
)
_MIDDLES = (
    "Combining the numbers in the order described gives the result.",
    "Applying each operation in turn and checking the arithmetic once more settles it.",
    "Working out the intermediate totals first makes the final one easy.",
    "Putting the pieces together and simplifying leaves a single number.",
)
_REASONING_WORDS = (
    " Okay,", " the", " user", " asks", " for", " a", " result.", " Let", " me", " restate",
    " the", " problem", " and", " track", " each", " quantity.", " I", " should", " check",
    " the", " arithmetic", " twice", " before", " answering.", " Start", " with", " the",
    " first", " number,", " then", " apply", " the", " next", " step.", " That", " seems",
    " right.", " Now", " write", " the", " answer.",
)  # fmt: skip
_FILLER_WORDS = (
    " Sure.", " Here", " is", " a", " short", " reply", " to", " your", " message.", " It",
    " covers", " the", " main", " points", " briefly", " and", " clearly,", " without",
    " going", " into", " more", " detail", " than", " needed.", " Let", " me", " know",
    " if", " you", " want", " more.",
)  # fmt: skip

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def tokenize(text: str) -> list[str]:
    """Split text into tokens: each non-space run with the whitespace before it."""
    return _TOKEN_RE.findall(text)


@lru_cache(maxsize=65536)
def answer_tokens(seed: int, model: str, item: Item, correct: bool) -> tuple[str, ...]:
    """The reply of `model` to `item`: a short worked answer ending "The answer is X."."""
    h = hash64(seed, "reply", model, item.question)
    opener = _OPENERS[h % len(_OPENERS)]
    middle = _MIDDLES[(h >> 8) % len(_MIDDLES)]
    if item.format == "code":
        body = item.answer if correct else item.question + "    raise NotImplementedError\n"
        return tuple(tokenize(f"Here is the function.\n\n```python\n{body.rstrip()}\n```"))
    shown = item.answer if correct else wrong_answer(seed, model, item.answer, item.question)
    if item.format == "json":
        return tuple(tokenize(shown if correct else shown + "}"))
    if item.format == "text" and not correct:
        shown = _flip(item.answer, shown)
    ending = {
        "gsm8k": f"\n#### {shown}",
        "boxed": f" The final answer is $\\boxed{{{shown}}}$.",
        "letter": f"\nAnswer: {shown}",
        "paren_letter": f" So the answer is ({shown.strip('()')}).",
        "text": f" So the answer is {shown}.",
        "judge": f" Comparing the response with the reference answer.\nScore: {shown}",
    }.get(item.format, f" The answer is {shown}.")
    return tuple(tokenize(f"{opener} {middle}{ending}"))


_OPPOSITES = {"true": "False", "false": "True", "yes": "No", "no": "Yes", "valid": "invalid"}
_OPPOSITES["invalid"] = "valid"


def _flip(answer: str, fallback: str) -> str:
    """A wrong text answer of the same kind: Yes <-> No, True <-> False, valid <-> invalid."""
    flipped = _OPPOSITES.get(answer.strip().lower())
    if flipped is None:
        return fallback
    return flipped.lower() if answer.strip().islower() else flipped


def wrong_answer(seed: int, model: str, answer: str, question: str) -> str:
    """A deterministic wrong answer: an integer stays an integer (answer +/- 1..9)."""
    h = hash64(seed, "wrong", model, question)
    offset = 1 + h % 9
    plain = answer.replace(",", "")
    if _INT_RE.fullmatch(plain):
        value = int(plain)
        down = (h >> 8) & 1 and value - offset >= 0
        return str(value - offset if down else value + offset)
    decimals = _DEC_RE.fullmatch(plain)
    if decimals:
        places = len(decimals.group(1))
        return f"{float(plain) + offset:.{places}f}"
    upper = answer.strip().strip("()").upper()
    if len(upper) == 1 and upper in _CHOICES:
        others = _CHOICES.replace(upper, "")
        return others[h % len(others)]
    return "unknown"


def reasoning_tokens(seed: int, model: str, count: int) -> list[str]:
    """`count` tokens of plausible thinking text (content does not matter, count does)."""
    if count <= 0:
        return []
    start = hash64(seed, "reasoning", model) % len(_REASONING_WORDS)
    words = _REASONING_WORDS
    return [words[(start + i) % len(words)] for i in range(count)]


def filler_tokens(seed: int, text: str, count: int) -> list[str]:
    """The reply to a prompt outside every answer key: `count` tokens of generic text."""
    start = hash64(seed, "filler", text) % len(_FILLER_WORDS)
    words = _FILLER_WORDS
    tokens = [words[(start + i) % len(words)] for i in range(count)]
    if tokens:
        tokens[0] = tokens[0].lstrip()
    return tokens
