"""`ifeval`: IFEval's verifiable instructions, prompt-level strict.

The reference is a JSON object {"instruction_id_list": [...], "kwargs": [{...}, ...]} (the
IFEval row's fields). `correct` is true when every checked instruction is followed; `score`
is the fraction followed (instruction-level). Checkers follow the upstream definitions in
spirit, reimplemented here (upstream code was not copied). Instructions with no checker here
(response language, sentence counts, nth paragraph's first word) are skipped by default
(`unsupported: skip`) or fail the prompt (`unsupported: fail`); when every instruction of a
prompt is unsupported the prompt is ungraded. `extracted` lists the failed instruction ids.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from lavabench.errors import ConfigError, DatasetError
from lavabench.grading.base import Grade
from lavabench.grading.jsonfmt import strip_fence
from lavabench.grading.options import check_options
from lavabench.grading.text import strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {"unsupported": (str,)}
Checker = Callable[[str, Mapping[str, Any]], bool]
CHECKERS: dict[str, Checker] = {}


def _checker(name: str) -> Callable[[Checker], Checker]:
    def add(fn: Checker) -> Checker:
        CHECKERS[name] = fn
        return fn

    return add


def _compare(count: int, relation: str, target: int) -> bool:
    if relation == "less than":
        return count < target
    if relation == "at least":
        return count >= target
    raise DatasetError(f"ifeval: unknown relation {relation!r}")


def _words(text: str) -> list[str]:
    return re.findall(r"\b\w+\b", text)


@_checker("detectable_format:json_format")
def _json_format(text: str, kw: Mapping[str, Any]) -> bool:
    try:
        json.loads(strip_fence(text))
    except ValueError:
        return False
    return True


@_checker("punctuation:no_comma")
def _no_comma(text: str, kw: Mapping[str, Any]) -> bool:
    return "," not in text


@_checker("change_case:english_lowercase")
def _lower(text: str, kw: Mapping[str, Any]) -> bool:
    return text == text.lower() and any(c.isalpha() for c in text)


@_checker("change_case:english_capital")
def _upper(text: str, kw: Mapping[str, Any]) -> bool:
    return text == text.upper() and any(c.isalpha() for c in text)


@_checker("change_case:capital_word_frequency")
def _capital_words(text: str, kw: Mapping[str, Any]) -> bool:
    count = sum(1 for w in _words(text) if w.isupper() and any(c.isalpha() for c in w))
    return _compare(count, kw["capital_relation"], int(kw["capital_frequency"]))


@_checker("startend:quotation")
def _quotation(text: str, kw: Mapping[str, Any]) -> bool:
    s = text.strip()
    return len(s) > 1 and s[0] == '"' and s[-1] == '"'


@_checker("startend:end_checker")
def _end(text: str, kw: Mapping[str, Any]) -> bool:
    return text.strip().lower().endswith(str(kw["end_phrase"]).strip().lower())


@_checker("detectable_format:title")
def _title(text: str, kw: Mapping[str, Any]) -> bool:
    return any(t.strip() for t in re.findall(r"<<([^\n]+?)>>", text))


@_checker("detectable_content:postscript")
def _postscript(text: str, kw: Mapping[str, Any]) -> bool:
    marker = str(kw["postscript_marker"]).strip()
    if marker.upper() == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif marker.upper() == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + re.escape(marker.lower()) + r".*$"
    return re.search(pattern, text.lower(), flags=re.MULTILINE) is not None


@_checker("detectable_content:number_placeholders")
def _placeholders(text: str, kw: Mapping[str, Any]) -> bool:
    return len(re.findall(r"\[.*?\]", text)) >= int(kw["num_placeholders"])


@_checker("keywords:existence")
def _existence(text: str, kw: Mapping[str, Any]) -> bool:
    return all(re.search(re.escape(k), text, re.IGNORECASE) for k in kw["keywords"])


@_checker("keywords:forbidden_words")
def _forbidden(text: str, kw: Mapping[str, Any]) -> bool:
    return not any(
        re.search(r"\b" + re.escape(w) + r"\b", text, re.IGNORECASE) for w in kw["forbidden_words"]
    )


@_checker("keywords:frequency")
def _frequency(text: str, kw: Mapping[str, Any]) -> bool:
    count = len(re.findall(re.escape(str(kw["keyword"])), text, re.IGNORECASE))
    return _compare(count, kw["relation"], int(kw["frequency"]))


@_checker("keywords:letter_frequency")
def _letter_frequency(text: str, kw: Mapping[str, Any]) -> bool:
    count = text.lower().count(str(kw["letter"]).lower())
    return _compare(count, kw["let_relation"], int(kw["let_frequency"]))


@_checker("length_constraints:number_words")
def _number_words(text: str, kw: Mapping[str, Any]) -> bool:
    return _compare(len(_words(text)), kw["relation"], int(kw["num_words"]))


@_checker("length_constraints:number_paragraphs")
def _paragraphs(text: str, kw: Mapping[str, Any]) -> bool:
    parts = re.split(r"\s?\*\*\*\s?", text)
    if any(not p.strip() for p in parts[1:-1]):
        return False
    return len([p for p in parts if p.strip()]) == int(kw["num_paragraphs"])


@_checker("detectable_format:number_highlighted_sections")
def _highlights(text: str, kw: Mapping[str, Any]) -> bool:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip()]
    double = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", text) if h.strip("*").strip()]
    return len(single) + len(double) >= int(kw["num_highlights"])


@_checker("detectable_format:number_bullet_lists")
def _bullets(text: str, kw: Mapping[str, Any]) -> bool:
    stars = re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", text, flags=re.MULTILINE)
    return len(stars) + len(dashes) == int(kw["num_bullets"])


@_checker("detectable_format:multiple_sections")
def _sections(text: str, kw: Mapping[str, Any]) -> bool:
    splitter = str(kw["section_spliter"]).strip() + r"\s?\d+\s?"
    return len(re.split(splitter, text)) - 1 >= int(kw["num_sections"])


@_checker("detectable_format:constrained_response")
def _constrained(text: str, kw: Mapping[str, Any]) -> bool:
    options = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    return any(o in text.strip() for o in options)


@_checker("combination:two_responses")
def _two_responses(text: str, kw: Mapping[str, Any]) -> bool:
    parts = [p.strip() for p in text.split("******")]
    return len(parts) == 2 and all(parts) and parts[0] != parts[1]


@_checker("combination:repeat_prompt")
def _repeat_prompt(text: str, kw: Mapping[str, Any]) -> bool:
    return text.strip().lower().startswith(str(kw["prompt_to_repeat"]).strip().lower())


def parse_ifeval_reference(reference: str) -> list[tuple[str, dict[str, Any]]]:
    """(instruction id, kwargs without nulls) pairs from the JSON reference."""
    try:
        obj = json.loads(reference)
        ids, kwargs = (
            obj["instruction_id_list"],
            obj.get("kwargs") or [{}] * len(obj["instruction_id_list"]),
        )
    except (ValueError, KeyError, TypeError):
        raise DatasetError(
            f"ifeval: reference {reference[:60]!r} is not a JSON object with instruction_id_list"
        ) from None
    if len(ids) != len(kwargs):
        raise DatasetError("ifeval: instruction_id_list and kwargs differ in length")
    return [
        (str(i), {k: v for k, v in (kw or {}).items() if v is not None})
        for i, kw in zip(ids, kwargs, strict=True)
    ]


def ifeval(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Prompt-level strict accuracy; score is instruction-level (module docstring)."""
    check_options("ifeval", options, _OPTIONS)
    mode = options.get("unsupported", "skip")
    if mode not in ("skip", "fail"):
        raise ConfigError(f"dataset.grader_options.unsupported: must be skip or fail, got {mode!r}")
    if reference is None:
        return Grade(None, None, None)
    text = strip_reasoning(response_text).strip()
    checked = failed = 0
    failures: list[str] = []
    for instruction, kwargs in parse_ifeval_reference(reference):
        checker = CHECKERS.get(instruction)
        if checker is None:
            if mode == "skip":
                continue
            ok = False
        else:
            try:
                ok = bool(text) and checker(text, kwargs)
            except KeyError as e:
                raise DatasetError(f"ifeval: {instruction} needs kwarg {e.args[0]!r}") from None
        checked += 1
        if not ok:
            failed += 1
            failures.append(instruction)
    if checked == 0:
        return Grade(None, None, None, ungraded_reason="no supported instruction to check")
    return Grade(failed == 0, (checked - failed) / checked, ",".join(failures))
