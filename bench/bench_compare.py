"""Compare's error rates on synthetic nights drawn like the simulator -> bench/results/compare.json.

A/A: two independent runs with the same settings (200+ comparisons) must alarm <= 1% of the
time; +20% TTFT (p90 moves by the same factor) and a -5 point accuracy drop must be caught
>= 95% of the time. Tables mimic the simulator: lognormal TTFT with the sim's jitter
(0.15), per-item difficulty shared by every run, P(correct) = logistic((skill - d) / 0.08),
an independent draw per run. Two models, one dataset: 10 gating rows (default config).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lavabench.analysis.compare import compare
from lavabench.analysis.compare_config import load_compare_config
from lavabench.config import CONF_DIR

ROOT = Path(__file__).resolve().parent.parent
JITTER, SKILL = 0.15, 0.75
RUN = {"history": False, "hours_apart": 0.1}  # two runs minutes apart (no drift between them)


def night(rng: np.random.Generator, n: int, difficulty: np.ndarray, ttft: float = 1.0,
          skill_shift: float = 0.0) -> pd.DataFrame:  # fmt: skip
    frames = []
    for model in ("a", "b"):
        factor = ttft if model == "a" else 1.0
        t = 0.3 * factor * np.exp(JITTER * rng.standard_normal(n))
        shift = skill_shift if model == "a" else 0.0
        p = 1 / (1 + np.exp(-(SKILL + shift - difficulty[:n]) / 0.08))
        frames.append(pd.DataFrame({
            "run_id": "r", "model": model, "dataset": "d",
            "item_id": [f"i{i}" for i in range(n)], "repeat": 0, "is_warmup": False,
            "status": "ok", "error_type": None, "attempts": 1, "ttft_s": t,
            "e2e_s": t + 0.4 * np.exp(JITTER * rng.standard_normal(n)),
            "itl_p50_s": 0.0125 * np.exp(JITTER * rng.standard_normal(n)),
            "output_tokens_per_s": 80 * np.exp(JITTER * rng.standard_normal(n)),
            "prompt_tokens": 60, "completion_tokens": 40,
            "cost_pico_usd": rng.integers(900, 1100, n), "grader": "x",
            "correct": rng.uniform(size=n) < p, "response_cached": False, "dataset_sha256": "s",
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def accuracy_at(shift: float, difficulty: np.ndarray) -> float:
    return float(np.mean(1 / (1 + np.exp(-(SKILL + shift - difficulty) / 0.08))))


def skill_shift_for_drop(drop: float, difficulty: np.ndarray) -> float:
    lo, hi = -0.5, 0.0
    target = accuracy_at(0.0, difficulty) - drop
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if accuracy_at(mid, difficulty) < target else (lo, mid)
    return hi


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--aa", type=int, default=200)
    parser.add_argument("--detect", type=int, default=100)
    parser.add_argument("--n", type=int, default=1319, help="requests = items per model per run")
    parser.add_argument("--n-latency", type=int, default=300)
    opts = parser.parse_args()
    cfg = load_compare_config(CONF_DIR / "compare.yaml")
    rng = np.random.default_rng(20260101)
    difficulty = np.random.default_rng(7).uniform(
        0.0, 1.0, max(opts.n, 2000)
    )  # shared by every run
    start = time.perf_counter()

    def alarms(k: int, n: int, **kw: float) -> tuple[int, dict[str, int]]:
        hits, per = 0, {}
        for _ in range(k):
            result = compare(night(rng, n, difficulty), night(rng, n, difficulty, **kw), cfg, **RUN)
            hits += result.exit_code
            for r in result.regressions:
                per[f"{r.model}/{r.metric}"] = per.get(f"{r.model}/{r.metric}", 0) + 1
        return hits, per

    aa, aa_rows = alarms(opts.aa, opts.n)
    aa_small, _ = alarms(opts.aa, opts.n_latency)
    shift = skill_shift_for_drop(0.05, difficulty[: opts.n])

    def caught(n: int, metric: str, **kw: float) -> float:
        hits = 0
        for _ in range(opts.detect):
            result = compare(night(rng, n, difficulty), night(rng, n, difficulty, **kw), cfg, **RUN)
            hits += any(r.model == "a" and r.metric == metric for r in result.regressions)
        return hits / opts.detect

    out = {
        "gating_rows": 10,
        "family_alpha": cfg.alpha,
        "accuracy_baseline": accuracy_at(0.0, difficulty[: opts.n]),
        "aa": {
            "comparisons": opts.aa,
            "n": opts.n,
            "false_alarm_rate": aa / opts.aa,
            "alarms_by_row": aa_rows,
        },
        "aa_small": {
            "comparisons": opts.aa,
            "n": opts.n_latency,
            "false_alarm_rate": aa_small / opts.aa,
        },
        "detect_ttft_p90_x1.2": {
            "comparisons": opts.detect,
            f"rate_at_n{opts.n_latency}": caught(opts.n_latency, "ttft_p90", ttft=1.2),
            f"rate_at_n{opts.n}": caught(opts.n, "ttft_p90", ttft=1.2),
        },
        "detect_accuracy_minus5pt": {
            "comparisons": opts.detect,
            "skill_shift": shift,
            f"rate_at_n{opts.n}": caught(opts.n, "accuracy", skill_shift=shift),
            f"rate_at_n{opts.n_latency}": caught(opts.n_latency, "accuracy", skill_shift=shift),
            "rate_at_n2000": caught(2000, "accuracy", skill_shift=shift),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    s = JITTER
    out["sample_size_formula_p90_x1.2"] = math.ceil(
        (2.42 * s * (3.29 + 1.645) / math.log(1.2)) ** 2
    )
    path = ROOT / "bench" / "results" / "compare.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
