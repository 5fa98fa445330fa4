"""The one reader of records: run directories in, Arrow tables (and run.json) out.

Every consumer (summary, report, pick, compare, history, reconcile) reads rows through
here, so analysis/ stays pure (tables in, tables out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lavabench.errors import StoreError
from lavabench.records.store import PARTS_DIR, RECORDS_FILE, read_run_json, record_schema

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
    "itl_p50_s",
    "output_tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "cost_pico_usd",
    "grader",
    "correct",
    "response_cached",
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


def read_columns(run_dir: Path | str, columns: list[str] | None = None) -> pa.Table:
    """Only `columns` of a run's records (final file or crash parts), older schemas tolerated.

    Why not store.read_records: it reads every column, including response text and token
    offsets, which is most of the bytes of a large run.
    """
    run_dir = Path(run_dir)
    wanted = list(ANALYSIS_COLUMNS if columns is None else columns)
    files = [run_dir / RECORDS_FILE] if (run_dir / RECORDS_FILE).exists() else []
    files += sorted((run_dir / PARTS_DIR).glob("part-*.parquet"))
    if not files:
        raise StoreError(f"no records in {run_dir}: expected {RECORDS_FILE} or {PARTS_DIR}/")
    schema = record_schema()
    tables = []
    for path in files:
        present = set(pq.read_schema(path).names)
        table = pq.read_table(path, columns=[c for c in wanted if c in present])
        arrays = [
            table[c].cast(schema.field(c).type)
            if c in present
            else pa.nulls(len(table), schema.field(c).type)
            for c in wanted
        ]
        tables.append(pa.Table.from_arrays(arrays, names=wanted))
    return pa.concat_tables(tables)


def read_runs(run_dirs: Sequence[Path | str] | Path | str) -> Runs:
    """Several runs as one DataFrame (categorical strings) plus their run.json contents."""
    dirs = [run_dirs] if isinstance(run_dirs, str | Path) else list(run_dirs)
    frames, infos = [], []
    for d in dirs:
        table = read_columns(d)
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
