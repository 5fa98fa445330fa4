"""The artifact both paths share. `schema` (Record, SCHEMA_VERSION) and `verdict` are stdlib only,
so the request path may import them; `store` (Parquet parts, atomic finalize), `reader` (the one
reader of records), `history` and `sweep_dirs` are the data path (pyarrow, pandas).

Never imports HTTP, wire, runner, load or sim."""
