"""Text helpers shared by graders: reasoning removal, markdown stripping, answer segments."""

from __future__ import annotations

import re

_THINK_TAGS = r"(?:think|thinking|reasoning)"
_THINK_BLOCK = re.compile(rf"<({_THINK_TAGS})>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_THINK_CLOSE = re.compile(rf"</{_THINK_TAGS}\s*>", re.IGNORECASE)
_THINK_OPEN = re.compile(rf"<{_THINK_TAGS}>", re.IGNORECASE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
# "answer" as a whole word followed by "is", ":" or "=" (or ending its line, a heading such
# as "### Final Answer"): "Hope this answers your question!" or "the answer depends" after
# the real answer must not become the answer.
_FINAL_MARKER = re.compile(
    r"\b(?:final\s+answer|the\s+answer|answer)\b[ \t]*(?:is\b[ \t]*:?|[:=]|(?=[ \t]*$))",
    re.IGNORECASE | re.MULTILINE,
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def strip_reasoning(text: str) -> str:
    """Drop <think>-style reasoning so options the model merely considered are never graded.

    A closing tag without an opening one drops everything before it; an opening tag never
    closed (output cut off while reasoning) drops everything after it.
    """
    if "<" not in text:  # every tag starts with "<": three case-insensitive scans saved
        return text
    text = _THINK_BLOCK.sub(" ", text)
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = _THINK_OPEN.search(text)
    if opened:
        text = text[: opened.start()]
    return text


def strip_emphasis(text: str) -> str:
    """Remove Markdown bold/italic/code marks, which models wrap around answers."""
    return _EMPHASIS.sub("", text)


def final_answer_text(text: str) -> str:
    """The text after the last "answer is"/"Answer:" marker (one line), else the last line.

    Trailing period and surrounding whitespace are removed; Markdown emphasis is dropped.
    """
    text = strip_emphasis(strip_reasoning(text)).strip()
    markers = list(_FINAL_MARKER.finditer(text))
    if markers:
        rest = text[markers[-1].end() :].strip()
        line = rest.split("\n", 1)[0].strip()
    else:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        line = lines[-1] if lines else ""
    line = line.strip()
    while line.endswith((".", "!")) and not line.endswith(".."):
        line = line[:-1].rstrip()
    return line


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, body), in order; an unclosed fence runs to the end."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]


def matching_brace(text: str, start: int) -> int:
    """Index of the "}" closing the group whose "{" is just before `start`, or -1."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1
