"""Request path: how much and how fast. `pacing` (arrivals, rate caps), `steps` (`load=sweep`),
`budget` (cost bounds and the spend guard), `limits` and `limiter` (account-wide shared limits).

May import runner, wire, records.schema; never the data stack."""
