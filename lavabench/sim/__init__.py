"""The simulator: Lava's forward proxy in front of Fireworks, on loopback, for tests and benchmarks.

Its own program, reached only over HTTP: it imports nothing from lavabench outside this
package and re-implements the wire protocol on purpose, so a client parsing bug cannot hide
on both sides. Entry points: `server.serve`, `python -m lavabench.sim`,
`process.running_simulator`.
"""
