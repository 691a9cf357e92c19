# Two commands a fresh clone needs: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS_STAMP := $(VENV)/.installed-notebooks
POSTS  ?= 1000000

.PHONY: run test bench venv clean docs notebooks lab

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

$(NOTEBOOKS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,notebooks]'
	touch $(NOTEBOOKS_STAMP)

# Execute every notebook headless from notebooks/, where Jupyter starts its kernels (after `make run`:
# they read the project's data/maturity.duckdb, or $$MATURITY_DB); outputs are not written back.
notebooks: $(NOTEBOOKS_STAMP)
	cd notebooks && ../$(BIN)/jupyter execute --timeout=600 *.ipynb

# Open the notebooks in JupyterLab.
lab: $(NOTEBOOKS_STAMP)
	$(BIN)/jupyter lab notebooks/

run: $(STAMP)
	$(BIN)/maturity run --config data/demo.toml

# One pytest worker per core, each taking whole files (their module fixtures are built once).
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --posts $(POSTS)
	$(BIN)/python -m benchmarks.import_memory --rows 2000000 --cap-mb 1024

docs: $(STAMP)
	$(BIN)/maturity dictionary --out docs/features.md

clean:
	rm -rf $(VENV) data/maturity.duckdb data/maturity.duckdb.wal
