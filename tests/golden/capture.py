"""Features and estimates of the real twcs prefix with data/orgs.example.toml, as stored frames.

`python -m tests.golden.capture` writes them beside this file; tests/test_golden_twcs.py recomputes
them and compares. Refactors must leave them unchanged; a change of definition on purpose
regenerates them in the same commit, saying why.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FEATURES_FILE = HERE / "twcs_prefix_features.csv.gz"
ESTIMATES_FILE = HERE / "twcs_prefix_estimates.csv"
TRAIN_ORGS = 80
WINDOWS = (0, 90)
ESTIMATE_WINDOW = 90


def capture(db_path: Path, twcs_file: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from connectors.twcs import import_twcs
    from features.runner import build_features
    from pipeline.config import apply_config, load_config
    from pipeline.estimation import estimate_store, org_dimensions
    from pipeline.store import writer
    from pipeline.training.cache import load_or_train

    with writer(db_path) as store:
        apply_config(store, load_config(REPO / "data" / "orgs.example.toml"))
        import_twcs(store, twcs_file)
        as_of = build_features(store.con, None, windows=WINDOWS)
        fitted = load_or_train(store, org_dimensions(store, as_of, ESTIMATE_WINDOW), ESTIMATE_WINDOW)
        estimate_store(store, fitted, as_of, ESTIMATE_WINDOW)
        features = store.df("select window_days, scope, org_id, platform, account, feature, value, evidence "
                            "from features order by all")
        estimates = store.df("select org_id, model, stage, stage_index, confidence, status, stage_low_index, "
                             "stage_high_index, stages_possible, rule_stage, classifier_stage from estimates "
                             "order by org_id, model")
    return features, estimates


def main() -> None:
    import os
    import tempfile

    os.environ["MATURITY_TRAIN_ORGS"] = str(TRAIN_ORGS)
    twcs = Path(sys.argv[1]) if len(sys.argv) > 1 else (
        REPO.parent / "shared" / "data" / "raw" / "twcs_prefix5k__monalisapatra26_data_visualization.csv")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["MATURITY_MODEL_CACHE"] = str(Path(scratch) / "models")
        features, estimates = capture(Path(scratch) / "golden.duckdb", twcs)
    # no time stamp in the gzip header: an unchanged frame gives an unchanged file
    features.to_csv(FEATURES_FILE, index=False, compression={"method": "gzip", "mtime": 0})
    estimates.to_csv(ESTIMATES_FILE, index=False)
    print(f"wrote {FEATURES_FILE.name} ({len(features)} rows), {ESTIMATES_FILE.name} ({len(estimates)} rows)")


if __name__ == "__main__":
    main()
