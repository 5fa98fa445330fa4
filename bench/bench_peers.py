"""Peer benchmarking tools against the same simulator: NVIDIA AIPerf and GuideLLM.

bench_client.py measures lavabench's own request path; this script measures two peer load
generators the same way, so their rows can sit in one table with lavabench's:

* capacity (zero server delays, 32-token streams): completed requests/s and output tokens/s
  over the peer's own benchmark phase, as the peer reports them in its export files; client
  CPU seconds per 1,000 requests of the peer's whole process tree, sampled from /proc over
  that same phase (start-up, warm-up and export excluded, like bench_client.py's timed
  section), and `_incl_startup` over the tree's whole life; the concurrency the peer says
  it achieved.
* timing (50 ms TTFT, 10 ms inter-token delay): the peer's reported TTFT p50/p99/max minus
  the injected 50 ms and its ITL p50/p99 minus 10 ms. Peers do not expose the simulator's
  completion ids in their default exports, so this is an aggregate error (distribution
  against the plan), not bench_client's per-request match.

Each peer lives in its own virtualenv under bench/.peers/<tool>/ (installed once, reused
through a stamp file); a peer that cannot be installed or run gets a row with `error` set.
The simulator runs in its own process on core 0 (as in bench_client.py); the peer's whole
process tree runs on core 1 (`taskset -c 1`). Both peers tokenise with a tiny local BPE
tokenizer built into bench/.peers/tokenizer/ (the machines have no HF hub access).

    python bench/bench_peers.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_client import MODEL, OUTPUT_TOKENS, _config, _sim_settings  # noqa: E402
from lavabench.sim.process import running_simulator  # noqa: E402

PEERS_DIR = ROOT / "bench" / ".peers"
RUNS_DIR = PEERS_DIR / "runs"  # the last run's raw peer outputs, for inspection
TOKENIZER_DIR = PEERS_DIR / "tokenizer"
HF_HOME = PEERS_DIR / "hf"  # a local HF cache holding the same tokenizer (AIPerf offline mode)
TOKENIZER_REPO = "lavabench/bench-tokenizer"
TOKENIZER_REVISION = "0" * 39 + "1"
FIREWORKS_CHAT_PATH = "/inference/v1/chat/completions"  # lavabench/sim/handler.py
API_KEY = "fw_test_bench"  # the Fireworks path takes any non-empty bearer
PROMPT_TOKENS = 16
SIM_CORE, PEER_CORE = 0, 1
RUN_TIMEOUT_S = 180.0
INSTALL_TIMEOUT_S = 1200.0
SAMPLE_S = 0.1
# GuideLLM starts 10 worker processes whatever the core count; on its one core we give it
# one, which is also what AIPerf's own formula picks here (max(1, int(2 cores * 0.75) - 1)).
GUIDELLM_WORKERS = 1
PR_SET_CHILD_SUBREAPER = 36
CPU_NOTE = (
    "client CPU = the peer's whole process tree over its benchmark phase, start-up and "
    "warm-up excluded (client_cpu_s_per_1k_incl_startup: its whole life)"
)


@dataclass(frozen=True)
class Peer:
    """A peer tool: what to pip install, and how to run and read it."""

    name: str
    dist: str  # distribution name, for its installed version
    specs: tuple[tuple[str, ...], ...]  # pip argument lists, tried in order
    build: Callable[..., list[str]]
    parse: Callable[[Path], dict[str, Any]]
    env: dict[str, str]
    note: str


@dataclass(frozen=True)
class Case:
    """One row to measure."""

    kind: str  # "capacity" | "timing"
    concurrency: int
    requests: int
    warmup: int


# ---------------------------------------------------------------- install, tokenizer


def _one_line(text: str, limit: int = 300) -> str:
    """The line of a tool's output that says why it failed: the last one naming an error
    (with the line after it when that is the detail), else the last line."""
    lines = [ln.strip(" │") for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("╰", "╭", "─", "━"))]
    for i in range(len(lines) - 1, -1, -1):
        if "error" in lines[i].lower() and not lines[i].lower().startswith("warning"):
            detail = lines[i + 1] if lines[i].endswith(":") and i + 1 < len(lines) else ""
            return f"{lines[i]} {detail}".strip()[:limit]
    return (lines[-1] if lines else "(no output)")[:limit]


def _venv_python(peer: Peer) -> Path:
    """The peer's own interpreter: its packages never mix with lavabench's."""
    return PEERS_DIR / peer.name / "bin" / "python"


def ensure_peer(peer: Peer) -> tuple[Path, str]:
    """Install the peer into bench/.peers/<name>/ once; returns (python, version).

    The stamp records the pip arguments that succeeded, so a changed pin reinstalls and an
    unchanged one costs nothing. Raises RuntimeError (one line) when no spec installs.
    """
    venv = PEERS_DIR / peer.name
    stamp = venv / ".lavabench-stamp"
    python = _venv_python(peer)
    if stamp.exists() and python.exists():
        installed = json.loads(stamp.read_text())
        if any(list(spec) == installed.get("spec") for spec in peer.specs):
            return python, installed["version"]
    base = shutil.which("python3") or sys.executable
    log = PEERS_DIR / f"{peer.name}-install.log"
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    failure = "no install attempted"
    for spec in peer.specs:
        print(f"[peers] installing {' '.join(spec)} into {venv} ...", flush=True)
        t0 = time.perf_counter()
        try:
            subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
            with log.open("w") as out:
                done = subprocess.run(
                    [str(python), "-m", "pip", "install", "--disable-pip-version-check", *spec],
                    stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S,
                )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
            continue
        if done.returncode == 0:
            version = _installed_version(python, peer.dist)
            stamp.write_text(json.dumps({"spec": list(spec), "version": version}) + "\n")
            print(f"[peers] {peer.name} {version} installed in {time.perf_counter() - t0:.0f} s")
            return python, version
        failure = f"pip install {' '.join(spec)} failed: {_one_line(log.read_text())}"
    raise RuntimeError(failure)


def _installed_version(python: Path, dist: str) -> str:
    """What pip actually installed, for the `version` column."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    return out.stdout.strip() or "unknown"


_TOKENIZER_BUILDER = r"""
import random, sys
from pathlib import Path
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

words = ("the a of to and in is it that for on with as was at by an be this from or have "
         "not are but one all they we can there which their will would when what about more "
         "time reply short points clear bench prompt model stream token latency answer "
         "simulator request response client server measure first second number words text "
         "sure here brief summary without detail needed let me know if you want").split()
rng = random.Random(7)
lines = [" ".join(rng.choice(words) for _ in range(rng.randint(6, 24))) for _ in range(4000)]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=["<s>", "</s>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(lines, trainer)
PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>").save_pretrained(
    sys.argv[1])
"""


def ensure_tokenizer(python: Path) -> None:
    """A tiny byte-level BPE tokenizer, built once with a peer's own `tokenizers` package.

    The peers only use it to size synthetic prompts (and, for GuideLLM, to count text when
    the server sends no usage); output tokens are taken from the server's usage. It is also
    laid out as an HF hub cache entry (`lavabench/bench-tokenizer`) because AIPerf in
    offline mode (HF_HUB_OFFLINE=1) resolves names only through that cache.
    """
    if (TOKENIZER_DIR / "tokenizer.json").exists():
        return
    tmp = TOKENIZER_DIR.with_name("tokenizer.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run([str(python), "-c", _TOKENIZER_BUILDER, str(tmp)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tokenizer build failed: {_one_line(done.stderr)}")
    repo = HF_HOME / "hub" / f"models--{TOKENIZER_REPO.replace('/', '--')}"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "refs").mkdir(parents=True)
    shutil.copytree(tmp, repo / "snapshots" / TOKENIZER_REVISION)
    (repo / "refs" / "main").write_text(TOKENIZER_REVISION)
    shutil.rmtree(TOKENIZER_DIR, ignore_errors=True)
    tmp.rename(TOKENIZER_DIR)


# ---------------------------------------------------------------- peer commands and outputs


def aiperf_command(
    venv: Path, base_url: str, model_id: str, case: Case, out: Path, seed: int = 7
) -> list[str]:
    """`aiperf profile`: fixed-length synthetic prompts, exactly 32 output tokens, server
    token counts (usage) rather than client-side re-tokenising, no TUI/telemetry probes."""
    return [
        str(venv / "bin" / "aiperf"), "profile",
        "--model", model_id, "--url", base_url, "--endpoint", FIREWORKS_CHAT_PATH,
        "--endpoint-type", "chat", "--streaming", "--api-key", API_KEY,
        "--tokenizer", TOKENIZER_REPO,
        "--concurrency", str(case.concurrency), "--request-count", str(case.requests),
        "--warmup-request-count", str(case.warmup),
        "--isl", str(PROMPT_TOKENS), "--isl-stddev", "0",
        "--osl", str(OUTPUT_TOKENS), "--osl-stddev", "0",
        "--use-server-token-count", "--random-seed", str(seed),
        "--artifact-dir", str(out), "--ui", "none",
        "--no-server-metrics", "--no-gpu-telemetry",
    ]  # fmt: skip


def _stat(metric: dict[str, Any] | None, key: str) -> float | None:
    """One statistic of an exported metric, None where the peer left it out."""
    if not metric or metric.get(key) is None:
        return None
    return float(metric[key])


def parse_aiperf(out: Path) -> dict[str, Any]:
    """profile_export_aiperf.json (the profiling phase only) and phase_manifest.json."""
    summary = json.loads((out / "profile_export_aiperf.json").read_text())
    manifest = json.loads((out / "phase_manifest.json").read_text())
    phase = next(p for p in manifest["phases"] if p["phase_kind"] == "profiling")
    ttft = summary.get("time_to_first_token")
    gaps = summary.get("inter_chunk_latency")  # every gap between chunks (1 token each here)
    return {
        "completed": int(_stat(summary.get("request_count"), "avg") or 0),
        "peer_errors": int(phase.get("error_request_count") or 0),
        "req_per_s": _stat(summary.get("request_throughput"), "avg"),
        "output_tokens_per_s": _stat(summary.get("output_token_throughput"), "avg"),
        "achieved_concurrency": _stat(summary.get("effective_concurrency"), "avg"),
        "served_output_tokens": _stat(summary.get("output_sequence_length"), "avg"),
        "ttft_ms": (_stat(ttft, "p50"), _stat(ttft, "p99"), _stat(ttft, "max")),
        "itl_ms": (_stat(gaps, "p50"), _stat(gaps, "p99")),
        "phase_s": (phase["start_ns"] / 1e9, phase["end_ns"] / 1e9),
    }


def guidellm_command(
    venv: Path, base_url: str, model_id: str, case: Case, out: Path, seed: int = 7
) -> list[str]:
    """`guidellm run`: concurrent profile, warm-up by request count (excluded from its
    metrics), synthetic 16-token prompts asking for exactly 32 output tokens."""
    backend = {
        "kind": "openai_http", "target": base_url, "model": model_id, "api_key": API_KEY,
        "api_routes": {"/v1/chat/completions": FIREWORKS_CHAT_PATH.lstrip("/")},
        "request_format": "/v1/chat/completions",
        "validate_backend": False,  # it probes GET /health; the simulator has /healthz
    }  # fmt: skip
    profile = {"kind": "concurrent", "streams": case.concurrency,
               "warmup": {"mode": "requests", "value": case.warmup}}  # fmt: skip
    data = {"kind": "synthetic_text", "prompt_tokens": PROMPT_TOKENS,
            "output_tokens": OUTPUT_TOKENS}  # fmt: skip
    return [
        str(venv / "bin" / "guidellm"), "run",
        "--backend", json.dumps(backend), "--profile", json.dumps(profile),
        "--constraint", f"kind=max_requests,count={case.requests + case.warmup}",
        "--tokenizer", f"kind=huggingface_auto,model={TOKENIZER_DIR}",
        "--data", json.dumps(data), "--seed", f"kind=static,value={seed}",
        "--output", f"kind=json,path={out / 'benchmarks.json'}",
        "--disable-console-interactive",
    ]  # fmt: skip


def _gl(metrics: dict[str, Any], name: str) -> dict[str, Any]:
    """A GuideLLM metric over successful requests (the ones the other rows count)."""
    return metrics.get(name, {}).get("successful") or {}


def _gl_pct(dist: dict[str, Any], key: str) -> float | None:
    """A percentile of a GuideLLM distribution ("p50", "p99")."""
    value = (dist.get("percentiles") or {}).get(key)
    return None if value is None else float(value)


def parse_guidellm(out: Path) -> dict[str, Any]:
    """benchmarks.json: the one benchmark's metrics over its measured (post-warm-up) span."""
    report = json.loads((out / "benchmarks.json").read_text())
    bench = report["benchmarks"][0]
    m = bench["metrics"]
    ttft, itl = _gl(m, "time_to_first_token_ms"), _gl(m, "inter_token_latency_ms")
    totals = m["request_totals"]
    return {
        "completed": int(totals["successful"]),
        "peer_errors": int(totals.get("errored", 0)) + int(totals.get("incomplete", 0)),
        "req_per_s": _stat(_gl(m, "requests_per_second"), "mean"),
        "output_tokens_per_s": _stat(_gl(m, "output_tokens_per_second"), "mean"),
        "achieved_concurrency": _stat(_gl(m, "request_concurrency"), "mean"),
        "served_output_tokens": _stat(_gl(m, "output_token_count"), "mean"),
        "ttft_ms": (_gl_pct(ttft, "p50"), _gl_pct(ttft, "p99"), _stat(ttft, "max")),
        "itl_ms": (_gl_pct(itl, "p50"), _gl_pct(itl, "p99")),
        "phase_s": (float(bench["start_time"]), float(bench["end_time"])),
    }


_OFFLINE_ENV = {
    "HF_HOME": str(HF_HOME),
    "HF_HUB_OFFLINE": "1",  # AIPerf treats any non-empty value as offline
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
}

PEERS = (
    Peer(
        name="aiperf",
        dist="aiperf",
        specs=(("aiperf==0.13.0",),),
        build=aiperf_command,
        parse=parse_aiperf,
        env=dict(_OFFLINE_ENV),
        note="AIPerf defaults (1 worker process on this machine); ITL = inter_chunk_latency "
        "(every gap; one token per chunk)",
    ),
    Peer(
        name="guidellm",
        dist="guidellm",
        # a CPU-only torch wheel where the machine has one (saves ~4.5 GB of CUDA wheels),
        # else whatever torch pip picks
        specs=(("guidellm[perf]==0.8.1", "torch==2.13.0+cpu"), ("guidellm[perf]==0.8.1",)),
        build=guidellm_command,
        parse=parse_guidellm,
        env={**_OFFLINE_ENV, "GUIDELLM__MAX_WORKER_PROCESSES": str(GUIDELLM_WORKERS)},
        note=f"GuideLLM with {GUIDELLM_WORKERS} worker process (default 10); ITL = "
        "inter_token_latency_ms, a per-request mean gap (token-weighted), not per gap",
    ),
)


# ---------------------------------------------------------------- process-tree CPU


def _session_cpu(sid: int) -> tuple[float, list[tuple[int, int]]]:
    """CPU seconds (utime+stime+cutime+cstime) of every process in session `sid`, plus
    (pid, ppid) of each. The peer starts its own session, and its descendants keep it even
    when orphaned, so this is its whole process tree; a reaped child's time has moved into
    its parent's cutime/cstime, so nothing counts twice."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, members = 0, []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
            members.append((int(entry.name), int(fields[1])))
    return total / ticks, members


def _cpu_between(samples: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Tree CPU over the wall-clock window [t0, t1], linearly interpolated between samples."""

    def at(t: float) -> float | None:
        if not samples or t < samples[0][0] or t > samples[-1][0]:
            return None
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return ca + (cb - ca) * ((t - ta) / (tb - ta) if tb > ta else 1.0)
        return samples[-1][1]

    c0, c1 = at(t0), at(t1)
    return None if c0 is None or c1 is None else max(0.0, c1 - c0)


def _become_subreaper() -> None:
    """Orphans of the peer get re-parented to this process, not to init: they stay
    visible (as zombies) to the sampler, and reaping them adds their CPU to our rusage."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def run_tree(
    command: Sequence[str], *, cwd: Path, env: dict[str, str], timeout_s: float
) -> tuple[int | None, list[tuple[float, float]], float, float]:
    """Run `command` pinned to PEER_CORE in its own session; sample its tree's CPU.

    Returns (exit code or None on timeout, [(wall time, tree CPU s)], total tree CPU s
    including start-up (our rusage of reaped descendants), wall seconds).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t_start = time.perf_counter()
    with (cwd / "stdout.log").open("wb") as out, (cwd / "stderr.log").open("wb") as err:
        proc = subprocess.Popen(
            ["taskset", "-c", str(PEER_CORE), *command], cwd=cwd, env=env,
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
        )  # fmt: skip
        samples: list[tuple[float, float]] = []
        deadline = time.monotonic() + timeout_s
        code: int | None = None
        while True:
            now = time.time()
            cpu, _ = _session_cpu(proc.pid)
            code = proc.poll()  # reaps the root: sample before, so the series stays monotonic
            if code is not None:
                break
            samples.append((now, cpu))
            if time.monotonic() > deadline:
                break
            time.sleep(SAMPLE_S)
        if code is None:  # timed out: the whole group, then anything left of it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    wall = time.perf_counter() - t_start
    _reap_leftovers(proc.pid)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return code, samples, total, wall


def _reap_leftovers(sid: int) -> None:
    """Stop what the peer left running in its session and reap those re-parented to us."""
    _, members = _session_cpu(sid)
    for pid, _ppid in members:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    for pid, ppid in members:
        if ppid == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


# ---------------------------------------------------------------- one row


def _base_row(peer: Peer, version: str | None, case: Case) -> dict[str, Any]:
    """Every key of a row, empty: error rows and measured rows share one shape."""
    return {
        "tool": peer.name, "version": version, "kind": case.kind,
        "concurrency": case.concurrency, "requests": case.requests, "completed": None,
        "req_per_s": None, "output_tokens_per_s": None, "client_cpu_s_per_1k": None,
        "client_cpu_s_per_1k_incl_startup": None, "achieved_concurrency": None,
        "served_output_tokens": None, "ttft_err_ms_p50": None, "ttft_err_ms_p99": None,
        "ttft_err_ms_max": None, "itl_err_ms_p50": None, "itl_err_ms_p99": None,
        "sim_sent_ttft_ms_p50": None, "sim_sent_ttft_ms_p99": None, "wall_s": None,
        "note": f"{peer.note}; {CPU_NOTE}", "error": None,
    }  # fmt: skip


def _sim_truth(log: Path) -> dict[str, Any]:
    """What the simulator itself sent (warm-up included): first-token write times."""
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    sent = sorted(e["sent_ttft_s"] * 1e3 for e in entries if e.get("sent_ttft_s") is not None)
    if not sent:
        return {}

    def pct(q: float) -> float:
        return sent[min(len(sent) - 1, round(q * (len(sent) - 1)))]

    return {"sim_sent_ttft_ms_p50": pct(0.5), "sim_sent_ttft_ms_p99": pct(0.99)}


def measure(
    peer: Peer,
    venv_python: Path,
    version: str,
    case: Case,
    defaults: dict[str, Any],
    catalog: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """One peer run against a fresh simulator; never raises (failures become `error`)."""
    row = _base_row(peer, version, case)
    out = RUNS_DIR / f"{peer.name}-{case.kind}-c{case.concurrency}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    zero = case.kind == "capacity"
    log = None if zero else Path(tempfile.mktemp(prefix="peers-sim-", suffix=".jsonl"))
    settings = _sim_settings(defaults, zero=zero, log_path=str(log) if log else None)
    profile = settings["models"][MODEL]
    planned_ttft_ms, planned_itl_ms = profile["ttft_s"] * 1e3, 1e3 / profile["tokens_per_s"]
    env = {**os.environ, **peer.env}
    affinity = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {SIM_CORE})  # the simulator inherits core 0; so does the
        with running_simulator(settings, catalog) as sim:  # sampler loop (mostly asleep)
            command = peer.build(venv_python.parent.parent, sim.base_url,
                                 catalog[MODEL]["id"], case, out)  # fmt: skip
            code, samples, total_cpu, wall = run_tree(
                command, cwd=out, env=env, timeout_s=RUN_TIMEOUT_S
            )
        row["wall_s"] = round(wall, 1)
        if code is None:
            row["error"] = f"timed out after {RUN_TIMEOUT_S:.0f} s"
            return row
        if code != 0:
            row["error"] = f"exit {code}: " + _one_line(
                (out / "stderr.log").read_text(errors="replace")
                + "\n"
                + (out / "stdout.log").read_text(errors="replace")
            )
            return row
        got = peer.parse(out)
        completed = got["completed"]
        if completed <= 0:
            row["error"] = f"no completed requests ({got['peer_errors']} errors)"
            return row
        phase_cpu = _cpu_between(samples, *got["phase_s"])
        ttft, itl = got["ttft_ms"], got["itl_ms"]
        row.update({
            "completed": completed,
            "req_per_s": got["req_per_s"],
            "output_tokens_per_s": got["output_tokens_per_s"],
            "client_cpu_s_per_1k": None if phase_cpu is None else phase_cpu / completed * 1e3,
            "client_cpu_s_per_1k_incl_startup": total_cpu / completed * 1e3,
            "achieved_concurrency": got["achieved_concurrency"],
            "served_output_tokens": got["served_output_tokens"],
        })  # fmt: skip
        if got["peer_errors"]:
            row["note"] += f"; {got['peer_errors']} requests failed"
        if not zero:
            row.update({
                "ttft_err_ms_p50": _minus(ttft[0], planned_ttft_ms),
                "ttft_err_ms_p99": _minus(ttft[1], planned_ttft_ms),
                "ttft_err_ms_max": _minus(ttft[2], planned_ttft_ms),
                "itl_err_ms_p50": _minus(itl[0], planned_itl_ms),
                "itl_err_ms_p99": _minus(itl[1], planned_itl_ms),
            })  # fmt: skip
            row["note"] += (
                f"; aggregate error: the peer's own percentiles minus the injected "
                f"{planned_ttft_ms:.0f} ms TTFT / {planned_itl_ms:.0f} ms ITL (no per-request "
                "match with the simulator's log)"
            )
            if log is not None and log.exists():
                row.update(_sim_truth(log))
    except Exception as exc:  # a peer must never crash the script
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    finally:
        os.sched_setaffinity(0, affinity)
        if log is not None:
            with contextlib.suppress(FileNotFoundError):
                log.unlink()
    return row


def _minus(value: float | None, planned: float) -> float | None:
    """Reported minus planned, keeping a missing value missing."""
    return None if value is None else value - planned


# ---------------------------------------------------------------- plan, table, main


def plan(quick: bool) -> list[Case]:
    """Fixed request counts, so each row is bounded (plus RUN_TIMEOUT_S as a backstop)."""
    if quick:
        return [
            Case("capacity", 1, 100, 8), Case("capacity", 64, 400, 128),
            Case("capacity", 256, 512, 256),
            Case("timing", 1, 30, 4), Case("timing", 64, 192, 64),
            Case("timing", 256, 512, 256),
        ]  # fmt: skip
    return [
        Case("capacity", 1, 500, 16), Case("capacity", 64, 2000, 128),
        Case("capacity", 256, 2000, 512), Case("capacity", 1024, 3072, 1024),
        Case("timing", 1, 64, 8), Case("timing", 64, 640, 128),
        Case("timing", 256, 1280, 512),
    ]  # fmt: skip


def _fmt(value: float | None, spec: str = ".1f") -> str:
    """A table cell: "-" for a missing value."""
    return "-" if value is None else format(value, spec)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as one Markdown table (errors in the last column)."""
    lines = [
        "| tool | version | kind | c | requests measured | req/s | out tok/s | CPU s/1k (phase) | "
        "CPU s/1k (incl. start-up) | achieved c | TTFT err p50 / p99 / max ms | "
        "ITL err p50 / p99 ms | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        timing = r["kind"] == "timing"
        ttft = " / ".join(_fmt(r[f"ttft_err_ms_{k}"]) for k in ("p50", "p99", "max"))
        itl = " / ".join(_fmt(r[f"itl_err_ms_{k}"], ".2f") for k in ("p50", "p99"))
        lines.append(
            f"| {r['tool']} | {r['version'] or '-'} | {r['kind']} | {r['concurrency']} | "
            f"{r['completed'] or '-'} | {_fmt(r['req_per_s'], ',.0f')} | "
            f"{_fmt(r['output_tokens_per_s'], ',.0f')} | {_fmt(r['client_cpu_s_per_1k'], '.2f')} | "
            f"{_fmt(r['client_cpu_s_per_1k_incl_startup'], '.2f')} | "
            f"{_fmt(r['achieved_concurrency'])} | {ttft if timing else '-'} | "
            f"{itl if timing else '-'} | {r['error'] or ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Every peer, every case; a peer's failure is a row, never an exit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, no c=1024")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "peers.json")
    parser.add_argument("--tool", action="append", choices=[p.name for p in PEERS],
                        help="only these peers (repeatable; default all)")  # fmt: skip
    args = parser.parse_args()
    _become_subreaper()
    defaults, catalog = _config()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for peer in PEERS:
        if args.tool and peer.name not in args.tool:
            continue
        try:
            python, version = ensure_peer(peer)
            ensure_tokenizer(python)
            setup_error = None
        except Exception as exc:  # install / tokenizer failures become rows
            python, version = _venv_python(peer), None
            setup_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        for case in plan(args.quick):
            if setup_error is not None:
                row = _base_row(peer, version, case) | {"error": setup_error}
            else:
                row = measure(peer, python, version, case, defaults, catalog)
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(markdown_table(rows))
    print(f"\nwritten: {args.json} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
