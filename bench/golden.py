"""Golden outputs: record what the `lavabench` CLI does on a seeded scenario, and diff two records.

    python bench/golden.py record OUT_DIR [--lavabench CMD] [--repo DIR] [--keep-work]
    python bench/golden.py diff DIR_A DIR_B

`record` runs a small seeded scenario against the built-in simulator (two runs of two models and a
two-job sweep, then report, pick, compare, history, summary, dry-run, models and a few error
paths) and writes every command's exit code and output, the records, run.json, the sweep
manifest and the report's summary files into OUT_DIR, normalized so that two records of the same
code are byte-identical. `diff` compares two such directories file by file (JSON field by field,
records row by row by job_id, text as a unified diff) and exits 1 on any difference. See
bench/golden.md for what is normalized and why.

lavabench is reached only through its command line (a subprocess), never imported, so this script
works unchanged whatever the package's internal layout. Stdlib + pyarrow only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MODELS = "[gpt-oss-20b,glm-5]"
LIMIT = "30"
COMMAND_TIMEOUT_S = 300
TIMEOUT_EXIT = -999  # recorded as the exit code of a command killed at COMMAND_TIMEOUT_S

# --- what legitimately varies between two runs of the same seeded scenario ------------------
#
# Record columns that are client-side clock readings (docs/records.md: "timestamp_us_utc",
# every `*_ns` stamp since the run's origin, every `*_s` latency / wait / duration measured by
# the client). Their values are replaced by a placeholder ("<t>"); null stays null and inf
# stays "inf" (both are decided by the code, not the clock), and a list becomes its length.
TIMING_COLUMNS = frozenset(
    {
        "started_at",  # wall clock
        "first_send_ns",
        "send_ns",
        "headers_ns",
        "first_token_ns",
        "last_token_ns",
        "end_ns",
        "done_ns",  # the client's [DONE] stamp
        "intended_send_ns",
        "token_offsets_ns",  # list: its length (chunks with text) is kept
        "headers_s",
        "ttft_s",
        "first_reasoning_s",
        "first_answer_s",
        "e2e_s",
        "e2e_close_s",  # the stream's close, beside e2e_s at [DONE]
        "itl_mean_s",
        "itl_p50_s",
        "itl_p99_s",
        "itl_max_s",
        "output_tokens_per_s",
        "dispatch_late_s",
        "slot_wait_s",
        "rate_wait_s",
        "overhead_s",  # ttft_s - server_ttft_s: a client measurement
        "backoff_s",  # full-jitter sleeps (random)
        "retry_waits_s",  # list
        "failed_attempts_s",  # list
    }
)
# Kept on purpose: `server_ttft_s` / `server_processing_s` are what the server *reports*
# (perf_metrics), not a client measurement; the simulator plans them from a hash of its seed,
# so they are deterministic here and catch a change in parsing or in the simulator's model.

# Ids the simulator draws from os.urandom + the wall clock + arrival order: replaced by their
# shape, so a change of format still shows.
RANDOM_IDS = {
    "lava_request_id": (re.compile(r"^req_[0-9A-HJKMNP-TV-Z]{26}$"), "<req_ULID>"),
    "response_id": (re.compile(r"^chatcmpl-[0-9a-f]{24}$"), "<chatcmpl-id>"),
}
ID_PATTERNS = [(rx.pattern.strip("^$"), ph) for rx, ph in RANDOM_IDS.values()]

# compare / report metrics computed from client timings.
TIMING_METRICS = frozenset(
    {"ttft_p50", "ttft_p90", "ttft_p99", "e2e_p50", "e2e_p90", "e2e_p99", "itl_p50"}
    | {"output_tokens_per_s"}
)
# compare row fields that follow from a timing metric's samples.
COMPARE_TIMING_FIELDS = (
    "baseline",
    "current",
    "change",
    "mde",
    "p",
    "p_adjusted",
    "p_improve",
    "se",
    "status",
)
# summary.json keys that are client timings (ttft_*, e2e_*, itl_*, tok_s_*, *_upper_s bounds).
SUMMARY_TIMING_KEY = re.compile(r"^(ttft|e2e|itl|tok_s|output_tokens_per_s)|_upper_s$")
# Markdown / rich table headers of timing columns.
TIMING_HEADER = re.compile(r"TTFT|E2E|ITL|tok/s", re.I)

# The run's self-check (health verdict) judges the *machine*: on a busy one a run turns
# `suspect` (seen: dispatch 12 ms late at load 4 on 2 cores). The scenario sets every
# threshold out of reach, so the verdict code still runs and prints, but its outcome no longer
# depends on other work on the machine (suspect must stay <= invalid, both > 0).
HEALTH_OFF = [
    *("health.lag_p99_suspect_ms=1e6", "health.lag_p99_invalid_ms=2e6"),
    *("health.late_mean_suspect_ms=1e6", "health.late_mean_invalid_ms=2e6"),
    *("health.cpu_suspect=1e6", "health.cpu_invalid=2e6"),
    "health.in_flight_ratio_suspect=0",
]

PLACEHOLDER = "<t>"


def mask(value: Any) -> Any:
    """A measured value -> placeholder; None / nan -> None; +-inf kept (a failure, not a clock)."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return f"<{len(value)} values>"
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
    if isinstance(value, str) and value in ("inf", "-inf", "nan", "-", ""):
        return value
    return PLACEHOLDER


# --- text normalization ---------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ISO_TS = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?![\d])"
)
PORT = re.compile(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0|\[::1\]):\d{2,5}\b")
MEASUREMENT = re.compile(
    r"\(event-loop lag p99 [\d.]+ ms, client CPU \d+%, in flight [\d.]+ mean / \d+ max of (\d+)\)"
)
CAUSE_LINE = re.compile(r"^(.*?\s\s(?:suspect|invalid): )(.*)$")  # also behind pick's "RUN_DIR:"
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
# pick: a model's p90 upper bound ("TTFT p90 upper bound 0.701 s >= 0.3 s", "TTFT p90 <= 0.235 s");
# the limit after it is the configured one and stays.
PICK_LATENCY = re.compile(r"\b((?:TTFT|E2E) p90(?: upper bound)?(?: <=)?) [\d.]+(?:e[+-]?\d+)? s")
NOISE_LINES = re.compile(r"^Matplotlib is building the font cache")
BOX_RULE = re.compile(r"^[\s━─┏┓┗┛┡┩└┘┳┻╇╈┼┬┴╍═]+$")


class Normalizer:
    """Replaces what varies from run to run of the same code (paths, clocks, ports, ids)."""

    def __init__(self, work: Path, repo: Path, extra_paths: dict[str, str], dates: set[str]):
        subs: dict[str, str] = {}
        for root, name in [(work, "<WORK>"), (repo, "<REPO>")]:
            for form in {str(root), str(root.resolve())}:
                subs[form] = name
        for extra, name in extra_paths.items():
            subs.setdefault(extra, name)
        self._paths = sorted(subs.items(), key=lambda kv: -len(kv[0]))
        self._dates = sorted(dates)
        compact = {d.replace("-", "") for d in dates}
        days = "|".join(sorted(compact))
        self._stamp = re.compile(rf"\b(?:{days})-\d{{6}}(?:-\d{{6}})?\b")

    def string(self, s: str) -> str:
        """One string value (also inside JSON): paths, timestamps, dates, ports, random ids."""
        s = ANSI.sub("", s)
        for path, name in self._paths:
            s = s.replace(path, name)
        s = ISO_TS.sub("<TIMESTAMP>", s)
        s = self._stamp.sub("<STAMP>", s)
        for d in self._dates:
            s = s.replace(d, "<DATE>")
        s = PORT.sub(r"\1:<PORT>", s)
        for pattern, placeholder in ID_PATTERNS:
            s = re.sub(pattern, placeholder, s)
        return s

    def text(self, s: str) -> str:
        """Command output or a text file: string() + the run's measured numbers."""
        s = self.string(s.replace("\r\n", "\n"))
        lines = [ln for ln in s.split("\n") if not NOISE_LINES.match(ln)]
        lines = normalize_tables(lines)
        out = []
        for ln in lines:
            ln = MEASUREMENT.sub(
                r"(event-loop lag p99 <ms> ms, client CPU <pct>%, in flight <n> mean / <n> max of \1)",
                ln,
            )
            m = CAUSE_LINE.match(ln)
            if m:  # a verdict cause: its numbers are the measurement's
                ln = m.group(1) + NUMBER.sub("<n>", m.group(2))
            ln = PICK_LATENCY.sub(r"\1 <s> s", ln)
            out.append(ln.rstrip())
        return "\n".join(out)

    def json(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, float) and not math.isfinite(value):
            return repr(value)
        return value


def _cells(line: str) -> list[str] | None:
    """The cells of a markdown (`| a | b |`) or rich (`│ a │ b │`, `┃ a ┃ b ┃`) table row."""
    stripped = line.strip()
    for sep in ("|", "│", "┃"):
        if stripped.startswith(sep) and stripped.endswith(sep) and len(stripped) > 1:
            return [c.strip() for c in stripped[1:-1].split(sep)]
    return None


def normalize_tables(lines: list[str]) -> list[str]:
    """Tables as `| a | b |` rows (rich's column widths follow the values) with timing cells
    masked: columns whose header names a latency, and in compare's table every timing metric's
    measured cells and every row's multiplicity-adjusted p (its family holds timing rows)."""
    out: list[str] = []
    header: list[str] | None = None
    for i, line in enumerate(lines):
        if BOX_RULE.match(line) and line.strip():
            out.append("<rule>")
            continue
        cells = _cells(line)
        if cells is None:
            header = None
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            # rich centres or pads a table's title to the table's width
            out.append(line.strip() if nxt.lstrip().startswith("┏") else line)
            continue
        if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
            out.append("|" + "|".join("---" for _ in cells) + "|")
            continue
        if header is None:
            header = cells
            out.append("| " + " | ".join(cells) + " |")
            continue
        row = dict(zip(header, cells, strict=False))
        masked = []
        timing_row = row.get("metric") in TIMING_METRICS
        for name, cell in zip(header, cells, strict=False):
            if (
                TIMING_HEADER.search(name)
                or name == "p (adj)"
                or (timing_row and name in ("baseline", "current", "change", "MDE", "status"))
            ):
                cell = mask(cell)
            masked.append(cell)
        masked += cells[len(header) :]
        out.append("| " + " | ".join(masked) + " |")
    return out


# --- record ------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, out: Path, lavabench: list[str], repo: Path, work: Path) -> None:
        self.out = out
        self.lavabench = lavabench
        self.repo = repo
        self.work = work
        self.results = work / "results"
        self.history = work / "history"
        today = datetime.now(UTC).date()
        local = datetime.now().date()
        dates = {str(d + timedelta(days=k)) for d in (today, local) for k in (-1, 0, 1)}
        extra = {sys.prefix: "<VENV>", str(Path(sys.executable).parent): "<VENV>/bin"}
        self.norm = Normalizer(work, repo, extra, dates)
        self.exit_codes: dict[str, int] = {}
        self.unexpected: list[str] = []
        self.timings: dict[str, float] = {}
        self.env = dict(os.environ)
        for key in ("FORCE_COLOR", "CLICOLOR_FORCE", "HYDRA_FULL_ERROR", "PYTHONWARNINGS"):
            self.env.pop(key, None)
        self.env.update(
            {"COLUMNS": "132", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb", "TZ": "UTC"}
        )
        self.env["PYTHONIOENCODING"] = "utf-8"

    def write(self, rel: str, content: str) -> None:
        path = self.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if content.endswith("\n") else content + "\n", encoding="utf-8")

    def write_json(self, rel: str, value: Any) -> None:
        self.write(rel, json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False))

    def cli(self, step: Step) -> int:
        """Run `lavabench ARGS` and record exit code, stdout and stderr (normalized)."""
        number, name, args, expect = step
        argv = [*self.lavabench, *args]
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                cwd=self.work,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=COMMAND_TIMEOUT_S,
            )
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code = TIMEOUT_EXIT
            stdout = _decode(exc.stdout)
            stderr = _decode(exc.stderr) + f"\n<killed after {COMMAND_TIMEOUT_S} s>"
        self.timings[name] = round(time.monotonic() - t0, 2)
        self.exit_codes[name] = code
        shown = self.norm.string(" ".join(shlex.quote(a) for a in args))
        body = (
            f"$ lavabench {shown}\nexit: {code}\n"
            f"--- stdout ---\n{self.norm.text(stdout)}\n"
            f"--- stderr ---\n{self.norm.text(stderr)}\n"
        )
        self.write(f"commands/{number:02d}-{name}.txt", body)
        status = ""
        if code != expect:
            status = f"  (UNEXPECTED: this scenario expects {expect})"
            self.unexpected.append(name)
        print(f"  {name:24s} exit {code:3d}  {self.timings[name]:5.1f} s{status}", flush=True)
        return code

    # --- artefacts ---

    def run_dir(self, run_dir: Path, rel: str) -> None:
        """A run directory's records, run.json, log and Hydra config (a sweep job's too)."""
        self.records(run_dir, rel)
        self.run_json(run_dir, rel)
        self.text_file(run_dir / "lavabench.log", f"{rel}/lavabench.log")
        for name in ("config.yaml", "overrides.yaml"):
            self.text_file(run_dir / ".hydra" / name, f"{rel}/hydra-{name}")
        if (run_dir / "job.json").exists():  # a sweep job
            job = json.loads((run_dir / "job.json").read_text())
            self.write_json(f"{rel}/job.json", self.norm.json(mask_process(job)))

    def records(self, run_dir: Path, rel: str) -> None:
        import pyarrow.parquet as pq

        path = run_dir / "records.parquet"
        if not path.exists():
            self.write(f"{rel}/records.jsonl", "<missing records.parquet>")
            return
        table = pq.read_table(path)
        schema = table.schema.remove_metadata()
        self.write(
            f"{rel}/records.schema.txt",
            "\n".join(f"{f.name}: {f.type}{'' if f.nullable else ' not null'}" for f in schema),
        )
        rows = []
        for row in table.to_pylist():
            out: dict[str, Any] = {}
            for key, value in row.items():
                if key in TIMING_COLUMNS:
                    out[key] = mask(value)
                elif key in RANDOM_IDS and isinstance(value, str):
                    rx, placeholder = RANDOM_IDS[key]
                    out[key] = placeholder if rx.match(value) else value
                else:
                    out[key] = self.norm.json(_plain(value))
            rows.append(out)
        rows.sort(key=lambda r: (str(r.get("job_id")), json.dumps(r, sort_keys=True, default=str)))
        self.write(
            f"{rel}/records.jsonl",
            "\n".join(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows),
        )
        meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
        parquet_meta: dict[str, Any] = {"keys": sorted(meta)}
        for key, value in sorted(meta.items()):
            if key == "ARROW:schema":
                continue
            try:
                parsed = json.loads(value)
            except ValueError:
                parquet_meta[key] = self.norm.string(value)
                continue
            if key == "lavabench.health":
                parquet_meta[key] = mask_health(parsed)
            elif isinstance(parsed, dict):
                parquet_meta[key] = self.norm.json(normalize_run_json(parsed))
            else:
                parquet_meta[key] = parsed
        self.write_json(f"{rel}/parquet_metadata.json", parquet_meta)

    def run_json(self, run_dir: Path, rel: str) -> None:
        path = run_dir / "run.json"
        if not path.exists():
            self.write(f"{rel}/run.json", "<missing run.json>")
            return
        data = json.loads(path.read_text())
        self.write_json(f"{rel}/run.json", self.norm.json(normalize_run_json(data)))

    def check_repo(self, run_json: Path) -> None:
        """<REPO> must be the project that ran: else its paths would differ between records."""
        try:
            used = json.loads(run_json.read_text())["dataset"]["path"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        roots = {str(self.repo), str(self.repo.resolve())}
        if not any(str(used).startswith(root + os.sep) for root in roots):
            print(
                f"golden: warning: the run read its dataset from {used}, outside --repo "
                f"{self.repo}; pass --repo for the project whose lavabench runs",
                file=sys.stderr,
            )

    def sweep(self, sweep_dir: Path, rel: str) -> None:
        """A sweep: its manifest, and each job as a run directory (hive partitions)."""
        path = sweep_dir / "manifest.json"
        if path.exists():
            manifest = json.loads(path.read_text())
            self.write_json(f"{rel}/manifest.json", self.norm.json(mask_process(manifest)))
        else:
            self.write(f"{rel}/manifest.json", "<missing manifest.json>")
        for job in sorted(sweep_dir.glob("model=*/dataset=*/job=*")):
            self.run_dir(job, f"{rel}/{job.relative_to(sweep_dir).as_posix()}")

    def text_file(self, src: Path, rel: str) -> None:
        content = src.read_text(encoding="utf-8") if src.exists() else f"<missing {src.name}>"
        self.write(rel, self.norm.text(content))

    def report(self, run_id: str) -> None:
        report = self.results / run_id / "report"
        self.text_file(report / "summary.md", "report/summary.md")
        path = report / "summary.json"
        if path.exists():
            summary = mask_summary_json(json.loads(path.read_text()))
            self.write_json("report/summary.json", self.norm.json(summary))
        else:
            self.write("report/summary.json", "<missing summary.json>")

    def compare_json(self, path: Path, rel: str) -> None:
        if not path.exists():
            self.write(rel, f"<missing {path.name}>")
            return
        data = json.loads(path.read_text())
        for row in data.get("rows", []):
            if row.get("metric") in TIMING_METRICS:
                for key in COMPARE_TIMING_FIELDS:
                    if key in row:
                        row[key] = mask(row[key])
            elif "p_adjusted" in row:  # Holm/BH over a family that holds the timing rows
                row["p_adjusted"] = mask(row["p_adjusted"])
        self.write_json(rel, self.norm.json(data))

    def tree(self, root: Path, rel: str) -> None:
        """Every file and directory under root (names only: sizes and mtimes vary)."""
        import pyarrow.parquet as pq

        lines = []
        for path in sorted(root.rglob("*")):
            name = path.relative_to(root).as_posix() + ("/" if path.is_dir() else "")
            if path.suffix == ".parquet" and path.is_file():
                name += f"  rows={pq.read_metadata(path).num_rows}"
            lines.append(self.norm.string(name))
        self.write(rel, "\n".join(lines) or "<empty>")


def _decode(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode("utf-8", "replace")


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


# health numbers that are configuration or counts, not measurements
HEALTH_KEPT = frozenset({"sample_interval_ms", "concurrency", "requests"})


def mask_health(health: Any) -> Any:
    """run.json `health`: every measured number masked, its structure and verdict kept."""
    if not isinstance(health, dict):
        return mask(health)
    out: dict[str, Any] = {}
    for key, value in health.items():
        if key == "series":
            out[key] = "<series>"  # one point per second of the run: its length is a duration
        elif key == "verdict" and isinstance(value, dict):
            out[key] = {
                "status": value.get("status"),
                "causes": [
                    {
                        k: (NUMBER.sub("<n>", v) if isinstance(v, str) else mask(v))
                        for k, v in c.items()
                    }
                    if isinstance(c, dict)
                    else NUMBER.sub("<n>", str(c))
                    for c in value.get("causes", [])
                ],
                **{k: v for k, v in value.items() if k not in ("status", "causes")},
            }
        elif isinstance(value, dict):
            out[key] = mask_health(value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            # configured values (interval, concurrency) are kept; measured ones masked
            out[key] = value if key in HEALTH_KEPT else mask(value)
        else:
            out[key] = value
    return out


PROCESS_KEYS = frozenset({"host", "hostname", "pid"})


def mask_process(data: Any) -> Any:
    """The machine's name and process ids (manifest, job.json, run.json) -> placeholders."""
    if isinstance(data, dict):
        return {
            k: (f"<{k}>" if k in PROCESS_KEYS and v is not None else mask_process(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [mask_process(v) for v in data]
    return data


def normalize_run_json(data: dict[str, Any]) -> dict[str, Any]:
    """run.json (or the Parquet `lavabench.run` metadata) without clocks, durations and health
    numbers; the verdict and every count stay."""
    data = dict(data)
    for key in ("started_at", "finished_at"):
        if data.get(key) is not None:
            data[key] = "<TIMESTAMP>"
    for key in ("elapsed_s", "clock_origin_ns"):
        if key in data:
            data[key] = mask(data[key])
    data = mask_process(data)
    if "health" in data:
        data["health"] = mask_health(data["health"])
    if isinstance(data.get("workers"), list):
        data["workers"] = [mask_health(w) for w in data["workers"]]
    return data


def mask_summary_json(data: Any) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key == "generated_at":
                out[key] = "<TIMESTAMP>"
            elif SUMMARY_TIMING_KEY.search(key) and not isinstance(value, dict | list):
                out[key] = mask(value)
            else:
                out[key] = mask_summary_json(value)
        return out
    if isinstance(data, list):
        return [mask_summary_json(v) for v in data]
    return data


Step = tuple[int, str, tuple[str, ...], int]  # number, name, lavabench args, expected exit


def scenario(
    R: str, H: str, work: str, common: list[str], sweep: list[str]
) -> list[list[list[Step]]]:
    """Phases run one after another; in a phase, chains run at once, each chain in order.

    The two benchmark runs have a phase each with nothing beside them (the client's own
    measurement, and so its verdict, needs the machine to itself); the read-only commands run
    two or more at once, as each pays ~3 s of Python start-up and imports.
    """
    phases: list[list[list[tuple[str, tuple[str, ...], int]]]] = [
        [  # needs no run
            [("version", ("--version",), 0), ("help", ("--help",), 0)],
            [("models", ("models",), 0), ("err-unknown-command", ("bogus",), 2)],
            [("dry-run", ("run", "--dry-run", *common, "run_id=dry", "sim.seed=1"), 0)],
            [
                (
                    "err-unknown-model",
                    ("run", "model=no-such-model", f"results_dir={R}", "run_id=bad-model"),
                    2,
                ),
                ("err-typo-key", ("run", "runner.concurency=4", f"results_dir={R}"), 2),
            ],
            [
                ("err-resume-missing", ("run", "resume=no-such-run", f"results_dir={R}"), 2),
                ("err-summary-missing", ("summary", f"{R}/no-such-run"), 2),
            ],
        ],
        [[("run-1", ("run", *common, "run_id=run-1", "sim.seed=1"), 0)]],
        [[("run-2", ("run", *common, "run_id=run-2", "sim.seed=2"), 0)]],
        [[("sweep", ("run", "-m", *sweep, f"hydra.sweep.dir={R}/sweep", "sim.seed=3"), 0)]],
        [  # read the two runs
            [("report-run-1", ("report", f"{R}/run-1"), 0)],
            [
                ("summary-run-1", ("summary", f"{R}/run-1"), 0),
                ("summary-sweep", ("summary", f"{R}/sweep"), 0),
                ("pick-sweep", ("pick", f"{R}/sweep", "--min-quality", "0.3"), 0),
                ("pick-run-1", ("pick", f"{R}/run-1", "--min-quality", "0.4"), 0),
                ("pick-none", ("pick", f"{R}/run-1", "--min-quality", "0.9"), 1),
            ],
            [
                (
                    "pick-latency",
                    ("pick", f"{R}/run-1", "--min-quality", "0.4", "--max-p90-ttft", "0.3"),
                    0,
                ),
                (
                    "pick-dataset-2runs",
                    (
                        "pick",
                        f"{R}/run-1",
                        f"{R}/run-2",
                        "--min-quality",
                        "0.5",
                        "--dataset",
                        "demo-arith",
                    ),
                    0,
                ),
                ("err-pick-no-quality", ("pick", f"{R}/run-1"), 2),
                (
                    "compare-run",
                    (
                        *("compare", "--baseline", f"{R}/run-1", "--current", f"{R}/run-2"),
                        *("--json", f"{work}/compare.json", "--markdown", f"{work}/compare.md"),
                    ),
                    0,
                ),
            ],
            [  # the history, in order
                ("history-add-run-1", ("history", "add", f"{R}/run-1", "--dir", H), 0),
                ("history-add-run-1-again", ("history", "add", f"{R}/run-1", "--dir", H), 0),
                (
                    "compare-history",
                    (
                        *("compare", "--baseline", "history", "--history-dir", H),
                        *("--current", f"{R}/run-2", "--json", f"{work}/compare-history.json"),
                    ),
                    0,
                ),
                ("history-add-run-2", ("history", "add", f"{R}/run-2", "--dir", H), 0),
                ("history-list", ("history", "list", "--dir", H), 0),
            ],
        ],
    ]
    number = 0
    numbered: list[list[list[Step]]] = []
    for phase in phases:
        numbered.append([])
        for chain in phase:
            numbered[-1].append([])
            for name, args, expect in chain:
                number += 1
                numbered[-1][-1].append((number, name, args, expect))
    return numbered


def run_phase(rec: Recorder, phase: list[list[Step]]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def chain(steps: list[Step]) -> None:
        for step in steps:
            rec.cli(step)

    with ThreadPoolExecutor(max_workers=max(1, min(len(phase), os.cpu_count() or 1, 4))) as pool:
        for future in [pool.submit(chain, c) for c in phase]:
            future.result()


def record(out: Path, lavabench: list[str], repo: Path, keep_work: bool) -> int:
    if out.exists() and any(out.iterdir()):
        print(f"golden: {out} exists and is not empty; give a new directory", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lavabench-golden-"))
    rec = Recorder(out, lavabench, repo, work)
    R, H = str(rec.results), str(rec.history)
    base = ["endpoint=sim", f"results_dir={R}", *HEALTH_OFF]
    common = [f"model={MODELS}", f"dataset.limit={LIMIT}", *base]
    t0 = time.monotonic()
    print(f"golden: scenario in {work} -> {out}", flush=True)
    try:
        sweep = ["model=gpt-oss-20b,glm-5", "dataset.limit=8", *base]
        for phase in scenario(R, H, str(work), common, sweep):
            run_phase(rec, phase)

        rec.check_repo(rec.results / "run-1" / "run.json")
        for run_id in ("run-1", "run-2"):
            rec.run_dir(rec.results / run_id, run_id)
        rec.sweep(rec.results / "sweep", "sweep")
        rec.report("run-1")
        rec.compare_json(work / "compare.json", "compare/compare.json")
        rec.text_file(work / "compare.md", "compare/compare.md")
        rec.compare_json(work / "compare-history.json", "compare/compare-history.json")
        rec.tree(rec.results, "tree-results.txt")
        rec.tree(rec.history, "tree-history.txt")
        rec.write_json("commands/exit_codes.json", rec.exit_codes)
    finally:
        elapsed = round(time.monotonic() - t0, 1)
        commit = _git(repo, "rev-parse", "HEAD")
        status = _git(repo, "status", "--porcelain")
        rec.write_json(
            "_meta.json",
            {
                "format_version": FORMAT_VERSION,
                "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "elapsed_s": elapsed,
                "command_s": rec.timings,
                "lavabench": lavabench,
                "repo": str(repo),
                "git_commit": commit,
                "git_status_dirty": bool(status),
                "git_status": status.splitlines() if status else [],
                "python": sys.version,
                "platform": platform.platform(),
                "work_dir": str(work) if keep_work else None,
            },
        )
        if keep_work:
            print(f"golden: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"golden: recorded {out} in {elapsed:.1f} s")
    if rec.unexpected:  # still recorded: a golden keeps whatever the code did
        print(f"golden: note: unexpected exit codes from {', '.join(rec.unexpected)}")
    return 0


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    except OSError:
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


# --- diff ----------------------------------------------------------------------------------------


def _files(root: Path) -> set[str]:
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith("_")
    }


def _short(value: Any, width: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 3] + "..."


def diff_values(a: Any, b: Any, path: str, out: list[str]) -> None:
    if type(a) is not type(b) and not (
        isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool)
    ):
        out.append(f"  {path}: {_short(a)} -> {_short(b)}")
    elif isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            sub = f"{path}.{key}" if path else key
            if key not in b:
                out.append(f"  {sub}: only in A ({_short(a[key])})")
            elif key not in a:
                out.append(f"  {sub}: only in B ({_short(b[key])})")
            else:
                diff_values(a[key], b[key], sub, out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append(f"  {path}: length {len(a)} -> {len(b)}")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            diff_values(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"  {path}: {_short(a)} -> {_short(b)}")


def _jsonl(path: Path) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = line
        key = row.get("job_id") if isinstance(row, dict) else None
        key = str(key) if key is not None else f"line {i + 1}"
        while key in rows:
            key += "'"
        rows[key] = row
    return rows


def diff_file(a: Path, b: Path, rel: str, max_lines: int) -> list[str]:
    ta, tb = a.read_text(encoding="utf-8"), b.read_text(encoding="utf-8")
    if ta == tb:
        return []
    out: list[str] = []
    try:
        if rel.endswith(".json"):
            diff_values(json.loads(ta), json.loads(tb), "", out)
        elif rel.endswith(".jsonl"):
            ra, rb = _jsonl(a), _jsonl(b)
            for key in sorted(set(ra) | set(rb)):
                if key not in rb:
                    out.append(f"  [{key}]: only in A")
                elif key not in ra:
                    out.append(f"  [{key}]: only in B")
                else:
                    diff_values(ra[key], rb[key], f"[{key}]", out)
    except ValueError:
        out = []
    if not out:  # text, or JSON that differs only in formatting
        out = [
            "  " + ln
            for ln in difflib.unified_diff(
                ta.splitlines(), tb.splitlines(), "A/" + rel, "B/" + rel, lineterm="", n=1
            )
        ]
    if len(out) > max_lines:
        out = [*out[:max_lines], f"  ... {len(out) - max_lines} more"]
    return out or ["  (differs only in whitespace/encoding)"]


def diff(dir_a: Path, dir_b: Path, max_lines: int) -> int:
    for d in (dir_a, dir_b):
        if not d.is_dir():
            print(f"golden: {d} is not a directory", file=sys.stderr)
            return 2
    fa, fb = _files(dir_a), _files(dir_b)
    differing = 0
    for rel in sorted(fa | fb):
        if rel not in fb:
            print(f"only in A: {rel}")
            differing += 1
            continue
        if rel not in fa:
            print(f"only in B: {rel}")
            differing += 1
            continue
        lines = diff_file(dir_a / rel, dir_b / rel, rel, max_lines)
        if lines:
            differing += 1
            print(f"DIFF {rel}")
            print("\n".join(lines))
    meta = []
    for d in (dir_a, dir_b):
        try:
            m = json.loads((d / "_meta.json").read_text())
            dirty = "+dirty" if m.get("git_status_dirty") else ""
            meta.append(f"{m.get('git_commit')}{dirty} ({m.get('elapsed_s')} s)")
        except (OSError, ValueError):
            meta.append("?")
    total = len(fa | fb)
    if differing:
        print(f"golden: {differing} of {total} files differ (A: {meta[0]}, B: {meta[1]})")
        return 1
    print(f"golden: identical, {total} files (A: {meta[0]}, B: {meta[1]})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="golden.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    rec = sub.add_parser("record", help="run the scenario, write normalized outputs to OUT_DIR")
    rec.add_argument("out_dir", type=Path)
    rec.add_argument(
        "--lavabench",
        default=None,
        help="the command to run (default: this Python's `-m lavabench`), e.g. .venv/bin/lavabench",
    )
    rec.add_argument(
        "--repo",
        type=Path,
        default=Path(__file__).resolve().parent.parent,
        help="project directory, replaced by <REPO> in outputs (default: this script's repo)",
    )
    rec.add_argument("--keep-work", action="store_true", help="keep the scenario's temp dir")
    dif = sub.add_parser("diff", help="compare two recorded directories; exit 1 if they differ")
    dif.add_argument("dir_a", type=Path)
    dif.add_argument("dir_b", type=Path)
    dif.add_argument("--max-lines", type=int, default=60, help="per file (default 60)")
    opts = parser.parse_args(argv)
    if opts.action == "record":
        lavabench = (
            shlex.split(opts.lavabench) if opts.lavabench else [sys.executable, "-m", "lavabench"]
        )
        return record(opts.out_dir.resolve(), lavabench, opts.repo.resolve(), opts.keep_work)
    return diff(opts.dir_a, opts.dir_b, opts.max_lines)


if __name__ == "__main__":
    sys.exit(main())
