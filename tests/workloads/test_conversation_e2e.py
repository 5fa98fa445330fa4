"""Conversations end to end: each turn carries the real answers before it, and hits the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lavabench.datasets.prompt import Message, messages_sha256
from lavabench.workloads.conversation import SessionBook, conversation_prompts
from lavabench.workloads.spec import workload_spec
from lavabench.workloads.text import Calibration
from tests.conftest import run_cli


def test_turn_k_carries_the_real_answers_and_its_cached_tokens_rise(tmp_path: Path) -> None:
    proc = run_cli(
        ["run", "model=[gpt-oss-20b,minimax-m2p7]", f"results_dir={tmp_path}",
         "workload=conversation", "workload.sessions=2", "workload.turns=4",
         "workload.output_tokens=24", "workload.think_time_s=0.05", "sim.latency_scale=0.05",
         "run_id=c"],
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pd.read_parquet(tmp_path / "c" / "records.parquet")
    info = json.loads((tmp_path / "c" / "run.json").read_text())["workload"]
    assert (rows.status == "ok").all() and len(rows) == 2 * 2 * 4
    spec = workload_spec(info["config"])
    prompts = {(p.session_id, p.turn_index): p for p in conversation_prompts(spec)}
    for (model, session), turns in rows.groupby(["model", "session_id"]):
        turns = turns.sort_values("turn_index")
        assert turns.turn_index.tolist() == [0, 1, 2, 3]
        c = info["calibration"][model]
        book = SessionBook(spec, nonce="c")
        calib = Calibration(c["base_tokens"], c["tokens_per_byte"])
        key = (model, session, 0)
        for row in turns.itertuples():
            sent = book.messages(key, prompts[(session, row.turn_index)], calib)
            # the hash of what was sent = the history with the answers the simulator gave
            assert messages_sha256(Message(m["role"], m["content"]) for m in sent) == (
                row.prompt_sha256
            )
            earlier = turns.response_text.tolist()[: row.turn_index]
            assert [m["content"] for m in sent if m["role"] == "assistant"] == earlier
            book.answered(key, row.turn_index, row.response_text)
        answers = [m["content"] for m in book.history(key) if m["role"] == "assistant"]
        assert answers == turns.response_text.tolist() and all(answers)
        cached = turns.cached_tokens.tolist()
        assert cached[0] == 0 and cached == sorted(cached) and cached[1] > 0, cached
        # turns after the first start >= think_time after the turn before them ended
        ends, starts = turns.end_ns.to_numpy()[:-1], turns.first_send_ns.to_numpy()[1:]
        assert ((starts - ends) >= 0.05e9 * 0.95).all()
