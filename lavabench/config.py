"""Config schema (Hydra structured configs) and the one place it is checked.

`conf/config.yaml` composes: catalog (prices), endpoint (sim | lava | direct), dataset,
sim (simulator profiles), plus the `runner` and `records` nodes typed here. A typo in a key
fails at compose time (struct mode); ranges are checked in `__post_init__` when
`load_config` converts the composed config to objects. Secrets never live in config:
only the names of environment variables do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from lavabench.errors import ConfigError
from lavabench.load.pacing import ARRIVALS
from lavabench.load.steps import LoadSweepConf
from lavabench.records.verdict import HealthThresholds
from lavabench.runner.retry import RetryPolicy
from lavabench.wire.client import Timeouts
from lavabench.wire.endpoints import EndpointSettings

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


@dataclass
class AdaptiveConf:
    """`runner.adaptive`: send only what the adaptive pick needs (commands/run/adaptive.py)."""

    enabled: bool = False
    min_quality: float = 0.85  # theta: the accuracy bar
    alpha: float = 0.05
    seed: int = 0  # the shuffled item order, one for all models (paired)
    batch: int = 25  # items per model and round
    window: int | None = 1  # models per round (the cheapest still needing items); null: all
    seq_share: float = 0.5  # of alpha for early acceptance (W+); the rest for the final look
    futility: float = 0.02  # stop a model whose chance to pass the final look is below this
    min_items: int = 25  # answers before a model can be stopped for futility
    max_rounds: int | None = None  # stop after this many rounds this process (resume= goes on)

    def __post_init__(self) -> None:
        if not 0 < self.min_quality < 1 or not 0 < self.alpha < 1:
            raise ConfigError("runner.adaptive.min_quality and alpha must be between 0 and 1")
        if self.batch < 1 or (self.window is not None and self.window < 1):
            raise ConfigError("runner.adaptive.batch and window must be >= 1 (window: or null)")
        if self.max_rounds is not None and self.max_rounds < 1:
            raise ConfigError("runner.adaptive.max_rounds must be >= 1 or null")
        if not 0 <= self.seq_share <= 1 or not 0 <= self.futility < 1 or self.min_items < 1:
            raise ConfigError(
                "runner.adaptive.seq_share must be in [0, 1], futility in [0, 1) and min_items >= 1"
            )


@dataclass
class RunnerConf:
    concurrency: int = 16
    rate: float | None = None  # requests/s: a cap (closed loop) or the arrival rate (open)
    arrival: str = "closed"  # closed | constant | poisson (open loop at `rate`)
    arrival_seed: int = 0  # seeds the Poisson arrivals
    repeats: int = 1
    warmup_requests: int = 0  # per model, flagged and excluded from statistics
    dry_run: bool = False  # print the plan and cost bounds, send nothing
    budget_usd: float | None = None  # refuse / stop issuing beyond this spend
    circuit_breaker_failures: int = 5  # pause a model after N consecutive failures; 0 = off
    max_tokens: int = 512  # always sent: Fireworks would default to 2048
    stream: bool = True
    seed: int | None = 0  # sent as `seed` (+ repeat index); null = not sent
    params: dict[str, Any] = field(default_factory=lambda: {"temperature": 0.0})
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    load_sweep: LoadSweepConf | None = None  # `load=sweep`: step the load up (load/steps.py)
    adaptive: AdaptiveConf = field(default_factory=AdaptiveConf)
    workers: int = 1  # client processes, each with its own event loop and share (runner/workers.py)

    def __post_init__(self) -> None:
        checks = [
            (self.concurrency >= 1, "runner.concurrency must be >= 1"),
            (self.rate is None or self.rate > 0, "runner.rate must be > 0 or null"),
            (self.arrival in ARRIVALS, f"runner.arrival must be one of {', '.join(ARRIVALS)}"),
            (
                self.arrival == "closed" or self.rate is not None,
                f"runner.arrival={self.arrival} needs runner.rate (requests/s)",
            ),
            (self.repeats >= 1, "runner.repeats must be >= 1"),
            (self.workers >= 1, "runner.workers must be >= 1"),
            (
                self.workers <= self.concurrency,
                f"runner.workers={self.workers} > runner.concurrency={self.concurrency}: "
                "every worker needs at least one request in flight",
            ),
            (
                self.workers == 1 or self.load_sweep is None,
                "load=sweep runs in one process: drop runner.workers",
            ),
            (self.warmup_requests >= 0, "runner.warmup_requests must be >= 0"),
            (self.max_tokens >= 1, "runner.max_tokens must be >= 1"),
            (self.budget_usd is None or self.budget_usd > 0, "runner.budget_usd must be > 0"),
            (self.circuit_breaker_failures >= 0, "runner.circuit_breaker_failures must be >= 0"),
            (
                self.load_sweep is None
                or self.load_sweep.over == "rate"
                or self.arrival == "closed",
                "load=sweep over concurrency is a closed loop: drop runner.arrival, or step "
                "the rate with runner.load_sweep.over=rate",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        reserved = {"model", "messages", "max_tokens", "stream", "stream_options", "seed"}
        clash = reserved & set(self.params)
        if clash:
            raise ConfigError(
                f"runner.params: {sorted(clash)} are set by lavabench itself; use "
                "runner.max_tokens / runner.stream / runner.seed instead"
            )


@dataclass
class RecordsConf:
    response_text: bool = True  # store the answer text in each row
    flush_rows: int = 500
    flush_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if self.flush_rows < 1 or self.flush_interval_s <= 0:
            raise ConfigError("records.flush_rows must be >= 1 and flush_interval_s > 0")


@dataclass
class HealthConf(HealthThresholds):
    """`health.*`: thresholds of the measurement verdict (defaults and reasons: README)."""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc


@dataclass
class CacheConf:
    """Response cache for quality evaluation: identical requests reuse a stored answer.

    Never for latency benchmarks: cached rows carry no timing or cost and are marked.
    """

    enabled: bool = False
    path: str = "results/.cache/responses.sqlite"


@dataclass
class HistoryConf:
    """Nightly history: `history.enabled=true` appends the run to a hive-partitioned dataset."""

    enabled: bool = False
    dir: str = "results/history"


@dataclass
class LimitsConf:
    """`limits.*`: the account's limits, shared by every job of a sweep (lavabench.load.limiter).

    Set for a sweep, the launching process serves them to all jobs; set for one run, that
    run serves them to itself. `address` joins a limiter that is already running (another
    sweep's, or `lavabench limiter`), so several sweeps can share one account's limits.
    """

    rate: float | None = None  # requests/s summed over every job running at once
    budget_usd: float | None = None  # USD over the whole sweep (with the judge's requests)
    host: str = "127.0.0.1"  # where a sweep's limiter listens; 0.0.0.0 for other machines
    address: str | None = None  # host:port of a running limiter to use instead

    def __post_init__(self) -> None:
        if self.rate is not None and self.rate <= 0:
            raise ConfigError("limits.rate must be > 0 requests/s or null")
        if self.budget_usd is not None and self.budget_usd <= 0:
            raise ConfigError("limits.budget_usd must be > 0 or null")
        if self.address is not None and ":" not in self.address:
            raise ConfigError(f"limits.address={self.address}: expected host:port")

    @property
    def any(self) -> bool:
        return self.rate is not None or self.budget_usd is not None or self.address is not None


@dataclass
class ModelConf:
    id: str | None = None
    input_usd_per_mtok: Any = MISSING
    output_usd_per_mtok: Any = MISSING
    cached_input_usd_per_mtok: Any = None
    context_length: int = MISSING
    reasoning: bool = False
    vision: bool = False


@dataclass
class CatalogConf:
    provider: str = "fireworks"
    prices_read_on: str = MISSING
    prices_source: str = ""
    models: dict[str, ModelConf] = field(default_factory=dict)


@dataclass
class LavabenchConf:
    model: Any = MISSING  # one name, a list of names, or "all"
    run_id: str = MISSING
    resume: str | None = None  # RUN_ID: finish that run (only items without an ok row)
    results_dir: str = "results"
    catalog: CatalogConf = field(default_factory=CatalogConf)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    dataset: dict[str, Any] = field(default_factory=dict)
    workload: Any = None  # `workload=` (conf/workload/): sent instead of the dataset
    sim: dict[str, Any] = field(default_factory=dict)
    runner: RunnerConf = field(default_factory=RunnerConf)
    records: RecordsConf = field(default_factory=RecordsConf)
    cache: CacheConf = field(default_factory=CacheConf)
    history: HistoryConf = field(default_factory=HistoryConf)
    health: HealthConf = field(default_factory=HealthConf)
    limits: LimitsConf = field(default_factory=LimitsConf)

    def __post_init__(self) -> None:
        # checked with the rest of the config, before anything starts or is written
        if self.runner.workers > 1 and self.cache.enabled:
            raise ConfigError(
                "cache.enabled with runner.workers > 1: the sqlite cache has one writer; use "
                "runner.workers=1 for quality runs (the cache is for them, not for latency)"
            )


def register_schemas() -> None:
    """Make `lavabench_schema` and our resolvers available to conf/config.yaml.

    Once per process: storing the schema builds the whole typed tree (~0.15 s), and a run
    used to do it twice (before its pre-check and again for Hydra)."""
    store = ConfigStore.instance()
    if "lavabench_schema.yaml" not in store.repo:
        store.store(name="lavabench_schema", node=LavabenchConf)
    # `${lb_or:a,b}`: a unless it is null (oc.select returns a null value as is)
    OmegaConf.register_new_resolver(
        "lb_or", lambda value, default: default if value is None else value, replace=True
    )
    # `${lb_slug:${model}}`: a model selection as one path segment (a list joins with +)
    OmegaConf.register_new_resolver("lb_slug", _slug, replace=True)


def _slug(value: Any) -> str:
    if isinstance(value, list | tuple) or OmegaConf.is_list(value):
        return "+".join(str(v) for v in value)
    return str(value)


def load_config(cfg: DictConfig) -> LavabenchConf:
    """Composed DictConfig -> checked objects (runs every `__post_init__`)."""
    try:
        obj = OmegaConf.to_object(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # OmegaConf's own validation errors name the key already
        raise ConfigError(f"invalid configuration: {exc}") from exc
    assert isinstance(obj, LavabenchConf)
    return obj


def plain(cfg: DictConfig | Any) -> Any:
    """A resolved, JSON-able copy of a config node (for run.json and the simulator)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def compose(overrides: list[str]) -> DictConfig:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_schemas()
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            return compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"{exc} (config directory: {CONF_DIR})") from exc
