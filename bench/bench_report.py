"""`lavabench report` over 1,000,000 synthetic records: wall time and peak memory.

Builds the rows vectorised (numpy, the full record schema, 20 models x 50,000 requests with
~1% failures) in a temp run directory, then times `lavabench report` in a subprocess
`--repeats` times (3 by default: the spread is reported, and the target is judged on the
slowest) and reads the peak RSS from `getrusage(RUSAGE_CHILDREN)` (the largest of the runs).
Target (issue 21): < 10 s and < 2 GB. Writes bench/results/report.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lavabench.records.store import record_schema

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TARGET_S = 10.0  # issue 21: the report over 1,000,000 records under 10 s
# What the report's time on these rows rests on (issue 21 part 4), for the bench table's reader
NOTES = (
    "figures drawn by a figure server forked before the records are read (matplotlib "
    "imported and warmed there, one drawer per core; the latency figure while the tables "
    "are computed, the rest while the pick is); the reading process imports neither "
    "matplotlib nor scipy.stats before the pick's McNemar test (t quantiles from "
    "scipy.special); strings read dictionary-encoded; provenance chosen by codes, not per-row "
    "strings; tables and pick filter narrow frames, no full-width boolean copies"
)


def synthetic_table(rows: int, models: int = 20, items: int = 5000, seed: int = 0) -> pa.Table:
    """`rows` records in the current schema; columns the report does not read stay null."""
    rng = np.random.default_rng(seed)
    names = np.array([f"model-{i:02d}" for i in range(models)])
    m = np.arange(rows) % models
    item = (np.arange(rows) // models) % items
    error = rng.random(rows) < 0.01
    skill = 0.5 + 0.45 * m / models
    correct = (rng.random(rows) < skill) & ~error
    ttft = np.where(error, np.nan, rng.lognormal(np.log(0.2 + 0.02 * m), 0.4))
    completion = rng.integers(20, 400, rows)
    prompt = rng.integers(50, 300, rows)
    cols: dict[str, pa.Array] = {
        "run_id": pa.array(np.full(rows, "bench")),
        "model": pa.DictionaryArray.from_arrays(pa.array(m, pa.int32()), pa.array(names)),
        "dataset": pa.array(np.full(rows, "synthetic")),
        "item_id": pa.array(np.char.add("item-", item.astype(str))),
        "repeat": pa.array((np.arange(rows) // (models * items)).astype("int32")),
        "is_warmup": pa.array(np.zeros(rows, bool)),
        "status": pa.array(np.where(error, "error", "ok")),
        "error_type": pa.array(np.where(error, "unavailable", None)),
        "attempts": pa.array(np.where(rng.random(rows) < 0.03, 2, 1).astype("int16")),
        "ttft_s": pa.array(ttft),
        "e2e_s": pa.array(ttft + completion / (50 + 10 * m)),
        "itl_p50_s": pa.array(np.where(error, np.nan, 1 / (50 + 10 * m))),
        "output_tokens_per_s": pa.array(np.where(error, np.nan, 50.0 + 10 * m)),
        "prompt_tokens": pa.array(prompt.astype("int32")),
        "completion_tokens": pa.array(completion.astype("int32")),
        "cost_pico_usd": pa.array(
            np.where(
                error, 0, prompt * (100_000 + 50_000 * m) + completion * (400_000 + 200_000 * m)
            )
        ),
        "grader": pa.array(np.where(error, None, "numeric")),
        "correct": pa.array(np.where(error, None, correct)),
        "response_cached": pa.array(np.zeros(rows, bool)),
    }
    schema = record_schema()
    arrays = [
        cols[f.name].cast(f.type) if f.name in cols else pa.nulls(rows, f.type) for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "bench-run"
        run.mkdir()
        t0 = time.perf_counter()
        pq.write_table(synthetic_table(opts.rows), run / "records.parquet", compression="zstd")
        build_s = time.perf_counter() - t0
        info = {"run_id": run.name, "simulated": True, "dataset": {"name": "synthetic"}}
        (run / "run.json").write_text(json.dumps(info))
        walls = []
        for _ in range(opts.repeats):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "lavabench", "report", str(run)], check=True, cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            walls.append(round(time.perf_counter() - t0, 2))
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    result = {
        "rows": opts.rows,
        "build_s": round(build_s, 2),
        "report_wall_s": max(walls),  # the slowest run is the one the target is judged on
        "report_wall_s_runs": walls,
        "report_wall_s_median": sorted(walls)[len(walls) // 2],
        "report_peak_rss_mb": round(peak_mb, 1),
        "target": f"< {TARGET_S:.0f} s, < 2048 MB",
        "ok": max(walls) < TARGET_S and peak_mb < 2048,
        "notes": NOTES,
    }
    (RESULTS / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
