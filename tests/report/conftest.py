"""Session fixtures for the report, API and notebook tests: the demo databases of demo_db.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from demo_db import TWCS_PREFIX, build_demo_db


@pytest.fixture(scope="session")
def airlines_db(tmp_path_factory, model_cache) -> Path:
    """The demo database (read it with pipeline.api.open_store); skips when ../shared/data is absent.
    Fitted models go to the session's model cache ($MATURITY_MODEL_CACHE in every test), where
    `Analyst.fitted_models()` finds them."""
    if not TWCS_PREFIX.exists():
        pytest.skip(f"needs {TWCS_PREFIX} (the ../shared data set beside the checkout); not present here")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MATURITY_MODEL_CACHE", str(model_cache))
        return build_demo_db(tmp_path_factory.mktemp("demo") / "demo.duckdb")


@pytest.fixture(scope="session")
def airlines_db_no_estimates(tmp_path_factory) -> Path:
    if not TWCS_PREFIX.exists():
        pytest.skip(f"needs {TWCS_PREFIX} (the ../shared data set beside the checkout); not present here")
    return build_demo_db(tmp_path_factory.mktemp("demo_noest") / "demo.duckdb", with_estimates=False)


@pytest.fixture(scope="session")
def synthetic_db(tmp_path_factory, model_cache) -> Path:
    """Synthetic organisations (pipeline/training/synthetic.py) with real estimates; needs no shared data."""
    from demo_db import build_synthetic_demo

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MATURITY_MODEL_CACHE", str(model_cache))
        return build_synthetic_demo(tmp_path_factory.mktemp("synthetic") / "demo.duckdb")
