"""Workloads: requests shaped like real traffic, generated instead of read from a dataset.

A workload is one kind of what a run sends (a dataset is another): `synthetic` prompts of a
target token length with a chosen cache state, `conversation` sessions whose turns grow with
the model's real answers, and `trace` replay of recorded requests on recorded times.

Data path, pure: this package builds Prompts, lengths, texts and schedules; it never sends
(import-linter: no wire, runner, load or sim). Turning calibration probes and session state
into requests is the composition root's job (`commands/run/workload.py`).
"""
