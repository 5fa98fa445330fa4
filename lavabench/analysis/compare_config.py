"""`conf/compare.yaml`, checked: the gate's alpha, thresholds, gating rows and nightly settings.

Its own module so the row tests (compare_rows.py) and the gate (compare.py) can both read
the config without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lavabench.analysis.nights import METRICS
from lavabench.errors import ConfigError

NEVER_GATE = ("ttft_p99",)  # p99 needs >= 1,000 requests: report it, don't gate it


@dataclass(frozen=True)
class CompareConfig:
    """What `conf/compare.yaml` says (see that file for the why of each default)."""

    alpha: float = 0.005
    fdr: float = 0.05
    power: float = 0.95
    gating: tuple[str, ...] = ("ttft_p50", "ttft_p90", "e2e_p90", "error_rate", "accuracy")
    thresholds: dict[str, float] = field(default_factory=dict)
    recent_nights: int = 3
    min_reference_nights: int = 3
    drift_allowance: float = 0.05
    same_session_hours: float = 2.0
    outage_error_share: float = 0.10
    blind_share: float = 0.5
    nightly_detect: dict[str, float] = field(default_factory=dict)

    def threshold(self, metric: str) -> float:
        """The practical threshold of `metric` (relative, or absolute for rates)."""
        default = {"error_rate": 0.01, "accuracy": 0.02}.get(metric, 0.10)
        return float(self.thresholds.get(metric, default))

    def target(self, metric: str, nightly: bool = False) -> float:
        """The change a row must be able to detect to count as measurable: its threshold, or
        `nightly.detect` against history (drift hides latency changes near the threshold:
        a nightly gate promises to catch a persistent +20 %, and flags from +10 %)."""
        if nightly and metric in self.nightly_detect:
            return float(self.nightly_detect[metric])
        return self.threshold(metric)


_TOP = {"alpha", "fdr", "power", "gating", "thresholds", "nightly", "blind_share"}


_NIGHTLY = {
    "recent_nights",
    "min_reference_nights",
    "drift_allowance",
    "same_session_hours",
    "outage_error_share",
    "detect",
}


def _metric_map(path: Path | str, raw: Any, where: str) -> dict[str, float]:
    out = {str(k): float(v) for k, v in (raw or {}).items()}
    for name in out:
        if name not in METRICS:
            raise ConfigError(
                f"{path}: {where}: unknown metric {name!r} (known: {sorted(METRICS)})"
            )
    return out


def load_compare_config(path: Path | str) -> CompareConfig:
    """Read and check a compare YAML file (unknown keys and metric names are errors)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(Path(path)))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping")
    if "min_history_nights" in raw:
        raise ConfigError(f"{path}: min_history_nights is now nightly.min_reference_nights")
    for key in raw:
        if key not in _TOP:
            raise ConfigError(f"{path}: unknown key {key!r} (known: {sorted(_TOP)})")
    nightly = raw.get("nightly") or {}
    for key in nightly:
        if key not in _NIGHTLY:
            raise ConfigError(f"{path}: unknown key nightly.{key} (known: {sorted(_NIGHTLY)})")
    gating = tuple(str(g) for g in raw.get("gating") or ())
    for name in gating:
        if name not in METRICS:
            raise ConfigError(f"{path}: unknown metric {name!r} (known: {sorted(METRICS)})")
        if name in NEVER_GATE:
            raise ConfigError(f"{path}: {name} cannot gate (needs >= 1,000 requests per model)")
    d = CompareConfig()
    cfg = CompareConfig(
        alpha=float(raw.get("alpha", d.alpha)),
        fdr=float(raw.get("fdr", d.fdr)),
        power=float(raw.get("power", d.power)),
        gating=gating,
        thresholds=_metric_map(path, raw.get("thresholds"), "thresholds"),
        recent_nights=int(nightly.get("recent_nights", d.recent_nights)),
        min_reference_nights=int(nightly.get("min_reference_nights", d.min_reference_nights)),
        drift_allowance=float(nightly.get("drift_allowance", d.drift_allowance)),
        same_session_hours=float(nightly.get("same_session_hours", d.same_session_hours)),
        outage_error_share=float(nightly.get("outage_error_share", d.outage_error_share)),
        blind_share=float(raw.get("blind_share", d.blind_share)),
        nightly_detect=_metric_map(path, nightly.get("detect"), "nightly.detect"),
    )
    if not (0 < cfg.alpha < 1 and 0 < cfg.fdr < 1 and 0.5 <= cfg.power < 1):
        raise ConfigError(f"{path}: alpha, fdr in (0,1) and power in [0.5,1) required")
    if cfg.recent_nights < 1 or cfg.min_reference_nights < 2 or cfg.drift_allowance < 0:
        raise ConfigError(
            f"{path}: nightly.recent_nights >= 1, min_reference_nights >= 2, "
            "drift_allowance >= 0 required"
        )
    return cfg
