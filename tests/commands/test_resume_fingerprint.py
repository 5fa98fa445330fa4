"""`resume=` refuses a run whose rows were asked differently (commands/run/fingerprint.py).

Before: a resume with another max_tokens (or endpoint, or prompt) merged its rows into the
old run, and nothing said that half the rows meant something else."""

from __future__ import annotations

import json

import pytest

from lavabench.commands.run.fingerprint import check_resume
from lavabench.errors import ConfigError
from lavabench.exit_codes import EXIT_ERROR
from lavabench.records.reader import read_records
from tests.conftest import read_log, run_cli


def test_a_changed_resume_exits_2_naming_the_keys_and_sends_nothing(running_sim, tmp_path):
    base_url, log = running_sim
    args = ["run", "model=[gpt-oss-20b]", "dataset.limit=2", f"endpoint.base_url={base_url}",
            f"results_dir={tmp_path}", "run_id=fp"]  # fmt: skip
    first = run_cli(args)
    assert first.returncode == 0, first.stderr
    info = json.loads((tmp_path / "fp" / "run.json").read_text())
    assert info["fingerprint"]["max_tokens"] == 512
    served = len(read_log(log))

    changed = run_cli([*args[:-1], "resume=fp", "runner.max_tokens=64",
                       "runner.params.temperature=0.7"])  # fmt: skip
    assert changed.returncode == EXIT_ERROR
    assert "max_tokens, params changed" in changed.stderr
    assert "was 512, now 64" in changed.stderr and "Nothing was sent" in changed.stderr
    assert len(read_log(log)) == served  # nothing reached the server
    assert len(read_records(tmp_path / "fp").to_pandas()) == 2
    assert json.loads((tmp_path / "fp" / "run.json").read_text()) == info


def test_check_resume_accepts_the_same_run_and_old_run_json() -> None:
    fp = {"endpoint_kind": "lava", "endpoint_target": "a -> b", "max_tokens": 8}
    check_resume({"fingerprint": dict(fp)}, fp, "r")
    check_resume({}, fp, "r")  # a run.json from before fingerprints
    with pytest.raises(ConfigError, match="endpoint_target changed"):
        check_resume({"fingerprint": {**fp, "endpoint_target": "c -> b"}}, fp, "r")


@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 11])
def test_the_streamed_prompts_hash_equals_the_hash_of_the_whole_list(n):
    """Runs recorded before the hash was streamed must still resume: same digest."""
    from types import SimpleNamespace

    from lavabench.commands.run.fingerprint import _prompts_sha, _sha

    prompts = [SimpleNamespace(dataset="d\u00e9mo", item_id=f"i{i}", prompt_sha256=f"{i:064x}")
               for i in range(n)]  # fmt: skip
    whole = _sha([(q.dataset, q.item_id, q.prompt_sha256) for q in prompts])
    assert _prompts_sha(prompts, chunk=4) == whole
    assert _prompts_sha(prompts) == whole
