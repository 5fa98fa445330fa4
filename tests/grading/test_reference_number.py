"""The numeric grader's reference fast path (digits only) gives what extract_number gives."""

from __future__ import annotations

import random

from lavabench.grading.registry import _reference_number, extract_number, numeric


def test_digit_references_parse_as_extract_number_does() -> None:
    rng = random.Random(0)
    refs = ["0", "7", "007", "0000", "10", "1000000", "9" * 40, "12345678901234567890"]
    refs += [str(rng.randrange(10 ** rng.randrange(1, 12))) for _ in range(2000)]
    refs += ["0" * rng.randrange(1, 4) + str(rng.randrange(1000)) for _ in range(200)]
    for ref in refs:
        assert ref.isdigit()
        assert _reference_number(ref) == extract_number(ref), ref


def test_other_references_take_the_parser() -> None:
    # not ASCII digits alone: signs, separators, decimals, markers, non-ASCII digits
    for ref in ["-5", "1,234", "3.5", "#### 42", "1/2", " 12", "12 ", "\u0661\u0662", "x"]:
        assert _reference_number(ref) == extract_number(ref), ref


def test_grades_use_the_reference_number() -> None:
    assert numeric("The answer is 12346.", "12346", {}).correct is True
    assert numeric("The answer is 12345.", "012346", {}).correct is False
    assert numeric("The answer is 12346.", "012346", {}).correct is True
