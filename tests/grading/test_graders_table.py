"""The extraction table: realistic model outputs (verbose, markdown, chain of thought,
refusals) with the answer each grader must extract and its verdict. The closing note's
"grader accuracy on the extraction table" is the share of rows that pass here."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lavabench.grading.base import Grade
from lavabench.grading.registry import get_grader

MMLU_REF = json.dumps({"answer": "C", "choices": ["Paris", "London", "Madrid", "Rome"]})

# (grader, options, model output, reference, expected extracted, expected correct)
TABLE: list[tuple[str, dict[str, Any], str, str, str | None, bool]] = [
    # multiple choice
    ("multiple_choice", {}, "Answer: (B)", "B", "B", True),
    ("multiple_choice", {}, "The correct option is **B**.", "B", "B", True),
    ("multiple_choice", {}, "**B**", "B", "B", True),
    ("multiple_choice", {}, "The answer is B.", "C", "B", False),
    ("multiple_choice", {}, "B", "(B)", "B", True),
    ("multiple_choice", {}, "(D) 42 kg", "D", "D", True),
    (
        "multiple_choice",
        {},
        "Let's think. Option A is wrong because of X. Option B ignores "
        "friction. So the answer is C.",
        "C",
        "C",
        True,
    ),
    ("multiple_choice", {}, "<think>Maybe A? No.</think>\nAnswer: D", "D", "D", True),
    ("multiple_choice", {}, "I'm sorry, but I can't help with that.", "A", None, False),
    ("multiple_choice", {}, "A. The mitochondria\n\nThis is because ...", "A", "A", True),
    ("multiple_choice", {}, "After comparing them, it's clearly Madrid", MMLU_REF, "C", True),
    ("multiple_choice", {}, "I would choose C because the others are false.", "C", "C", True),
    ("multiple_choice", {"letters": "ABCDE"}, "### Final Answer\n**E**", "E", "E", True),
    # an explanation after the answer names other options; it must not override the answer
    (
        "multiple_choice",
        {},
        "Answer: C\n\nExplanation: Option A is incorrect because it ignores friction, "
        "and option B double-counts the mass.",
        "C",
        "C",
        True,
    ),
    (
        "multiple_choice",
        {},
        "Between (A) and (C), (C) is consistent with the data.",
        "C",
        "C",
        True,
    ),
    # math
    (
        "math",
        {},
        "So $x = \\frac{14}{3}$, hence \\boxed{\\dfrac{14}{3}}.",
        "\\frac{14}{3}",
        "\\dfrac{14}{3}",
        True,
    ),
    (
        "math",
        {},
        "The final answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
        True,
    ),
    ("math", {}, "Therefore the angle is \\boxed{90^\\circ}.", "90", "90^\\circ", True),
    ("math", {}, "\\boxed{0.5}", "\\frac12", "0.5", True),
    ("math", {}, "We get \\boxed{x=5}", "5", "x=5", True),
    ("math", {}, "The winner is \\boxed{\\text{Evelyn}}", "\\text{Evelyn}", "\\text{Evelyn}", True),
    ("math", {}, "First \\boxed{3} was wrong; correct is \\boxed{4}", "4", "4", True),
    ("math", {}, "The answer is $6 - 5i$.", "6 - 5i", "6 - 5i", True),
    ("math", {}, "\\boxed{\\frac{1}{3}}", "\\frac{2}{3}", "\\frac{1}{3}", False),
    ("math", {"require_boxed": True}, "The answer is 7.", "7", None, False),
    ("math", {}, "\\boxed{1,000}", "1000", "1,000", True),
    # exact (BBH conventions)
    (
        "exact",
        {"final_answer": True, "option_letters": True},
        "Step 1 ... So the answer is (A).",
        "(A)",
        "(A)",
        True,
    ),
    (
        "exact",
        {"final_answer": True, "option_letters": True},
        "So the answer is B.",
        "(B)",
        "(B)",
        True,
    ),
    (
        "exact",
        {"final_answer": True, "case_insensitive": True},
        "... So the answer is Yes.",
        "yes",
        "yes",
        True,
    ),
    (
        "exact",
        {"final_answer": True},
        "Let's evaluate. So the answer is False.",
        "True",
        "False",
        False,
    ),
    (
        "exact",
        {"final_answer": True},
        "The sequence closes with: So the answer is ] ].",
        "] ]",
        "] ]",
        True,
    ),
    ("exact", {"final_answer": True}, "**Answer:** 24", "24", "24", True),
    # a later "answers" (a courtesy line) is not a final-answer marker
    (
        "exact",
        {"final_answer": True, "option_letters": True},
        "So the answer is (B).\n\nHope this answers your question!",
        "(B)",
        "(B)",
        True,
    ),
    # regex
    ("regex", {"pattern": r"Final: (\w+)"}, "Draft: x\nFinal: blue", "blue", "blue", True),
    (
        "regex",
        {"pattern": r"Final: (\w+)", "ignore_case": True},
        "final: BLUE",
        "blue",
        "BLUE",
        True,
    ),
    ("regex", {"pattern": r"Final: (\w+)"}, "I don't know.", "blue", None, False),
    # json
    ("json", {}, '```json\n{"name": "Ada", "age": 36}\n```', "", '{"age":36,"name":"Ada"}', True),
    ("json", {}, 'Sure! Here it is: {"a": 1}', "", None, False),
    ("json", {"strict": False}, 'Sure! Here it is: {"a": 1}', "", '{"a":1}', True),
    (
        "json",
        {"schema": {"type": "object", "required": ["age"]}},
        '{"name": "Ada"}',
        "",
        '{"name":"Ada"}',
        False,
    ),
    (
        "json",
        {"compare_reference": True},
        '{"b": 2, "a": 1}',
        '{"a": 1, "b": 2}',
        '{"a":1,"b":2}',
        True,
    ),
    # numeric (GSM8K-style chain of thought)
    ("numeric", {}, "She has 16 - 3 - 4 = 9 eggs, 9 * $2 = $18.\n#### 18", "18", "18", True),
    ("numeric", {}, "**Total:** $1,250.00", "1250", "1250", True),
    ("numeric", {}, "I cannot determine this without more information.", "5", None, False),
    ("numeric", {}, "The answer is 12 apples. Wait, recheck: 13.", "13", "12", False),
    # the working after the stated answer ("since ... = 24") does not replace it
    ("numeric", {}, "The answer is 72, since 48 + 24 = 72 and 48/2 = 24.", "72", "72", True),
]


@pytest.mark.parametrize(
    ("grader", "options", "text", "reference", "extracted", "correct"),
    TABLE,
    ids=[f"{row[0]}-{i}" for i, row in enumerate(TABLE)],
)
def test_extraction_table(
    grader: str,
    options: dict[str, Any],
    text: str,
    reference: str,
    extracted: str | None,
    correct: bool,
) -> None:
    grade = get_grader(grader)(text, reference, options)
    # format_ok is checked in the graders' own tests (test_json_format.py, tool calls)
    assert grade == Grade(correct, 1.0 if correct else 0.0, extracted, grade.format_ok)


def test_table_is_large_and_covers_every_grader_with_answers() -> None:
    assert len(TABLE) >= 40
    assert {row[0] for row in TABLE} >= {
        "multiple_choice",
        "math",
        "exact",
        "regex",
        "json",
        "numeric",
    }
