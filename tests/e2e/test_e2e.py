"""End to end over loopback: `lavabench run` -> real HTTP -> the simulator -> Parquet.

Rows are joined to the simulator's own log by completion id, so tokens and cost are checked
against what the server actually sent, not against what the client believes.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from lavabench.catalog import catalog_from_mapping, cost_pico_usd
from lavabench.records.reader import read_records
from tests.conftest import ROOT, read_log, run_cli

MODELS = "[gpt-oss-20b,kimi-k2p6,llama-v3p3-70b-instruct,qwen3-vl-30b-a3b-thinking]"


def _run_dir(stdout: str) -> Path:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("records:"))
    return Path(line.split(":", 1)[1].strip()).parent


def test_run_through_the_gateway_path_matches_what_the_simulator_sent(
    running_sim, composed, tmp_path
) -> None:
    base_url, log_path = running_sim
    secret = (
        "aks_live_" + "e2eSECRETvalue9876"
    )  # built at run time: no key-shaped literal in the repo
    proc = run_cli(
        [
            "run",
            f"model={MODELS}",
            "dataset.limit=12",
            "endpoint=lava",
            f"endpoint.base_url={base_url}",
            f"results_dir={tmp_path}",
            "runner.concurrency=8",
        ],
        env={"LAVA_SECRET_KEY": secret},
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = _run_dir(proc.stdout)
    table = read_records(run_dir).to_pandas()
    assert len(table) == 4 * 12 and (table.status == "ok").all()
    assert table.job_id.is_unique

    sent = {entry["completion_id"]: entry for entry in read_log(log_path)}
    catalog = catalog_from_mapping(composed.catalog)
    for row in table.itertuples():
        server = sent[row.response_id]
        assert row.model_id == server["model"]
        assert row.lava_request_id == server["lava_request_id"]
        assert (row.prompt_tokens, row.completion_tokens) == (
            server["prompt_tokens"],
            server["completion_tokens"],
        )
        assert (0 if pd.isna(row.cached_tokens) else row.cached_tokens) == (
            server["cached_tokens"] or 0
        )
        assert row.content_chunks + row.reasoning_chunks == server["completion_tokens"]
        expected = cost_pico_usd(
            catalog.models[row.model].price,
            prompt_tokens=server["prompt_tokens"],
            completion_tokens=server["completion_tokens"],
            cached_tokens=server["cached_tokens"] or 0,
        )
        assert row.cost_pico_usd == expected
        assert row.correct == server["correct"]
        assert abs(row.server_ttft_s - server["planned_ttft_s"]) < 1e-3
    # reasoning models report reasoning separately; the instruct model does not
    by_model = table.groupby("model")
    assert by_model.reasoning_chunks.min()["llama-v3p3-70b-instruct"] == 0
    assert by_model.reasoning_chunks.min()["gpt-oss-20b"] > 0
    assert (by_model.first_answer_s.min() > by_model.first_reasoning_s.min())["gpt-oss-20b"]

    # the run's metadata: prices used, dataset hash, no secret anywhere in the run directory
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["status"] == "completed" and run_json["rows_written"] == 48
    assert run_json["prices"]["gpt-oss-20b"]["input_usd_per_mtok"] == "0.07"
    assert len(run_json["dataset"]["sha256"]) == 64
    meta = pq.read_schema(run_dir / "records.parquet").metadata
    assert json.loads(meta[b"lavabench.run"])["run_id"] == run_dir.name
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.parent.name == ".hydra" for p in files)
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"secret leaked into {path}"
        assert secret[-12:].encode() not in path.read_bytes(), f"secret leaked into {path}"
    assert secret not in proc.stdout + proc.stderr
    total = sum(Decimal(int(v)) for v in table.cost_pico_usd) / 10**12
    assert total > 0


def test_bad_credential_stops_the_run_at_once_and_keeps_rows(running_sim, tmp_path) -> None:
    base_url, log_path = running_sim
    proc = run_cli(
        [
            "run",
            "model=[gpt-oss-20b,glm-5]",
            "endpoint=lava",
            f"endpoint.base_url={base_url}",
            f"results_dir={tmp_path}",
            "runner.concurrency=2",
        ],
        env={"LAVA_SECRET_KEY": "not-a-lava-key-at-all"},
    )
    assert proc.returncode == 3, proc.stderr
    assert "401" in proc.stderr and "LAVA_SECRET_KEY" in proc.stderr
    run_dir = _run_dir(proc.stdout)
    table = read_records(run_dir).to_pandas()
    assert 1 <= len(table) <= 2  # only what was in flight; nothing retried
    assert (table.error_type == "auth_failed").all() and (table.attempts == 1).all()
    run_json = json.loads((run_dir / "run.json").read_text())
    assert run_json["status"] == "stopped" and run_json["not_started"] >= 118
    served = read_log(log_path) if log_path.exists() else []
    assert len(served) <= 2 and all(e["status"] == 401 for e in served)


def test_missing_credentials_fail_before_anything_is_sent(tmp_path) -> None:
    proc = run_cli(["run", "endpoint=lava", f"results_dir={tmp_path}"])
    assert proc.returncode == 2
    assert "LAVA_SECRET_KEY" in proc.stderr and "LAVA_FORWARD_TOKEN" in proc.stderr
    assert not list(tmp_path.rglob("*.parquet"))


def test_direct_route_to_the_fireworks_path(running_sim, tmp_path) -> None:
    base_url, log_path = running_sim
    proc = run_cli(
        [
            "run",
            "model=gpt-oss-120b",
            "dataset.limit=5",
            "endpoint=direct",
            f"endpoint.base_url={base_url}/inference/v1",
            f"results_dir={tmp_path}",
            "runner.stream=false",
        ],
        env={"FIREWORKS_API_KEY": "fw_test_key_0123456789"},
    )
    assert proc.returncode == 0, proc.stderr
    table = read_records(_run_dir(proc.stdout)).to_pandas()
    assert len(table) == 5 and (table.status == "ok").all()
    assert table.lava_request_id.isna().all() and (~table.stream).all()
    assert (table.server_timing_source.notna()).all()
    assert {e["path"] for e in read_log(log_path)} == {"fireworks"}


def test_bad_dataset_row_is_named_and_nothing_is_sent(running_sim, tmp_path) -> None:
    base_url, log_path = running_sim
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "1+1?", "answer": "2"}\n{"id": "b", "answer": "3"}\n')
    proc = run_cli(
        [
            "run",
            "model=gpt-oss-20b",
            f"dataset.path={bad}",
            "endpoint=lava",
            f"endpoint.base_url={base_url}",
            f"results_dir={tmp_path / 'r'}",
        ],
        env={"LAVA_SECRET_KEY": "aks_live_" + "0123456789abcdef"},
    )
    assert proc.returncode == 2
    assert f"{bad}:2" in proc.stderr and "question" in proc.stderr
    assert not log_path.exists() or read_log(log_path) == []


@pytest.mark.parametrize("override", ["runner.concurency=4", "runner.concurrency=0"])
def test_config_errors_name_the_key(override: str, tmp_path) -> None:
    proc = run_cli(["run", override, f"results_dir={tmp_path}"])
    assert proc.returncode != 0
    assert "concurency" in proc.stderr or "runner.concurrency" in proc.stderr


def test_demo_defaults_cover_six_or_more_models(composed) -> None:
    assert len(list(composed.model)) >= 6
    assert (ROOT / "datasets" / "demo-arith.jsonl").exists()
