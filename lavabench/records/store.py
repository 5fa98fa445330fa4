"""Parquet records: crash-safe incremental writing, atomic finalize, tolerant reading.

Layout of `results/<run_id>/`:
    records.parquet         all rows, written once at the end (atomic rename)
    records.parts/          while running: complete Parquet files part-000001.parquet, ...
    run.json                run metadata (config without secrets, prices, status, counts)

Why parts: a Parquet file is unreadable until its footer is written, so one growing file
would lose everything on SIGKILL. Each flush (every N rows or T seconds) writes a complete
small file via a temp name + fsync + rename in a background thread, so the event loop never
waits on disk and a crash loses only the rows since the last flush. `records.reader.read_records` reads the
final file or, after a crash, the parts.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lavabench.errors import StoreError
from lavabench.records.schema import RECORD_FIELDS, SCHEMA_VERSION, Record, record_field_specs

RECORDS_FILE = "records.parquet"
PARTS_DIR = "records.parts"
RUN_FILE = "run.json"
METADATA_PREFIX = "lavabench."

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
    "list<string>": pa.list_(pa.string()),
    "list<int64>": pa.list_(pa.int64()),
    "list<float64>": pa.list_(pa.float64()),
}


def record_schema(metadata: Mapping[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of records.parquet, from the field specs in records/schema.py."""
    schema = pa.schema(
        [pa.field(name, _ARROW_TYPES[arrow]) for name, arrow, _doc in record_field_specs()]
    )
    meta = {f"{METADATA_PREFIX}schema_version": str(SCHEMA_VERSION)}
    meta.update({f"{METADATA_PREFIX}{k}": v for k, v in (metadata or {}).items()})
    return schema.with_metadata(meta)


def records_to_table(records: list[Record], schema: pa.Schema) -> pa.Table:
    columns = {name: [getattr(r, name) for r in records] for name in RECORD_FIELDS}
    return pa.Table.from_pydict(columns, schema=schema)


def warm_up_conversion() -> None:
    """Convert once now, before the run's clock matters: pyarrow's first conversion imports
    pandas (~250 ms holding the GIL), which in the writer thread mid-run stalled the loop
    stamping tokens, and in a worker after it said ready delayed its first sends."""
    records_to_table([], record_schema())


def _write_atomic(table: pa.Table, path: Path) -> None:
    """One part, written while tokens arrive on the same core: the cheapest encoding that
    stays compact (measured on 500 real rows: zstd with dictionaries and statistics 10.6 ms
    and 105 KB; snappy, plain encoding, no statistics 5.8 ms and 123 KB). Parts are
    temporary: `finalize_parts` re-encodes every row into records.parquet with zstd."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="snappy", use_dictionary=False, write_statistics=False)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# nice 19 starved the writer when the loop ran at 100% (closed loop, zero delays): batches
# piled up in memory (506 MB vs 294 MB while sending 100k) and capacity fell by a third as
# the merge waited for them. nice 5 leaves it ~25% of a contended core: enough to keep up
# (it needs ~20%), and the loop's wake-ups still preempt it.
_WRITER_NICE = 5


def _yield_to_the_loop() -> None:
    """Run the writer thread below the event loop's CPU priority (Linux: nice is per thread).

    On a core it shares with the event loop, a writer thread at equal priority keeps the
    loop waiting for its time slice (a few ms) while tokens arrive. Where this is not
    allowed, nothing changes."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _WRITER_NICE)


class RecordWriter:
    """Buffers Records and flushes them as complete Parquet parts off the event loop."""

    def __init__(
        self,
        run_dir: Path,
        *,
        metadata: Mapping[str, str],
        flush_rows: int = 500,
        flush_interval_s: float = 2.0,
        part_suffix: str = "",
    ) -> None:
        """`part_suffix` keeps the parts of several writers on one run apart
        (runner.workers: `part-000001-w0.parquet`); the parts merge as one at the end."""
        self.run_dir = Path(run_dir)
        self._part_suffix = part_suffix
        self.parts_dir = self.run_dir / PARTS_DIR
        try:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.parts_dir}: {exc}") from exc
        self.schema = record_schema(metadata)
        warm_up_conversion()
        self._flush_rows = max(1, flush_rows)
        self._flush_interval_s = flush_interval_s
        self._buffer: list[Record] = []
        self._last_flush = time.monotonic()
        self._part_no = max(
            (int(p.stem.split("-")[1]) for p in self.parts_dir.glob("part-*.parquet")), default=0
        )
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="lavabench-store", initializer=_yield_to_the_loop
        )
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self.rows_written = 0

    def write(self, record: Record) -> None:
        """Buffer one row; raise StoreError at once if an earlier flush failed (disk full)."""
        if self._pending and self._pending[0].done():
            self._raise_failed()
        self._buffer.append(record)
        if (
            len(self._buffer) >= self._flush_rows
            or time.monotonic() - self._last_flush >= self._flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        """Hand the buffered rows to the writer thread (returns at once)."""
        self._last_flush = time.monotonic()
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        self._part_no += 1
        path = self.parts_dir / f"part-{self._part_no:06d}{self._part_suffix}.parquet"
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._executor.submit(self._write_part, batch, path))

    def _write_part(self, batch: list[Record], path: Path) -> None:
        _write_atomic(records_to_table(batch, self.schema), path)
        with self._lock:
            self.rows_written += len(batch)

    def _raise_failed(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            exc = future.exception()
            if exc is not None:
                raise StoreError(
                    f"writing records under {self.parts_dir} failed: {exc}. Rows already "
                    "written are kept; free space or fix permissions, then resume the run."
                ) from exc
            self._pending.remove(future)

    def wait(self) -> None:
        """Block until every handed-off part is on disk; re-raise a write failure."""
        for future in self._pending:
            future.exception()  # waits
        self._raise_failed()
        self._pending.clear()

    def add_metadata(self, key: str, value: str) -> None:
        """Add `lavabench.<key>` to the final file's metadata: facts known only at the end of
        the run (its health and verdict). Parts written earlier keep their metadata."""
        meta = dict(self.schema.metadata or {})
        meta[f"{METADATA_PREFIX}{key}".encode()] = value.encode()
        self.schema = self.schema.with_metadata(meta)

    def close(self, *, finalize: bool = True) -> Path | None:
        """Flush everything; with `finalize`, merge the parts into records.parquet."""
        self.flush()
        try:
            self.wait()
        finally:
            self._executor.shutdown(wait=True)
        if not finalize:
            return None
        return finalize_parts(self.run_dir, self.schema)


def finalize_parts(run_dir: Path, schema: pa.Schema) -> Path:
    """Merge parts (plus any earlier records.parquet) into one file, then drop the parts.

    Streams, batch by batch, so memory does not grow with the run (measured: reading every
    part into one table first doubled a 100,000-request run's peak RSS at its very end).
    The first pass copies every row and proves on the way that no job repeats (the
    common case); only if one does (a resume, a crash mid-merge) is the file written
    again with the rows `one_row_per_job` keeps, chosen from job_id and status alone.
    Reading those two columns of every row up front cost +19 MB at 100,000 rows, the
    run's peak (bench_memory)."""
    run_dir = Path(run_dir)
    parts = sorted((run_dir / PARTS_DIR).glob("part-*.parquet"))
    final = run_dir / RECORDS_FILE
    sources = ([final] if final.exists() else []) + parts
    tmp = final.with_name(f".{final.name}.tmp")
    if not _copy_rows(sources, tmp, schema, keep=None):
        _copy_rows(sources, tmp, schema, keep=kept_rows(sources))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    for part in parts:
        part.unlink()
    if (run_dir / PARTS_DIR).exists():
        (run_dir / PARTS_DIR).rmdir()
    return final


def _copy_rows(
    sources: Sequence[Path], dest: Path, schema: pa.Schema, keep: np.ndarray | None
) -> bool:
    """Write the rows of `sources` (only those `keep` marks, or all) to `dest` in row
    groups of ~_ROW_GROUP_ROWS. Copying all, return whether every job id was distinct
    (False may also be a hash collision: the caller then takes the exact way)."""
    hashes: list[np.ndarray] = []
    with pq.ParquetWriter(dest, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        offset = 0
        for src in sources:
            for batch in pq.ParquetFile(src).iter_batches(batch_size=_MERGE_BATCH_ROWS):
                rows = None if keep is None else keep[offset : offset + batch.num_rows]
                offset += batch.num_rows
                if rows is None or rows.any():
                    table = pa.Table.from_batches([batch])
                    table = conform(table).select(schema.names).cast(schema)
                    if rows is None:
                        hashes.append(_id_hashes(table["job_id"]))
                    pending.append(table if rows is None else table.filter(pa.array(rows)))
                if sum(t.num_rows for t in pending) >= _ROW_GROUP_ROWS:
                    writer.write_table(pa.concat_tables(pending))
                    pending = []
        if pending:
            writer.write_table(pa.concat_tables(pending))
    if keep is not None:
        return True
    return _hashes_distinct(np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64))


_MERGE_BATCH_ROWS = 4096
_ROW_GROUP_ROWS = 8192  # row groups of ~8k rows, not one per 500-row part (64k held +115 MB)


def record_files(run_dir: Path | str) -> list[Path]:
    """The Parquet files holding a run's rows, in write order: the final file, then parts.

    After a crash during `resume` (or mid-finalize) both exist and may repeat a job;
    `one_row_per_job` resolves that, in the reader."""
    run_dir = Path(run_dir)
    final = run_dir / RECORDS_FILE
    files = [final] if final.exists() else []
    files += sorted((run_dir / PARTS_DIR).glob("part-*.parquet"))
    if not files:
        raise StoreError(
            f"no records in {run_dir}: expected {RECORDS_FILE} or {PARTS_DIR}/ "
            "(is this a run directory under results/?)"
        )
    return files


def kept_rows(files: Sequence[Path]) -> np.ndarray | None:
    """Which rows of `files` (read in this order) `one_row_per_job` keeps, as a mask over
    all their rows; None when it keeps every row. Decided from job_id and status alone, so
    that a consumer can then stream the other columns (the merge, `reader.iter_columns`).
    A file written before job_id existed has none: its rows are kept."""
    if not files:
        return None
    keys = []
    for path in files:
        f = pq.ParquetFile(path)  # not pq.read_table: no pyarrow.dataset at every run's end
        names = set(f.schema_arrow.names)
        table = f.read(columns=[c for c in _JOB_KEYS if c in names])
        keys.append(
            pa.table({c: table[c] if c in names else pa.nulls(len(table), pa.string())
                      for c in _JOB_KEYS})
        )  # fmt: skip
    key_table = pa.concat_tables(keys, promote_options="permissive")
    rows = _rows_to_keep(key_table)
    if isinstance(rows, range) and len(rows) == key_table.num_rows:
        return None
    keep = np.zeros(key_table.num_rows, dtype=bool)
    keep[rows] = True
    return keep


_JOB_KEYS = ("job_id", "status")


def one_row_per_job(table: pa.Table) -> pa.Table:
    """Each work item once: its first ok row if it has one (a finished answer is never
    replaced), else its latest row. Rows come in write order (final file, then parts).

    A resumed run appends new outcomes for items that had failed; a crash in the middle of
    `finalize_parts` can leave a row in both the final file and a part. Both resolve here.
    """
    if table.num_rows == 0:
        return table
    rows = _rows_to_keep(table.select(["job_id", "status"]))
    return table if len(rows) == table.num_rows else table.take(rows)


def _rows_to_keep(keys: pa.Table) -> list[int] | range:
    """Row numbers (in order) that `one_row_per_job` keeps, from job_id and status alone.

    The common case (no resume, no crash mid-merge) has every job once: Arrow says so
    without turning 100,000 ids into Python objects (bench_memory: +80 MB at 100k)."""
    if _ids_all_distinct(keys["job_id"]):
        return range(keys.num_rows)  # no id twice (rows without an id always stay)
    frame = keys.to_pandas()
    frame["row"] = range(len(frame))
    # A row without a job_id (hand-made tables) cannot be matched to another: it stays.
    anonymous = frame[frame["job_id"].isna()]
    frame = frame[frame["job_id"].notna()]
    ok = frame[frame["status"] == "ok"].drop_duplicates("job_id", keep="first")
    rest = frame[~frame["job_id"].isin(ok["job_id"])].drop_duplicates("job_id", keep="last")
    return sorted([*ok["row"], *rest["row"], *anonymous["row"]])


def _ids_all_distinct(ids: pa.ChunkedArray | pa.Array) -> bool:
    """True when no non-null id repeats, proven from the ids' 64-bit hashes (distinct
    hashes mean distinct ids); False may also be a hash collision, which only sends the
    caller the exact way. Not pc.count_distinct: its hash table of every id stayed in
    Arrow's allocator, +25 MB of RSS at 100,000 ids, twice at the end of a run."""
    return _hashes_distinct(_id_hashes(ids))


def _hashes_distinct(hashes: np.ndarray) -> bool:
    """No hash twice: the ids behind them are distinct (the converse needs the ids)."""
    return len(np.unique(hashes)) == len(hashes)


def _id_hashes(ids: pa.ChunkedArray | pa.Array, batch: int = 4096) -> np.ndarray:
    """Python's hash of each non-null id, a few thousand strings built at a time."""
    chunks = ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]
    return np.fromiter(
        (
            hash(x)
            for chunk in chunks
            for start in range(0, len(chunk), batch)
            for x in chunk.slice(start, batch).to_pylist()
            if x is not None
        ),
        dtype=np.int64,
        count=len(ids) - ids.null_count,
    )


def conform(table: pa.Table) -> pa.Table:
    """Add missing current-schema columns as nulls, keep extra columns, cast known ones."""
    target = record_schema()
    columns, fields = [], []
    for f in target:
        if f.name in table.column_names:
            columns.append(table[f.name].cast(f.type))
        else:
            columns.append(pa.nulls(len(table), f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in target.names:
            columns.append(table[name])
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=table.schema.metadata))


def read_metadata(run_dir: Path | str) -> dict[str, str]:
    """The `lavabench.*` key-value metadata of records.parquet, prefix removed."""
    meta = pq.read_schema(Path(run_dir) / RECORDS_FILE).metadata or {}
    return {
        k.decode()[len(METADATA_PREFIX) :]: v.decode()
        for k, v in meta.items()
        if k.decode().startswith(METADATA_PREFIX)
    }


def write_json_atomic(path: Path, info: Mapping[str, Any]) -> Path:
    """Write JSON via a temp file and rename: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)
    return path


def write_run_json(run_dir: Path, info: Mapping[str, Any]) -> Path:
    return write_json_atomic(Path(run_dir) / RUN_FILE, info)


def read_run_json(run_dir: Path | str) -> dict[str, Any]:
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path} not found: not a lavabench run directory") from None
