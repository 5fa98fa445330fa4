"""commands/run/memory.py: the end of a run's allocator is switched back; trimming is safe."""

from __future__ import annotations

import pyarrow as pa

from lavabench.commands.run.memory import (
    arrow_pool_restored,
    end_of_run_allocator,
    release_freed_memory,
)


def test_the_end_of_run_allocator_is_undone_after_the_run() -> None:
    before = pa.default_memory_pool().backend_name
    with arrow_pool_restored():
        end_of_run_allocator()
        assert pa.default_memory_pool().backend_name == "system"
        kept = pa.array(range(1000))  # a buffer of the end's pool outlives the switch back
    assert pa.default_memory_pool().backend_name == before
    assert kept.sum().as_py() == sum(range(1000))


def test_release_freed_memory_leaves_live_objects_alone() -> None:
    data = [str(i) * 10 for i in range(10_000)]
    del data[::2]
    release_freed_memory()
    assert data[0] == "1" * 10 and len(data) == 5_000
