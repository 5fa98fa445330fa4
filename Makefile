# lavabench: `make demo` and `make test` work on a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp

.PHONY: setup demo test test-slow lint bench docs clean nightly

# Re-running is fast: the install only repeats when pyproject.toml changes.
setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	@touch $(STAMP)

# Several catalog models x the demo dataset against the built-in simulator.
demo: setup
	$(BIN)/lavabench run
	$(BIN)/lavabench report --latest

test: setup
	$(BIN)/python -m pytest -q -m "not slow or ray" --durations=10

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check lavabench tests bench datasets tools
	$(BIN)/ruff format --check lavabench tests bench datasets tools
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python tools/import_cycles.py

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

docs: setup
	$(BIN)/python -c "from lavabench.records.schema import records_markdown; print(records_markdown(), end='')" > docs/records.md

# The nightly pipeline locally against the simulator: two runs (the second with glm-5 made
# 30% slower), history, compare against the history (one night: a 5% drift allowance, so
# mostly blind, exit 4) and against the first run minutes before (a one-run baseline
# assumes no drift: the injected regression should exit 1), report.
NIGHTLY := results/nightly-local
nightly: setup
	rm -rf $(NIGHTLY)
	$(BIN)/lavabench run model=[gpt-oss-20b,glm-5] dataset.limit=60 results_dir=$(NIGHTLY) run_id=night-1 sim.seed=1
	$(BIN)/lavabench history add $(NIGHTLY)/night-1 --dir $(NIGHTLY)/history
	$(BIN)/lavabench run model=[gpt-oss-20b,glm-5] dataset.limit=60 results_dir=$(NIGHTLY) run_id=night-2 sim.seed=2 +sim.models.glm-5.latency_factor=1.3
	-$(BIN)/lavabench compare --baseline 'history[:45]' --history-dir $(NIGHTLY)/history --current $(NIGHTLY)/night-2 --markdown $(NIGHTLY)/summary.md --json $(NIGHTLY)/compare.json
	-$(BIN)/lavabench compare --baseline $(NIGHTLY)/night-1 --current $(NIGHTLY)/night-2 --markdown $(NIGHTLY)/summary.md
	$(BIN)/lavabench history add $(NIGHTLY)/night-2 --dir $(NIGHTLY)/history
	$(BIN)/lavabench report $(NIGHTLY)/night-2
	# latency on a fixed synthetic workload (fresh 1k-token prompts, 64 out), apart from quality
	$(BIN)/lavabench run workload=synthetic workload.items=200 workload.output_tokens=64 model=[gpt-oss-20b,glm-5] results_dir=$(NIGHTLY) run_id=latency-1 sim.seed=1
	$(BIN)/lavabench run workload=synthetic workload.items=200 workload.output_tokens=64 model=[gpt-oss-20b,glm-5] results_dir=$(NIGHTLY) run_id=latency-2 sim.seed=2 +sim.models.glm-5.latency_factor=1.3
	-$(BIN)/lavabench compare --baseline $(NIGHTLY)/latency-1 --current $(NIGHTLY)/latency-2 --markdown $(NIGHTLY)/latency.md
