"""Graders: turn one model response and one reference into a Grade.

Graders are pure functions registered by name, so a dataset config selects one with
`dataset.grader` and passes `dataset.grader_options`. Options are checked on every call
(a ConfigError names the bad key); call `check_grader` once at start-up so a typo fails
before any request is paid for.

The `numeric` grader reads the *final* answer out of free-form text: reasoning inside
<think>...</think> is dropped, an explicit marker ("The answer is X", "Answer: X",
"#### X", \\boxed{X}) wins over the last number in the text, and numbers are compared as
exact fractions so that large integers never collide through float rounding.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from lavabench.errors import ConfigError, DatasetError
from lavabench.grading import choice, code, ifeval, jsonfmt, mathans, regex, toolcall
from lavabench.grading.base import Grade
from lavabench.grading.options import check_options
from lavabench.grading.text import final_answer_text, matching_brace, strip_reasoning


class Grader(Protocol):
    """A grader is any callable with this signature; it must be pure (no I/O, no state)."""

    def __call__(
        self, response_text: str, reference: str | None, options: Mapping[str, Any]
    ) -> Grade: ...


GRADERS: dict[str, Grader] = {}

_G = TypeVar("_G", bound=Grader)


def register(name: str) -> Callable[[_G], _G]:
    """Register a grader under `name`, the value users write in `dataset.grader`."""

    def decorator(grader: _G) -> _G:
        if name in GRADERS:
            raise ValueError(f"grader {name!r} is already registered")
        GRADERS[name] = grader
        return grader

    return decorator


def get_grader(name: str) -> Grader:
    """Look a grader up by name; an unknown name is a config error that lists the known ones."""
    try:
        return GRADERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(GRADERS))
        raise ConfigError(
            f"dataset.grader: unknown grader {name!r}; known graders: {known}"
        ) from None


def check_grader(name: str, options: Mapping[str, Any]) -> Grader:
    """Resolve a grader and validate its options once, before any request is sent."""
    grader = get_grader(name)
    grader("", None, options)
    return grader


# --- numbers -----------------------------------------------------------------------------

# One number as models write it: optional sign and currency, thousands separators only in
# groups of three, a decimal part, or a LaTeX \frac{a}{b}. Units, "%" and a sentence's
# final period simply follow the match. The look-behind keeps digits inside words (CO2, v2)
# and the right-hand side of a subtraction ("10-3" is 10 and 3, not -3) from matching.
_NUMBER = re.compile(
    r"""
    (?<![A-Za-z0-9_.])
    (?P<sign>[-\u2212])?
    (?:
        \\[dt]?frac\{\s*(?P<fnum>[0-9]+)\s*\}\{\s*(?P<fden>[0-9]+)\s*\}
      |
        (?P<currency>\\?[$\u20ac\u00a3\u00a5])?
        (?P<sign2>[-\u2212])?
        (?P<num>
            [0-9]{1,3}(?:,[0-9]{3})+(?![0-9])(?:\.[0-9]+)?
          | [0-9]+(?:\.[0-9]+)?
          | \.[0-9]+
        )
    )
    """,
    re.VERBOSE,
)
# LaTeX ways of writing a thousands separator: 1{,}234 and 1\,234 (thin space).
_LATEX_THOUSANDS = re.compile(r"(?<=[0-9])(?:\{,\}|\\[,!;: ])(?=[0-9])")

_ANSWER_MARKER = re.compile(
    r"(?:\banswer\b|\u7b54\u6848)[*_\s]*(?:\bis\b|:|\uff1a|=|\u662f)", re.IGNORECASE
)
# GSM8K's "#### 42"; only when a number follows, since "#### Step 2" is a Markdown heading.
_HASH_MARKER = re.compile(r"####[ \t]*(?=[-\u2212$\u20ac\u00a3\u00a5\\.0-9])")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


def _normalise_latex(text: str) -> str:
    if "{" not in text and "\\" not in text:  # both separators need one: no scan
        return text
    return _LATEX_THOUSANDS.sub(lambda m: "," if m.group(0) == "{,}" else "", text)


def _number_of(m: re.Match[str]) -> Fraction | None:
    """One `_NUMBER` match as a Fraction; None for a fraction with a zero denominator.

    Integers go through int(): Fraction's string parser costs ~10x more, and graders run
    on the event loop for every answer (bench/bench_cli.py)."""
    if m.group("fnum") is not None:
        den = int(m.group("fden"))
        if den == 0:
            return None
        value = Fraction(int(m.group("fnum")), den)
    else:
        text = m.group("num").replace(",", "")
        value = Fraction(int(text)) if text.isdigit() else Fraction(text)
    negative = (m.group("sign") is not None) != (m.group("sign2") is not None)
    return -value if negative else value


def _numbers(text: str) -> list[Fraction]:
    return [v for m in _NUMBER.finditer(text) if (v := _number_of(m)) is not None]


def _first_number(text: str) -> Fraction | None:
    """`_numbers(text)[0]` without converting the numbers after it."""
    for m in _NUMBER.finditer(text):
        value = _number_of(m)
        if value is not None:
            return value
    return None


def _last_number(text: str) -> Fraction | None:
    """`_numbers(text)[-1]` without converting the numbers before it."""
    for m in reversed(list(_NUMBER.finditer(text))):
        value = _number_of(m)
        if value is not None:
            return value
    return None


# Where the stated answer's clause ends: "72, since 48/2 = 24" states 72, and the working
# after "since"/"because"/a sentence break must not replace it. A comma only ends the clause
# before a word, so "1,234" and "2,5" stay whole.
_CLAUSE_END = re.compile(
    r"[,;]\s+(?=[A-Za-z(])|\.\s+|\s+(?:since|because|as|but|which|where|from)\b",
    re.IGNORECASE,
)


def _number_in_segment(segment: str) -> Fraction | None:
    """The number an answer segment's first clause states: after that clause's last "="
    ("12 + 30 = 42"), else its first number; else the segment's first number."""
    clause = _CLAUSE_END.split(segment, 1)[0]
    first = _first_number(clause)
    if first is not None:
        segment = clause
    else:
        first = _first_number(segment)
    if "=" in segment:
        after = _first_number(segment.rsplit("=", 1)[1])
        if after is not None:
            return after
    return first


def _line_after(text: str, start: int) -> str:
    """From `start`, skip blank space (the answer may be on the next line), take one line."""
    rest = text[start:].lstrip()
    return rest.split("\n", 1)[0]


def _braced(text: str, start: int) -> str:
    """Content of the brace group whose "{" is just before `start` (nesting allowed)."""
    end = matching_brace(text, start)
    return text[start:end] if end >= 0 else text[start:]


def _marker_segments(text: str) -> list[tuple[int, str]]:
    # (each pattern needs a character the plain-text answer usually lacks: no scan then)
    boxed = _BOXED.finditer(text) if "\\" in text else ()
    segments = [(m.start(), _braced(text, m.end())) for m in boxed]
    # The case-insensitive marker scan costs ~10 us per answer; skip it when no "answer"
    # can be in the text (casefold covers the re module's case equivalences, e.g. U+017F).
    has_answer = "answer" in text.casefold() or "\u7b54\u6848" in text
    if has_answer:
        # ASCII text: lower() keeps positions, so no marker starts before the first "answer"
        # (\b still sees the character before `start`); the scan skips the text before it
        start = text.lower().find("answer") if text.isascii() else 0
        matches = _ANSWER_MARKER.finditer(text, start)
        segments.extend((m.start(), _line_after(text, m.end())) for m in matches)
    if "####" in text:
        matches = _HASH_MARKER.finditer(text)
        segments.extend((m.start(), _line_after(text, m.end())) for m in matches)
    segments.sort(key=lambda s: s[0])
    return segments


def extract_number(text: str) -> Fraction | None:
    """The final numeric answer in `text`: the last explicit marker that holds a number,
    else the last number anywhere; None when there is no number at all."""
    text = _normalise_latex(strip_reasoning(text))
    for _pos, segment in reversed(_marker_segments(text)):
        value = _number_in_segment(segment)
        if value is not None:
            return value
    return _last_number(text)


def format_number(value: Fraction) -> str:
    """Canonical text of a number: "1234", "1234.5", "-0.25", or "1/3" if not a decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    digits = str(scaled).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0").rstrip(".")


def extract_answer(text: str) -> str | None:
    """`extract_number` as canonical text; what the numeric grader reports as `extracted`."""
    value = extract_number(text)
    return None if value is None else format_number(value)


# --- options -----------------------------------------------------------------------------


def _tolerance(options: Mapping[str, Any], key: str, default: float) -> Fraction:
    return _fraction(options.get(key, default))


@functools.lru_cache(maxsize=64)
def _fraction(value: float) -> Fraction:
    """Fraction(value), once per distinct tolerance (a float's conversion is not cheap)."""
    return Fraction(value)


@functools.lru_cache(maxsize=64)
def _int_allowance(abs_tol: float) -> int:
    """The largest integer difference within max(abs_tol, 0)."""
    return math.floor(max(Fraction(abs_tol), Fraction(0)))


def _reference_number(reference: str) -> Fraction | None:
    """A reference's number, parsed once per distinct reference, not once per answer.

    A reference of ASCII digits alone (GSM8K's, the demo set's) is that integer: read
    directly (~0.3 us), not cached, since a cache of 100,000 distinct ones held 17 MB for a
    run's whole length (bench_memory) and could not even hit (a sequential scan longer than
    the cache evicts each entry before its reuse). The equivalence with `extract_number` is
    tested (tests/grading/test_reference_number.py)."""
    if reference.isascii() and reference.isdigit():
        return Fraction(int(reference))
    return _parsed_reference(reference)


@functools.lru_cache(maxsize=65_536)
def _parsed_reference(reference: str) -> Fraction | None:
    return extract_number(reference)


# --- graders -----------------------------------------------------------------------------

_NUMERIC_OPTIONS: dict[str, tuple[type, ...]] = {"abs_tol": (int, float), "rel_tol": (int, float)}


@register("numeric")
def numeric(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the response's final number is within abs_tol/rel_tol of the reference.

    Options: `abs_tol` (default 1e-6) and `rel_tol` (default 0), combined as in
    math.isclose. A reference without a number is a DatasetError: the item cannot be graded
    numerically, and silently marking every answer wrong would hide that.
    """
    check_options("numeric", options, _NUMERIC_OPTIONS)
    value = extract_number(response_text)
    extracted = None if value is None else format_number(value)
    if reference is None:
        return Grade(correct=None, score=None, extracted=extracted)
    expected = _reference_number(reference)
    if expected is None:
        raise DatasetError(
            f"reference {reference!r} contains no number, so the numeric grader cannot grade "
            "it; fix the dataset's reference field or use dataset.grader=exact"
        )
    if value is None:
        return Grade(correct=False, score=0.0, extracted=None)
    raw_abs, raw_rel = options.get("abs_tol", 1e-6), options.get("rel_tol", 0.0)
    if raw_rel == 0 and value.denominator == 1 and expected.denominator == 1:
        # Two integers, an absolute tolerance: the same test in int arithmetic (|a - b| is
        # an integer, so it is <= max(abs_tol, 0) iff it is <= that bound's floor), without
        # the ~15 us of Fraction operations per answer.
        correct = abs(value.numerator - expected.numerator) <= _int_allowance(raw_abs)
    else:
        abs_tol = _tolerance(options, "abs_tol", 1e-6)
        rel_tol = _tolerance(options, "rel_tol", 0.0)
        allowed = max(abs_tol, rel_tol * max(abs(value), abs(expected)))
        correct = abs(value - expected) <= allowed
    return Grade(correct=correct, score=1.0 if correct else 0.0, extracted=extracted)


_EXACT_OPTIONS: dict[str, tuple[type, ...]] = {
    "case_insensitive": (bool,),
    "collapse_whitespace": (bool,),
    "final_answer": (bool,),
    "option_letters": (bool,),
}
_PAREN_LETTER = re.compile(r"^\([A-Z]\)$")
_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?:[.:]?\s.*)?$", re.DOTALL)
_WHITESPACE = re.compile(r"\s+")


def _normalise_exact(text: str, options: Mapping[str, Any]) -> str:
    text = text.strip()
    if options.get("collapse_whitespace", False):
        text = _WHITESPACE.sub(" ", text)
    if options.get("case_insensitive", False):
        text = text.casefold()
    return text


@register("exact")
def exact(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the response (reasoning dropped, stripped) equals the reference.

    Options (all default false): `case_insensitive` (case-fold both sides),
    `collapse_whitespace` (runs of whitespace become one space), `final_answer` (compare only
    the text after the last "the answer is"/"Answer:", trailing period dropped; BBH's CoT
    convention) and `option_letters` (when the reference is "(B)", a stated "B" or "B) ..."
    counts as "(B)").
    """
    check_options("exact", options, _EXACT_OPTIONS)
    if options.get("final_answer", False):
        extracted = _normalise_exact(final_answer_text(response_text), options)
    else:
        extracted = _normalise_exact(strip_reasoning(response_text), options)
    if (
        options.get("option_letters", False)
        and reference is not None
        and _PAREN_LETTER.match(reference.strip())
    ):
        letter = _LEADING_LETTER.match(extracted.upper() if extracted else "")
        if letter:
            extracted = _normalise_exact(f"({letter.group(1)})", options)
    if reference is None:
        return Grade(correct=None, score=None, extracted=extracted)
    correct = extracted == _normalise_exact(reference, options)
    return Grade(correct=correct, score=1.0 if correct else 0.0, extracted=extracted)


register("multiple_choice")(choice.multiple_choice)
register("math")(mathans.math_answer)
register("regex")(regex.regex)
register("json")(jsonfmt.json_grader)
register("code")(code.code)
register("ifeval")(ifeval.ifeval)
register("tool_call")(toolcall.tool_call)
