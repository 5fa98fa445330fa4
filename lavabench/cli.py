"""Command line: `lavabench run|sim|summary|models`. The only module that wires parts together.

`run` is a Hydra app (overrides, `-m` sweeps); `sim` composes the same config with Hydra's
compose API (no output directory for a server). Every LavabenchError becomes exit code 2
with its message; a run stopped by an auth or billing error keeps what it recorded and exits
3; an interrupted run (Ctrl-C) keeps what finished and exits 130.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from lavabench import __version__
from lavabench.analysis import per_model_summary
from lavabench.catalog import Catalog, Model, catalog_from_mapping
from lavabench.client import HttpClient, WireRequest
from lavabench.config import CONF_DIR, LavabenchConf, load_config, plain, register_schemas
from lavabench.datasets import DatasetSpec, Prompt, dataset_sha256, load_prompts
from lavabench.display import RunProgress, print_summary
from lavabench.endpoints import Endpoint, resolve_endpoint
from lavabench.errors import ConfigError, LavabenchError
from lavabench.grading import Grade, check_grader
from lavabench.pacing import rate_cap
from lavabench.plan import Job, plan_jobs
from lavabench.records import SCHEMA_VERSION, Record
from lavabench.redaction import redact_mapping, redact_text
from lavabench.runner import Runner, RunOutcome, RunSettings
from lavabench.store import RecordWriter, read_records, write_run_json
from lavabench.wire import chat_body

log = logging.getLogger("lavabench")

EXIT_ERROR = 2
EXIT_STOPPED = 3
EXIT_INTERRUPTED = 130
PROJECT_DIR = CONF_DIR.parent
USAGE = """usage: lavabench COMMAND [ARGS]

commands:
  run [OVERRIDES]      benchmark models (Hydra overrides, e.g. model=[gpt-oss-20b,glm-5]
                       endpoint=lava runner.concurrency=32; sweeps with -m)
  sim [OVERRIDES]      run the simulator alone (sim.* overrides; --port N, --host H)
  summary RUN_DIR      print the per-model table of a finished (or crashed) run
  models [OVERRIDES]   list the catalog with prices
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
    commands = {"run": _cmd_run, "sim": _cmd_sim, "summary": _cmd_summary, "models": _cmd_models}
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
    register_schemas()
    saved_argv = sys.argv
    sys.argv = ["lavabench-run", *overrides]
    try:
        _hydra_run()
    finally:
        sys.argv = saved_argv
    return _exit_code


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _hydra_run(cfg: DictConfig) -> None:
    global _exit_code
    try:
        code = run_benchmark(cfg, Path(HydraConfig.get().runtime.output_dir))
    except LavabenchError as exc:
        print(f"lavabench: error: {exc}", file=sys.stderr)
        code = EXIT_ERROR
    _exit_code = max(_exit_code, code)


def resolve_data_path(path: str) -> Path:
    """Relative paths resolve against the working directory, then the project directory."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    return (PROJECT_DIR / candidate).resolve()


def run_benchmark(cfg: DictConfig, run_dir: Path) -> int:
    """Check everything, then run; returns the exit code. Nothing is sent before the checks."""
    conf = load_config(cfg)
    catalog = catalog_from_mapping(plain(cfg.catalog))
    models = catalog.select(conf.model)
    dataset_conf = plain(cfg.dataset)
    if dataset_conf.get("path"):
        dataset_conf["path"] = str(resolve_data_path(dataset_conf["path"]))
    spec = DatasetSpec.from_mapping(dataset_conf, base_dir=PROJECT_DIR)
    grader = check_grader(spec.grader, spec.grader_options)
    prompts = load_prompts(spec)
    for prompt in prompts:  # a reference the grader cannot read fails now, not after paying
        if prompt.reference is not None:
            grader("", prompt.reference, spec.grader_options)
    jobs = plan_jobs(
        models, prompts, repeats=conf.runner.repeats, warmup_per_model=conf.runner.warmup_requests
    )
    from hydra.types import RunMode

    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    run_id = f"{run_dir.parent.name}-{run_dir.name}" if multirun else run_dir.name
    with _endpoint_for_run(conf, cfg, catalog, spec) as endpoint:
        metadata = _run_metadata(conf, cfg, catalog, models, spec, prompts, run_id, endpoint)
        writer = RecordWriter(
            run_dir,
            metadata={"run": json.dumps(metadata, sort_keys=True, default=str)},
            flush_rows=conf.records.flush_rows,
            flush_interval_s=conf.records.flush_interval_s,
        )
        write_run_json(run_dir, {**metadata, "status": "running"})
        log.info("run %s: %d requests to %s -> %s", run_id, len(jobs), endpoint.kind, run_dir)
        status, outcome = "failed", RunOutcome()
        try:
            outcome = _run_loop(conf, run_id, endpoint, jobs, writer, _grade_fn(grader, spec))
            status = "stopped" if outcome.fatal else "completed"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            records_path = writer.close()
            write_run_json(
                run_dir,
                {
                    **metadata,
                    "status": status,
                    "finished_at": datetime.now(UTC).isoformat(),
                    "requests_planned": len(jobs),
                    "rows_written": outcome.written,
                    "errors": outcome.errors,
                    "not_started": outcome.not_started,
                    "cancelled_in_flight": outcome.cancelled_in_flight,
                    "elapsed_s": round(outcome.elapsed_s, 3),
                    "fatal_error": None
                    if outcome.fatal is None
                    else redact_text(str(outcome.fatal), _secrets(endpoint)),
                },
            )
    table = read_records(run_dir)
    sim_note = " (simulated)" if conf.endpoint.kind == "sim" else ""
    print_summary(per_model_summary(table), title=f"lavabench run {run_id}{sim_note}")
    print(f"records: {records_path}")
    print(f"run:     {run_dir / 'run.json'}")
    if status == "interrupted":
        print("interrupted: rows that finished are saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    if outcome.fatal is not None:
        print(
            f"lavabench: run stopped: {redact_text(str(outcome.fatal), _secrets(endpoint))}\n"
            f"  {outcome.written} rows saved, {outcome.not_started} requests not sent.",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    return 0


@contextlib.contextmanager
def _endpoint_for_run(
    conf: LavabenchConf, cfg: DictConfig, catalog: Catalog, spec: DatasetSpec
) -> Iterator[Endpoint]:
    """Resolve credentials first; for endpoint=sim also start (and later stop) the simulator."""
    settings = conf.endpoint
    if settings.kind != "sim":
        yield resolve_endpoint(settings, os.environ)
        return
    from lavabench.sim.process import running_simulator

    sim_settings = plain(cfg.sim)
    keys = [str(resolve_data_path(p)) for p in sim_settings.get("answer_keys") or []]
    sim_settings["answer_keys"] = sorted({*keys, spec.path})
    with running_simulator(sim_settings, _catalog_for_sim(catalog)) as sim:
        yield resolve_endpoint(settings, os.environ, base_url=sim.base_url)


def _catalog_for_sim(catalog: Catalog) -> dict[str, dict[str, Any]]:
    return {m.name: {"id": m.id, "reasoning": m.reasoning} for m in catalog.models.values()}


def _run_loop(
    conf: LavabenchConf,
    run_id: str,
    endpoint: Endpoint,
    jobs: list[Job],
    writer: RecordWriter,
    grade: Any,
) -> RunOutcome:
    settings = RunSettings(
        run_id=run_id,
        endpoint=endpoint.kind,
        concurrency=conf.runner.concurrency,
        max_tokens=conf.runner.max_tokens,
        stream=conf.runner.stream,
        keep_text=conf.records.response_text,
        retry=conf.runner.retry,
    )
    make_request = _request_factory(conf, endpoint, run_id)

    async def go() -> RunOutcome:
        client = HttpClient(max_connections=conf.runner.concurrency, timeouts=conf.runner.timeouts)
        try:
            with RunProgress(len(jobs)) as progress:
                runner = Runner(
                    settings,
                    client=client,
                    make_request=make_request,
                    sink=writer,
                    rate=rate_cap(conf.runner.rate),
                    grade=grade,
                    observer=progress,
                )
                return await runner.run(jobs)
        finally:
            await client.aclose()

    with asyncio.Runner(loop_factory=_loop_factory()) as loop_runner:
        return loop_runner.run(go())


def _loop_factory() -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return None
    return uvloop.new_event_loop


def _request_factory(conf: LavabenchConf, endpoint: Endpoint, run_id: str) -> Any:
    headers_by_model: dict[tuple[str, str], dict[str, str]] = {}

    def make_request(job: Job) -> WireRequest:
        key = (job.model.name, job.prompt.dataset)
        headers = headers_by_model.get(key)
        if headers is None:
            headers = endpoint.headers_for(run_id=run_id, model=key[0], dataset=key[1])
            headers_by_model[key] = headers
        params = dict(conf.runner.params)
        if conf.runner.seed is not None:
            params["seed"] = conf.runner.seed + job.repeat
        body = chat_body(
            model_id=job.model.id,
            messages=job.prompt.message_dicts(),
            max_tokens=conf.runner.max_tokens,
            stream=conf.runner.stream,
            params=params,
        )
        return WireRequest(url=endpoint.url, headers=headers, body=body, stream=conf.runner.stream)

    return make_request


def _grade_fn(grader: Any, spec: DatasetSpec) -> Any:
    def grade(job: Job, record: Record, answer_text: str) -> None:
        if job.prompt.reference is None:
            return
        result: Grade = grader(answer_text, job.prompt.reference, spec.grader_options)
        record.grader = spec.grader
        record.correct = result.correct
        record.score = result.score
        record.extracted_answer = result.extracted

    return grade


def _secrets(endpoint: Endpoint) -> list[str]:
    return [endpoint.credential] if endpoint.credential else []


def _run_metadata(
    conf: LavabenchConf,
    cfg: DictConfig,
    catalog: Catalog,
    models: list[Model],
    spec: DatasetSpec,
    prompts: list[Prompt],
    run_id: str,
    endpoint: Endpoint,
) -> dict[str, Any]:
    """What run.json and the Parquet metadata say about the run. Never holds a credential."""
    config = plain(cfg)
    config.pop("hydra", None)
    return redact_mapping(
        {
            "run_id": run_id,
            "lavabench_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "started_at": datetime.now(UTC).isoformat(),
            "endpoint": {"kind": endpoint.kind, "url": endpoint.url},
            "simulated": endpoint.kind == "sim",
            "models": [m.name for m in models],
            "dataset": {
                "name": spec.name,
                "path": spec.path,
                "sha256": dataset_sha256(spec.path),
                "items": len(prompts),
            },
            "prices": catalog.prices_table([m.name for m in models]),
            "prices_source": catalog.prices_source,
            "config": config,
        },
        _secrets(endpoint),
    )


# --- sim, summary, models ----------------------------------------------------------------


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

    serve(settings, _catalog_for_sim(catalog), host=opts.host, port=opts.port, on_ready=ready)
    return 0


def _cmd_summary(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lavabench summary")
    parser.add_argument("run_dir", type=Path)
    opts = parser.parse_args(args)
    print_summary(per_model_summary(read_records(opts.run_dir)), title=str(opts.run_dir))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
