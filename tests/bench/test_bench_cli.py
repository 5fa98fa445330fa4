"""bench/bench_cli.py's summary: lavabench / the peer per round, from the peer measured in
the same rounds; a peer that could not run is said so, never replaced by a number."""

from __future__ import annotations

from typing import Any

from bench.bench_cli import summarize
from bench.run_all import cli_section


def _run(rate: float) -> dict[str, Any]:
    return {"req_per_s": rate, "wall_req_per_s": rate / 2, "startup_s": 3.0, "after_s": 2.0,
            "wall_s": 10.0, "loop_lag_ms_p99": 100.0, "foreign_cpu_share": 0.1,
            "server_cpu_share": 0.5, "correct_share": 1.0}  # fmt: skip


def _pair(ours: float, bare: float, peer: float | None, error: str | None = None) -> dict:
    pair: dict[str, Any] = {
        "runs": {"lavabench": _run(ours), "bare": {"req_per_s": bare},
                 "peer": {"client": "aiperf 0.13.0", "req_per_s": peer, "error": error}},
        "ratio": {"lavabench": ours / bare},
    }  # fmt: skip
    if peer:
        pair["peer_ratio"] = {"lavabench": ours / peer}
    return pair


def test_the_peer_ratio_is_per_round_and_a_failed_round_is_named() -> None:
    pairs = [_pair(1000, 1200, 100), _pair(900, 1000, 50), _pair(950, 1100, None, "could not "
             "run: exit 1: boom")]  # fmt: skip
    s = summarize(pairs, 256)
    assert s["peer_x"] == {"min": 10.0, "median": 14.0, "max": 18.0}  # 1000/100, 900/50
    assert s["peer_x_met"] is True and s["best_peer_req_per_s"] == 75.0
    assert "2 of 3 rounds" in s["best_peer_source"] and "boom" in s["best_peer_source"]


def test_a_peer_that_never_ran_gives_no_number() -> None:
    cli = {
        "requests": 4200,
        "summary": summarize([_pair(1000, 1200, None, "could not run: x")], 256),
    }
    s = cli["summary"]
    assert s["peer_x"] is None and s["peer_x_met"] is None and s["best_peer_req_per_s"] is None
    text = "\n".join(cli_section(cli))
    assert "could not run: x" in text and "not measured" in text
