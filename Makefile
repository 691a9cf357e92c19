# Two commands a fresh clone needs: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
POSTS  ?= 1000000

.PHONY: run test bench venv clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/maturity run --config data/demo.toml

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --posts $(POSTS)
	$(BIN)/python -m benchmarks.import_memory --rows 2000000 --cap-mb 1024

docs: $(STAMP)
	$(BIN)/maturity dictionary --out docs/features.md

clean:
	rm -rf $(VENV) data/maturity.duckdb data/maturity.duckdb.wal
