from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.store import Store, writer

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MATURITY_SHARED_DATA", REPO.parent / "shared" / "data"))
TWCS_PREFIX = SHARED_DATA / "raw" / "twcs_prefix5k__monalisapatra26_data_visualization.csv"


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared data set beside the checkout); not present here")
    return path


@pytest.fixture
def shared_data() -> Path:
    """Root of ../shared/data; skips the test with a clear reason when it is absent."""
    return _require(SHARED_DATA)


@pytest.fixture
def twcs_prefix() -> Path:
    return _require(TWCS_PREFIX)


@pytest.fixture
def store(tmp_path) -> Store:
    with writer(tmp_path / "test.duckdb") as opened:
        yield opened


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """One cache of trained models for the whole session: the synthetic training set is generated
    and fitted once, not once per test database."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _isolated_db_env(monkeypatch, tmp_path, model_cache):
    # never touch a developer's data/maturity.duckdb (or its model cache) from a test
    monkeypatch.setenv("MATURITY_DB", str(tmp_path / "default.duckdb"))
    monkeypatch.setenv("MATURITY_MODEL_CACHE", str(model_cache))
    # plumbing tests need a fitted model, not an accurate one; `maturity evaluate` checks accuracy
    monkeypatch.setenv("MATURITY_TRAIN_ORGS", "80")


@pytest.fixture(scope="session")
def harness():
    """One temporary Prefect API for every flow test of the session (it takes 10-25 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield
