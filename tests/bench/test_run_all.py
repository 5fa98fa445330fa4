"""bench/run_all.py's targets table: each target judged on the median of repeated runs (the
report on its slowest), the range shown beside it."""

from __future__ import annotations

from bench.run_all import targets_section


def _inputs(ratios: list[float], memory_runs: list[float], walls: list[float]):
    cli = {
        "summary": {
            "concurrency": 256,
            "best_peer_source": "aiperf 0.13 against the same server",
            "target_share": 0.85,
            "target_peer_x": 12.0,
        },
        "pairs": [{"ratio": {"lavabench": x}, "peer_ratio": {"lavabench": 9.0}} for x in ratios],
    }
    timing = [
        {
            "kind": "timing",
            "jitter": 0.1,
            "concurrency": c,
            "ttft_err_ms_p99": p99,
            "loop_lag_ms_p99": 1.0,
        }
        for c, p99 in ((64, 0.9), (64, 1.4), (64, 0.8), (1, 0.4))
    ]
    rate = {"rows": [{"arrival": "constant", "requested_per_s": 10, "error_pct": 0.1}],
            "all_within_target": True, "target_pct": 2.0}  # fmt: skip
    memory = {"ratios": {"distinct": memory_runs[-1]}, "ratio_runs": {"distinct": memory_runs},
              "target_ratio": 1.15}  # fmt: skip
    report = {"rows": 1_000_000, "report_wall_s": max(walls), "report_wall_s_runs": walls}
    return timing, [], [], rate, memory, report, cli


def _row(lines: list[str], needle: str) -> str:
    (row,) = [line for line in lines if needle in line]
    return row


def test_targets_are_judged_on_the_median_and_show_the_range() -> None:
    lines = targets_section(*_inputs([0.80, 0.86, 0.90], [1.10, 1.20, 1.12], [9.0, 9.5, 9.8]))
    share = _row(lines, "/ bare aiohttp")
    assert "86 % (80 - 90 %, 3 runs)" in share and share.endswith("| yes |")
    assert "9.0x (9.0 - 9.0x, 3 runs)" in _row(lines, "best peer")
    assert _row(lines, "best peer").endswith("| NO |")  # 9x < 12x
    ttft64 = _row(lines, "c=64")
    assert "0.90 ms (0.80 - 1.40 ms, 3 runs)" in ttft64 and ttft64.endswith("| yes |")
    assert _row(lines, "memory (distinct)").endswith("| yes |")  # median 1.12
    assert _row(lines, "report on").endswith("| yes |")


def test_one_slow_report_run_fails_the_report_target() -> None:
    lines = targets_section(*_inputs([0.70, 0.80, 0.84], [1.30, 1.20, 1.12], [9.0, 10.4, 9.8]))
    assert _row(lines, "/ bare aiohttp").endswith("| NO |")
    assert _row(lines, "memory (distinct)").endswith("| NO |")  # median 1.20
    assert _row(lines, "report on").endswith("| NO |")  # the slowest run is 10.4 s


def test_a_peer_that_never_ran_is_not_measured_and_not_met() -> None:
    inputs = _inputs([0.9, 0.9, 0.9], [1.1, 1.1, 1.1], [9.0, 9.0, 9.0])
    for pair in inputs[-1]["pairs"]:
        pair["peer_ratio"] = {}
    inputs[-1]["summary"]["best_peer_source"] = "could not run: aiperf: no wheel"
    row = _row(targets_section(*inputs), "best peer")
    assert "not measured (could not run: aiperf: no wheel)" in row and row.endswith("| NO |")


def test_the_ttft_rows_say_how_much_the_host_stole() -> None:
    """A TTFT bound of 1 ms is only as good as the host: the row shows the steal measured
    during its runs (absent from rows measured before the bench recorded it)."""
    inputs = _inputs([0.9, 0.9, 0.9], [1.1, 1.1, 1.1], [9.0, 9.0, 9.0])
    assert "steal" not in _row(targets_section(*inputs), "c=64")
    for share, row in zip((0.031, 0.002, 0.04, 0.0), inputs[0], strict=True):
        row["host_steal_share"] = share
    ttft64 = _row(targets_section(*inputs), "c=64")
    assert "host steal 3.1 % (0.2 - 4.0 %, 3 runs)" in ttft64
    inputs[0][0]["host_steal_share"] = None  # no tick passed: unknown, left out, not 0
    assert "host steal 2.1 % (0.2 - 4.0 %, 2 runs)" in _row(targets_section(*inputs), "c=64")
