"""Keep credentials out of everything we write: Parquet, run.json, logs, reports.

Credentials only ever come from the environment (wire/endpoints.py); this module is the second
line of defence for text that might carry one anyway (error bodies, exception messages,
a config dump).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

_SECRET_PATTERNS = (
    re.compile(r"aks_(?:live|test)_[A-Za-z0-9_]+"),
    re.compile(r"fw_[A-Za-z0-9]{12,}"),  # Fireworks API keys
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
)


def redact_secret(secret: str) -> str:
    """a live key -> `aks_live_…1234`: enough to tell keys apart, no more."""
    prefix = "aks_live_" if secret.startswith("aks_live_") else secret[:4]
    return f"{prefix}…{secret[-4:]}" if len(secret) > 12 else "…"


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secret values and anything shaped like a key from free text."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, redact_secret(secret))
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


def redact_mapping(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Deep copy of a JSON-like value with every string passed through redact_text."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        return {k: redact_mapping(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_mapping(v, secrets) for v in value]
    return value


class RedactSecrets(logging.Filter):
    """A logging filter that redacts the run's secrets from every message it passes."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage(), self._secrets)
        record.args = None
        return True


def redact_logs(secrets: list[str]) -> None:
    """Every handler (console, Hydra's log file) passes messages through redaction."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(secrets))
