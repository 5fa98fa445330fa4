"""A sweep directory: one `lavabench run -m ...`, read back as one dataset.

Layout of `results/sweep-<stamp>/` (Hydra's sweep dir; subdir set in conf/config.yaml):

    manifest.json                            every planned job and how it ended
    model=<m>/dataset=<d>/job=<n>/           one job = one ordinary run directory:
        records.parquet  run.json  job.json  .hydra/

The job directories are hive partitions, so the whole sweep is one Parquet dataset for
pyarrow, DuckDB or Spark (`model=*/dataset=*/job=*/records.parquet`); the file's own `model`
and `dataset` columns carry the same values. `job=<n>` keeps two jobs of one cell apart
(a sweep over `runner.concurrency`, say).

Each job writes its own `job.json` (at its start and at its end), so parallel jobs never
write one file; the manifest is assembled from them by the process that launched the sweep,
and again by any reader, so a sweep still running or killed reads correctly too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lavabench.errors import StoreError
from lavabench.exit_codes import DECIDED_NO, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_STOPPED, OK
from lavabench.records.store import PARTS_DIR, RECORDS_FILE, write_json_atomic

MANIFEST_FILE = "manifest.json"
JOB_FILE = "job.json"

# How a job ended -> the exit code `lavabench run -m` contributes for it.
EXIT_CODES = {
    "completed": OK,
    "stopped": EXIT_STOPPED,  # 401/402 or the budget: rows kept
    "interrupted": EXIT_INTERRUPTED,
    "failed": EXIT_ERROR,  # a config, dataset or disk error: nothing or part was sent
    "crashed": DECIDED_NO,  # an exception of ours inside the job
    "lost": DECIDED_NO,  # started, never said how it ended (its process died)
    "not started": DECIDED_NO,
    "running": OK,  # only while the sweep is going
    "pending": OK,
}


def is_sweep_dir(path: Path | str) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


def job_dir_has_records(job_dir: Path) -> bool:
    return (job_dir / RECORDS_FILE).is_file() or any((job_dir / PARTS_DIR).glob("part-*.parquet"))


def write_job_status(job_dir: Path, info: Mapping[str, Any]) -> Path:
    return write_json_atomic(Path(job_dir) / JOB_FILE, info)


def read_job_statuses(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every job.json under the sweep, with `dir` relative to the sweep directory."""
    jobs = []
    for path in sorted(Path(sweep_dir).glob(f"**/{JOB_FILE}")):
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a job being written right now: the next read sees it
        info["dir"] = str(path.parent.relative_to(sweep_dir))
        jobs.append(info)
    return jobs


def build_manifest(
    sweep_dir: Path,
    planned: Iterable[Mapping[str, Any]] | None,
    *,
    base: Mapping[str, Any] | None = None,
    finished: bool = False,
) -> dict[str, Any]:
    """Planned jobs merged with what each job wrote of itself, by job number.

    `finished`: the launcher has returned, so a job still saying `running` died without a
    word (`lost`) and a planned job with no job.json never started.
    """
    by_num: dict[int, dict[str, Any]] = {
        int(job["num"]): {**job, "status": "not started"} for job in planned or []
    }
    for job in read_job_statuses(sweep_dir):
        by_num[int(job["num"])] = {**by_num.get(int(job["num"]), {}), **job}
    jobs = [by_num[n] for n in sorted(by_num)]
    if finished:
        for job in jobs:
            if job["status"] == "running":
                job["status"] = "lost"
                job["error"] = "the job's process ended without recording how (killed?)"
    for job in jobs:
        if job["status"] == "not started" and not finished:
            job["status"] = "pending"
        job["exit_code"] = job.get("exit_code", EXIT_CODES.get(job["status"], DECIDED_NO))
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    return {
        **(base or {}),
        "sweep_id": Path(sweep_dir).name,
        "updated_at": datetime.now(UTC).isoformat(),
        "finished": finished,
        "status_counts": counts,
        "jobs": jobs,
    }


def write_manifest(sweep_dir: Path, manifest: Mapping[str, Any]) -> Path:
    return write_json_atomic(Path(sweep_dir) / MANIFEST_FILE, manifest)


def read_manifest(sweep_dir: Path | str) -> dict[str, Any]:
    """The manifest, refreshed from the jobs' own job.json files (a sweep may be running)."""
    sweep_dir = Path(sweep_dir)
    try:
        stored = json.loads((sweep_dir / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"{sweep_dir / MANIFEST_FILE}: cannot read the sweep manifest ({exc})"
        ) from exc
    base = {k: v for k, v in stored.items() if k not in ("jobs", "status_counts", "updated_at")}
    planned = [
        {k: job[k] for k in ("num", "overrides") if k in job} for job in stored.get("jobs", [])
    ]
    return build_manifest(sweep_dir, planned, base=base, finished=bool(stored.get("finished")))


def sweep_exit_code(manifest: Mapping[str, Any]) -> int:
    """The worst job decides: any failure is visible in `lavabench run -m`'s exit code."""
    codes = [int(job.get("exit_code", DECIDED_NO)) for job in manifest.get("jobs", [])]
    return max(codes, default=0)


def expand_run_dirs(paths: Iterable[Path | str]) -> list[Path]:
    """Run directories, with each sweep directory replaced by its jobs that have records.

    This is how `report`, `pick`, `compare` and `history add` read a sweep as one run.
    """
    out: list[Path] = []
    for path in map(Path, paths):
        if not is_sweep_dir(path):
            out.append(path)
            continue
        jobs = [path / job["dir"] for job in read_manifest(path)["jobs"] if job.get("dir")]
        with_rows = [d for d in jobs if job_dir_has_records(d)]
        if not with_rows:
            raise StoreError(
                f"{path}: this sweep has no job with records yet (see {MANIFEST_FILE})"
            )
        out.extend(with_rows)
    return out


def format_manifest(manifest: Mapping[str, Any]) -> str:
    """A few lines for the terminal: one per job, then the counts."""
    lines = [f"sweep {manifest['sweep_id']}:"]
    for job in manifest["jobs"]:
        where = job.get("dir") or " ".join(job.get("overrides", []))
        error = str(job.get("error") or "").splitlines()[0:1]
        note = f"  ({error[0][:100]}{'...' if len(error[0]) > 100 else ''})" if error else ""
        rows = f"{job['rows']} rows" if job.get("rows") is not None else ""
        lines.append(f"  job {job['num']:>3} {job['status']:<12} {rows:>10}  {where}{note}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(manifest["status_counts"].items()))
    lines.append(f"  {counts}")
    return "\n".join(lines)
