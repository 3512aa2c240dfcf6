# `make run` serves the API; `make test` runs every test. Both create .venv on first use.
# `make bench` measures throughput and latency per scenario (needs `wrk`; see README, Performance).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-quick lint format clean bench

$(BIN)/.installed: requirements.txt requirements-dev.txt requirements-dev-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-dev-nodeps.txt
	touch $@

run: $(BIN)/.installed
	$(BIN)/python scripts/run.py

test: $(BIN)/.installed
	$(BIN)/python -m pytest

test-quick: $(BIN)/.installed
	$(BIN)/python -m pytest -m "not slow"

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
