"""Give the heap that a phase of the run freed back to the OS (glibc `malloc_trim`).

Why: loading a large dataset, and the end of the run, free many small blocks at once;
glibc keeps them mapped, so the process's RSS (what a machine running several jobs
sees) stays at the phase's peak for the rest of the run. `malloc_trim(0)` returns the
free pages of every arena (bench_memory, 100,000 distinct items: -12 MB after loading).
A no-op where the C library has no malloc_trim (musl, macOS)."""

from __future__ import annotations

import ctypes
import functools
from typing import Any


@functools.cache
def _libc() -> Any:
    """The symbols already loaded into the process (libc among them): no library search."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand the freed heap back to the OS where libc can (~1 ms)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
