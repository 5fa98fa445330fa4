"""`make bench`: every figure measured in one run on this machine -> bench/results/latest.md.

Runs the simulator benchmark (wrk or aiohttp processes against the simulator, pinned cores),
the client benchmark (lavabench's real request path against the simulator) and the report
over 1,000,000 synthetic records, then writes one Markdown table and the raw JSON. Speed targets live here, not in timed unit tests.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _run(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / script), *args], check=True, cwd=ROOT)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    quick = "--quick" in sys.argv
    _run("bench_sim.py", "--duration", "5" if quick else "10")
    _run("bench_client.py", *(["--quick"] if quick else []))
    _run("bench_report.py")
    _run("bench_compare.py")
    sim = json.loads((RESULTS / "sim.json").read_text())
    client = json.loads((RESULTS / "client.json").read_text())
    report = json.loads((RESULTS / "report.json").read_text())
    compare = json.loads((RESULTS / "compare.json").read_text())

    lines = [
        "# lavabench benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}); simulator pinned to "
        "core 0, load generator / client to core 1; 32-token streamed responses.",
        "",
        "## Simulator (target >= 6,000 responses/s on one core, zero delays)",
        "",
        "| mode | workers | tool | connections | responses/s | server CPU s / 1k | latency p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sim["rows"]:
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['tool']} | {r['connections']} | "
            f"{r['responses_per_s']:,.0f} | {r['server_cpu_s_per_1k']:.3f} | "
            f"{r['latency_p50_s'] * 1e3:.1f} / {r['latency_p99_s'] * 1e3:.1f} ms |"
        )
    lines += [
        "",
        "## Client capacity (zero server delays; Runner -> HttpClient -> SSE -> Record)",
        "",
        "| concurrency | requests | req/s | output tok/s | client CPU s / 1k req | client CPU share | sim CPU share (upper) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in client if r["kind"] == "capacity"):
        lines.append(
            f"| {r['concurrency']} | {r['requests']} | {r['req_per_s']:,.0f} | "
            f"{r['output_tokens_per_s']:,.0f} | {r['client_cpu_s_per_1k']:.3f} | "
            f"{r['client_cpu_share']:.2f} | {r['sim_cpu_share_upper']:.2f} |"
        )
    cost = [r for r in client if r["kind"] == "health_cost"]
    if cost:
        lines += [
            "",
            "## What the health samplers cost (lag / CPU / in-flight; c=64, zero delays)",
            "",
            "| health sampler | requests | req/s | client CPU s / 1k req |",
            "|---|---|---|---|",
        ]
        for r in cost:
            lines.append(
                f"| {'on' if r['health_sampler'] else 'off'} | {r['requests']} | "
                f"{r['req_per_s']:,.0f} | {r['client_cpu_s_per_1k']:.3f} |"
            )
    lines += [
        "",
        "## Timing truth (50 ms TTFT, 10 ms ITL)",
        "",
        "TTFT error = client TTFT - the simulator's actual first-token send time, per request;",
        "ITL error = client gap - planned gap. jitter 0 = all streams phase-locked (worst case).",
        "",
        "| jitter | concurrency | requests | TTFT err p50 / p99 / max ms | TTFT vs plan p50 ms | ITL err p50 / p99 / max ms | client CPU share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in client if r["kind"] == "timing"):
        lines.append(
            f"| {r['jitter']} | {r['concurrency']} | {r['requests']} | "
            f"{_fmt(r['ttft_err_ms_p50'])} / {_fmt(r['ttft_err_ms_p99'])} / "
            f"{_fmt(r['ttft_err_ms_max'])} | {_fmt(r['ttft_vs_plan_ms_p50'])} | "
            f"{_fmt(r['itl_err_ms_p50'])} / {_fmt(r['itl_err_ms_p99'])} / "
            f"{_fmt(r['itl_err_ms_max'])} | {r['client_cpu_share']:.2f} |"
        )
    lines += [
        "",
        "## Report (target < 30 s and < 2 GB over 1,000,000 records)",
        "",
        "| records | wall s | peak RSS MB | within target |",
        "|---|---|---|---|",
        f"| {report['rows']:,} | {report['report_wall_s']:.1f} | "
        f"{report['report_peak_rss_mb']:.0f} | {'yes' if report['ok'] else 'NO'} |",
        "",
    ]
    aa, ttft = compare["aa"], compare["detect_ttft_p90_x1.2"]
    acc = compare["detect_accuracy_minus5pt"]
    lines += [
        "",
        f"## Regression gates (compare; {compare['gating_rows']} gating rows, Holm at family "
        f"alpha {compare['family_alpha']})",
        "",
        "| check | comparisons | items or requests per model | rate | target |",
        "|---|---|---|---|---|",
        f"| A/A false alarms | {aa['comparisons']} | {aa['n']} | {aa['false_alarm_rate']:.1%} | <= 1% |",
        f"| +20% p90 TTFT detected | {ttft['comparisons']} | 300 | {ttft['rate_at_n300']:.0%} | >= 95% |",
        f"| -5 pt accuracy detected | {acc['comparisons']} | 1,319 | {acc['rate_at_n1319']:.0%} | >= 95% |",
        f"| -5 pt accuracy detected | {acc['comparisons']} | 2,000 | {acc['rate_at_n2000']:.0%} | >= 95% |",
        "",
    ]
    (RESULTS / "latest.md").write_text("\n".join(lines))
    (RESULTS / "latest.json").write_text(
        json.dumps(
            {"simulator": sim, "client": client, "report": report, "compare": compare}, indent=2
        )
        + "\n"
    )
    print("\n".join(lines))
    print(f"\nwritten: {RESULTS / 'latest.md'}")


if __name__ == "__main__":
    main()
