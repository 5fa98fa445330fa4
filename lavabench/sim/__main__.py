"""`python -m lavabench.sim --config FILE.json [--host H] [--port P]`.

FILE.json is {"settings": {...}, "catalog": {...}}. Prints exactly one line
`LAVABENCH_SIM_READY <base_url>` to stdout once every worker accepts connections; a parent
process (process.py) waits for that line. Exit code 2 for a bad config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from lavabench.sim.server import serve
from lavabench.sim.settings import from_mapping

READY_PREFIX = "LAVABENCH_SIM_READY"


def _announce(base_url: str) -> None:
    sys.stdout.write(f"{READY_PREFIX} {base_url}\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, load the config, serve until stopped; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lavabench.sim", description=__doc__)
    parser.add_argument("--config", required=True, help='JSON file {"settings", "catalog"}')
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        config = orjson.loads(Path(args.config).read_bytes())
        if not isinstance(config, dict) or not isinstance(config.get("catalog"), dict):
            raise ValueError('config must be {"settings": {...}, "catalog": {...}}')
        settings = from_mapping(config.get("settings") or {})
        serve(settings, config["catalog"], host=args.host, port=args.port, on_ready=_announce)
    except (OSError, ValueError) as exc:
        print(f"lavabench.sim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
