"""SLO attainment: the bound's coverage with failures, parsing, and `pick`'s use of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lavabench.analysis.pick import format_pick, pick_model
from lavabench.analysis.slo import Slo, attainment, parse_slo
from lavabench.analysis.tables import cost_table, prepare
from lavabench.cli import main
from tests.analysis.test_analysis_frontier import make_rows, write_run


def test_attainment_bound_covers_at_its_nominal_rate_with_failures() -> None:
    target, fail, n, seeds, alpha = 1.5, 0.05, 200, 1000, 0.05
    truth = (1 - fail) * stats.lognorm.cdf(target, s=0.5, scale=0.8)  # failures are misses
    rng = np.random.default_rng(11)
    slo = Slo("ttft", target, 0.9)
    covered = dropped_covered = 0
    for _ in range(seeds):
        t = 0.8 * np.exp(0.5 * rng.standard_normal(n))
        t[rng.random(n) < fail] = np.inf  # prepare() makes a failure +inf
        df = pd.DataFrame({"_ttft": t})
        covered += attainment(df, slo, alpha).lower <= truth
        # the twin that forgets failures (drops them from n) must be visibly wrong
        dropped_covered += attainment(df[np.isfinite(t)], slo, alpha).lower <= truth
    assert covered / seeds >= 0.93, covered  # nominal 0.95, binomial sd 0.007
    assert dropped_covered / seeds < 0.8, dropped_covered


def test_missing_first_answer_is_a_miss_and_no_request_is_nan() -> None:
    df = pd.DataFrame({"_first_answer": [0.5, np.nan, np.inf, 0.7]})
    a = attainment(df, Slo("first_answer", 1.0, 0.5), 0.05)
    assert (a.met, a.n) == (2, 4)
    empty = attainment(df.iloc[:0], Slo("first_answer", 1.0, 0.5), 0.05)
    assert empty.n == 0 and np.isnan(empty.lower) and not empty.meets


def test_parse_slo() -> None:
    assert parse_slo("ttft:1.5:0.95") == Slo("ttft", 1.5, 0.95)
    assert str(parse_slo("first_answer:2:0.9")) == "90 % of first answer token <= 2 s"
    for bad in ("ttft:1.5", "tpot:1:0.9", "ttft:x:0.9", "ttft:1.5:95", "e2e:-1:0.9", "a:1:2:3"):
        with pytest.raises(ValueError, match="--slo"):
            parse_slo(bad)


def test_pick_gates_on_slo_and_first_answer() -> None:
    rows = make_rows({"a": {"acc": 0.97, "pico": 1}, "b": {"acc": 0.97, "pico": 5}}, 300)
    # model a streams its reasoning at once but its answer starts after 3 s
    rows["first_answer_s"] = np.where(rows["model"] == "a", 3.0, rows["ttft_s"])
    df = prepare(rows)
    both = pick_model(df, cost_table(df), min_quality=0.85, slos=(Slo("ttft", 1.0, 0.95),))
    assert both.pick is not None and both.pick.model == "a"
    assert both.pick.slo[0].meets and both.pick.slo[0].met == 300
    by_answer = pick_model(
        df, cost_table(df), min_quality=0.85, slos=(Slo("first_answer", 1.0, 0.95),)
    )
    assert by_answer.pick is not None and by_answer.pick.model == "b"
    assert [c.model for c in by_answer.rejected_cheaper] == ["a"]
    assert "SLO 95 % of first answer token <= 1 s: first answer token <= 1 s on 0/300" in (
        format_pick(by_answer)
    )
    p90 = pick_model(df, cost_table(df), min_quality=0.85, max_p90_first_answer_s=2.0)
    assert p90.pick is not None and p90.pick.model == "b"
    assert "first-answer p90 upper bound 3.000 s" in p90.rejected_cheaper[0].reasons[0]


def test_cli_slo_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = make_rows({"a": {"acc": 0.98, "pico": 1, "errors": 30}, "b": {"acc": 0.98}}, 200)
    run = write_run(tmp_path / "run", rows, {"a": ("0.1", "0.2"), "b": ("1", "2")})
    # a: 15 % failures, so at most 85 % of its requests can meet any SLO
    assert main(["pick", str(run), "--min-quality", "0.5", "--slo", "e2e:5:0.9"]) == 0
    out = capsys.readouterr().out
    assert "pick:      b" in out and "rejected:  a" in out and "SLO 90 % of E2E <= 5 s" in out
    with pytest.raises(SystemExit) as exc:
        main(["pick", str(run), "--min-quality", "0.5", "--slo", "ttft:1.5"])
    assert exc.value.code == 2 and "METRIC:SECONDS:SHARE" in capsys.readouterr().err
