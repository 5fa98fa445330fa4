"""`lavabench run`, split by phase: `app` (the Hydra entry), `setup` (check, plan, resume,
budget, dry run), `execute` (the loop of one process; workers glue), `info` (run.json and the
end print), `limits` (the config-aware wiring of shared limits), `command` (the phases in order)."""
