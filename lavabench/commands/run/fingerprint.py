"""What defines a run's rows, as a fingerprint in run.json, so `resume=` cannot merge two runs.

A resumed run keeps the rows it has and sends the rest; that is only one run if every row was
asked the same way. The fingerprint holds each thing that changes what a row means: where the
requests go, which model ids, which prompts (dataset file and every rendered prompt), the
request's knobs (max_tokens, stream, params, seed) and how answers are graded. Large values
are hashed; small ones are kept as they are so that a refusal can say what changed.

Not in it, on purpose: concurrency, rate, load shape, timeouts, retries, budget, workers and
repeats: they change how fast or how many rows are made, not what a row is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from lavabench.commands.run.prepared import Prepared
from lavabench.config import plain
from lavabench.datasets.prompt import Prompt
from lavabench.datasets.spec import dataset_sha256
from lavabench.errors import ConfigError

# simulator settings that do not change what it answers
_SIM_VOLATILE = ("log_path", "workers")


def _sha(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _prompts_sha(prompts: Iterable[Prompt], chunk: int = 4096) -> str:
    """`_sha` of the list of (dataset, item_id, prompt_sha256), fed to the hash a few thousand
    items at a time: the same text, so the same digest as earlier runs' (resume compares
    it), without 100,000 tuples and their JSON at once (bench_memory: a transient +40 MB)."""
    h = hashlib.sha256(b"[")
    batch: list[tuple[str, str, str]] = []
    sep = b""
    for q in prompts:
        batch.append((q.dataset, q.item_id, q.prompt_sha256))
        if len(batch) == chunk:
            h.update(sep + _json(batch)[1:-1])
            sep, batch = b",", []
    if batch:
        h.update(sep + _json(batch)[1:-1])
    h.update(b"]")
    return h.hexdigest()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def _target(conf: Any) -> str:
    """Where the requests go: the gateway and the provider URL behind it, or the base URL.
    A simulator started for the run has a new port each time, so its URL is not compared
    (its settings are, under `sim_settings`)."""
    e = conf.endpoint
    if e.kind == "sim" and not e.base_url:
        return "simulator started by the run"
    if e.route == "forward":
        return f"{e.base_url} -> {e.target_url}"
    return str(e.base_url)


def run_fingerprint(p: Prepared, sim_settings: Any = None) -> dict[str, Any]:
    """The fingerprint of a prepared run (see the module docstring)."""
    conf = p.conf
    r = conf.runner
    models = sorted((m.name, m.id) for m in p.catalog.select(conf.model))
    fingerprint: dict[str, Any] = {
        "endpoint_kind": conf.endpoint.kind,
        "endpoint_target": _target(conf),
        "model_ids": dict(models),
        "dataset_sha256": None if p.spec is None else dataset_sha256(p.spec.path),
        "prompts_sha256": _prompts_sha(p.prompts),
        "max_tokens": r.max_tokens,
        "stream": r.stream,
        "params": dict(r.params) if isinstance(r.params, dict) else plain(r.params),
        "seed": r.seed,
        "grader": None if p.spec is None else p.spec.grader,
        "grader_options_sha256": None if p.spec is None else _sha(dict(p.spec.grader_options)),
    }
    if r.adaptive.enabled:  # the item order and the rounds define which rows exist
        a = r.adaptive
        fingerprint["adaptive"] = [a.min_quality, a.alpha, a.seed, a.batch, a.window,
                                   a.seq_share, a.futility, a.min_items]  # fmt: skip
    if p.workload is not None:  # a workload's prompts are its config (texts are built later)
        fingerprint["workload_sha256"] = _sha(p.workload.config)
    if conf.endpoint.kind == "sim" and sim_settings is not None:
        kept = {k: v for k, v in dict(sim_settings).items() if k not in _SIM_VOLATILE}
        fingerprint["sim_settings_sha256"] = _sha(kept)
    return fingerprint


def check_resume(previous: dict[str, Any], current: dict[str, Any], run_id: str) -> None:
    """Refuse to resume a run whose rows were asked differently (ConfigError: exit 2)."""
    before = previous.get("fingerprint")
    if not isinstance(before, dict):
        return  # a run.json from before fingerprints: the dataset check is all there is
    keys = sorted(k for k in {*before, *current} if before.get(k) != current.get(k))
    if not keys:
        return
    lines = [f"  {k}: was {_short(before.get(k))}, now {_short(current.get(k))}" for k in keys]
    raise ConfigError(
        f"resume={run_id}: this run is not the one being resumed; "
        f"{', '.join(keys)} changed:\n" + "\n".join(lines) + "\nResume with the same "
        "settings, or start a new run (no resume=). Nothing was sent."
    )


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."
