"""`lavabench summary|models|report|pick`: read finished runs, print tables, write the report, decide.

The data path (pandas, pyarrow, matplotlib, scipy) is imported inside each command, after
its arguments parse, so `--help` answers at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lavabench.errors import ConfigError
from lavabench.exit_codes import EXIT_ERROR
from lavabench.records.sweep_dirs import expand_run_dirs, is_sweep_dir


def summary_main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lavabench summary",
        description="Print the per-model table of a finished (or crashed) run or sweep.",
    )
    parser.add_argument("run_dir", type=Path, help="results/<run_id> or a sweep directory")
    opts = parser.parse_args(args)
    from lavabench.analysis.tables import per_model_summary
    from lavabench.records.reader import read_columns
    from lavabench.report.terminal import print_summary

    for run_dir in expand_run_dirs([opts.run_dir]):
        print_summary(per_model_summary(read_columns(run_dir)), title=str(run_dir))
    return 0


def models_main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lavabench models",
        description="List the catalog's models with prices (USD per 1M tokens) and context.",
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. catalog=fireworks (conf/catalog/)"
    )
    overrides = parser.parse_args(args).overrides
    from lavabench.catalog import catalog_from_mapping
    from lavabench.config import compose, plain

    catalog = catalog_from_mapping(plain(compose(overrides).catalog))
    print(f"prices read on {catalog.prices_read_on} ({catalog.prices_source})")
    for name, m in catalog.models.items():
        cached = "-" if m.price.cached_input is None else str(m.price.cached_input)
        flags = ",".join(f for f, on in (("reasoning", m.reasoning), ("vision", m.vision)) if on)
        print(
            f"{name:28s} in {m.price.input!s:>6} out {m.price.output!s:>6} cached {cached:>6}"
            f"  ctx {m.context_length:>8}  {flags}"
        )
    return 0


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


def report_main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lavabench report",
        description="Write <first RUN_DIR>/report/: index.html (one self-contained page, the "
        "decision first), figures (PNG+SVG), summary.md (for $GITHUB_STEP_SUMMARY), summary.json.",
    )
    parser.add_argument("run_dirs", type=Path, nargs="*", help="run or sweep directories")
    parser.add_argument("--latest", action="store_true", help="newest run under --results")
    parser.add_argument("--results", type=Path, default=Path("results"), help="default: results")
    parser.add_argument(
        "--min-quality", type=float, default=0.85, help="the decision's accuracy bar, 0-1 (0.85)"
    )
    parser.add_argument("--max-p90-ttft", type=float, default=None, help="seconds (no limit)")
    parser.add_argument("--max-p90-e2e", type=float, default=None, help="seconds (no limit)")
    parser.add_argument(
        "--history", type=Path, nargs="?", const=Path("results/history"), default=None,
        help="add nightly trend figures from this history (default results/history)",
    )  # fmt: skip
    opts = parser.parse_args(args)
    run_dirs = list(opts.run_dirs) or ([_latest_run_dir(opts.results)] if opts.latest else [])
    if not run_dirs:
        parser.error("give RUN_DIR ... or --latest")
    from lavabench.report.workers import FigureWorkers

    # forked before the records are read: matplotlib warms up while they are (issue 21)
    with FigureWorkers() as workers:
        from lavabench.records.reader import read_runs
        from lavabench.report.page import write_report

        page = write_report(
            read_runs(expand_run_dirs(run_dirs)),
            run_dirs[0] / "report",
            run_dirs=expand_run_dirs(run_dirs),
            min_quality=opts.min_quality,
            max_p90_ttft_s=opts.max_p90_ttft,
            max_p90_e2e_s=opts.max_p90_e2e,
            history_dir=opts.history,
            workers=workers,
        )
    print(page)
    return 0


def _slo_arg(text: str) -> Any:
    from lavabench.analysis.slo import parse_slo

    try:
        return parse_slo(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def pick_main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lavabench pick",
        description="The cheapest model whose accuracy lower bound clears the bar (and whose "
        "p90 latency bounds are under the limits). Exit 0 found, 1 none qualifies, 2 error.",
    )
    parser.add_argument("run_dirs", type=Path, nargs="+", help="run or sweep directories")
    parser.add_argument("--min-quality", type=float, required=True, help="accuracy bar, 0-1")
    parser.add_argument("--dataset", default=None, help="decide on this dataset only")
    parser.add_argument("--max-p90-ttft", type=float, default=None, help="seconds")
    parser.add_argument("--max-p90-e2e", type=float, default=None, help="seconds")
    parser.add_argument(
        "--max-p90-first-answer", type=float, default=None,
        help="seconds, p90 of the first answer token (reasoning models: after the thinking)",
    )  # fmt: skip
    parser.add_argument(
        "--slo", type=_slo_arg, action="append", default=[], metavar="METRIC:SECONDS:SHARE",
        help="service level, repeatable: e.g. ttft:1.5:0.95 = 95%% of requests start within "
        "1.5 s (METRIC ttft, first_answer or e2e; failures are misses); the share's one-sided "
        "lower bound at alpha/K must reach SHARE",
    )  # fmt: skip
    parser.add_argument(
        "--allow-invalid", action="store_true", help="decide even on a run whose verdict is invalid"
    )
    parser.add_argument(
        "--replay-adaptive", action="store_true",
        help="also replay the adaptive pick on these rows: items shuffled with --seed, rounds "
        "of --batch items, per model the group-sequential test (early accept, reject, "
        "futility, final look); prints every decision, the items and spend it would have used",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="item order (--replay-adaptive)")
    parser.add_argument("--batch", type=int, default=25, help="items per model and round")
    parser.add_argument(
        "--window", type=int, default=1, help="models per round, cheapest first (0: all)"
    )
    parser.add_argument(
        "--futility", type=float, default=0.02,
        help="stop a model whose chance to pass the final look is below this (0: never)",
    )  # fmt: skip
    parser.add_argument(
        "--include-grading-cost", action="store_true",
        help="rank by cost per item including the LLM judge's requests",
    )  # fmt: skip
    opts = parser.parse_args(args)
    from lavabench.analysis.pick import format_pick, pick_model, verdict_gate
    from lavabench.analysis.tables import cost_table, prepare
    from lavabench.records.reader import read_runs

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
        cost_table(prepared, include_grading=opts.include_grading_cost),
        min_quality=opts.min_quality,
        max_p90_ttft_s=opts.max_p90_ttft,
        max_p90_e2e_s=opts.max_p90_e2e,
        dataset=opts.dataset,
        cost_includes_grading=opts.include_grading_cost,
        max_p90_first_answer_s=opts.max_p90_first_answer,
        slos=tuple(opts.slo),
    )
    print(format_pick(result))
    for name, info in zip(run_dirs, runs.infos, strict=True):
        if info.get("adaptive"):
            print(_adaptive_note(str(name), info["adaptive"]))
    if opts.replay_adaptive:
        _replay_adaptive(prepared, result, opts)
    return 0 if result.pick is not None else 1


def _adaptive_note(name: str, adaptive: dict[str, Any]) -> str:
    """An adaptive run (runner.adaptive) stopped sending when its test decided: the fixed-n
    bounds above were computed after that optional stop, so its own decision is the one."""
    pick = adaptive.get("pick") or "none certified"
    undecided = ", ".join(adaptive.get("not_certified") or []) or "none"
    return (
        f"{name}: adaptive run (runner.adaptive): certified pick {pick}; not certified: "
        f"{undecided}. The bounds above are fixed-sample bounds on rows whose count the "
        "sequential test chose, so they are not valid as a decision here: use this line"
    )


def _replay_adaptive(prepared: Any, result: Any, opts: argparse.Namespace) -> None:
    """The adaptive pick replayed on a full run's rows (ordered by the observed cost per item
    the full pick ranks by), beside the full pick."""
    from lavabench.analysis.adaptive import answers_from_rows, format_rounds, run_rounds

    answers, costs = answers_from_rows(prepared, opts.seed)
    prices = {c.model: c.usd_per_1k_items for c in result.candidates}
    rounds = run_rounds(answers, prices, opts.min_quality, batch=opts.batch,
                        window=opts.window or None, futility=opts.futility)  # fmt: skip
    items = min((len(a) for a in answers.values()), default=0)
    print(format_rounds(rounds, costs, items, opts.min_quality))
    full = result.pick.model if result.pick is not None else None
    same = "same as" if rounds.plan.pick == full else "differs from"
    print(f"  adaptive pick {same} the full run's ({full or 'none'})")
