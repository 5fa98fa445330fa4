"""`lavabench data pull`: cache, sha256 verification, mirror resolution (no network)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from lavabench.datasets.pull import pull
from lavabench.errors import DatasetError
from tests.conftest import SHARED_DATASETS, run_cli


def _source(tmp_path: Path, content: bytes) -> dict:
    origin = tmp_path / "origin.jsonl"
    origin.write_bytes(content)
    digest = hashlib.sha256(content).hexdigest()
    return {"files": [{"url": origin.as_uri(), "sha256": digest, "path": "set/test.jsonl"}]}


def _copy_fetch(url: str, dest: Path) -> None:
    shutil.copyfile(url.removeprefix("file://"), dest)


def test_pull_downloads_verifies_and_keeps_a_good_copy(tmp_path: Path) -> None:
    source = _source(tmp_path, b'{"question": "q", "answer": "1"}\n')
    calls: list[str] = []

    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        _copy_fetch(url, dest)

    (path,) = pull(source, cache_dir=str(tmp_path / "cache"), fetch=fetch, mirror="")
    assert path == tmp_path / "cache" / "set" / "test.jsonl"
    assert path.read_bytes().startswith(b'{"question"')
    pull(source, cache_dir=str(tmp_path / "cache"), fetch=fetch, mirror="")
    assert len(calls) == 1  # verified copy kept, not downloaded again


def test_sha_mismatch_is_an_error_and_nothing_is_kept(tmp_path: Path) -> None:
    source = _source(tmp_path, b"x\n")
    source["files"][0]["sha256"] = "0" * 64
    with pytest.raises(DatasetError, match="does not match"):
        pull(source, cache_dir=str(tmp_path / "cache"), fetch=_copy_fetch, mirror="")
    assert list((tmp_path / "cache" / "set").iterdir()) == []


@pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason=f"no {SHARED_DATASETS} (present in CI)")
def test_cli_pull_from_the_mirror(tmp_path: Path) -> None:
    done = run_cli(
        ["data", "pull", "humaneval"],
        env={"LAVABENCH_DATA_MIRROR": str(SHARED_DATASETS), "LAVABENCH_DATA_CACHE": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "humaneval" / "HumanEval.jsonl").read_bytes() == (
        SHARED_DATASETS / "humaneval" / "HumanEval.jsonl"
    ).read_bytes()
    bad = run_cli(["data", "pull", "nope"], env={"LAVABENCH_DATA_CACHE": str(tmp_path)})
    assert bad.returncode == 2 and "known:" in bad.stderr
