"""Trace replay: recorded gaps kept at speed 1 and 10, every request on each chosen model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lavabench.errors import ConfigError
from lavabench.workloads.har import har_to_trace
from lavabench.workloads.trace import read_trace
from tests.conftest import run_cli


def _trace(path: Path, offsets: list[float]) -> None:
    lines = [
        {"timestamp": 1_700_000_000 + t, "id": f"r{i}", "model": "someone-elses-model",
         "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 8}
        for i, t in enumerate(offsets)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in reversed(lines)))  # any order


@pytest.mark.parametrize(("speed", "span_s"), [(1.0, 1.5), (10.0, 15.0)])
def test_recorded_gaps_are_reproduced_and_model_remaps(
    tmp_path: Path, speed: float, span_s: float
) -> None:
    offsets = [0.0, 0.1, 0.35, 0.4, 0.9, 1.2, 1.5]
    recorded = np.array(offsets) * span_s / 1.5
    trace = tmp_path / "t.jsonl"
    _trace(trace, list(recorded))
    proc = run_cli(
        ["run", "model=[gpt-oss-20b,glm-5]", f"results_dir={tmp_path}", "workload=trace",
         f"workload.path={trace}", f"workload.speed={speed}", "sim.latency_scale=0.02",
         "runner.max_tokens=16", "run_id=t"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_parquet(tmp_path / "t" / "records.parquet")
    assert (rows.status == "ok").all()
    # model= remaps: every recorded request went to each chosen model, none to the trace's
    assert sorted(rows.groupby("item_id").model.apply(sorted).map(tuple).unique()) == [
        ("glm-5", "gpt-oss-20b")
    ]
    for _, g in rows.groupby("model"):
        sent = np.sort(g.first_send_ns.to_numpy()) / 1e9
        want = recorded / speed
        error = np.abs((sent - sent[0]) - want)
        assert error.max() <= 0.02 * want[-1], (sent - sent[0], want)


def test_bad_trace_lines_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"timestamp": 1, "messages": [{"role": "user", "content": "a"}]}\n'
                    '{"timestamp": "yesterday", "messages": []}\n')  # fmt: skip
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: `timestamp`"):
        read_trace(path)


def test_har_entries_become_trace_records() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    har = {"log": {"entries": [
        {"startedDateTime": "2026-01-01T00:00:00.000Z", "request": {
            "method": "POST", "url": "https://api.fireworks.ai/inference/v1/chat/completions",
            "headers": [{"name": "x-session-affinity", "value": "u1"}],
            "postData": {"text": json.dumps(body)}}},
        {"startedDateTime": "2026-01-01T00:00:01.000Z",
         "request": {"method": "GET", "url": "https://example.com/"}},
    ]}}  # fmt: skip
    records, skipped = har_to_trace(har)
    assert skipped == 1 and records[0]["body"] == body and records[0]["session_id"] == "u1"
