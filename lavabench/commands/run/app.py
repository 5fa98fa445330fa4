"""`lavabench run` as a Hydra app: the config checked before Hydra makes a run directory,
then one run (or one job of a `-m` sweep) per Hydra job. One run composes its config once
(`_run_one`); a sweep and Hydra's own flags go through Hydra's main.

Hydra's own flags (`--help`, `--hydra-help`, `--cfg job|hydra|all`, `--resolve`, `--info`,
`--shell-completion`, `--multirun`) reach Hydra as on any Hydra app: the arguments are split
with Hydra's own parser, and only the overrides are checked here. The help text is
conf/hydra/help/lavabench.yaml. Hydra's decorator lives here, not in cli.py, so
`lavabench --help` loads no Hydra."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lavabench.config import CONF_DIR, compose, register_schemas
from lavabench.errors import ConfigError, LavabenchError, StoreError
from lavabench.exit_codes import EXIT_ERROR, OK

_exit_code = 0


def main(args: list[str]) -> int:
    global _exit_code
    _exit_code = 0
    if "--dry-run" in args:
        args = [a for a in args if a != "--dry-run"] + ["runner.dry_run=true"]
    try:
        flags = _hydra_flags(args)
    except SystemExit as exc:  # argparse printed the usage error (e.g. `--cfg nonsense`)
        return _code(exc)
    _check_flag_combination(flags)
    register_schemas()
    if not _custom_config(flags) and not flags.multirun:
        if not _shows_only(flags):
            return _run_one(flags.overrides)
        if not (flags.shell_completion or flags.hydra_help):  # their overrides are commands
            _check_overrides(flags.overrides)
    saved_argv, saved_line = sys.argv, os.environ.get("COMP_LINE")
    # argv[0] names the program in Hydra's shell-completion script: `lavabench`, the command
    # the user types (cli.py sends `lavabench -sc ...` back here)
    sys.argv = ["lavabench", *args]
    if saved_line is not None:
        os.environ["COMP_LINE"] = _strip_run_word(saved_line)
    try:
        _hydra_run()
    except SystemExit as exc:  # --help, --cfg, --info ... end with sys.exit; errors too
        code = _code(exc)
        # Hydra reports its own errors with exit 1, which is "decided no" for lavabench
        return EXIT_ERROR if code != OK and _shows_only(flags) else code
    finally:
        sys.argv = saved_argv
        if saved_line is not None:
            os.environ["COMP_LINE"] = saved_line
    if _shows_only(flags):
        return OK
    # imported here: `--help` and `--cfg` need none of the run's machinery (~2 s of imports)
    from lavabench.commands.sweep import last_manifest
    from lavabench.records.sweep_dirs import format_manifest, sweep_exit_code

    manifest = last_manifest()
    if manifest:  # a sweep: its jobs may have run in other processes; the manifest knows
        print(format_manifest(manifest))
        print(f"manifest: {manifest['path']}")
        print(f"report:   lavabench report {Path(manifest['path']).parent}")
        return sweep_exit_code(manifest)
    return _exit_code


def _job(cfg: DictConfig) -> int:
    """One run, or one job of a sweep (then wrapped so a failure is reported, not raised)."""
    global _exit_code
    from lavabench.commands.run.command import run_benchmark
    from lavabench.commands.sweep import run_job

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


# Sweeps, Hydra's own flags and another config directory go through Hydra's main as on any
# Hydra app; one run goes through _run_one (the same steps, composed once)
_hydra_run = hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")(_job)


def _run_one(overrides: list[str]) -> int:
    """One run (no -m): the config composed once, checked, then run as Hydra's main runs it.

    Hydra's main composes the config twice (once to read `hydra.mode`, once to run), and the
    check before it a third time: ~0.5 s of CPU each, a third of a small run's CPU. Here
    Hydra's loader composes it once with the hydra node, so the check and the run read the
    same config; Hydra's run_job then makes the run directory, writes .hydra/ and sets up
    logging exactly as `Hydra.run` does (hydra-core 1.3)."""
    import hydra._internal.hydra as hydra_internal
    from hydra._internal.utils import create_automatic_config_search_path, run_and_report
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import configure_log

    search_path = create_automatic_config_search_path(__file__, None, str(CONF_DIR))
    # task name "app", as hydra.main names it after this file (config sets hydra.job.name)
    app = hydra_internal.Hydra.create_main_hydra2(task_name="app", config_search_path=search_path)
    try:
        cfg = _compose_for_run(app, overrides)
        _precheck_run(cfg)
        # what Hydra.compose_config(with_log_configuration=True) does after composing
        configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose)
        hydra_internal.log = logging.getLogger(hydra_internal.__name__)
        app._print_debug_info("config", overrides, RunMode.RUN)
        run_and_report(lambda: _run_composed(app, cfg))
    except SystemExit as exc:  # Hydra reports a failed job (a traceback) with exit 1
        return _code(exc)
    finally:
        GlobalHydra.instance().clear()
    return _exit_code


def _compose_for_run(app: Any, overrides: list[str]) -> DictConfig:
    """The run's config with its hydra node; a bad key or value as a clear error (exit 2)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    def composed(overrides: list[str]) -> DictConfig:
        # from_shell=False: the error messages of the compose API the check used before
        return app.compose_config(
            config_name="config", overrides=overrides, run_mode=RunMode.RUN, from_shell=False
        )

    try:
        # `hydra.mode=RUN` as Hydra's main adds it when the config does not set the mode
        return composed([*overrides, "hydra.mode=RUN"])
    except (HydraException, OmegaConfBaseException) as exc:
        error = ConfigError(f"{exc} (config directory: {CONF_DIR})")
        raise _explain_unknown_key(error, lambda: composed([])) from None


def _run_composed(app: Any, cfg: DictConfig) -> None:
    """The body of hydra-core 1.3's `Hydra.run` after its compose."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.utils import run_job
    from hydra.types import HydraContext

    callbacks = Callbacks(cfg)
    callbacks.on_run_start(config=cfg, config_name="config")
    ret = run_job(
        hydra_context=HydraContext(config_loader=app.config_loader, callbacks=callbacks),
        task_function=_job,
        config=cfg,
        job_dir_key="hydra.run.dir",
        job_subdir_key=None,
        configure_logging=True,
    )
    callbacks.on_run_end(config=cfg, config_name="config", job_return=ret)
    _ = ret.return_value  # raises the job's exception, for run_and_report to report


def _hydra_flags(args: list[str]) -> argparse.Namespace:
    """The arguments as Hydra reads them: its flags, and the overrides left over."""
    from hydra._internal.utils import get_args_parser

    parser = get_args_parser()
    parser.prog = "lavabench run"
    return parser.parse_args(args)


def _shows_only(flags: argparse.Namespace) -> bool:
    """Hydra prints something and runs nothing: no run directory, no precheck of it."""
    return bool(flags.help or flags.hydra_help or flags.cfg or flags.info or flags.shell_completion)


def _check_flag_combination(flags: argparse.Namespace) -> None:
    """What Hydra refuses with a traceback, refused here with a sentence (exit 2)."""
    if flags.multirun and _shows_only(flags):
        raise ConfigError(
            "--multirun runs a sweep; --cfg, --info and --shell-completion show one config: "
            "drop -m to see the config of one job (give one value per key)"
        )
    if flags.resolve and not (flags.cfg or flags.help):
        raise ConfigError("--resolve goes with --cfg job|hydra|all (or --help)")


def _custom_config(flags: argparse.Namespace) -> bool:
    """Another config directory or name: only Hydra knows what composes, so it checks."""
    return any((flags.config_path, flags.config_name, flags.config_dir, flags.experimental_rerun))


def _strip_run_word(line: str) -> str:
    """`lavabench run x=` -> `lavabench x=`: Hydra's completion drops only the program name."""
    words = line.split(" ")
    if len(words) > 1 and words[1] == "run":
        return " ".join(words[:1] + words[2:])
    return line


def _code(exc: SystemExit) -> int:
    return exc.code if isinstance(exc.code, int) else (OK if exc.code is None else EXIT_ERROR)


def _check_overrides(overrides: list[str]) -> DictConfig:
    """Before Hydra shows a config: a mistyped key or a bad value as a clear error (exit 2)."""
    try:
        return compose([o for o in overrides if not o.startswith(("hydra.", "hydra/"))])
    except ConfigError as exc:
        raise _explain_unknown_key(exc) from None


def _precheck_run(cfg: DictConfig) -> None:
    """An unknown resume id and an unwritable results directory as clear errors (exit 2),
    before Hydra creates the run directory (its own failure there is a traceback)."""
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


def _explain_unknown_key(
    exc: ConfigError, defaults: Callable[[], DictConfig] = lambda: compose([])
) -> ConfigError:
    """Hydra answers a mistyped key with "use +key=... to append": suggest the real key
    (one of those in `defaults()`, the config composed without overrides)."""
    match = re.search(r"Could not override '([^']+)'", str(exc))
    if match is None:
        return exc
    key = match.group(1)
    known = _dotted_keys(OmegaConf.to_container(defaults(), resolve=False))
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
