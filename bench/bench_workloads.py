"""Workload generation speed and long-context timing truth (issue 17), for `make bench`.

1. Generation: 10,000 synthetic prompts of 10,000 tokens (fresh mode, the simulator's
   calibration line), built one at a time as a run builds them: text, its sha256, and the
   request body. Target: < 10 s in all, memory of one prompt at a time.
2. Long context: `lavabench run workload=synthetic` at 1k and 100k prompt tokens against the
   simulator (fixed 50 ms TTFT, no jitter, no prefill term, so the client's error is
   what is left), concurrency 16: client TTFT minus the simulator's own send time of the
   first token (its log, matched per completion id, on the same monotonic clock).
   Target (issue 17): p99 error at 100k within 1 ms of the 1k figure.

    python bench/bench_workloads.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lavabench.datasets.prompt import Message, messages_sha256  # noqa: E402
from lavabench.wire.protocol import chat_body  # noqa: E402
from lavabench.workloads.spec import workload_spec  # noqa: E402
from lavabench.workloads.synthetic import SyntheticTexts, synthetic_prompts  # noqa: E402
from lavabench.workloads.text import Calibration  # noqa: E402


def generation(prompts: int, tokens: int) -> dict[str, Any]:
    spec = workload_spec({"name": "g", "kind": "synthetic", "items": prompts,
                          "input_tokens": tokens, "output_tokens": 256})  # fmt: skip
    line = Calibration(base=4.0, per_byte=0.25)
    t0 = time.perf_counter()
    planned = synthetic_prompts(spec)
    texts = SyntheticTexts(spec, nonce="bench")
    t1 = time.perf_counter()
    size = 0
    for p in planned:
        messages = texts.messages(p, 0, line)
        messages_sha256(Message(m["role"], m["content"]) for m in messages)
        size += len(chat_body(model_id="m", messages=messages, max_tokens=256, stream=True))
    t2 = time.perf_counter()
    return {"kind": "generation", "prompts": prompts, "tokens": tokens,
            "plan_s": t1 - t0, "build_s": t2 - t1, "total_s": t2 - t0,
            "bytes": size, "target_s": 10.0}  # fmt: skip


def long_context(tokens: int, items: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "sim.jsonl"
        args = [
            sys.executable, "-m", "lavabench", "run", "workload=synthetic",
            "model=gpt-oss-20b", f"workload.items={items}", f"workload.input_tokens={tokens}",
            "workload.output_tokens=16", "runner.max_tokens=16",
            f"runner.concurrency={concurrency}", f"results_dir={tmp}", "run_id=lc",
            f"sim.log_path={log}", "sim.prefill_tokens_per_s=1e12",
            "sim.models.gpt-oss-20b.ttft_s=0.05", "sim.models.gpt-oss-20b.jitter=0",
        ]  # fmt: skip
        subprocess.run(args, check=True, cwd=ROOT, capture_output=True)
        import pandas as pd

        rows = pd.read_parquet(Path(tmp) / "lc" / "records.parquet")
        origin = json.loads((Path(tmp) / "lc" / "run.json").read_text())["clock_origin_ns"]
        sent = {}
        for line in log.read_text().splitlines():
            e = json.loads(line)
            if e.get("sent_ttft_s") is not None:
                sent[e["completion_id"]] = e["received_mono_s"] + e["sent_ttft_s"]
        errors = [
            ((origin + r.first_token_ns) / 1e9 - sent[r.response_id]) * 1e3
            for r in rows.itertuples() if r.response_id in sent
        ]  # fmt: skip
        err = np.array(errors)
        return {"kind": "long_context", "tokens": tokens, "concurrency": concurrency,
                "requests": len(err), "prompt_tokens_mean": float(rows.prompt_tokens.mean()),
                "ttft_error_ms_p50": float(np.percentile(err, 50)),
                "ttft_error_ms_p99": float(np.percentile(err, 99))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    n = 1000 if args.quick else 10_000
    results = [generation(n, 10_000)]
    items = 32 if args.quick else 128
    for tokens in (1_000, 100_000):
        results.append(long_context(tokens, items, concurrency=16))
    for r in results:
        print(json.dumps(r))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
