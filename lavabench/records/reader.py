"""The one reader of records: run directories in, Arrow tables (and run.json) out.

Every consumer (summary, report, pick, compare, history, reconcile, resume) reads rows
through `read_columns` / `read_all` here, and both keep one row per job
(`store.one_row_per_job`): after a crash during `resume` a run directory holds
records.parquet *and* leftover parts that may repeat a job, and no consumer may count an
item twice. analysis/ stays pure (tables in, tables out).

Columns a consumer asks for that this version's schema does not know are left out (so a
consumer written for a newer column works on older code and older files); columns the
schema knows but a file lacks (older schema versions) come back as nulls."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from lavabench.errors import StoreError
from lavabench.records.store import (
    conform,
    kept_rows,
    one_row_per_job,
    read_run_json,
    record_files,
    record_schema,
)

if TYPE_CHECKING:  # pandas waits for a reader that returns a frame: a run's start needs none
    import pandas as pd

# The columns the report and pick need: reading only these keeps 1M rows well under 1 GB.
ANALYSIS_COLUMNS = [
    "run_id",
    "model",
    "dataset",
    "item_id",
    "repeat",
    "is_warmup",
    "status",
    "error_type",
    "attempts",
    "ttft_s",
    "e2e_s",
    "first_answer_s",  # the answer's first token: SLOs and pick --max-p90-first-answer
    "itl_p50_s",
    "output_tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "cost_pico_usd",
    "grader",
    "correct",
    "format_ok",  # schema 4+: the grader's format check (unparsed = false)
    "response_cached",
    "finish_reason",
    "max_tokens",
    "judge_model",
    "judge_cost_pico_usd",
    "grade_error",
    # provenance (schema 4+); absent from older schemas and files: see the module docstring
    "grade_status",
    "ungraded_reason",
    "usage_source",
    "cost_source",
    "truncated",
    "retry_cost_pico_usd",
    # workloads and time slices (schema 6+): cache state, sessions, send times
    "cached_tokens",
    "first_send_ns",
    "workload_kind",
    "target_prompt_tokens",
    "session_id",
    "turn_index",
]
# Low-cardinality strings become pandas categoricals (a few bytes per row instead of ~60).
_DICTIONARY_COLUMNS = ["run_id", "model", "dataset", "item_id", "status", "error_type", "grader"]


@dataclass(frozen=True)
class Runs:
    """Rows of one or more runs plus what their run.json files say (prices, simulated)."""

    rows: pd.DataFrame
    infos: list[dict[str, Any]]

    @property
    def simulated(self) -> bool:
        """True when any run went to the simulator: every figure must say so."""
        return any(bool(i.get("simulated")) for i in self.infos)

    def prices(self) -> dict[str, tuple[Decimal, Decimal]]:
        """USD per 1M tokens (input, output) per model; the first run that lists a model wins."""
        out: dict[str, tuple[Decimal, Decimal]] = {}
        for info in self.infos:
            for model, p in (info.get("prices") or {}).items():
                if model not in out and p.get("input_usd_per_mtok") is not None:
                    out[model] = (
                        Decimal(str(p["input_usd_per_mtok"])),
                        Decimal(str(p["output_usd_per_mtok"])),
                    )
        return out


def read_columns(
    run_dir: Path | str, columns: list[str] | None = None, *, dictionary: Sequence[str] = ()
) -> pa.Table:
    """Only `columns` (default ANALYSIS_COLUMNS) of a run, one row per job.

    Why not every column: response text and token offsets are most of the bytes of a large
    run. Columns unknown to this schema are skipped; known ones missing from a file are null.
    The string columns named in `dictionary` come back dictionary-encoded (pandas:
    categorical), decoded from Parquet as such: a few bytes a row, not a string each.
    """
    batches = list(iter_columns(run_dir, columns, dictionary=dictionary))
    if not batches:
        wanted, types = _selection(columns, dictionary)
        return pa.schema([(c, types[c]) for c in wanted]).empty_table()
    return pa.concat_tables(batches)


def iter_columns(
    run_dir: Path | str, columns: list[str] | None = None, *, dictionary: Sequence[str] = ()
) -> Iterator[pa.Table]:
    """`read_columns`, one Parquet row group at a time (the same rows, in the same order).

    For a consumer that reduces rows as they come (the end-of-run table): it never holds
    the whole run's columns, nor their decode buffers (bench_memory: +70 MB at 100,000
    rows when read whole and then turned into pandas). Which rows stay (one per job) is
    decided first, from the job_id and status columns of every file."""
    wanted, types = _selection(columns, dictionary)
    encoded = sorted(c for c in wanted if pa.types.is_dictionary(types[c]))
    files = record_files(run_dir)
    keep = kept_rows(files)
    offset = 0
    for path in files:
        f = pq.ParquetFile(path, read_dictionary=encoded)
        present = set(f.schema_arrow.names)
        selected = [c for c in wanted if c in present]
        for i in range(f.num_row_groups):
            group = f.read_row_group(i, columns=selected)
            n = group.num_rows
            arrays = [
                group[c].cast(types[c]) if c in present else pa.nulls(n, types[c]) for c in wanted
            ]
            batch = pa.Table.from_arrays(arrays, names=wanted)
            if keep is not None:
                batch = batch.filter(pa.array(keep[offset : offset + n]))
            offset += n
            yield batch


def _selection(
    columns: list[str] | None, dictionary: Sequence[str]
) -> tuple[list[str], dict[str, pa.DataType]]:
    """The columns of `columns` this schema knows, and the type each is read as."""
    schema = record_schema()
    wanted = [c for c in (ANALYSIS_COLUMNS if columns is None else columns) if c in schema.names]
    encoded = {c for c in dictionary if c in wanted and schema.field(c).type == pa.string()}
    types = {
        c: pa.dictionary(pa.int32(), pa.string()) if c in encoded else schema.field(c).type
        for c in wanted
    }
    return wanted, types


def read_all(run_dir: Path | str) -> pa.Table:
    """Every column of a run (current schema, older files filled with nulls, columns of a
    newer writer kept), one row per job."""
    tables = [pq.read_table(path) for path in record_files(run_dir)]
    return one_row_per_job(conform(pa.concat_tables(tables, promote_options="permissive")))


def read_runs(run_dirs: Sequence[Path | str] | Path | str) -> Runs:
    """Several runs as one DataFrame (categorical strings) plus their run.json contents."""
    import pandas as pd

    dirs = [run_dirs] if isinstance(run_dirs, str | Path) else list(run_dirs)
    frames, infos = [], []
    for d in dirs:
        # strings as Parquet stores them: no string per row built, categoricals straight
        # away (1M rows: ~0.35-0.7 CPU-s less, issue 21)
        table = read_columns(d, dictionary=_DICTIONARY_COLUMNS)
        try:
            info = read_run_json(d)
        except StoreError:
            info = {}
        infos.append(info)
        frame = table.to_pandas(
            categories=[c for c in _DICTIONARY_COLUMNS if c in table.column_names]
        )
        if frame["run_id"].isna().all():
            frame["run_id"] = str(info.get("run_id", Path(d).name))
        frame["dataset_sha256"] = str((info.get("dataset") or {}).get("sha256", ""))
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    for c in [*_DICTIONARY_COLUMNS, "dataset_sha256"]:
        if c in rows and not isinstance(rows[c].dtype, pd.CategoricalDtype):
            rows[c] = rows[c].astype("category")
    return Runs(rows=rows, infos=infos)


# The name resume, notebooks and tests know: the same function, one row per job.
read_records = read_all
