"""Shared fixtures for the report, API and notebook tests: one demo database per test session.

The demo is the real twcs 5k-prefix file with the example organisation config (the "airlines" sector is
the competitor group), features at two as_of dates (windows 0 and 90 days) and real model estimates for
both, so the stage history has two runs. The classifiers are trained on a small synthetic set (70
organisations instead of the production 400) to keep the suite fast; everything else is the production
path (models.estimate.estimate_store writes the estimates table).
"""
from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MATURITY_SHARED_DATA", REPO.parent / "shared" / "data"))
TWCS_PREFIX = SHARED_DATA / "raw" / "twcs_prefix5k__monalisapatra26_data_visualization.csv"
SMALL_TRAIN = {"seed": 21, "orgs": 70}


def build_demo_db(path: Path, *, with_estimates: bool = True) -> Path:
    """Import the twcs prefix, apply data/orgs.example.toml, build features at two as_of dates and
    estimate both with the real models (small training set)."""
    import models.estimate as E
    from connectors.twcs import import_twcs
    from features.runner import build_features
    from pipeline.config import apply_config, load_config
    from pipeline.store import Store

    with Store(path) as store:
        apply_config(store, load_config(REPO / "data" / "orgs.example.toml"))
        import_twcs(store, TWCS_PREFIX)
        latest = build_features(store, windows=(0, 90))
        earlier = latest - timedelta(days=9)
        build_features(store, earlier, windows=(0, 90))
        if with_estimates:
            from threadpoolctl import threadpool_limits

            original = E.load_or_train
            E.load_or_train = functools.partial(original, **SMALL_TRAIN)
            try:
                # one OpenMP thread: the boosted trees fit ~10x faster on small data on a shared machine
                with threadpool_limits(limits=1):
                    E.estimate_store(store, earlier)
                    E.estimate_store(store, latest)
            finally:
                E.load_or_train = original
    return path


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
