"""What a figure is to the report: a task (which builder, its small inputs) and what drawing
it gives back. Pure: shared by report.page (which makes tasks), report.workers (which sends
them to drawers) and report.figures (which draws them) without those importing each other."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Drawn = tuple[str, str, bytes]  # (name, title, PNG bytes)


@dataclass(frozen=True)
class FigureTask:
    """One builder of report.figures.BUILDERS and its (picklable, small) inputs.

    `weight`: roughly its drawing time; drawers start the heaviest first."""

    builder: str
    args: tuple[Any, ...]
    weight: float = 1.0
