"""The analyst notebooks run headless (nbclient) against a demo database and use the Python API."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from demo_db import REPO, TWCS_PREFIX

NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.fixture(scope="session")
def notebook_db(request):
    """The twcs airlines demo when ../shared/data is present; otherwise synthetic organisations."""
    if TWCS_PREFIX.exists():
        return request.getfixturevalue("airlines_db"), "airlines"
    return request.getfixturevalue("synthetic_db"), "synthetic"


def test_there_are_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_explore_features.ipynb", "02_competitor_benchmark.ipynb",
                                           "03_explain_and_what_if.ipynb"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_headless(notebook, notebook_db, monkeypatch):
    db, group = notebook_db
    monkeypatch.setenv("MATURITY_DB", str(db))
    monkeypatch.setenv("MATURITY_GROUP", group)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    book = nbformat.read(notebook, as_version=4)
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    assert "from pipeline.api import open_store" in source
    # the notebooks use the API, not copied SQL
    assert not any(word in source.lower() for word in ("select ", "duckdb.connect", ".execute("))
    # the kernel starts in notebooks/, as Jupyter (and `make notebooks`) start it
    NotebookClient(book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("text/html" in o.get("data", {}) for o in outputs) >= 3     # DataFrames were displayed
    text = json.dumps(outputs)
    assert group in text


def test_a_kernel_started_in_notebooks_reads_the_project_database_unless_told_otherwise(monkeypatch, tmp_path):
    """`make run` writes data/maturity.duckdb of the project; a notebook's kernel starts in notebooks/,
    so the default must not be relative to the working directory. $MATURITY_DB still wins."""
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os\nfrom pipeline.store import default_db_path\nprint(os.getcwd())\nprint(default_db_path())")])
    monkeypatch.delenv("MATURITY_DB")
    NotebookClient(book, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    cwd, default = book.cells[0].outputs[0]["text"].split()
    assert (cwd, default) == (str(NOTEBOOK_DIR), str(REPO / "data" / "maturity.duckdb"))

    monkeypatch.setenv("MATURITY_DB", str(tmp_path / "chosen.duckdb"))
    NotebookClient(book, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    assert book.cells[0].outputs[0]["text"].split()[1] == str(tmp_path / "chosen.duckdb")


def test_make_notebooks_executes_them_from_notebooks_with_the_notebooks_extra():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "cd notebooks && ../$(BIN)/jupyter execute" in makefile
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    extra = pyproject.split("notebooks = [", 1)[1].split("]", 1)[0]
    assert all(name in extra for name in ("jupyterlab", "nbconvert", "nbclient", "ipykernel"))
