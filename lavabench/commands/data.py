"""`lavabench data pull NAME`: fetch a built-in dataset's files into the cache, verified."""

from __future__ import annotations

import argparse
import sys

from omegaconf import OmegaConf

from lavabench.config import CONF_DIR
from lavabench.exit_codes import EXIT_ERROR


def main(args: list[str]) -> int:
    """`data pull NAME [--cache-dir DIR]`: download and verify a built-in dataset."""

    from lavabench.datasets.pull import pull

    parser = argparse.ArgumentParser(
        prog="lavabench data",
        description="pull NAME: fetch and verify built-in dataset NAME (conf/dataset/NAME.yaml) "
        "into the cache ($LAVABENCH_DATA_CACHE; copied from $LAVABENCH_DATA_MIRROR if set).",
    )
    parser.add_argument("action", choices=["pull"])
    parser.add_argument("name", help="a file name of conf/dataset/ without .yaml, e.g. gsm8k")
    parser.add_argument("--cache-dir", default=None, help="default: $LAVABENCH_DATA_CACHE")
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
