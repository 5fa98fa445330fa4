"""Shared fixtures: the composed config, and the real simulator on 127.0.0.1 (port 0)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session", autouse=True)
def _bytecode_cache_for_children(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """With PYTHONDONTWRITEBYTECODE set, every `lavabench` process the tests start (~200:
    runs, simulators, sweep workers) compiled lavabench's sources again: ~0.16 s of CPU
    each. The children write their bytecode under this session's temp directory instead,
    so the checkout still gets no __pycache__ (what the variable asked for)."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        yield
        return
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = str(tmp_path_factory.mktemp("pycache"))
    try:
        yield
    finally:
        os.environ["PYTHONDONTWRITEBYTECODE"] = saved
        del os.environ["PYTHONPYCACHEPREFIX"]


@pytest.fixture(scope="session")
def composed() -> Any:
    from hydra import compose, initialize_config_dir

    from lavabench.config import CONF_DIR, register_schemas

    register_schemas()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        return compose(config_name="config")


@pytest.fixture(scope="session")
def sim_catalog(composed: Any) -> dict[str, dict[str, Any]]:
    from lavabench.catalog import catalog_from_mapping
    from lavabench.commands.run.setup import catalog_for_sim

    return catalog_for_sim(catalog_from_mapping(composed.catalog))


@pytest.fixture(scope="session")
def sim_defaults(composed: Any) -> dict[str, Any]:
    from lavabench.config import plain

    return plain(composed.sim)


def sim_settings(defaults: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    settings = copy.deepcopy(defaults)
    settings.update(overrides)
    settings["answer_keys"] = [str(ROOT / "datasets" / "demo-arith.jsonl")]
    return settings


@pytest.fixture
def running_sim(sim_defaults, sim_catalog, tmp_path) -> Iterator[tuple[str, Path]]:
    """The default simulator (demo profiles) with a response log; yields (base_url, log)."""
    from lavabench.sim.process import running_simulator

    log = tmp_path / "sim-log.jsonl"
    with running_simulator(sim_settings(sim_defaults, log_path=str(log)), sim_catalog) as sim:
        yield sim.base_url, log


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_cli(
    args: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`lavabench ...` as a user runs it: a fresh process, the real HTTP stack."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("LAVA_", "FIREWORKS_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lavabench", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_in_process(
    args: list[str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`lavabench ...` through the same `lavabench.cli.main` in this process, for commands
    that read and write files (compare, report, history, reconcile, summary): the exit code
    and output a user sees, without a new interpreter importing the data stack (~2-3 s of
    CPU per call on 2 cores). Not for `run`: Hydra configures logging and the runner
    installs signal handlers, so runs stay fresh processes (run_cli)."""
    import contextlib
    import io

    from lavabench.cli import main

    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith(("LAVA_", "FIREWORKS_"))]:
        del os.environ[key]
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except SystemExit as exc:  # argparse: --help, a usage error
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def terminate_once_writing(
    proc: subprocess.Popen[str], parts_dir: Path, pattern: str = "part-*.parquet"
) -> tuple[str, str]:
    """SIGTERM a running `lavabench run` once it has written rows (a fixed sleep raced
    start-up on a loaded machine); returns its (stdout, stderr)."""
    import signal
    import time

    deadline = time.monotonic() + 90
    while not list(parts_dir.glob(pattern)):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never wrote rows"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=90)
