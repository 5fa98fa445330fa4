"""store.py: crash-safe parts, atomic finalize, metadata, tolerant reading; docs in step."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lavabench.records.reader import read_records
from lavabench.records.schema import SCHEMA_VERSION, Record, records_markdown
from lavabench.records.store import PARTS_DIR, RECORDS_FILE, RecordWriter, read_metadata


def _record(i: int) -> Record:
    return Record(run_id="r", job_id=f"m/d/{i}/r0", endpoint="sim", model="m", model_id="id",
                  dataset="d", item_id=str(i), prompt_sha256="h", status="ok", attempts=1,
                  retry_reasons=[], started_at=datetime.now(UTC), ttft_s=0.1 * i,
                  token_offsets_ns=[1, 2, 3], cost_pico_usd=10**12 + i, correct=i % 2 == 0)  # fmt: skip


def test_rows_survive_a_crash_between_flushes(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, metadata={"run": "{}"}, flush_rows=10, flush_interval_s=3600)
    for i in range(25):
        writer.write(_record(i))
    writer.wait()  # the two full parts are on disk; 5 rows are only in memory
    # "crash": the writer is never closed
    table = read_records(tmp_path)
    assert table.num_rows == 20
    assert not (tmp_path / RECORDS_FILE).exists()
    assert len(list((tmp_path / PARTS_DIR).glob("part-*.parquet"))) == 2


def test_close_merges_parts_into_one_file_with_metadata(tmp_path: Path) -> None:
    writer = RecordWriter(tmp_path, metadata={"run": json.dumps({"run_id": "r"})}, flush_rows=7)
    for i in range(30):
        writer.write(_record(i))
    path = writer.close()
    assert path == tmp_path / RECORDS_FILE and not (tmp_path / PARTS_DIR).exists()
    table = pq.read_table(path)
    assert table.num_rows == 30
    assert sorted(table["item_id"].to_pylist(), key=int) == [str(i) for i in range(30)]
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert table["token_offsets_ns"][0].as_py() == [1, 2, 3]
    assert sum(table["cost_pico_usd"].to_pylist()) == 30 * 10**12 + sum(range(30))
    meta = read_metadata(tmp_path)
    assert meta["schema_version"] == str(SCHEMA_VERSION) and json.loads(meta["run"]) == {
        "run_id": "r"
    }


def test_older_schema_rows_are_read_with_missing_columns_as_nulls(tmp_path: Path) -> None:
    old = pa.table({"run_id": ["r"], "model": ["m"], "status": ["ok"], "legacy_col": [1]})
    pq.write_table(old, tmp_path / RECORDS_FILE)
    table = read_records(tmp_path)
    assert table.num_rows == 1 and table["ttft_s"].null_count == 1
    assert table["legacy_col"].to_pylist() == [1]


def test_docs_records_md_is_generated_from_the_schema() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "records.md"
    assert doc.read_text() == records_markdown(), "docs/records.md is stale: run `make docs`"


def test_disk_full_is_a_clear_error_and_written_rows_stay(tmp_path: Path, monkeypatch) -> None:
    import errno

    import pytest

    import lavabench.records.store as store
    from lavabench.errors import StoreError

    real_write = store._write_atomic
    calls = {"n": 0}

    def full_after_first(table, path):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(table, path)

    monkeypatch.setattr(store, "_write_atomic", full_after_first)
    writer = RecordWriter(tmp_path, metadata={}, flush_rows=5, flush_interval_s=3600)
    with pytest.raises(StoreError, match=r"No space left on device.*resume") as err:
        for i in range(40):
            writer.write(_record(i))
            writer.wait()  # deterministic: each flush is on disk (or failed) before the next row
    assert str(tmp_path / PARTS_DIR) in str(err.value)
    assert read_records(tmp_path).num_rows == 5  # the part written before the disk filled


def test_one_row_per_job_is_exact_when_id_hashes_collide(monkeypatch) -> None:
    """The fast path proves ids distinct from their hashes; a collision must only cost time."""
    from lavabench.records import store

    table = pa.table({"job_id": ["a", "b", None, "c", "b"], "status": ["ok"] * 4 + ["error"]})
    assert store.one_row_per_job(table)["job_id"].to_pylist() == ["a", "b", None, "c"]
    distinct = table.slice(0, 4)
    assert store.one_row_per_job(distinct).num_rows == 4
    monkeypatch.setattr(store, "hash", lambda _: 7, raising=False)  # every id collides
    assert not store._ids_all_distinct(distinct["job_id"])
    assert store.one_row_per_job(distinct)["job_id"].to_pylist() == ["a", "b", None, "c"]
    assert store.one_row_per_job(table)["job_id"].to_pylist() == ["a", "b", None, "c"]


def test_finalize_keeps_one_row_per_job_when_a_part_repeats_jobs(
    tmp_path: Path, monkeypatch
) -> None:
    """The merge copies every row on its first pass; a job seen twice (a resume retried a
    failed item, a crash mid-merge left a copy) makes it write the kept rows instead, the
    same rows the reader keeps. A hash collision among distinct ids takes that way too."""
    from lavabench.records import store

    def row(i: int, status: str) -> Record:
        return dataclasses.replace(_record(i), status=status)

    for case, hashed in (("repeats", None), ("collide", lambda _: 7)):
        run = tmp_path / case
        first = RecordWriter(run, metadata={}, flush_rows=100)
        for i in range(4):
            first.write(row(i, "ok" if i < 2 else "error"))
        first.close()  # records.parquet: 2 ok, 2 failed
        resumed = RecordWriter(run, metadata={}, flush_rows=2)
        for i, status in ((2, "ok"), (0, "ok"), (3, "error")):
            resumed.write(row(i, status))
        resumed.close(finalize=False)
        expected = read_records(run).select(["job_id", "status"]).to_pylist()
        if hashed is not None:
            monkeypatch.setattr(store, "hash", hashed, raising=False)
        store.finalize_parts(run, store.record_schema())
        monkeypatch.undo()
        merged = pq.read_table(run / RECORDS_FILE).select(["job_id", "status"]).to_pylist()
        assert merged == expected, case
        assert [r["status"] for r in merged] == ["ok", "ok", "ok", "error"], case
        assert not (run / PARTS_DIR).exists()
