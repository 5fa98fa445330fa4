"""`code`: run the model's Python against the item's tests in a sandboxed subprocess (pass@1).

The reference is a JSON object {"prompt", "test", "entry_point"} (HumanEval's fields;
others are ignored). The program is built as HumanEval's harness does:
`prompt + completion + "\\n" + test + "\\ncheck(entry_point)\\n"`; when the extracted code
already defines `entry_point` (chat models return the whole function) the prompt's import
lines replace the prompt. It runs in a fresh `python -I` in a temporary directory, in its own
session, with RLIMIT_CPU, RLIMIT_AS and RLIMIT_FSIZE set, in a new network namespace
(`unshare -n`) when the host allows it, and the whole process group is killed at the
wall-clock timeout. It never runs in the caller's process.

As in HumanEval's harness (`exec(program, {})`), the program is executed by a small driver
under a module name that is not `__main__`, so the model's `if __name__ == "__main__":` block
(its own tests, `unittest.main()`, an `input()` loop) never runs; any exception, SystemExit
included, fails the sample. It passes iff the driver reached the end of `check(...)`: exit
status 0 *and* a marker file named by a per-run nonce, so `sys.exit(0)` or `os._exit(0)`
before the check cannot pass a wrong solution.

`extracted` is a short status ("passed", "failed: AssertionError", "timeout after 3s"),
since the code itself is already in the record's response text.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

from lavabench.errors import DatasetError
from lavabench.grading.base import Grade, verdict
from lavabench.grading.options import check_options
from lavabench.grading.text import code_blocks, strip_reasoning

_OPTIONS: dict[str, tuple[type, ...]] = {
    "timeout_s": (int, float),
    "memory_mb": (int,),
    "network": (bool,),
}
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 1024
_IMPORT = re.compile(r"^(?:import |from \S+ import )", re.MULTILINE)


@functools.cache
def network_isolation() -> list[str]:
    """The command prefix that gives the child no network, or [] when unavailable here."""
    tool = shutil.which("unshare")
    if tool is None:
        return []
    for prefix in ([tool, "-n"], [tool, "-r", "-n"]):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=5, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return []


def parse_code_reference(reference: str) -> dict[str, str]:
    """The {"prompt", "test", "entry_point"} object; a DatasetError names what is missing."""
    try:
        obj = json.loads(reference)
    except ValueError:
        raise DatasetError(f"code: reference {reference[:60]!r} is not a JSON object") from None
    if not isinstance(obj, dict):
        raise DatasetError("code: reference must be a JSON object with prompt, test, entry_point")
    for key in ("test", "entry_point"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise DatasetError(f"code: reference has no string {key!r}")
    obj.setdefault("prompt", "")
    return obj


def extract_code(response_text: str, entry_point: str | None = None) -> str:
    """The code in a response: the last fenced block defining `entry_point`, else the first
    python (or unlabelled) block, else the whole text (a raw completion)."""
    text = strip_reasoning(response_text)
    blocks = code_blocks(text)
    if not blocks:
        return text
    if entry_point:
        defining = [b for _, b in blocks if re.search(rf"def\s+{re.escape(entry_point)}\s*\(", b)]
        if defining:
            return defining[-1]
    python = [b for lang, b in blocks if lang in ("", "python", "py", "python3")]
    return (python or [blocks[0][1]])[0]


def build_program(completion: str, ref: Mapping[str, str]) -> str:
    """The HumanEval program for one completion (see the module docstring)."""
    entry = ref["entry_point"]
    code = extract_code(completion, entry)
    if re.search(rf"def\s+{re.escape(entry)}\s*\(", code):
        imports = "\n".join(
            line for line in ref.get("prompt", "").splitlines() if _IMPORT.match(line)
        )
        head = imports + "\n\n" + code
    else:
        head = ref.get("prompt", "") + code
    return f"{head}\n{ref['test']}\ncheck({entry})\n"


def _limits(cpu_s: int, memory_bytes: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


# The driver: exec the program as a non-main module (HumanEval's `exec(program, {})`), print
# the traceback of anything raised (SystemExit too), and mark success only after the check.
_DRIVER = """\
import os, sys, traceback
src = open("program.py", encoding="utf-8").read()
try:
    exec(compile(src, "program.py", "exec"), {"__name__": "candidate", "__builtins__": __builtins__})
except BaseException:
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
open(%r, "w").close()
sys.stderr.flush()
os._exit(0)
"""


def run_program(
    program: str, timeout_s: float, memory_mb: int, network: bool = False
) -> tuple[bool, str]:
    """Run `program` sandboxed; (passed, status). Kills the process group on timeout."""
    with tempfile.TemporaryDirectory(prefix="lavabench-code-") as tmp:
        path = os.path.join(tmp, "program.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        marker = os.path.join(tmp, f"passed-{secrets.token_hex(8)}")
        prefix = [] if network else network_isolation()
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(
            [*prefix, sys.executable, "-I", "-B", "-c", _DRIVER % marker],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_limits(int(timeout_s) + 1, memory_mb << 20),
        )
        try:
            _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return False, f"timeout after {timeout_s:g}s"
        finally:
            _kill(proc)
        reached_end = os.path.exists(marker)
    if proc.returncode == 0 and reached_end:
        return True, "passed"
    if proc.returncode == 0:
        return False, "failed: exited before the check finished"
    if proc.returncode < 0:
        return False, f"killed by signal {-proc.returncode}"
    lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else f"exit {proc.returncode}"
    return False, "failed: " + last.split(":", 1)[0][:80]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait()


def code(response_text: str, reference: str | None, options: Mapping[str, Any]) -> Grade:
    """pass@1 of one sample: 1.0 when the program exits 0 within the limits.

    Options: `timeout_s` (default 5), `memory_mb` (address-space cap, default 1024),
    `network` (default false: isolate with `unshare -n` where possible). An empty response
    fails without running anything, which keeps start-up reference checks cheap.
    """
    check_options("code", options, _OPTIONS)
    if reference is None:
        return Grade(None, None, None)
    ref = parse_code_reference(reference)
    if not response_text.strip():
        return verdict(False, "failed: empty response")
    program = build_program(response_text, ref)
    passed, status = run_program(
        program,
        float(options.get("timeout_s", DEFAULT_TIMEOUT_S)),
        int(options.get("memory_mb", DEFAULT_MEMORY_MB)),
        bool(options.get("network", False)),
    )
    return verdict(passed, status)


# Runs a subprocess per sample (30 ms-5 s): the runner grades it off the event loop.
code.blocking = True  # type: ignore[attr-defined]
