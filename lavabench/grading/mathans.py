"""`math`: MATH-style final answers. Extract the last \\boxed{...} and compare normalised LaTeX.

Normalisation (both sides): drop spaces, `$`, `\\left`/`\\right`, `\\!` and LaTeX spacing;
`\\dfrac`/`\\tfrac` -> `\\frac`, `\\frac12` -> `\\frac{1}{2}`; unwrap `\\text{}`/`\\mathrm{}`/
`\\mbox{}`/`\\textbf{}`; drop `^\\circ`, `^{\\circ}`, `\\%`, a leading `x=` and a final `.`.
If the strings still differ but both are plain numbers (decimals, `a/b`, `\\frac{a}{b}`,
thousands commas), they are compared as exact fractions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from lavabench.grading.base import Grade, verdict
from lavabench.grading.options import check_options
from lavabench.grading.text import final_answer_text, matching_brace, strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {"require_boxed": (bool,)}
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOXED_SPACE = re.compile(r"\\boxed +([^\s$]+)")
_WRAPPERS = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{")
_SPACING = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")
_FRAC_SHORT = re.compile(r"\\frac(\d)(\d)")
_FRAC_HALF = re.compile(r"\\frac\{([^{}]*)\}(\d)")
_SQRT_SHORT = re.compile(r"\\sqrt(\d)")
_LEADING_VAR = re.compile(r"^[a-zA-Z]\s*=(?!=)")
_NUM = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_FRAC = re.compile(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}")
_SLASH = re.compile(r"(-?\d+)/(\d+)")


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{...} (braces matched, so nested groups survive)."""
    starts = list(_BOXED.finditer(text))
    if starts:
        begin = starts[-1].end()
        end = matching_brace(text, begin)
        return text[begin:] if end < 0 else text[begin:end]
    spaced = _BOXED_SPACE.findall(text)
    return spaced[-1] if spaced else None


def _unwrap(text: str) -> str:
    while True:
        m = _WRAPPERS.search(text)
        if not m:
            return text
        end = matching_brace(text, m.end())
        if end < 0:
            return text[: m.start()] + text[m.end() :]
        text = text[: m.start()] + text[m.end() : end] + text[end + 1 :]


def normalise_math(answer: str) -> str:
    """Canonical string form of a LaTeX final answer (see the module docstring)."""
    s = answer.strip()
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = _unwrap(s)
    s = _SPACING.sub("", s)
    for unit in ("^{\\circ}", "^\\circ", "\\circ", "\\%", "%", "\\$", "$", "°"):
        s = s.replace(unit, "")
    s = s.replace(" ", "").replace("\n", "")
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = _LEADING_VAR.sub("", s)
    s = s.rstrip(".")
    if s.startswith("{") and s.endswith("}") and matching_brace(s, 1) == len(s) - 1:
        s = s[1:-1]
    return s


def as_number(text: str) -> Fraction | None:
    """`text` as an exact number when it is one (decimal, a/b or \\frac{a}{b}), else None."""
    if _NUM.fullmatch(text):
        return Fraction(text.replace(",", ""))
    m = _FRAC.fullmatch(text) or None
    if m:
        den = int(m.group(3))
        if den == 0:
            return None
        value = Fraction(int(m.group(2)), den)
        return -value if m.group(1) else value
    m = _SLASH.fullmatch(text)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    return None


def math_equal(a: str, b: str) -> bool:
    """Equal after normalisation, or equal as numbers."""
    na, nb = normalise_math(a), normalise_math(b)
    if na == nb:
        return True
    va, vb = as_number(na), as_number(nb)
    return va is not None and va == vb


def extract_math_answer(text: str, require_boxed: bool = False) -> str | None:
    """The last \\boxed{} content, else (unless `require_boxed`) the stated final answer."""
    text = strip_reasoning(text)
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip()
    if require_boxed:
        return None
    final = final_answer_text(text).strip().strip("$").strip()
    return final or None


def math_answer(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the final answer equals the reference after MATH normalisation.

    Option `require_boxed` (default false): only a \\boxed{} answer counts.
    """
    check_options("math", options, _OPTIONS)
    extracted = extract_math_answer(response_text, bool(options.get("require_boxed", False)))
    if reference is None:
        return Grade(None, None, extracted)
    return verdict(extracted is not None and math_equal(extracted, reference), extracted)
