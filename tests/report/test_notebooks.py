"""The analyst notebooks run headless (nbclient) against a demo database and use the Python API."""
from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient

from demo_db import REPO, TWCS_PREFIX

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


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
def test_notebook_runs_headless(notebook, notebook_db, monkeypatch, tmp_path):
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
    NotebookClient(book, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert sum("text/html" in o.get("data", {}) for o in outputs) >= 3     # DataFrames were displayed
    text = json.dumps(outputs)
    assert group in text
