"""Data path, pure: tables to tables. `tables` (per-model tables, percentiles, intervals, cost,
frontier), `quality` (Wilson, McNemar), `compare` (regression gates), `pick` (the decision),
`adaptive` (the anytime-valid adaptive pick), `slo` (SLO attainment with its bound).

Reads no file (records/reader does) and never imports HTTP or the request path."""
