"""The unparsed rate: format failures over format-checked answers; unknown (NaN) when none."""

from __future__ import annotations

import math

import pandas as pd

from lavabench.analysis.tables import reliability_table


def test_unparsed_rate_counts_format_failures_and_is_unknown_without_a_format_rule() -> None:
    df = pd.DataFrame(
        {
            "model": ["tools"] * 4 + ["text"] * 2,
            "_error": [False, False, False, True, False, False],
            "_retried": [False] * 6,
            "error_type": [None, None, None, "unavailable", None, None],
            "_format_checked": [True, True, True, False, False, False],
            "_unparsed": [True, False, False, False, False, False],
        }
    )
    table = reliability_table(df).set_index("model")
    assert table.loc["tools", "unparsed"] == 1
    assert table.loc["tools", "unparsed_rate"] == 1 / 3  # the failed request was not checked
    assert math.isnan(table.loc["text", "unparsed_rate"])  # no format rule: not 0
