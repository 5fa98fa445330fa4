"""Provenance end to end: a model whose stream carries no `usage` gets a labelled estimate,
never a null that a table turns into 0; truncation and the [DONE] time are recorded.

The simulator's `usage_style: none` strips usage the way llama.cpp or a gateway that drops
`include_usage` does. Its prompt-token count is the client's heuristic and it streams one
token per chunk, so for it the estimate must equal what it served exactly (its log)."""

from __future__ import annotations

from pathlib import Path

from lavabench.catalog import catalog_from_mapping, cost_pico_usd
from lavabench.records.reader import read_records
from tests.conftest import read_log, run_cli


def _run_dir(stdout: str) -> Path:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("records:"))
    return Path(line.split(":", 1)[1].strip()).parent


def test_no_usage_model_gets_an_estimate_and_truncation_is_recorded(composed, tmp_path) -> None:
    log = tmp_path / "sim.jsonl"
    proc = run_cli(
        [
            "run", "model=[gpt-oss-20b,llama-v3p3-70b-instruct]", "dataset.limit=3",
            f"results_dir={tmp_path}", "sim.zero_delays=true", f"sim.log_path={log}",
            "sim.models.gpt-oss-20b.usage_style=none", "runner.max_tokens=20",
        ]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = read_records(_run_dir(proc.stdout)).to_pandas()
    served = {e["completion_id"]: e for e in read_log(log)}
    catalog = catalog_from_mapping(composed.catalog)
    for row in rows.itertuples():
        server = served[row.response_id]
        if row.model == "gpt-oss-20b":  # no usage on the wire: estimated, and labelled so
            assert (row.usage_source, row.cost_source) == ("estimate", "estimate")
            expected = cost_pico_usd(catalog.models[row.model].price,
                                     prompt_tokens=server["prompt_tokens"],
                                     completion_tokens=server["completion_tokens"])  # fmt: skip
            assert row.cost_pico_usd == expected > 0
        else:
            assert (row.usage_source, row.cost_source) == ("server", "server_usage")
        assert (row.prompt_tokens, row.completion_tokens) == (
            server["prompt_tokens"], server["completion_tokens"],
        )  # fmt: skip
        assert row.truncated == (server["finish_reason"] == "length")
        assert row.retry_cost_pico_usd == 0
        assert 0 < row.e2e_s <= row.e2e_close_s
    assert rows.truncated.any()  # 20 tokens cut at least one answer short
