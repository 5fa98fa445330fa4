"""The numeric grader's scan shortcuts (a pattern skipped when the text lacks a character
every match needs; the answer-marker scan started at the first "answer") change no result:
each is checked against the unshortened scan on generated answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lavabench.grading import registry as g
from lavabench.grading import text as gt

PIECES = ["The answer is ", "answer: ", "ANSWER = ", "Answer", "xanswer is 3", "#### ", "####",
          "\\boxed{", "}", "\\,", "{,}", "<think>", "</think>", "<", "1,234", "42", "-7", "3/4",
          "0.5", " ", "\n", ". ", "so ", "=", "ſ", "答案是", "é", "$", "w1"]  # fmt: skip


def _strip_reasoning_unshortened(text: str) -> str:
    text = gt._THINK_BLOCK.sub(" ", text)
    closes = list(gt._THINK_CLOSE.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    opened = gt._THINK_OPEN.search(text)
    return text[: opened.start()] if opened else text


def _segments_unshortened(text: str) -> list[tuple[int, str]]:
    segments = [(m.start(), g._braced(text, m.end())) for m in g._BOXED.finditer(text)]
    for marker in (g._ANSWER_MARKER, g._HASH_MARKER):
        segments.extend((m.start(), g._line_after(text, m.end())) for m in marker.finditer(text))
    segments.sort(key=lambda s: s[0])
    return segments


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=12))
def test_shortcuts_agree_with_the_full_scans(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert gt.strip_reasoning(text) == _strip_reasoning_unshortened(text)
    latex = g._LATEX_THOUSANDS.sub(lambda m: "," if m.group(0) == "{,}" else "", text)
    assert g._normalise_latex(text) == latex
    assert g._marker_segments(latex) == _segments_unshortened(latex)


def test_a_marker_before_the_first_answer_word_is_impossible_but_a_later_one_is_found() -> None:
    text = "xanswer is 3, so the answer is 5"
    assert [pos for pos, _seg in g._marker_segments(text)] == [text.index("answer is 5")]
    assert g.extract_number(text) == 5
