"""The progress bar: throttled updates still end on the exact count."""

from __future__ import annotations

from lavabench.records.schema import Record
from lavabench.runner.progress import RunProgress


def test_the_last_frame_shows_every_row_even_when_updates_are_throttled() -> None:
    rows = [Record(status="ok" if i % 3 else "error", cost_pico_usd=10) for i in range(50)]
    progress = RunProgress(len(rows), enabled=True)
    with progress:
        for row in rows:
            progress.on_record(row)  # 50 rows within 0.1 s: rich is told only once or twice
        task = progress._progress.tasks[0]
        assert task.completed < len(rows)
    assert task.completed == len(rows)
    assert "errors 17" in task.fields["stats"]
