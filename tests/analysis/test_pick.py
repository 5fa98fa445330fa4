"""pick.py: table-driven decisions (none qualifies, interval straddling the threshold, latency
limit excluding the cheapest) and the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lavabench.analysis.pick import format_pick, pick_model
from lavabench.analysis.tables import cost_table, prepare
from lavabench.cli import main
from tests.analysis.test_analysis_frontier import make_rows, write_run

# 200 items: a Wilson lower bound at alpha/K sits ~5-7 points under the observed accuracy.
CASES = [
    # name, models, kwargs, expected pick, expected runner-up, rejected cheaper models
    (
        "cheapest good enough wins",
        {"a": {"acc": 0.95, "pico": 1}, "b": {"acc": 0.97, "pico": 5}},
        {"min_quality": 0.85},
        "a",
        "b",
        [],
    ),
    (
        "none qualifies",
        {"a": {"acc": 0.6, "pico": 1}, "b": {"acc": 0.7, "pico": 5}},
        {"min_quality": 0.85},
        None,
        None,
        ["a", "b"],
    ),
    (
        "accuracy above threshold but interval straddles it",
        {"a": {"acc": 0.87, "pico": 1}, "b": {"acc": 0.97, "pico": 5}},
        {"min_quality": 0.85},
        "b",
        None,
        ["a"],
    ),
    (
        "latency limit excludes the cheapest",
        {"a": {"acc": 0.97, "pico": 1, "ttft": 2.0}, "b": {"acc": 0.97, "pico": 5, "ttft": 0.2}},
        {"min_quality": 0.85, "max_p90_ttft_s": 1.5},
        "b",
        None,
        ["a"],
    ),
    (
        "failures are +inf latency: 15% errors break a p90 limit",
        {"a": {"acc": 1.0, "pico": 1, "errors": 30}, "b": {"acc": 0.97, "pico": 5}},
        {"min_quality": 0.5, "max_p90_e2e_s": 5.0},
        "b",
        None,
        ["a"],
    ),
]


@pytest.mark.parametrize(("name", "models", "kwargs", "pick", "runner_up", "rejected"), CASES)
def test_pick(
    name: str,
    models: dict[str, dict[str, float]],
    kwargs: dict[str, float],
    pick: str | None,
    runner_up: str | None,
    rejected: list[str],
) -> None:
    df = prepare(make_rows(models, items=200))
    result = pick_model(df, cost_table(df), **kwargs)  # type: ignore[arg-type]
    assert (result.pick.model if result.pick else None) == pick, name
    assert (result.runner_up.model if result.runner_up else None) == runner_up, name
    assert [c.model for c in result.rejected_cheaper] == rejected, name
    text = format_pick(result)
    for c in result.rejected_cheaper:
        assert c.reasons and f"rejected:  {c.model}" in text
        # a cheaper model rejected next to a pick carries the paired difference to it
        assert (c.paired is not None) == (pick is not None)


def test_straddling_model_shows_its_bound_and_paired_difference() -> None:
    df = prepare(make_rows({"a": {"acc": 0.87, "pico": 1}, "b": {"acc": 0.97, "pico": 5}}, 200))
    result = pick_model(df, cost_table(df), min_quality=0.85)
    (a,) = result.rejected_cheaper
    assert a.accuracy > 0.85 > a.accuracy_lower
    assert a.paired is not None and a.paired.items == 200
    assert a.paired.diff == pytest.approx(-0.10) and (a.paired.b, a.paired.c) == (0, 20)
    assert "lower bound" in format_pick(result) and "McNemar b=0 c=20" in format_pick(result)


def test_bonferroni_k_makes_the_bound_stricter() -> None:
    one = prepare(make_rows({"a": {"acc": 0.9}}, items=200))
    many = prepare(make_rows({m: {"acc": 0.9} for m in "abcdefghij"}, items=200))
    lo_one = pick_model(one, cost_table(one), min_quality=0.5).candidates[0].accuracy_lower
    lo_many = pick_model(many, cost_table(many), min_quality=0.5).candidates[0].accuracy_lower
    assert lo_many < lo_one < 0.9


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = make_rows({"a": {"acc": 0.7, "pico": 1}, "b": {"acc": 0.98, "pico": 9}}, items=200)
    run = write_run(tmp_path / "run", rows, {"a": ("0.1", "0.2"), "b": ("1", "2")})
    assert main(["pick", str(run), "--min-quality", "0.85"]) == 0
    out = capsys.readouterr().out
    assert "pick:      b" in out and "rejected:  a" in out
    assert main(["pick", str(run), "--min-quality", "0.99"]) == 1
    assert "no model qualifies" in capsys.readouterr().out
    assert main(["pick", str(run), "--min-quality", "0.85", "--dataset", "other"]) == 1


def test_pick_refuses_an_invalid_run_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    rows = make_rows({"a": {"acc": 0.98, "pico": 1}}, items=200)
    run = write_run(tmp_path / "run", rows, {"a": ("0.1", "0.2")})
    info = json.loads((run / "run.json").read_text())
    cause = {"severity": "invalid", "message": "event-loop lag p99 958 ms", "remedy": "lower c"}
    info["health"] = {"verdict": {"status": "invalid", "causes": [cause]}}
    (run / "run.json").write_text(json.dumps(info))
    assert main(["pick", str(run), "--min-quality", "0.5"]) == 2
    assert "invalid" in capsys.readouterr().err
    assert main(["pick", str(run), "--min-quality", "0.5", "--allow-invalid"]) == 0
