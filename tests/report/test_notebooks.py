"""The analyst notebooks run headless (nbclient) against a demo database and use the Python API."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO, SMALL_TRAIN, TWCS_PREFIX, build_demo_db

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="session")
def notebook_db(tmp_path_factory, model_cache):
    """The twcs airlines demo when ../shared/data is present; otherwise synthetic organisations."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MATURITY_MODEL_CACHE", str(model_cache))
        folder = tmp_path_factory.mktemp("notebook-demo")
        if TWCS_PREFIX.exists():
            return build_demo_db(folder / "demo.duckdb"), "airlines"
        return build_synthetic_demo(folder / "demo.duckdb"), "synthetic"


def build_synthetic_demo(path: Path) -> Path:
    import functools

    from threadpoolctl import threadpool_limits

    import models.estimate as E
    from connectors.synthetic import END, import_synthetic
    from features.runner import build_features
    from pipeline.store import Store

    with Store(path) as store:
        import_synthetic(store, seed=5, orgs=10)
        build_features(store, END, windows=(0, 90))
        original = E.load_or_train
        E.load_or_train = functools.partial(original, **SMALL_TRAIN)
        try:
            with threadpool_limits(limits=1):
                E.estimate_store(store, END)
        finally:
            E.load_or_train = original
    return path


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
