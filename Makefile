# Both entry points create or reuse .venv by themselves (Python >= 3.11 on PATH).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test check bench soak clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "tradecore needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

## run: the main job — a paper-trading session on embedded defaults (no keys, no server)
run: $(STAMP)
	$(BIN)/python -m runner $(ARGS)

## check: lint, layer contracts and types
check: $(STAMP)
	$(BIN)/ruff check src runner tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

## test: the whole suite (lint, layer contracts, types, unit, contract tests)
test: check
	$(BIN)/python -m pytest

## soak: the simulator on 10,000 seeds (5,000 per venue; hours of wall time; fails on any break)
soak: $(STAMP)
	TRADECORE_SIM_SEEDS=5000 $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/simulation/test_seeds.py -k "ci"

## bench: every benchmark, printing its figures
bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
