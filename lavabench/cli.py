"""Command line: `lavabench run|sim|summary|models`. The only module that wires parts together.

`run` is a Hydra app (overrides, `-m` sweeps) whose work is in run_command.py; `sim`
composes the same config with Hydra's compose API (no output directory for a server). Every
LavabenchError becomes exit code 2 with its message; a run stopped by an auth or billing
error (or the budget) keeps what it recorded and exits 3; an interrupted run (Ctrl-C,
SIGTERM) keeps what finished and exits 130.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from lavabench import __version__
from lavabench.analysis import per_model_summary
from lavabench.catalog import catalog_from_mapping
from lavabench.config import CONF_DIR, plain, register_schemas
from lavabench.display import print_summary
from lavabench.errors import ConfigError, LavabenchError, StoreError
from lavabench.manifest import expand_run_dirs, format_manifest, is_sweep_dir, sweep_exit_code
from lavabench.run_command import EXIT_ERROR, catalog_for_sim, resolve_data_path, run_benchmark
from lavabench.store import read_records
from lavabench.sweep import last_manifest, run_job

USAGE = """usage: lavabench COMMAND [ARGS]

commands:
  run [OVERRIDES]      benchmark models (Hydra overrides, e.g. model=[gpt-oss-20b,glm-5]
                       endpoint=lava runner.concurrency=32; sweeps with -m)
  sim [OVERRIDES]      run the simulator alone (sim.* overrides; --port N, --host H)
  summary RUN_DIR      print the per-model table of a finished (or crashed) run
  models [OVERRIDES]   list the catalog with prices
  report RUN_DIR [RUN_DIR ...] | --latest
                       figures, index.html, summary.md/json in <first RUN_DIR>/report/
  pick RUN_DIR --min-quality Q [--dataset D] [--max-p90-ttft S] [--max-p90-e2e S]
                       cheapest model that is good enough; exit 0 found, 1 none qualifies
  history add RUN_DIR [--dir D] | history list [--dir D]
                       append a run to the Parquet history (idempotent) / list its nights
  compare --baseline (RUN_DIR|history[:N]) --current RUN_DIR [--markdown F] [--json F]
                       regression gates (statistics.md); exit 1 regressed, 2 invalid run
  reconcile RUN_DIR [--wait S] [--tolerance T]
                       read back what Lava billed for the run ($LAVA_SECRET_KEY); exit 1 on
                       mismatch or unmatched requests
  data pull NAME       fetch built-in dataset NAME (conf/dataset/NAME.yaml) into the cache
                       ($LAVABENCH_DATA_CACHE; copied from $LAVABENCH_DATA_MIRROR if set)
"""

_exit_code = 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if args[0] in ("--version", "version"):
        print(f"lavabench {__version__}")
        return 0
    command, rest = args[0], args[1:]
    commands = {
        "run": _cmd_run,
        "sim": _cmd_sim,
        "summary": _cmd_summary,
        "models": _cmd_models,
        "report": _cmd_report,
        "pick": _cmd_pick,
        "data": _cmd_data,
        "history": _cmd_history,
        "compare": _cmd_compare,
        "reconcile": _cmd_reconcile,
    }
    if command not in commands:
        print(f"lavabench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return commands[command](rest)
    except LavabenchError as exc:
        print(f"lavabench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


# --- run ---------------------------------------------------------------------------------


def _cmd_run(overrides: list[str]) -> int:
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


# --- sim, summary, models ----------------------------------------------------------------


def _precheck_run(overrides: list[str]) -> None:
    """Config errors and an unwritable results directory as clear errors (exit 2), before
    Hydra creates the run directory (its own failure there is a traceback)."""
    try:
        cfg = _compose([o for o in overrides if not o.startswith(("hydra.", "hydra/"))])
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
    known = _dotted_keys(OmegaConf.to_container(_compose([]), resolve=False))
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


def _compose(overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"{exc} (config directory: {CONF_DIR})") from exc


def _cmd_sim(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lavabench sim")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    opts, overrides = parser.parse_known_args(args)
    cfg = _compose(overrides)
    catalog = catalog_from_mapping(plain(cfg.catalog))
    from lavabench.sim.server import serve
    from lavabench.sim.settings import SimSettings

    sim_settings = plain(cfg.sim)
    sim_settings["answer_keys"] = [
        str(resolve_data_path(p)) for p in sim_settings.get("answer_keys") or []
    ]
    try:
        settings = SimSettings.from_mapping(sim_settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc

    def ready(url: str) -> None:
        print(f"lavabench simulator listening on {url}", flush=True)
        print(f"  gateway path:   {url}/v1/forward?u=...   (endpoint=lava endpoint.base_url={url})")
        print(
            f"  Fireworks path: {url}/inference/v1   (endpoint=direct endpoint.base_url={url}/inference/v1)",
            flush=True,
        )

    serve(settings, catalog_for_sim(catalog), host=opts.host, port=opts.port, on_ready=ready)
    return 0


def _cmd_summary(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lavabench summary")
    parser.add_argument("run_dir", type=Path)
    opts = parser.parse_args(args)
    for run_dir in expand_run_dirs([opts.run_dir]):
        print_summary(per_model_summary(read_records(run_dir)), title=str(run_dir))
    return 0


def _cmd_models(overrides: list[str]) -> int:
    catalog = catalog_from_mapping(plain(_compose(overrides).catalog))
    print(f"prices read on {catalog.prices_read_on} ({catalog.prices_source})")
    for name, m in catalog.models.items():
        cached = "-" if m.price.cached_input is None else str(m.price.cached_input)
        flags = ",".join(f for f, on in (("reasoning", m.reasoning), ("vision", m.vision)) if on)
        print(
            f"{name:28s} in {m.price.input!s:>6} out {m.price.output!s:>6} cached {cached:>6}"
            f"  ctx {m.context_length:>8}  {flags}"
        )
    return 0


# --- report, pick --------------------------------------------------------------------------


def _latest_run_dir(results: Path) -> Path:
    """The newest run (or sweep) directory under results/ that has records."""
    runs = [
        d
        for d in results.iterdir()
        if d.is_dir() and ((d / "records.parquet").exists() or (d / "records.parts").is_dir()
                           or is_sweep_dir(d))
    ] if results.is_dir() else []  # fmt: skip
    if not runs:
        raise ConfigError(f"no run with records under {results}")

    # The records' own mtime: writing report/ into a run directory must not make it "newest".
    def written(d: Path) -> float:
        if is_sweep_dir(d):
            return (d / "manifest.json").stat().st_mtime
        records = d / "records.parquet"
        return (records if records.exists() else d / "records.parts").stat().st_mtime

    return max(runs, key=lambda d: (written(d), d.name))


def _cmd_report(args: list[str]) -> int:
    from lavabench.analysis import read_runs
    from lavabench.report import write_report

    parser = argparse.ArgumentParser(prog="lavabench report")
    parser.add_argument("run_dirs", type=Path, nargs="*")
    parser.add_argument("--latest", action="store_true", help="newest run under --results")
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--min-quality", type=float, default=0.85)
    parser.add_argument("--max-p90-ttft", type=float, default=None)
    parser.add_argument("--max-p90-e2e", type=float, default=None)
    parser.add_argument(
        "--history", type=Path, nargs="?", const=Path("results/history"), default=None,
        help="add nightly trend figures from this history (default results/history)",
    )  # fmt: skip
    opts = parser.parse_args(args)
    run_dirs = list(opts.run_dirs) or ([_latest_run_dir(opts.results)] if opts.latest else [])
    if not run_dirs:
        parser.error("give RUN_DIR ... or --latest")
    page = write_report(
        read_runs(expand_run_dirs(run_dirs)),
        run_dirs[0] / "report",
        run_dirs=expand_run_dirs(run_dirs),
        min_quality=opts.min_quality,
        max_p90_ttft_s=opts.max_p90_ttft,
        max_p90_e2e_s=opts.max_p90_e2e,
        history_dir=opts.history,
    )
    print(page)
    return 0


def _cmd_pick(args: list[str]) -> int:
    from lavabench.analysis import cost_table, prepare, read_runs
    from lavabench.pick import format_pick, pick_model, verdict_gate

    parser = argparse.ArgumentParser(prog="lavabench pick")
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--min-quality", type=float, required=True)
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--max-p90-ttft", type=float, default=None, help="seconds")
    parser.add_argument("--max-p90-e2e", type=float, default=None, help="seconds")
    parser.add_argument(
        "--allow-invalid", action="store_true", help="decide even on a run whose verdict is invalid"
    )
    opts = parser.parse_args(args)
    run_dirs = expand_run_dirs(opts.run_dirs)
    runs = read_runs(run_dirs)
    lines, refuse = verdict_gate(
        runs.infos, [str(d) for d in run_dirs], allow_invalid=opts.allow_invalid
    )
    print("\n".join(lines))
    if refuse:
        print(f"lavabench: error: {refuse}", file=sys.stderr)
        return EXIT_ERROR
    prepared = prepare(runs.rows)
    if opts.dataset is not None:
        prepared = prepared[prepared["dataset"] == opts.dataset]
    result = pick_model(
        prepared,
        cost_table(prepared),
        min_quality=opts.min_quality,
        max_p90_ttft_s=opts.max_p90_ttft,
        max_p90_e2e_s=opts.max_p90_e2e,
        dataset=opts.dataset,
    )
    print(format_pick(result))
    return 0 if result.pick is not None else 1


def _cmd_data(args: list[str]) -> int:
    """`data pull NAME [--cache-dir DIR]`: download and verify a built-in dataset."""
    from omegaconf import OmegaConf

    from lavabench.dataset_pull import pull

    parser = argparse.ArgumentParser(prog="lavabench data")
    parser.add_argument("action", choices=["pull"])
    parser.add_argument("name")
    parser.add_argument("--cache-dir", default=None)
    opts = parser.parse_args(args)
    spec_file = CONF_DIR / "dataset" / f"{opts.name}.yaml"
    if not spec_file.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "dataset").glob("*.yaml"))
        print(f"lavabench: unknown dataset {opts.name!r}; known: {known}", file=sys.stderr)
        return EXIT_ERROR
    source = OmegaConf.to_container(OmegaConf.load(spec_file)).get("source")  # type: ignore[union-attr]
    if not source:
        print(f"lavabench: dataset {opts.name!r} has no source to pull", file=sys.stderr)
        return EXIT_ERROR
    for path in pull(source, cache_dir=opts.cache_dir):
        print(path)
    return 0


# --- history, compare, reconcile -------------------------------------------------------------


def _cmd_history(args: list[str]) -> int:
    """`history add RUN_DIR` / `history list`: the nightly Parquet dataset (lavabench/history.py)."""
    from lavabench.history import add_run, history_runs

    parser = argparse.ArgumentParser(prog="lavabench history")
    parser.add_argument("action", choices=["add", "list"])
    parser.add_argument("run_dirs", type=Path, nargs="*")
    parser.add_argument("--dir", type=Path, default=Path("results/history"))
    opts = parser.parse_args(args)
    if opts.action == "list":
        print(history_runs(opts.dir).to_string(index=False))
        return 0
    if not opts.run_dirs:
        parser.error("history add needs RUN_DIR")
    for run_dir in expand_run_dirs(opts.run_dirs):
        files = add_run(run_dir, opts.dir)
        print(f"{run_dir}: {len(files)} partition file(s) in {opts.dir}")
    return 0


def _cmd_compare(args: list[str]) -> int:
    """Baseline vs current with the gates of statistics.md; exit 1 when a gating row regressed."""
    from lavabench.compare import compare, load_compare_config
    from lavabench.compare_output import load_baseline, load_run, to_json, to_markdown

    parser = argparse.ArgumentParser(prog="lavabench compare")
    parser.add_argument("--baseline", required=True, help="RUN_DIR, history or history[:N]")
    parser.add_argument("--current", required=True, type=Path)
    parser.add_argument("--history-dir", type=Path, default=Path("results/history"))
    parser.add_argument("--config", type=Path, default=CONF_DIR / "compare.yaml")
    parser.add_argument("--markdown", type=Path, default=None, help="also write (append) here")
    parser.add_argument("--json", type=Path, default=None, help="write the JSON here")
    parser.add_argument("--allow-invalid", action="store_true")
    opts = parser.parse_args(args)
    config = load_compare_config(opts.config)
    current = load_run(opts.current)
    baseline = load_baseline(opts.baseline, opts.history_dir, tuple(current.verdicts))
    verdicts = {**baseline.verdicts, **current.verdicts}
    invalid = [run for run, v in verdicts.items() if v == "invalid"]
    if invalid and not opts.allow_invalid:
        print(
            f"lavabench: compare refused: run(s) {', '.join(invalid)} have measurement verdict "
            "'invalid' (see run.json health); fix the setup or pass --allow-invalid",
            file=sys.stderr,
        )
        return EXIT_ERROR
    result = compare(
        baseline.rows,
        current.rows,
        config,
        baseline_label=baseline.label,
        current_label=current.label,
        verdicts=verdicts,
    )
    markdown = to_markdown(result)
    print(markdown)
    if opts.markdown is not None:
        with opts.markdown.open("a") as fh:
            fh.write(markdown)
    if opts.json is not None:
        opts.json.write_text(to_json(result))
    return result.exit_code


def _cmd_reconcile(args: list[str]) -> int:
    """Read back Lava's billing records for a run and match them to ours (reconcile.py)."""
    from lavabench.reconcile import format_reconcile, reconcile_run

    parser = argparse.ArgumentParser(prog="lavabench reconcile")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--base-url", default=None, help="gateway URL (default: run.json)")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for pending")
    parser.add_argument("--tolerance", type=float, default=0.01, help="relative cost tolerance")
    opts = parser.parse_args(args)
    report = reconcile_run(
        opts.run_dir,
        secret_key=os.environ.get("LAVA_SECRET_KEY", ""),
        base_url=opts.base_url,
        wait_s=opts.wait,
        tolerance=opts.tolerance,
    )
    print(format_reconcile(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
