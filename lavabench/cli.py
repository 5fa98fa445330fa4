"""Command line: argv to the command's module, imported only when that command runs.

`lavabench --help` and `--version` load nothing heavy (no Hydra, pandas, scipy or aiohttp):
each command is a module of `lavabench.commands` named in `COMMANDS`, as pip does it. Every
LavabenchError becomes exit code 2 with its message; the other codes are in exit_codes.py.
"""

from __future__ import annotations

import importlib
import os
import sys

from lavabench import __version__
from lavabench.errors import LavabenchError
from lavabench.exit_codes import EXIT_ERROR, OK

USAGE = """usage: lavabench COMMAND [ARGS]

commands:
  run [OVERRIDES]      benchmark models (Hydra overrides, e.g. model=[gpt-oss-20b,glm-5]
                       endpoint=lava runner.concurrency=32; sweeps with -m); Hydra's
                       flags too: --help, --cfg job, --info, --shell-completion install=bash
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

`lavabench COMMAND --help` describes each command.
"""

# command -> (module, function): the function takes the command's argv and returns the exit code
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("lavabench.commands.run.app", "main"),
    "sim": ("lavabench.commands.sim", "main"),
    "summary": ("lavabench.commands.results", "summary_main"),
    "models": ("lavabench.commands.results", "models_main"),
    "report": ("lavabench.commands.results", "report_main"),
    "pick": ("lavabench.commands.results", "pick_main"),
    "data": ("lavabench.commands.data", "main"),
    "history": ("lavabench.commands.history", "main"),
    "compare": ("lavabench.commands.compare", "main"),
    "reconcile": ("lavabench.commands.reconcile", "main"),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return OK
    if args[0] in ("--version", "version"):
        print(f"lavabench {__version__}")
        return OK
    if args[0] in ("-sc", "--shell-completion"):
        return _shell_completion(args)
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"lavabench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_ERROR
    module_name, function = COMMANDS[command]
    try:
        run = getattr(importlib.import_module(module_name), function)
        return int(run(rest))
    except LavabenchError as exc:
        print(f"lavabench: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _shell_completion(args: list[str]) -> int:
    """Hydra's bash script calls `lavabench -sc query=bash` with the line in $COMP_LINE.

    The command word is completed here (no imports); the words after `run` are Hydra's
    (config groups and keys), so that goes to the run command; other commands complete
    file names (the script falls back to them on an empty answer)."""
    line = os.environ.get("COMP_LINE")
    if line is None:  # `lavabench -sc install=bash`: the same script as `run -sc`
        return main(["run", *args])
    words = line.split()
    if len(words) == 1 or (len(words) == 2 and not line.endswith(" ")):
        prefix = words[1] if len(words) == 2 else ""
        print(" ".join(name for name in COMMANDS if name.startswith(prefix)))
        return OK
    if words[1] == "run":
        return main(["run", *args])
    print()
    return OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
