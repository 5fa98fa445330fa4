"""The adaptive pick's tests and decision rule (pure, fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lavabench.analysis.adaptive import (
    ModelState,
    answers_from_rows,
    first_crossing,
    format_rounds,
    log_wealth_paths,
    model_state,
    plan,
    prefix_state,
    run_rounds,
    states_from_answers,
)
from lavabench.analysis.intervals import wilson_interval
from lavabench.analysis.tables import prepare
from lavabench.cli import main
from tests.analysis.test_analysis_frontier import make_rows, write_run


def test_model_at_threshold_accepted_at_most_at_nominal_rate() -> None:
    # alpha 0.2, K 1 (bar 5) so the nominal rate is large enough to see in 1,000 seeds
    theta, alpha, seeds, n = 0.85, 0.2, 1000, 300
    x = np.random.default_rng(7).random((seeds, n)) < theta
    accepted = 0
    for chunk in np.array_split(x, 10):
        accepted += int((first_crossing(log_wealth_paths(chunk, theta)[0], 1 / alpha) > 0).sum())
    # a test whose rate is alpha would exceed this one time in 1,000
    assert accepted <= stats.binom.ppf(0.999, seeds, alpha), accepted
    # the naive rule (stop when a one-sided Wilson bound clears theta, checked every 25
    # answers) passes the same models far more often: the comparison can tell them apart
    k = np.cumsum(x[:200], axis=1)[:, 24::25]
    looks = np.arange(25, n + 1, 25)
    naive = 0
    for row in k:
        lows = [
            wilson_interval(int(a), int(m), 1 - alpha, "greater")[0]
            for a, m in zip(row, looks, strict=True)
        ]
        naive += any(lo >= theta for lo in lows)
    assert naive / 200 > max(2 * accepted / seeds, alpha)


def test_clear_models_decided_and_wealths_recorded() -> None:
    rng = np.random.default_rng(1)
    good = model_state("good", 1.0, rng.random(1319) < 0.97, 0.85, 0.05, 20)
    bad = model_state("bad", 0.5, rng.random(1319) < 0.5, 0.85, 0.05, 20)
    assert good.decision == "accepted" and good.decided_at and good.decided_at < 300
    assert good.log_w_plus >= np.log(400) > good.log_w_minus
    assert bad.decision == "rejected" and bad.decided_at and bad.decided_at < 60
    empty = model_state("none", 1.0, np.array([]), 0.85, 0.05, 20)
    assert empty.decision == "undecided" and empty.items == 0


def test_prefix_state_equals_recomputing_on_the_prefix() -> None:
    x = np.random.default_rng(3).random(600) < 0.9
    paths = log_wealth_paths(x, 0.85)
    full = model_state("m", 1.0, x, 0.85, 0.05, 3, paths)
    for n in (0, 1, 50, 137, 300, 599, 600):
        assert prefix_state(full, x, paths, n) == model_state("m", 1.0, x[:n], 0.85, 0.05, 3)


def _s(model: str, decision: str, items: int = 100) -> ModelState:
    return ModelState(model, 0.0, items, 0, decision, None, 0.0, 0.0)  # type: ignore[arg-type]


def test_plan_stops_at_first_accepted_with_cheaper_rivals_settled() -> None:
    p = plan([_s("a", "rejected"), _s("b", "undecided"), _s("c", "accepted")], 1319)
    assert (p.pick, p.need_items, p.done) == (None, ["b"], False)
    p = plan([_s("a", "rejected"), _s("b", "undecided", 1319), _s("c", "accepted")], 1319)
    assert (p.pick, p.not_certified, p.done) == ("c", ["b"], True)
    p = plan([_s("a", "undecided"), _s("b", "undecided"), _s("c", "undecided")], 1319, 2)
    assert (p.pick, p.need_items) == (None, ["a", "b"])
    p = plan([_s("a", "rejected", 1319), _s("b", "undecided", 1319)], 1319)
    assert (p.pick, p.not_certified, p.done) == (None, ["b"], True)


def test_states_in_price_order_unknown_price_last() -> None:
    answers = {m: np.ones(10, bool) for m in ("x", "y", "z")}
    states = states_from_answers(answers, {"x": 3.0, "y": float("nan"), "z": 1.0}, 0.85)
    assert [s.model for s in states] == ["z", "x", "y"]


def test_theta_out_of_range_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        log_wealth_paths(np.ones(3), 1.0)


def test_replay_on_rows_picks_like_the_full_run_with_fewer_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {
        "a": {"acc": 0.5, "pico": 1},
        "b": {"acc": 0.97, "pico": 5},
        "c": {"acc": 0.99, "pico": 9},
    }
    df = prepare(make_rows(spec, items=600))
    answers, costs = answers_from_rows(df, seed=3)
    assert answers_from_rows(df, seed=3)[0]["a"].tolist() == answers["a"].tolist()
    assert answers["b"].mean() == pytest.approx(0.97) and len(costs["c"]) == 600
    r = run_rounds(answers, {"a": 1.0, "b": 5.0, "c": 9.0}, 0.85, batch=25)
    by = {s.model: s for s in r.states}
    assert r.plan.pick == "b" and by["a"].decision == "rejected" and by["c"].items < 100
    assert by["a"].items < 100 and by["b"].items < 400
    text = format_rounds(r, costs, 600, 0.85)
    assert "pick: b" in text and "a: rejected at item" in text and "of 1,800" in text
    run = write_run(tmp_path / "run", make_rows(spec, 600), {m: ("0.1", "0.2") for m in spec})
    assert main(["pick", str(run), "--min-quality", "0.85", "--replay-adaptive"]) == 0
    assert "adaptive pick same as the full run's (b)" in capsys.readouterr().out


def test_pick_on_an_adaptive_run_names_its_certified_pick(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    spec = {"a": {"acc": 0.5, "pico": 1}, "b": {"acc": 0.97, "pico": 5}}
    run = write_run(tmp_path / "run", make_rows(spec, 100), {m: ("0.1", "0.2") for m in spec})
    info = json.loads((run / "run.json").read_text())
    info["adaptive"] = {"pick": "b", "not_certified": ["a"], "done": True, "models": []}
    (run / "run.json").write_text(json.dumps(info))
    main(["pick", str(run), "--min-quality", "0.85"])
    out = capsys.readouterr().out
    assert "adaptive run (runner.adaptive): certified pick b; not certified: a" in out
