"""`multiple_choice`: read the chosen letter out of free-form text and compare it.

Accepted forms, latest wins within a tier: commitments ("Answer: (B)", "The answer is B.",
"I choose C"), then a named option ("The correct option is **B**"), then a line that starts
with the letter ("B. Paris", "(B)"), then a response that ends with one option's text (needs
the choices, see `parse_reference`), then the last parenthesised letter. Reasoning inside <think> is ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from lavabench.errors import DatasetError
from lavabench.grading.base import Grade, verdict
from lavabench.grading.options import check_options
from lavabench.grading.text import strip_emphasis, strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {"letters": (str,)}
_PREFIX = re.compile(r"^\s*\(?([A-Z])[).:]\s*")


@lru_cache(maxsize=64)
def _patterns(letters: str) -> tuple[re.Pattern[str], ...]:
    cls = f"[{re.escape(letters)}]"
    # A commitment ("Answer: C", "I choose C") outranks a mention of an option: "Option A is
    # incorrect" after "Answer: C" explains, it does not answer. "option/choice" counts only
    # with "is" or ":" before the letter ("The correct option is B").
    commit = r"(?i:\banswer\b(?:\s+is)?|\bchoose\b|\bselect\b|\bpick\b|\bgo\s+with\b)"
    named = r"(?i:\b(?:option|choice)\b(?:\s+is\b|\s*[:=]))"
    tail = rf"\s*(?:is\s*)?[:=]?\s*(?:option\s*|choice\s*)?[(\[]?({cls})(?![A-Za-z0-9])"
    return (
        re.compile(commit + tail),
        re.compile(named + tail),
        re.compile(rf"^\s*[(\[]?({cls})(?:[)\].:]|\s*$)", re.MULTILINE),
        re.compile(rf"\(({cls})\)"),
    )


def parse_reference(reference: str) -> tuple[str, list[str]]:
    """A reference is a letter ("B", "(B)") or a JSON object with the letter under
    answer/label/target and optionally the option texts under choices/options."""
    ref = reference.strip()
    choices: list[str] = []
    if ref.startswith("{"):
        try:
            obj = json.loads(ref)
        except ValueError:
            raise DatasetError(
                f"multiple_choice: reference {ref[:60]!r} is not valid JSON"
            ) from None
        letter = next((obj[k] for k in ("answer", "label", "target") if obj.get(k)), None)
        raw = obj.get("choices") or obj.get("options") or []
        choices = [_PREFIX.sub("", str(c)).strip() for c in raw]
        ref = str(letter or "")
    letter = ref.strip().strip("()").strip()
    if len(letter) != 1 or not letter.isalpha():
        raise DatasetError(
            f"multiple_choice: reference {reference[:60]!r} is not a single option letter; "
            "fix the dataset's reference field or use dataset.grader=exact"
        )
    return letter.upper(), choices


def extract_choice(text: str, letters: str = "ABCD", choices: Sequence[str] = ()) -> str | None:
    """The option letter `text` commits to, or None (see the module docstring)."""
    clean = strip_emphasis(strip_reasoning(text)).strip()
    if not clean:
        return None
    commit, named, line_start, paren = _patterns(letters)
    for pattern in (commit, named, line_start):
        found = pattern.findall(clean)
        if found:
            return str(found[-1])
    if choices:
        tail = clean.rstrip(" .!\n").casefold()
        best = None
        for i, choice in enumerate(choices):
            c = choice.strip().rstrip(".").casefold()
            longer = best is None or len(c) > len(choices[best])
            if c and tail.endswith(c) and i < len(letters) and longer:
                best = i
        if best is not None:
            return letters[best]
    found = paren.findall(clean)
    return str(found[-1]) if found else None


def multiple_choice(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the extracted letter equals the reference letter.

    Option `letters` (default "ABCD") lists the valid letters; "ABCDE" for AGIEval.
    """
    check_options("multiple_choice", options, _OPTIONS)
    letters = str(options.get("letters", "ABCD"))
    choices: list[str] = []
    expected = None
    if reference is not None:
        expected, choices = parse_reference(reference)
    extracted = extract_choice(response_text, letters, choices)
    if expected is None:
        return Grade(None, None, extracted)
    return verdict(extracted == expected, extracted)
