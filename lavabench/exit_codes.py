"""Stdlib only: the exit codes of every lavabench command, defined once.

A shared leaf (like errors.py) rather than a module of `commands/`: a sweep's manifest
(records/) and compare's result (analysis/) decide an exit code too, and they sit below the
commands. README's "Exit codes" table is this module.
"""

from __future__ import annotations

OK = 0
# The decision said no: `compare` found a regression, `pick` found no qualifying model,
# `reconcile` found a mismatch; a sweep job that crashed, was lost or never started.
DECIDED_NO = 1
EXIT_ERROR = 2  # any LavabenchError: a config, dataset or disk problem (message says what to do)
EXIT_STOPPED = 3  # 401/402 or the budget stopped the run: the rows so far are kept
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM: finished rows kept; `resume=` finishes the run
# `compare` could not see: most gating rows were not measurable or missing (or a model of
# the baseline is absent tonight), and nothing regressed. Not a pass: see the headline for
# how many more nights or requests the gate needs.
NOT_MEASURED = 4
