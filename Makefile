# lavabench: `make demo` and `make test` work on a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-stamp

.PHONY: setup demo test test-slow lint bench docs clean

# Re-running is fast: the install only repeats when pyproject.toml changes.
setup: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# Several catalog models x the demo dataset against the built-in simulator.
demo: setup
	$(BIN)/lavabench run
	$(BIN)/lavabench report --latest

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: setup
	$(BIN)/python -m pytest -q -m slow

lint: setup
	$(BIN)/ruff check lavabench tests bench datasets
	$(BIN)/ruff format --check lavabench tests bench datasets
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

docs: setup
	$(BIN)/python -c "from lavabench.records import records_markdown; print(records_markdown(), end='')" > docs/records.md
