"""Start the simulator as a separate program and stop it again: for tests and the runner.

The simulator runs as `python -m lavabench.sim` in its own process group, so the client under
test never shares an event loop or a CPU budget with it, and stopping it (group-wide SIGTERM,
then SIGKILL) also stops its workers. Its stdout and stderr go to temporary files rather than
pipes, so a chatty child can never block on a full pipe that nobody reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

READY_PREFIX = "LAVABENCH_SIM_READY"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
_STOP_TIMEOUT_S = 10.0
_POLL_S = 0.01


@dataclass(frozen=True)
class SimHandle:
    """A running simulator: where to reach it, and its pid (the process-group leader)."""

    base_url: str
    pid: int


@contextlib.contextmanager
def running_simulator(
    settings: Mapping[str, Any],
    catalog: Mapping[str, Mapping[str, Any]],
    *,
    port: int = 0,
    timeout_s: float = 20,
    command_prefix: Sequence[str] = (),
) -> Iterator[SimHandle]:
    """Run the simulator for the duration of the `with` block.

    `command_prefix` goes before the Python command line (e.g. `("taskset", "-c", "0")` to pin
    it). Raises RuntimeError, with the child's stderr, if it exits or is not ready in time.
    """
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lavabench-sim-")))
        config = tmp / "sim.json"
        config.write_bytes(orjson.dumps({"settings": dict(settings), "catalog": dict(catalog)}))
        out = stack.enter_context((tmp / "stdout").open("w+b"))
        err = stack.enter_context((tmp / "stderr").open("w+b"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        command = [*command_prefix, sys.executable, "-m", "lavabench.sim", "--config", str(config)]
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
        )
        stack.callback(_stop, proc)
        base_url = _await_ready(proc, out, err, timeout_s)
        yield SimHandle(base_url=base_url, pid=proc.pid)


def _await_ready(
    proc: subprocess.Popen[bytes], out: IO[bytes], err: IO[bytes], timeout_s: float
) -> str:
    """Poll the child's stdout file for the READY line."""
    deadline = time.monotonic() + timeout_s
    while True:
        out.seek(0)
        for line in out.read().decode(errors="replace").splitlines():
            if line.startswith(READY_PREFIX + " "):
                return line.split(" ", 1)[1].strip()
        code = proc.poll()
        if code is not None:
            raise RuntimeError(
                f"simulator exited with code {code} before it was ready: {_tail(err)}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"simulator not ready within {timeout_s} s: {_tail(err)}")
        time.sleep(_POLL_S)


def _tail(err: IO[bytes], limit: int = 4000) -> str:
    err.seek(0)
    text = err.read().decode(errors="replace").strip()
    return text[-limit:] if text else "(no stderr)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, wait, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_STOP_TIMEOUT_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
