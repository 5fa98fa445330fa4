"""A deployment's capacity: at most N streams per model at once, the rest wait in line.

Real inference servers queue what they cannot serve yet, so past saturation throughput
stays flat and time to first token grows by the wait. `sim.capacity: N` gives each model N
slots per simulator worker; a request that finds none waits (FIFO) and its whole schedule
starts when a slot frees, so its TTFT includes the wait (the log keeps `queue_wait_s`).
This is what lets `load=sweep` find a known knee: throughput tops out at N / service time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable


class Slots:
    """Per-model slot counts and waiting lines; `None` limit = unlimited (costs nothing)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self._busy: dict[str, int] = {}
        self._waiting: dict[str, deque[Callable[[], bool]]] = {}

    @property
    def enabled(self) -> bool:
        return self.limit is not None

    def acquire(self, model: str, admit_later: Callable[[], bool]) -> bool:
        """True: a slot is taken now. False: `admit_later()` is called when one frees; it
        returns False if its request is gone (the slot then goes to the next in line)."""
        assert self.limit is not None
        busy = self._busy.get(model, 0)
        if busy < self.limit:
            self._busy[model] = busy + 1
            return True
        self._waiting.setdefault(model, deque()).append(admit_later)
        return False

    def release(self, model: str) -> None:
        """A stream ended: hand its slot to the first waiter still there, else free it."""
        line = self._waiting.get(model)
        while line:
            if line.popleft()():
                return
        self._busy[model] -= 1
