"""`lavabench run` as a Hydra app: the config checked before Hydra makes a run directory,
then one run (or one job of a `-m` sweep) per Hydra job.

Hydra's decorator lives here, not in cli.py, so `lavabench --help` loads no Hydra."""

from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lavabench.commands.run.command import run_benchmark
from lavabench.commands.sweep import last_manifest, run_job
from lavabench.config import CONF_DIR, compose, register_schemas
from lavabench.errors import ConfigError, LavabenchError, StoreError
from lavabench.exit_codes import EXIT_ERROR
from lavabench.records.sweep_dirs import (
    format_manifest,
    sweep_exit_code,
)

_exit_code = 0


def main(overrides: list[str]) -> int:
    global _exit_code
    _exit_code = 0
    if "--dry-run" in overrides:
        overrides = [o for o in overrides if o != "--dry-run"] + ["runner.dry_run=true"]
    if not {"-m", "--multirun"} & set(overrides):
        _precheck_run(overrides)
    register_schemas()
    saved_argv = sys.argv
    sys.argv = ["lavabench-run", *overrides]
    try:
        _hydra_run()
    finally:
        sys.argv = saved_argv
    manifest = last_manifest()
    if manifest:  # a sweep: its jobs may have run in other processes; the manifest knows
        print(format_manifest(manifest))
        print(f"manifest: {manifest['path']}")
        print(f"report:   lavabench report {Path(manifest['path']).parent}")
        return sweep_exit_code(manifest)
    return _exit_code


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_run(cfg: DictConfig) -> int:
    """One run, or one job of a sweep (then wrapped so a failure is reported, not raised)."""
    global _exit_code
    from hydra.types import RunMode

    hydra_conf = HydraConfig.get()
    run_dir = Path(hydra_conf.runtime.output_dir)
    if hydra_conf.mode == RunMode.MULTIRUN:
        overrides = list(hydra_conf.overrides.task)
        code = run_job(run_dir, hydra_conf.job.num, overrides, lambda: run_benchmark(cfg, run_dir))
    else:
        try:
            code = run_benchmark(cfg, run_dir)
        except LavabenchError as exc:
            print(f"lavabench: error: {exc}", file=sys.stderr)
            code = EXIT_ERROR
    _exit_code = max(_exit_code, code)
    return code


def _precheck_run(overrides: list[str]) -> None:
    """Config errors and an unwritable results directory as clear errors (exit 2), before
    Hydra creates the run directory (its own failure there is a traceback)."""
    try:
        cfg = compose([o for o in overrides if not o.startswith(("hydra.", "hydra/"))])
    except ConfigError as exc:
        raise _explain_unknown_key(exc) from None
    results = Path(str(cfg.results_dir))
    if cfg.resume and not (results / str(cfg.resume)).is_dir():
        raise ConfigError(
            f"resume={cfg.resume}: no run directory {results / str(cfg.resume)}; give the id "
            f"of a run under {results}/"
        )
    try:
        results.mkdir(parents=True, exist_ok=True)
        probe = results / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreError(
            f"results_dir={results}: cannot write there ({exc.strerror or exc}); "
            "set results_dir= to a writable directory"
        ) from None


def _explain_unknown_key(exc: ConfigError) -> ConfigError:
    """Hydra answers a mistyped key with "use +key=... to append": suggest the real key."""
    match = re.search(r"Could not override '([^']+)'", str(exc))
    if match is None:
        return exc
    key = match.group(1)
    known = _dotted_keys(OmegaConf.to_container(compose([]), resolve=False))
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else "see conf/config.yaml for the keys"
    return ConfigError(f"{key}: not a config key ({hint})")


def _dotted_keys(node: object, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix.rstrip(".")]
    keys: list[str] = []
    for name, value in node.items():
        keys += _dotted_keys(value, f"{prefix}{name}.") if name != "hydra" else []
    return keys
