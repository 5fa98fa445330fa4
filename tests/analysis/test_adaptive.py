"""The adaptive pick's tests and decision rule (pure, fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lavabench.analysis.adaptive import (
    Design,
    ModelState,
    answers_from_rows,
    evidence,
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


def test_whole_test_accepts_a_model_at_threshold_at_most_at_nominal_rate() -> None:
    # every way in (early W+, final look) together: alpha 0.2, K 1, 300 items, exhausted
    theta, seeds, n = 0.85, 1000, 300
    design = Design(theta, n, 1, alpha=0.2)
    x = np.random.default_rng(11).random((seeds, n)) < theta
    accepted = sum(
        model_state("m", 1.0, row, design, exhausted=True).decision == "accepted" for row in x
    )
    assert accepted <= stats.binom.ppf(0.999, seeds, 0.2), accepted
    # giving each way in the whole alpha (no split) would accept more: the split matters
    unsplit = Design(theta, n, 1, alpha=0.4)
    more = sum(model_state("m", 1.0, r, unsplit, exhausted=True).decision == "accepted" for r in x)
    assert more > accepted


def test_clear_models_decided_and_wealths_recorded() -> None:
    rng = np.random.default_rng(1)
    design = Design(0.85, 1319, 20)
    good = model_state("good", 1.0, rng.random(1319) < 0.97, design)
    bad = model_state("bad", 0.5, rng.random(1319) < 0.5, design)
    assert good.decision == "accepted" and good.decided_at and good.decided_at < 400
    assert not good.final_look and good.log_w_plus >= design.log_accept_bar > good.log_w_minus
    assert bad.decision in ("rejected", "futile") and bad.decided_at and bad.decided_at < 60
    empty = model_state("none", 1.0, np.array([]), design)
    assert empty.decision == "undecided" and empty.items == 0


def test_final_look_certifies_what_the_anytime_test_cannot_near_the_bar() -> None:
    # 1,164 of 1,319 right (0.882, the simulator's kimi-k2p6 on GSM8K) against 0.85, K 20
    x = np.zeros(1319)
    x[np.random.default_rng(2).permutation(1319)[:1164]] = 1
    design = Design(0.85, 1319, 20, futility=0.0)
    s = model_state("m", 1.0, x, design, exhausted=True)
    assert s.decision == "accepted" and s.final_look and s.decided_at == 1319
    assert s.log_w_plus < design.log_accept_bar  # the anytime test alone leaves it undecided
    assert model_state("m", 1.0, x, design).decision == "undecided"  # items left: no final look
    # the same answers one short of the bar the final look needs are not certified
    need = design.final_needed(1319)
    y = x.copy()
    y[np.flatnonzero(y)[need - 1 :]] = 0  # the last right answers turned wrong: need - 1 left
    assert model_state("m", 1.0, y, design, exhausted=True).decision == "undecided"


def test_futility_stops_a_model_below_the_bar_and_rarely_a_good_one() -> None:
    design = Design(0.85, 1319, 20)
    rng = np.random.default_rng(4)
    weak = [model_state("w", 1.0, rng.random(1319) < 0.83, design) for _ in range(50)]
    assert all(s.decision in ("futile", "rejected") for s in weak)
    assert np.median([s.decided_at for s in weak]) < 400
    assert all(s.pass_chance < design.futility for s in weak if s.decision == "futile")
    good = [model_state("g", 1.0, rng.random(1319) < 0.90, design) for _ in range(50)]
    assert sum(s.decision == "futile" for s in good) <= 3
    # looks happen at fixed answer counts only: min_items, then every `look`
    ev = evidence(rng.random(200) < 0.8, design)
    assert list(np.flatnonzero(~np.isnan(ev.pass_chance)) + 1) == list(range(25, 201, 25))


def test_prefix_state_equals_recomputing_on_the_prefix() -> None:
    x = np.random.default_rng(3).random(600) < 0.87
    design = Design(0.85, 600, 3)
    ev = evidence(x, design)
    full = model_state("m", 1.0, x, design, exhausted=True, ev=ev)
    for n in (0, 1, 50, 137, 300, 599):
        assert prefix_state(full, x, ev, n) == model_state("m", 1.0, x[:n], design)
    assert prefix_state(full, x, ev, 600) == full


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
    p = plan([_s("a", "futile", 75), _s("b", "accepted")], 1319)
    assert (p.pick, p.not_certified, p.done) == ("b", ["a"], True)


def test_states_in_price_order_unknown_price_last() -> None:
    answers = {m: np.ones(10, bool) for m in ("x", "y", "z")}
    prices = {"x": 3.0, "y": float("nan"), "z": 1.0}
    states = states_from_answers(answers, prices, Design(0.85, 10, 3))
    assert [s.model for s in states] == ["z", "x", "y"]
    with pytest.raises(ValueError, match=r"design\.k is 2"):
        states_from_answers(answers, prices, Design(0.85, 10, 2))


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
    assert r.plan.pick == "b" and by["a"].decision == "rejected" and by["c"].items == 0
    assert by["a"].items < 100 and by["b"].items < 400
    text = format_rounds(r, costs, 600, 0.85)
    assert "pick: b" in text and "a: rejected at item" in text and "of 1,800" in text
    assert "b: accepted (early) at item" in text and "c: not sent" in text
    assert "futile below 2% chance" in text  # the design the rounds ran with is printed
    strict = run_rounds(answers, {"a": 1.0, "b": 5.0, "c": 9.0}, 0.85, futility=0.005)
    assert "futile below 0.5% chance" in format_rounds(strict, costs, 600, 0.85)
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


def test_report_shows_an_adaptive_runs_own_decisions(tmp_path: Path) -> None:
    import json

    from lavabench.commands.run.adaptive import decisions_info
    from lavabench.records.reader import read_runs
    from lavabench.report.page import write_report

    spec = {"a": {"acc": 0.5, "pico": 1}, "b": {"acc": 0.97, "pico": 5}}
    run = write_run(tmp_path / "run", make_rows(spec, 100), {m: ("0.1", "0.2") for m in spec})
    answers = {"a": np.zeros(25), "b": np.ones(100)}
    states = states_from_answers(answers, {"a": 1.0, "b": 5.0}, Design(0.85, 100, 2))
    info = json.loads((run / "run.json").read_text())
    info["adaptive"] = decisions_info(states, plan(states, 100), {"a": 25, "b": 100},
                                      {"a": 0.001, "b": 0.002}, 100, 5, {"a": 3})  # fmt: skip
    (run / "run.json").write_text(json.dumps(info))
    write_report(read_runs([run]), tmp_path / "out", run_dirs=[run])
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "### Adaptive pick" in md and "adaptive round 5: done, pick b" in md
    assert "a: rejected at item" in md and "b: accepted (early) at item" in md
    assert "$0.0010 + 3 of unknown cost" in md  # unknown cost is said, not summed as zero
    assert "id='adaptive'" in (tmp_path / "out" / "index.html").read_text()
