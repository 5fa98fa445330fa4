"""The report's reading aids: units and precision in cells, unknown cost never $0, the
decision card (pick / none qualifies), dollar ticks on cost axes, summary.md decision first."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lavabench.analysis.pick import Candidate, PickResult
from lavabench.records.reader import read_runs
from lavabench.report.decision import card_markdown, decision_card
from lavabench.report.figures import dollar_axis
from lavabench.report.formatting import display_cells, ms, notes_for, percent, usd
from lavabench.report.page import how_to_read, write_report
from tests.analysis.test_analysis_frontier import make_rows, write_run


def test_numbers_read_as_people_read_them() -> None:
    assert (ms(0.006233), ms(0.158), ms(1.534), ms(math.inf), ms(math.nan)) == (
        "6.2 ms", "158 ms", "1.53 s", "∞", "—",
    )  # fmt: skip
    assert (percent(0.6833), percent(0.0), percent(None)) == ("68.3 %", "0 %", "—")
    assert (usd(0.01407), usd(1.5), usd(1234.5), usd(Decimal("0.00045"))) == (
        "$0.0141", "$1.50", "$1,234", "$0.000450",
    )  # fmt: skip


def _table(**extra: object) -> pd.DataFrame:
    base = {
        "model": ["cheap", "dark"],
        "accuracy": [0.9, 0.95],
        "usd_per_1k_items": [0.5, np.nan],
        "cost_usd": [Decimal("0.025"), None],
        "ttft_p50_s": [0.2, 0.3],
    }
    return pd.DataFrame({**base, **extra})


def test_unknown_cost_is_unknown_and_estimates_are_labelled() -> None:
    table = _table(cost_basis=["partly estimated", "unknown"], judge_cost_usd=[0.002, np.nan])
    cells = {col.key: values for col, values in display_cells(table)}
    assert [t for t, _ in cells["usd_per_1k_items"]] == ["$0.500 est.", "unknown"]
    assert [t for t, _ in cells["cost_usd"]] == ["$0.0250 est.", "unknown"]
    assert [t for t, _ in cells["judge_cost_usd"]] == ["$0.00200 est.", "unknown"]
    assert [k for _, k in cells["usd_per_1k_items"]] == ["0.5", ""]  # sorts last, not as 0
    assert [t for t, _ in cells["ttft_p50_s"]] == ["200 ms", "300 ms"]
    notes = " ".join(notes_for(table))
    assert "Cost unknown for dark" in notes and "never as $0" in notes and "est. =" in notes


def _candidate(model: str, usd_1k: float, lower: float, ok: bool) -> Candidate:
    reasons = () if ok else (f"lower bound {lower} < 0.9",)
    return Candidate(model, usd_1k, lower + 0.05, lower, math.nan, math.nan, ok, reasons)


def test_decision_card_pick_and_none_qualifies() -> None:
    picked = PickResult(0.9, None, None, 0.05, None, [
        _candidate("small", 0.1, 0.7, False),
        _candidate("mid", 0.4, 0.92, True),
        _candidate("big", 2.0, 0.95, True),
    ])  # fmt: skip
    card = decision_card(picked)
    facts = dict(card.facts)
    assert card.qualifies and card.headline == "Pick: mid"
    assert facts["cost"] == "$0.400 per 1k items"
    assert facts["runner-up"].startswith("big: $2.00 per 1k items")
    assert "at least 92.0 % with 98.3 % confidence" in facts["how sure"]  # 1 - 0.05/3
    assert facts["quality bar"] == "accuracy lower bound ≥ 90.0 %"
    none = PickResult(0.99, None, None, 0.05, None, [
        _candidate("small", 0.1, 0.7, False), _candidate("big", 2.0, 0.95, False),
    ])  # fmt: skip
    card = decision_card(none)
    assert not card.qualifies and card.headline == "No model qualifies (closest: big)"
    assert "lower bound 0.95 < 0.9" in dict(card.facts)["why not"]
    assert card_markdown(card)[0] == "### ⚠️ No model qualifies (closest: big)"


def _tick_labels(lo: float, hi: float, log: bool) -> list[str]:
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([lo, hi], [0, 1])
    if log:
        ax.set_xscale("log")
    dollar_axis(ax.xaxis, log=log)
    fig.canvas.draw()
    ticks = [*ax.xaxis.get_majorticklabels(), *ax.xaxis.get_minorticklabels()]
    return [t.get_text() for t in ticks if t.get_text()]


def test_cost_axes_tick_in_dollars() -> None:
    for lo, hi, log in ((0.03, 0.045, True), (0.004, 2.0, True), (0.0, 0.0096, False)):
        labels = _tick_labels(lo, hi, log)
        assert len(labels) >= 2, (lo, hi, labels)
        assert all(
            t.lstrip("-").startswith("$") and "10^" not in t and "times" not in t for t in labels
        ), labels


def test_summary_md_leads_with_the_decision(tmp_path: Path) -> None:
    rows = make_rows({"a": {"acc": 0.7, "pico": 10**7}, "b": {"acc": 0.95, "pico": 3 * 10**7}})
    run = write_run(tmp_path / "run", rows, {"a": ("0.1", "0.4"), "b": ("0.9", "0.9")})
    page = write_report(read_runs([run]), run / "report", run_dirs=[run], min_quality=0.8)
    md = (page.parent / "summary.md").read_text().splitlines()
    assert md[0] == "## lavabench report (simulated)" and md[2] == "### ✅ Pick: b"
    assert md.index("### ✅ Pick: b") < md.index("### Models")
    header = next(line for line in md if line.startswith("| model |"))
    align = md[md.index(header) + 1]
    assert align.startswith("|:---|---:|") and header.count("|") == align.count("|")
    row_b = next(line for line in md if line.startswith("| b |"))
    assert " % |" in row_b and "| $0.0300 |" in row_b and " ms |" in row_b
    assert all(how_to_read(n) for n in ("quality_vs_price_d1", "latency_ecdf", "cost", "trends"))


def test_decision_card_says_what_the_cost_leaves_out() -> None:
    # as analysis.pick makes it: judge cost folded in, a model of unknown cost listed last
    candidates = [_candidate("mid", 0.4, 0.9, True), _candidate("dark", math.nan, 0.99, False)]
    result = PickResult(0.5, None, None, 0.05, None, candidates, cost_includes_grading=True)
    facts = dict(decision_card(result).facts)
    assert facts["cost includes"].startswith("the judge's requests")
    assert facts["not ranked"].startswith("dark: cost unknown")
    plain = PickResult(0.5, None, None, 0.05, None, [_candidate("mid", 0.4, 0.9, True)])
    assert {"not ranked", "cost includes"}.isdisjoint(dict(decision_card(plain).facts))
