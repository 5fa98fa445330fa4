"""`regex`: the last match of a configured pattern is the answer; compare it with the reference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from lavabench.errors import ConfigError
from lavabench.grading.base import Grade, verdict
from lavabench.grading.options import check_options
from lavabench.grading.text import strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {
    "pattern": (str,),
    "group": (int,),
    "ignore_case": (bool,),
    "first": (bool,),
}


@lru_cache(maxsize=64)
def _compile(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE | re.MULTILINE if ignore_case else re.MULTILINE)
    except re.error as e:
        raise ConfigError(
            f"dataset.grader_options.pattern: {pattern!r} is not a regex ({e})"
        ) from None


def regex(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """Correct when the pattern's group (default: group 1 if any, else the whole match) of
    the last match (or the first, with `first: true`) equals the reference, stripped.

    Options: `pattern` (required), `group`, `ignore_case` (also for the comparison), `first`.
    """
    check_options("regex", options, _OPTIONS, required=("pattern",))
    ignore_case = bool(options.get("ignore_case", False))
    compiled = _compile(str(options["pattern"]), ignore_case)
    group = int(options.get("group", 1 if compiled.groups else 0))
    if group > compiled.groups:
        raise ConfigError(
            f"dataset.grader_options.group: {group} but the pattern has {compiled.groups} group(s)"
        )
    matches = list(compiled.finditer(strip_reasoning(response_text)))
    extracted = None
    if matches:
        chosen = matches[0] if options.get("first", False) else matches[-1]
        value = chosen.group(group)
        extracted = None if value is None else value.strip()
    if reference is None:
        return Grade(None, None, extracted)
    if extracted is None:
        return verdict(False, None)
    a, b = extracted, reference.strip()
    if ignore_case:
        a, b = a.casefold(), b.casefold()
    return verdict(a == b, extracted)
