"""Calibration of the nightly gate -> bench/results/compare_calibration.{md,json}.

A pipeline = 20 models x 1,319 requests per night, compared as `lavabench compare --baseline
history[:N]` compares it: each synthetic night is summarised by `analysis.nights.summarise`
(what `compare` calls on the rows) and every pipeline-night goes through
`analysis.compare.compare_nights` (what `compare` calls next). Nights: lognormal TTFT (sd 0.3),
E2E = TTFT + a lognormal tail, AR(1) rho 0.5 between consecutive requests, each model's
latency multiplied per night by exp(drift x N(0,1)), 0.3 % background errors, 5 % of
model-nights with a burst of 25 consecutive failures, items with a fixed difficulty shared by
every model and night. Rates are k/n with a Wilson 95 % interval.

Pipelines draw their nights at random from a pool of independently simulated nights (nights
are exchangeable under A/A), so summarising stays within minutes on one core; the pool is
>= 10x a pipeline's length, and each pipeline's nights are distinct.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal, stats

from lavabench.analysis.compare import compare_nights, family_z
from lavabench.analysis.compare_config import load_compare_config
from lavabench.analysis.nights import Nights, concat_nights, log_quantile_se, summarise
from lavabench.analysis.tables import percentile
from lavabench.config import CONF_DIR

ROOT = Path(__file__).resolve().parent.parent
MODELS, N, SKILL = 20, 1319, 0.75
START = datetime(2026, 1, 1, 3, tzinfo=UTC)


def night_rows(
    rng: np.random.Generator, difficulty: np.ndarray, *, drift: float, rho: float,
    slow: float = 1.0, skill_shift: float = 0.0, same_drift: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:  # fmt: skip
    """One night of MODELS x N requests; model m0 slowed by `slow` and shifted in skill."""
    m, n = MODELS, N
    e = rng.standard_normal((m, n))
    ar = signal.lfilter([math.sqrt(1 - rho * rho)], [1, -rho], e, axis=1)
    ar[:, 0] = e[:, 0]
    factor = np.exp(drift * rng.standard_normal(m)) if same_drift is None else same_drift
    scale = factor * np.r_[slow, np.ones(m - 1)]
    ttft = 0.4 * scale[:, None] * np.exp(0.3 * ar)
    e2e = ttft + 1.2 * scale[:, None] * np.exp(0.2 * rng.standard_normal((m, n)))
    error = rng.uniform(size=(m, n)) < 0.003
    for i in np.flatnonzero(rng.uniform(size=m) < 0.05):
        at = rng.integers(0, n - 25)
        error[i, at : at + 25] = True
    shift = np.r_[skill_shift, np.zeros(m - 1)]
    p = 1 / (1 + np.exp(-(SKILL + shift[:, None] - difficulty[None, :]) / 0.08))
    correct = (rng.uniform(size=(m, n)) < p) & ~error
    flat = {
        "model": np.repeat([f"m{i:02d}" for i in range(m)], n),
        "dataset": "gsm8k", "item_id": np.tile([f"i{j:04d}" for j in range(n)], m),
        "repeat": 0, "is_warmup": False,
        "status": np.where(error, "error", "ok").ravel(),
        "error_type": np.where(error, "unavailable", None).ravel(), "attempts": 1,
        "ttft_s": np.where(error, np.nan, ttft).ravel(), "e2e_s": np.where(error, np.nan, e2e).ravel(),
        "itl_p50_s": 0.01, "output_tokens_per_s": 90.0, "prompt_tokens": 80.0,
        "completion_tokens": 200.0, "cost_pico_usd": 1000, "grader": "numeric",
        "correct": correct.ravel(), "response_cached": False, "dataset_sha256": "s",
        "started_at": np.tile(np.arange(n, dtype="float64"), m),
    }  # fmt: skip
    return pd.DataFrame(flat), factor


def summarised(rows: pd.DataFrame, night: str, day: int, z: float) -> Nights:
    start = START + timedelta(days=day)
    rows = rows.assign(
        run_id=night, run_started_at=start.isoformat(),
        started_at=pd.Timestamp(start) + pd.to_timedelta(rows["started_at"], unit="s"),
    )  # fmt: skip
    return summarise(rows, z)


def redated(n: Nights, night: str, day: int) -> Nights:
    """A pool night placed at position `day` of a pipeline under a fresh name."""
    started = (START + timedelta(days=day)).isoformat()
    order = pd.DataFrame({"night": [night], "started": [started]})
    return Nights(
        stats=n.stats.assign(night=night), errors=n.errors.assign(night=night),
        items=n.items.assign(night=night), order=order, fatal=n.fatal,
    )  # fmt: skip


def wilson(k: int, n: int) -> str:
    ci = stats.binomtest(k, n).proportion_ci(method="wilson")
    return f"{k}/{n} = {k / n:.1%} [{ci.low:.1%}, {ci.high:.1%}]"


class Bench:
    def __init__(self, seed: int, cfg_path: Path) -> None:
        self.cfg = load_compare_config(cfg_path)
        self.rng = np.random.default_rng(seed)
        self.difficulty = np.random.default_rng(7).uniform(0, 1, N)
        _, self.z = family_z(self.cfg, MODELS)

    def pool(self, size: int, drift: float, rho: float, **kw: float) -> list[Nights]:
        out = []
        for i in range(size):
            rows, _ = night_rows(self.rng, self.difficulty, drift=drift, rho=rho, **kw)
            out.append(summarised(rows, f"p{i}", 0, self.z))
        return out

    def pipeline(
        self, pool: list[Nights], history: int, tonight: Nights, recent: list[Nights] = (),
        skip: int = -1,
    ) -> tuple[Nights, Nights]:  # fmt: skip
        """`history` nights: random pool nights (never pool[skip]), then `recent` (newest
        last); and tonight."""
        others = [i for i in range(len(pool)) if i != skip]
        picks = self.rng.choice(others, size=history - len(recent), replace=False)
        nights = [pool[i] for i in picks] + list(recent)
        base = concat_nights([redated(n, f"h{k}", k) for k, n in enumerate(nights)])
        return base, redated(tonight, "(current)", history)

    def gate(self, base: Nights, cur: Nights, **kw: object):
        return compare_nights(base, cur, self.cfg, **kw)  # type: ignore[arg-type]


def aa(b: Bench, pool: list[Nights], pipelines: int, nights: int, **kw: object) -> dict:
    """Per-pipeline false alarms (any gating row regressed) and the share that can detect.
    Pipeline i's tonight is pool night i; its history is drawn from the others."""
    alarms, detect, rows, rate_rows = 0, 0, 0, {}
    for i in range(pipelines):
        base, cur = b.pipeline(pool, nights, pool[i], skip=i)
        r = b.gate(base, cur, **kw)
        alarms += bool(r.regressions)
        for x in r.regressions:
            rate_rows[x.metric] = rate_rows.get(x.metric, 0) + 1
        detect += sum(x.can_detect for x in r.gating_rows)
        rows += len(r.gating_rows)
    return {"alarms": alarms, "pipelines": pipelines, "can_detect_share": detect / rows,
            "alarms_by_metric": rate_rows}  # fmt: skip


def step(b: Bench, pool: list[Nights], stepped: list[Nights], history: int, k: int) -> dict:
    """A persistent +20 % p90 TTFT step on m00: flagged on night 1, and within k nights."""
    first, within, warned = 0, 0, 0
    for i in range(0, len(stepped) - k + 1, k):
        seen = False
        for night in range(1, k + 1):
            recent = stepped[i : i + night - 1]
            base, cur = b.pipeline(pool, history, stepped[i + night - 1], recent)
            r = b.gate(base, cur)
            row = next(x for x in r.rows if x.model == "m00" and x.metric == "ttft_p90")
            hit = row.status == "regressed"
            first += hit and night == 1
            warned += night == 1 and (hit or bool(row.warning))
            seen = seen or hit
        within += seen
    n = len(stepped) // k
    return {"night1": (first, n), "night1_or_suspect": (warned, n), "within_k": (within, n)}


def coverage(rng: np.random.Generator, reps: int, rho: float) -> tuple[int, int, int]:
    """Nominal 95 % interval of ln p90 under AR(1): hits with and without batch means."""
    import lavabench.analysis.nights as nights_mod

    e = rng.standard_normal((reps, N))
    x = np.exp(signal.lfilter([math.sqrt(1 - rho * rho)], [1, -rho], e, axis=1))
    truth = float(stats.norm.ppf(0.9)) * 1.0
    hits = naive = 0
    keep = nights_mod.batch_means_inflation
    for row in x:
        err = abs(math.log(percentile(row, 0.9)) - truth)
        hits += err <= 1.96 * log_quantile_se(row, 0.9, 1.96)
        nights_mod.batch_means_inflation = lambda v: 1.0  # type: ignore[assignment]
        naive += err <= 1.96 * log_quantile_se(row, 0.9, 1.96)
        nights_mod.batch_means_inflation = keep
    return hits, naive, reps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipelines", type=int, default=200)
    parser.add_argument("--history", type=int, default=12, help="history[:N] of the pipeline")
    parser.add_argument("--pool", type=int, default=200, help="nights per setting")
    parser.add_argument("--detect", type=int, default=100, help="step pipelines")
    parser.add_argument("--same", type=int, default=0, help="same-session pairs (0: --pipelines)")
    opts = parser.parse_args()
    t0 = time.perf_counter()
    b = Bench(20261202, CONF_DIR / "compare.yaml")
    k, h, out = b.cfg.recent_nights, opts.history, {}
    settings = []
    for drift in (0.05, 0.10):
        pool = b.pool(max(opts.pool, opts.pipelines), drift, 0.5)
        settings.append((f"A/A history[:{h}], drift {drift:.0%}, rho 0.5",
                         aa(b, pool, opts.pipelines, h)))  # fmt: skip
        print(settings[-1], round(time.perf_counter() - t0), flush=True)
        if drift != 0.05:
            continue
        settings.append(("A/A history[:3], drift 5%, rho 0.5", aa(b, pool, opts.pipelines, 3)))
        settings.append(("A/A one run 24 h apart, drift 5%, rho 0.5",
                         aa(b, pool, opts.pipelines, 1, history=False, hours_apart=24.0)))  # fmt: skip
        print(settings[-2:], round(time.perf_counter() - t0), flush=True)
        stepped = b.pool(opts.detect * k, drift, 0.5, slow=1.2)
        out["step_history"] = step(b, pool, stepped, h, k)
        print(out["step_history"], round(time.perf_counter() - t0), flush=True)
        shift = skill_shift_for_drop(0.05, b.difficulty)
        hits = 0
        for t in b.pool(opts.detect, drift, 0.5, skill_shift=shift):
            base, cur = b.pipeline(pool, h, t)
            r = b.gate(base, cur)
            hits += any(x.model == "m00" and x.metric == "accuracy" for x in r.regressions)
        out["accuracy_minus5"] = (hits, opts.detect)
        print(out["accuracy_minus5"], round(time.perf_counter() - t0), flush=True)
    same = []
    for _ in range(opts.same or opts.pipelines):  # one run minutes apart: the same night's drift
        base_rows, factor = night_rows(b.rng, b.difficulty, drift=0.05, rho=0.5)
        cur_rows, _ = night_rows(b.rng, b.difficulty, drift=0.05, rho=0.5, same_drift=factor)
        base = redated(summarised(base_rows, "b", 0, b.z), "b", 0)
        cur = redated(summarised(cur_rows, "c", 0, b.z), "(current)", 0)
        same.append(bool(b.gate(base, cur, history=False, hours_apart=0.2).regressions))
    settings.append(("A/A one run 12 min apart (same drift), rho 0.5",
                     {"alarms": sum(same), "pipelines": len(same)}))  # fmt: skip
    out["settings"] = settings
    out["coverage_ar1"] = coverage(b.rng, 400, 0.5)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    write(out, b, h)


def skill_shift_for_drop(drop: float, difficulty: np.ndarray) -> float:
    def acc(shift: float) -> float:
        return float(np.mean(1 / (1 + np.exp(-(SKILL + shift - difficulty) / 0.08))))

    lo, hi, target = -0.5, 0.0, acc(0.0) - drop
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if acc(mid) < target else (lo, mid)
    return hi


def write(out: dict, b: Bench, h: int) -> None:
    k = b.cfg.recent_nights
    lines = [
        "# Nightly gate calibration (bench/bench_compare_calibration.py)",
        "",
        f"{MODELS} models x {N:,} requests per night, 5 gating metrics ({MODELS * 5} gating "
        f"rows), Holm at family alpha {b.cfg.alpha}, K = {k} recent nights, AR(1) requests,"
        " 5 % of model-nights with a 25-error burst. Rates: k/n = rate [Wilson 95 %].",
        "",
        "| setting | per-pipeline false alarms per night | target | gating rows that can detect |",
        "|---|---|---|---|",
    ]
    for name, r in out["settings"]:
        share = f"{r['can_detect_share']:.0%}" if "can_detect_share" in r else "-"
        lines.append(f"| {name} | {wilson(r['alarms'], r['pipelines'])} | <= 1 % | {share} |")
    s = out["step_history"]
    acc = out["accuracy_minus5"]
    hits, naive, reps = out["coverage_ar1"]
    lines += [
        "",
        "| detection (drift 5 %, rho 0.5) | rate | target |",
        "|---|---|---|",
        f"| +20 % p90 TTFT, flagged on night 1 (history[:{h}]) | {wilson(*s['night1'])} | - |",
        f"| +20 % p90 TTFT, night 1 flagged or `suspect` | {wilson(*s['night1_or_suspect'])} | - |",
        f"| +20 % p90 TTFT, flagged within {k} nights (history[:{h}]) | {wilson(*s['within_k'])} | >= 95 % |",
        f"| -5 pt accuracy on {N:,} items, night 1 | {wilson(*acc)} | >= 95 % |",
        "",
        f"Coverage of a nominal 95 % interval of ln p90 under AR(1) rho 0.5 ({N:,} requests):"
        f" order-statistic SE alone {wilson(naive, reps)}; with batch means {wilson(hits, reps)}.",
        "",
        f"Measured in {out['seconds']} s.",
    ]
    res = ROOT / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "compare_calibration.md").write_text("\n".join(lines) + "\n")
    (res / "compare_calibration.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
