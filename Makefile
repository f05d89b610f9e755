PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint services bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,engines]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/steppe compare --trace philly-sample --cluster hub-sample --policies fifo,easy-backfill,multifactor,las,srtf --out results/demo
	$(BIN)/steppe simulate --trace philly-sample --cluster hub-sample --policy easy-backfill --site astana --power-cap 45kW --out results/demo/power-cap

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

services: $(STAMP)
	$(BIN)/python scripts/pg_throwaway.py --install
	$(BIN)/python scripts/slurm_throwaway.py --install

test: lint services
	MPLBACKEND=Agg $(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/replay_bench.py
	$(BIN)/python bench/power_bench.py

clean:
	rm -rf $(VENV) results .pytest_cache .mypy_cache .ruff_cache
