from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lavabench.errors import ConfigError, DatasetError
from lavabench.grading.base import Grade
from lavabench.grading.registry import (
    GRADERS,
    check_grader,
    extract_answer,
    format_number,
    get_grader,
    register,
)
from lavabench.grading.text import strip_reasoning

numeric = get_grader("numeric")
exact = get_grader("exact")

# (model output, reference, expected extracted, expected correct)
NUMERIC_CASES: list[tuple[str, str, str | None, bool]] = [
    ("The answer is 42.", "42", "42", True),
    ("The answer is 1,234.", "1234", "1234", True),
    ("Total cost: $15.00", "15", "15", True),
    ("So she pays **42** dollars.", "42", "42", True),
    ("<think>maybe 7</think> The answer is 9", "9", "9", True),
    ("<think>maybe 7</think> The answer is 9", "7", "9", False),
    (
        "First, 4 × 3 = 12 dollars for notebooks. Then 2 × 5 = 10 for pens. "
        "12 + 10 = 22.\nThe answer is 22.",
        "22",
        "22",
        True,
    ),
    ("He had 5 apples and bought 7 more, so he has 12 apples.", "12", "12", True),
    (
        "Step 1: 60 km/h × 3 h = 180 km.\nStep 2: 180 - 30 = 150 km.\nThe answer is 150.",
        "180",
        "150",
        False,
    ),
    ("The temperature at midnight is -14 degrees Celsius.", "-14", "-14", True),
    ("The answer is −7.", "-7", "-7", True),
    ("The balance is -$79.", "-79", "-79", True),
    ("I'm not sure how to solve this problem.", "42", None, False),
    ("", "3", None, False),
    ("Answer: 240 km", "240", "240", True),
    ("**Answer:** 15%", "15", "15", True),
    ("Natalia sold 48 + 24 = 72 clips.\n#### 72", "72", "72", True),
    ("#### Step 1: cost\n3 × 4 = 12\n#### Step 2: change\n20 - 12 = 8", "8", "8", True),
    ("Thus the final answer is $\\boxed{1{,}234}$.", "1234", "1234", True),
    ("\\[\\boxed{\\frac{3}{4}}\\]", "0.75", "0.75", True),
    ("The answer is: \\boxed{27}. (I first thought 30.)", "27", "27", True),
    ("The answer is 1,234,567.", "1234567", "1234567", True),
    ("It costs $1,234.50 in total.", "1234.5", "1234.5", True),
    ("The answer is 3.", "3.0", "3", True),
    ("The answer is 12 + 30 = 42.", "42", "42", True),
    ("The answer is\n\n**63**", "63", "63", True),
    ("Each friend gets 6 cards. The answer is 6 cards.", "6", "6", True),
    ("The answer is 1624.", "1,624", "1624", True),
    ("<think>110 - 22 = 88, so 88</think>\n\nThe club now has 110 members.", "110", "110", True),
    ("so 88</think>The answer is 110.", "110", "110", True),  # opening tag not streamed
    ("<think>Let me compute 6 × 7 = 42 and then", "42", None, False),  # cut off in reasoning
    ("The final answer is 0.", "0", "0", True),
    ("The answer is 2,5.", "25", "2", False),  # not a thousands group: 2, then 5
    ("x = 10-3 = 7", "7", "7", True),  # 10-3 is a subtraction, not -3
    ("The answer is 0.1 + 0.2 = 0.3", "0.3", "0.3", True),
    ("CO2 levels rose by 4 points", "4", "4", True),
]


@pytest.mark.parametrize(("text", "reference", "extracted", "correct"), NUMERIC_CASES)
def test_numeric_table(text: str, reference: str, extracted: str | None, correct: bool) -> None:
    grade = numeric(text, reference, {})
    assert grade == Grade(correct=correct, score=1.0 if correct else 0.0, extracted=extracted)


def test_numeric_without_reference_is_ungraded() -> None:
    assert numeric("The answer is 5.", None, {}) == Grade(None, None, "5")
    assert numeric("no number", None, {}) == Grade(None, None, None)


def test_numeric_reference_without_a_number_is_a_dataset_error() -> None:
    with pytest.raises(DatasetError, match=r"'seven'.*dataset\.grader=exact"):
        numeric("7", "seven", {})


def test_numeric_tolerances() -> None:
    assert numeric("3.1416", "3.14159", {}).correct is False
    assert numeric("3.1416", "3.14159", {"abs_tol": 1e-4}).correct is True
    assert numeric("1010", "1000", {"rel_tol": 0.01}).correct is True
    assert numeric("1011", "1000", {"rel_tol": 0.01}).correct is False
    assert numeric("42.0000001", "42", {}).correct is True  # default abs_tol 1e-6
    assert numeric("42.00001", "42", {}).correct is False
    assert numeric("42.00001", "42", {"abs_tol": 0}).correct is False


def test_numeric_integer_answers_with_an_absolute_tolerance() -> None:
    # integers and abs_tol only take an int-arithmetic path: the same test as Fractions
    assert numeric("43", "42", {"abs_tol": 1}).correct is True
    assert numeric("43", "42", {"abs_tol": 0.999}).correct is False
    assert numeric("44", "42", {"abs_tol": 2.5}).correct is True
    assert numeric("45", "42", {"abs_tol": 2.5}).correct is False
    assert numeric("The answer is -3.", "3", {"abs_tol": 5}).correct is False  # |-6| > 5
    assert numeric("The answer is -3.", "-3", {}).correct is True
    assert numeric("The answer is 1,234.", "1234", {"abs_tol": 0}).correct is True
    assert numeric("42", "42.5", {"abs_tol": 0.5}).correct is True  # not both integers


def test_large_integers_do_not_collide_through_floats() -> None:
    big = 10**20
    assert numeric(f"The answer is {big + 1}.", str(big), {"abs_tol": 0}).correct is False
    assert numeric(f"The answer is {big}.", str(big), {"abs_tol": 0}).correct is True


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"abs_tolerance": 1}, "dataset.grader_options.abs_tolerance"),
        ({"abs_tol": -1}, "dataset.grader_options.abs_tol"),
        ({"rel_tol": "0.1"}, "dataset.grader_options.rel_tol"),
        ({"rel_tol": True}, "dataset.grader_options.rel_tol"),
    ],
)
def test_numeric_rejects_bad_options(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        numeric("1", "1", options)
    assert str(err.value).startswith(key)
    with pytest.raises(ConfigError):
        check_grader("numeric", options)


@given(st.integers())
def test_thousands_separated_answer_matches_plain_reference(n: int) -> None:
    grade = numeric(f"The answer is {n:,}.", str(n), {"abs_tol": 0})
    assert grade == Grade(True, 1.0, str(n))


@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(1, 10**6))
def test_format_number_round_trips(num: int, den: int) -> None:
    value = Fraction(num, den)
    assert extract_answer(f"The answer is {format_number(value)}.") is not None
    text = format_number(value)
    if "/" not in text:
        assert Fraction(text) == value


def test_format_number() -> None:
    assert format_number(Fraction(1234)) == "1234"
    assert format_number(Fraction(-1, 4)) == "-0.25"
    assert format_number(Fraction(2469, 2)) == "1234.5"
    assert format_number(Fraction(1, 3)) == "1/3"


def test_strip_reasoning() -> None:
    assert strip_reasoning("<think>a</think>b<THINKING>c</THINKING>d").split() == ["b", "d"]
    assert strip_reasoning("reasoning</think>answer") == "answer"
    assert strip_reasoning("answer<think>cut off") == "answer"


# --- exact ---------------------------------------------------------------------------------


def test_exact_grader() -> None:
    assert exact("  Paris \n", "Paris", {}) == Grade(True, 1.0, "Paris")
    assert exact("paris", "Paris", {}) == Grade(False, 0.0, "paris")
    assert exact("paris", "Paris", {"case_insensitive": True}).correct is True
    assert exact("New   York", "New York", {}).correct is False
    assert exact(
        "New \n York", "new york", {"collapse_whitespace": True, "case_insensitive": True}
    ) == (Grade(True, 1.0, "new york"))
    assert exact("<think>Lyon?</think>Paris", "Paris", {}).correct is True
    assert exact("Paris", None, {}) == Grade(None, None, "Paris")
    with pytest.raises(ConfigError, match=r"^dataset\.grader_options\.casefold"):
        exact("a", "a", {"casefold": True})
    with pytest.raises(ConfigError, match=r"^dataset\.grader_options\.case_insensitive"):
        exact("a", "a", {"case_insensitive": "yes"})


# --- registry ------------------------------------------------------------------------------


def test_registry() -> None:
    assert {"numeric", "exact"} <= set(GRADERS)
    assert get_grader("numeric") is GRADERS["numeric"]
    assert check_grader("numeric", {"abs_tol": 0.5}) is GRADERS["numeric"]


def test_unknown_grader_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        get_grader("fuzzy")
    message = str(err.value)
    assert message.startswith("dataset.grader: unknown grader 'fuzzy'")
    assert "exact" in message
    assert "numeric" in message


def test_register_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("numeric")(lambda response_text, reference, options: Grade(None, None, None))


def test_register_adds_a_grader() -> None:
    @register("test-always-right")
    def always(response_text: str, reference: str | None, options: object) -> Grade:
        return Grade(True, 1.0, response_text)

    try:
        assert get_grader("test-always-right")("x", "y", {}) == Grade(True, 1.0, "x")
    finally:
        del GRADERS["test-always-right"]
