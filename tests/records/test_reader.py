"""records/reader.py: the one reader keeps one row per job for every consumer, including the
on-disk state a crash during `resume` leaves (records.parquet plus leftover parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lavabench.analysis.tables import per_model_summary, prepare
from lavabench.cli import main
from lavabench.records.history import add_run, read_history
from lavabench.records.reader import read_all, read_columns, read_runs
from lavabench.records.schema import Record
from lavabench.records.store import PARTS_DIR, RECORDS_FILE, record_schema, records_to_table

PICO = 10**9


def _row(item: int, status: str) -> Record:
    ok = status == "ok"
    return Record(run_id="crashed", job_id=f"m/d/{item}/r0", endpoint="sim", model="m",
                  model_id="id", dataset="d", item_id=str(item), prompt_sha256="h",
                  status=status, ttft_s=0.1 if ok else None, e2e_s=0.2 if ok else None,
                  cost_pico_usd=PICO if ok else None, grader="numeric" if ok else None,
                  correct=ok or None, error_type=None if ok else "unavailable")  # fmt: skip


def crashed_resume(run_dir: Path) -> Path:
    """4 jobs in records.parquet (2 failed); the resume's part retried job 2 (ok now) and,
    as a crash mid-finalize leaves it, repeats job 0; job 3 failed again."""
    run_dir.mkdir(parents=True)
    schema = record_schema()
    first = [_row(0, "ok"), _row(1, "ok"), _row(2, "error"), _row(3, "error")]
    pq.write_table(records_to_table(first, schema), run_dir / RECORDS_FILE)
    (run_dir / PARTS_DIR).mkdir()
    resumed = [_row(2, "ok"), _row(0, "ok"), _row(3, "error")]
    pq.write_table(records_to_table(resumed, schema), run_dir / PARTS_DIR / "part-000001.parquet")
    info = {"run_id": "crashed", "simulated": True, "started_at": "2026-12-01T00:00:00+00:00",
            "dataset": {"name": "d", "sha256": "abc"}, "models": ["m"],
            "prices": {"m": {"input_usd_per_mtok": "1", "output_usd_per_mtok": "1"}}}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


def test_every_reader_keeps_one_row_per_job(tmp_path: Path) -> None:
    run = crashed_resume(tmp_path / "crashed")
    for table in (read_columns(run), read_all(run), read_columns(run, ["model", "correct"])):
        assert table.num_rows == 4
    status = dict(
        zip(*read_all(run).select(["job_id", "status"]).to_pydict().values(), strict=True)
    )
    assert status == {"m/d/0/r0": "ok", "m/d/1/r0": "ok", "m/d/2/r0": "ok", "m/d/3/r0": "error"}
    runs = read_runs([run])
    assert len(runs.rows) == 4 and len(prepare(runs.rows)) == 4
    summary = per_model_summary(read_columns(run)).iloc[0]
    assert (summary["n"], summary["errors"], summary["accuracy"]) == (4, 1, 0.75)
    add_run(run, tmp_path / "history")
    assert len(read_history(tmp_path / "history")) == 4


def test_summary_and_pick_count_each_item_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = crashed_resume(tmp_path / "crashed")
    assert main(["summary", str(run)]) == 0
    out = capsys.readouterr().out
    cells = next(c for ln in out.splitlines() if (c := ln.strip("│ ").split("│"))[0].strip() == "m")
    assert [c.strip() for c in cells[1:3]] == ["4", "1"]  # n, errors
    main(["pick", str(run), "--min-quality", "0.1"])
    assert "accuracy 0.750" in capsys.readouterr().out


def test_unknown_columns_are_skipped_and_missing_ones_are_null(tmp_path: Path) -> None:
    run = crashed_resume(tmp_path / "crashed")
    table = read_columns(run, ["model", "no_such_column_yet", "judge_model"])
    assert table.column_names == ["model", "judge_model"]
    assert table["judge_model"].null_count == 4


def _varied_run(run_dir: Path) -> Path:
    """Two models x 5 items x 2 repeats in two parts, with what the end-of-run table treats
    apart: errors of two kinds, an ungraded answer, an unknown cost, a cached answer, a
    truncated one; plus a crash-left row that repeats a job, and first of all a model whose
    only rows are warm-ups (no row in the table)."""
    rows = []
    for m, model in enumerate(["m-a", "m-b"]):
        for item in range(5):
            for rep in range(2):
                k = len(rows)
                failed = k % 7 == 3
                rows.append(Record(
                    run_id="v", job_id=f"{model}/d/{item}/r{rep}", endpoint="sim", model=model,
                    model_id="id", dataset="d", item_id=str(item), repeat=rep,
                    prompt_sha256="h", status="error" if failed else "ok",
                    error_type=("timeout" if k % 2 else "unavailable") if failed else None,
                    attempts=2 if k % 5 == 0 else 1, ttft_s=None if failed else 0.01 * (k + 1),
                    e2e_s=None if failed else 0.1 + 0.01 * k,
                    output_tokens_per_s=None if failed else 50.0 + k,
                    prompt_tokens=10, completion_tokens=None if failed else 20 + m,
                    max_tokens=64, cost_pico_usd=None if failed or k == 6 else PICO + k,
                    cost_source=None if failed or k == 6 else "server_usage",
                    grader="numeric", correct=None if failed or k == 8 else k % 3 != 0,
                    grade_status=None if failed else "ungraded" if k == 8 else "graded",
                    finish_reason=None if failed else "length" if k == 4 else "stop",
                    truncated=None if failed else k == 4, response_cached=k == 10,
                ))  # fmt: skip
    schema = record_schema()
    (run_dir / PARTS_DIR).mkdir(parents=True)
    warm = [Record(run_id="v", job_id=f"m-w/d/{i}/warmup", endpoint="sim", model="m-w",
                   model_id="id", dataset="d", item_id=str(i), prompt_sha256="h", status="ok",
                   is_warmup=True, ttft_s=0.5, e2e_s=0.6) for i in range(2)]  # fmt: skip
    for i, part in enumerate([warm, rows[:9], rows[9:], rows[2:3]]):
        path = run_dir / PARTS_DIR / f"part-{i + 1:06d}.parquet"
        pq.write_table(records_to_table(part, schema), path)
    return run_dir


def test_the_end_of_run_read_gives_the_table_the_analysis_read_gives(tmp_path: Path) -> None:
    """`lavabench run` prints its table from a narrow read with categorical strings
    (commands/run/info.print_end); the table must be the one the full read gives."""
    from pandas.testing import assert_frame_equal

    from lavabench.analysis.tables import SUMMARY_INPUTS
    from lavabench.commands.run.info import END_OF_RUN_CATEGORIES, end_of_run_summary
    from lavabench.records.reader import ANALYSIS_COLUMNS

    assert set(SUMMARY_INPUTS) <= set(ANALYSIS_COLUMNS)  # what prepare reads, the reader reads
    narrow = SUMMARY_INPUTS
    for run in (_varied_run(tmp_path / "v"), crashed_resume(tmp_path / "crashed")):
        full = per_model_summary(read_columns(run))
        encoded = read_columns(run, narrow, dictionary=END_OF_RUN_CATEGORIES)
        assert encoded.schema.field("item_id").type == pa.dictionary(pa.int32(), pa.string())
        assert_frame_equal(per_model_summary(encoded), full)
        assert_frame_equal(end_of_run_summary(run), full)  # what print_end prints
    assert (
        list(full["model"]) == ["m"] and len(per_model_summary(read_columns(tmp_path / "v"))) == 2
    )


def test_dictionary_columns_read_the_same_values(tmp_path: Path) -> None:
    run = crashed_resume(tmp_path / "crashed")
    cols = ["model", "item_id", "status", "error_type", "judge_model", "ttft_s"]
    plain = read_columns(run, cols)
    encoded = read_columns(run, cols, dictionary=["model", "item_id", "error_type",
                                                   "judge_model", "ttft_s"])  # fmt: skip
    assert encoded.schema.field("ttft_s").type == pa.float64()  # not a string: unchanged
    assert encoded.schema.field("status").type == pa.string()  # not asked for
    for c in cols:
        assert encoded[c].to_pylist() == plain[c].to_pylist(), c


def test_dictionary_read_gives_the_frame_of_a_plain_read(tmp_path: Path) -> None:
    """read_runs reads its string columns dictionary-encoded (no string per row built): the
    frame equals the plain read's, categories in the same order, across a final file and a
    part whose dictionaries differ (the part has a status and error_type the file lacks)."""
    import pandas as pd

    run = crashed_resume(tmp_path / "run")
    part = records_to_table([_row(7, "timeout")], record_schema())
    pq.write_table(part, run / PARTS_DIR / "part-000002.parquet")
    encoded = read_runs([run]).rows
    plain = read_columns(run).to_pandas(
        categories=["run_id", "model", "dataset", "item_id", "status", "error_type", "grader"]
    )
    assert isinstance(encoded["status"].dtype, pd.CategoricalDtype)
    assert list(encoded["item_id"]) == ["0", "1", "2", "3", "7"]  # one row per job kept
    pd.testing.assert_frame_equal(encoded.drop(columns=["dataset_sha256"]), plain)
    for c in ("status", "item_id", "error_type"):
        assert list(encoded[c].cat.categories) == list(plain[c].cat.categories), c


def test_the_analysis_read_keeps_the_first_answer_time(tmp_path: Path) -> None:
    """read_runs left first_answer_s out: prepare saw it missing, an answer-latency SLO counted
    every request a miss and `pick --max-p90-first-answer` rejected every model (bound inf)."""
    run_dir = tmp_path / "run"
    (run_dir / PARTS_DIR).mkdir(parents=True)
    rows = [_row(i, "ok") for i in range(3)]
    for i, r in enumerate(rows):
        r.first_answer_s = 0.3 + i / 10
    pq.write_table(records_to_table(rows, record_schema()), run_dir / RECORDS_FILE)
    prepared = prepare(read_runs([run_dir]).rows)
    assert prepared["_first_answer"].tolist() == pytest.approx([0.3, 0.4, 0.5])


def test_iter_columns_streams_the_rows_read_all_keeps(tmp_path: Path) -> None:
    """The end-of-run table reads a run a row group at a time: the batches hold the rows
    (and only those) the whole read keeps, in its order, across files and a repeated job."""
    from lavabench.records.reader import iter_columns

    run = _varied_run(tmp_path / "v")
    cols = ["job_id", "model", "item_id", "status", "ttft_s", "judge_model"]
    batches = list(iter_columns(run, cols, dictionary=["model", "item_id", "judge_model"]))
    assert len(batches) == 4  # one per part: never the whole run at once
    assert batches[0].schema.field("model").type == pa.dictionary(pa.int32(), pa.string())
    streamed = pa.concat_tables(batches).to_pylist()
    assert streamed == read_all(run).select(cols).to_pylist()
    assert len(streamed) == 2 + 20  # warm-ups + 2 models x 5 items x 2 repeats, once each


def test_prepared_batches_keep_their_categories(tmp_path: Path) -> None:
    """Batches whose categories differ (one all-null) join as one categorical column, not
    one Python object per row, and give the frame `prepare` gives the whole table."""
    import pandas as pd
    from pandas.testing import assert_frame_equal

    from lavabench.analysis.tables import join_columns
    from lavabench.records.reader import iter_columns

    run = _varied_run(tmp_path / "v")
    cols = ["model", "dataset", "item_id", "is_warmup", "status", "error_type", "ttft_s",
            "e2e_s", "correct", "grade_status", "cost_pico_usd"]  # fmt: skip
    cats = ["model", "dataset", "item_id", "error_type"]
    frames = [prepare(b.to_pandas()) for b in iter_columns(run, cols, dictionary=cats)]
    assert len({f["error_type"].cat.categories.dtype for f in frames}) == 2  # one all-null
    joined = join_columns({c: [f[c].array for f in frames] for c in frames[0].columns})
    for c in ("model", "item_id", "error_type"):
        assert isinstance(joined[c].dtype, pd.CategoricalDtype), c
    whole = prepare(read_columns(run, cols, dictionary=cats).to_pandas())
    assert_frame_equal(joined, whole.reset_index(drop=True), check_categorical=False)
