"""Option checking shared by the graders: one ConfigError naming `dataset.grader_options.KEY`.

Each grader declares its options as {name: accepted types}; checking happens on every call
(cheap) so `check_grader` at start-up catches a typo before any request is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lavabench.errors import ConfigError

_TYPE_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    dict: "a mapping",
    list: "a list",
}


def check_options(
    grader: str,
    options: Mapping[str, Any],
    known: Mapping[str, tuple[type, ...]],
    required: tuple[str, ...] = (),
) -> None:
    """Reject unknown keys, wrong types and missing required keys, naming the key."""
    if not isinstance(options, Mapping):
        raise ConfigError(
            f"dataset.grader_options: expected a mapping for grader {grader!r}, "
            f"got {type(options).__name__}"
        )
    for key, value in options.items():
        if key not in known:
            raise ConfigError(
                f"dataset.grader_options.{key}: unknown option for grader {grader!r}; "
                f"known options: {', '.join(known) or '(none)'}"
            )
        types = known[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if isinstance(value, Mapping) and dict in types:
            ok = True
        if isinstance(value, list | tuple) and list in types:
            ok = True
        if ok and isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            ok = False
        if not ok:
            what = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise ConfigError(
                f"dataset.grader_options.{key}: must be {what} (>= 0 for numbers) for grader "
                f"{grader!r}, got {value!r}"
            )
    for key in required:
        if key not in options:
            raise ConfigError(
                f"dataset.grader_options.{key}: required by grader {grader!r}; set it in the "
                "dataset config"
            )
