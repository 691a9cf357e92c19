"""Demo databases for the report, API and notebook tests (fixtures in conftest.py).

The demo is the real twcs 5k-prefix file with the example organisation config (the "airlines" sector is
the competitor group), features at two as_of dates (windows 0 and 90 days) and real model estimates for
both, so the stage history has two runs. The classifiers are trained on a small synthetic set (70
organisations instead of the production 400) to keep the suite fast; everything else is the production
path (pipeline.estimation.estimate_store writes the estimates table).
"""
from __future__ import annotations

import functools
import os
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("MATURITY_SHARED_DATA", REPO.parent / "shared" / "data"))
TWCS_PREFIX = SHARED_DATA / "raw" / "twcs_prefix5k__monalisapatra26_data_visualization.csv"
SMALL_TRAIN = {"seed": 21, "orgs": 70}
WINDOW_DAYS = 90


def _estimate(store, as_of_dates) -> None:
    """Real estimates on the 90-day window with the small training set."""
    from threadpoolctl import threadpool_limits

    from pipeline.estimation import estimate_store, org_dimensions
    from pipeline.training.cache import load_or_train

    # one OpenMP thread: the boosted trees fit ~10x faster on small data on a shared machine
    with threadpool_limits(limits=1):
        fitted = load_or_train(store, org_dimensions(store, as_of_dates[-1], WINDOW_DAYS), WINDOW_DAYS, **SMALL_TRAIN)
        for as_of in as_of_dates:
            estimate_store(store, fitted, as_of, WINDOW_DAYS)


def build_demo_db(path: Path, *, with_estimates: bool = True) -> Path:
    """Import the twcs prefix, apply data/orgs.example.toml, build features at two as_of dates and
    estimate both with the real models (small training set)."""
    from connectors.twcs import import_twcs
    from features.runner import build_features
    from pipeline.config import apply_config, load_config
    from pipeline.store import writer

    with writer(path) as store:
        apply_config(store, load_config(REPO / "data" / "orgs.example.toml"))
        import_twcs(store, TWCS_PREFIX)
        latest = build_features(store.con, windows=(0, WINDOW_DAYS))
        earlier = latest - timedelta(days=9)
        build_features(store.con, earlier, windows=(0, WINDOW_DAYS))
        if with_estimates:
            _estimate(store, [earlier, latest])
    return path


def build_synthetic_demo(path: Path) -> Path:
    from features.runner import build_features
    from pipeline.store import writer
    from pipeline.training.synthetic import END, import_synthetic

    with writer(path) as store:
        import_synthetic(store, seed=5, orgs=10)
        build_features(store.con, END, windows=(0, WINDOW_DAYS))
        _estimate(store, [END])
    return path
