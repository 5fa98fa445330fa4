"""`lavabench sim`: the simulator alone, composed from the same config (sim.* overrides)."""

from __future__ import annotations

import argparse

from lavabench.catalog import catalog_from_mapping
from lavabench.commands.run.setup import catalog_for_sim, resolve_data_path
from lavabench.config import compose, plain
from lavabench.errors import ConfigError


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="lavabench sim",
        description="Run the gateway simulator alone (e.g. one simulator for every job of a "
        "sweep); other arguments are Hydra overrides (sim.*, catalog=...).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default: 8000; 0 picks one")
    opts, overrides = parser.parse_known_args(args)
    cfg = compose(overrides)
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
