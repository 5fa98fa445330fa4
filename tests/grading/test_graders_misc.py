"""ifeval checkers and the quality statistics (Wilson, McNemar mid-p)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from lavabench.analysis.quality import (
    item_group,
    mcnemar_mid_p,
    paired_comparison,
    quality_summary,
    wilson_interval,
)
from lavabench.grading.registry import get_grader

ifeval = get_grader("ifeval")


def ref(*pairs: tuple[str, dict]) -> str:
    return json.dumps(
        {"instruction_id_list": [p[0] for p in pairs], "kwargs": [p[1] for p in pairs]}
    )


@pytest.mark.parametrize(
    ("text", "instruction", "kwargs", "ok"),
    [
        ('{"a": 1}', "detectable_format:json_format", {}, True),
        ("```JSON\n[1, 2]\n```", "detectable_format:json_format", {}, True),
        ("Sure: {a: 1}", "detectable_format:json_format", {}, False),
        ("no commas here", "punctuation:no_comma", {}, True),
        ("one, two", "punctuation:no_comma", {}, False),
        ("all lower", "change_case:english_lowercase", {}, True),
        ("Not Lower", "change_case:english_lowercase", {}, False),
        ("SHOUT", "change_case:english_capital", {}, True),
        ('"quoted"', "startend:quotation", {}, True),
        (
            "Bye. Any other questions?",
            "startend:end_checker",
            {"end_phrase": "Any other questions?"},
            True,
        ),
        ("<<My Title>>\ntext", "detectable_format:title", {}, True),
        (
            "Body\nP.S. remember",
            "detectable_content:postscript",
            {"postscript_marker": "P.S."},
            True,
        ),
        (
            "one two three",
            "length_constraints:number_words",
            {"relation": "less than", "num_words": 4},
            True,
        ),
        (
            "one two three",
            "length_constraints:number_words",
            {"relation": "at least", "num_words": 4},
            False,
        ),
        (
            "*a* and *b*",
            "detectable_format:number_highlighted_sections",
            {"num_highlights": 2},
            True,
        ),
        ("* x\n* y", "detectable_format:number_bullet_lists", {"num_bullets": 2}, True),
        ("I love cats", "keywords:forbidden_words", {"forbidden_words": ["cats"]}, False),
        ("My answer is yes.", "detectable_format:constrained_response", {}, True),
    ],
)
def test_ifeval_checkers(text: str, instruction: str, kwargs: dict, ok: bool) -> None:
    grade = ifeval(text, ref((instruction, kwargs)), {})
    assert grade.correct is ok


def test_ifeval_prompt_level_and_unsupported() -> None:
    both = ref(("punctuation:no_comma", {}), ("change_case:english_lowercase", {}))
    grade = ifeval("Hello world", both, {})
    assert (grade.correct, grade.score, grade.extracted) == (
        False,
        0.5,
        "change_case:english_lowercase",
    )
    lang = ref(("language:response_language", {"language": "kn"}))
    assert ifeval("text", lang, {}).correct is None
    assert ifeval("text", lang, {"unsupported": "fail"}).correct is False


def test_wilson_matches_the_closed_form() -> None:
    k, n, z = 40, 50, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert all(math.isnan(x) for x in wilson_interval(0, 0))  # nothing graded: no interval
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_mcnemar_mid_p() -> None:
    # b=8, c=2: P(X>=8) - P(X=8)/2 with X~Bin(10, 1/2) = (56/1024) - (45/1024)/2
    assert mcnemar_mid_p(8, 2) == pytest.approx(56 / 1024 - 45 / 2048)
    assert mcnemar_mid_p(0, 0) == 1.0
    assert mcnemar_mid_p(2, 8) > 0.9


def test_summary_and_paired_comparison() -> None:
    records = pd.DataFrame(
        {
            "model": ["a"] * 4 + ["b"] * 4,
            "dataset": ["d"] * 8,
            "item_id": ["x/1", "x/2", "y/1", "y/2"] * 2,
            "correct": [True, True, False, None, False, True, False, True],
        }
    )
    summary = quality_summary(records).set_index("model")
    assert summary.loc["a", "n"] == 3 and summary.loc["a", "k"] == 2
    assert summary.loc["a", "ungraded"] == 1
    records["group"] = records["item_id"].map(item_group)
    assert set(records["group"]) == {"x", "y"}
    by_model = {m: g.set_index("item_id")["correct"] for m, g in records.groupby("model")}
    cmp = paired_comparison(by_model["a"], by_model["b"])
    assert (cmp.n, cmp.b, cmp.c, cmp.both, cmp.neither) == (3, 1, 0, 1, 1)
    assert cmp.difference == pytest.approx(1 / 3)
