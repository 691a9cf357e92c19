"""The features and estimates of the real twcs prefix equal the stored golden frames
(tests/golden/capture.py): moving code must not move a number."""
import pandas as pd
import pytest

from tests.golden.capture import ESTIMATES_FILE, FEATURES_FILE, TRAIN_ORGS, capture

KEYS = ["window_days", "scope", "org_id", "platform", "account", "feature"]


def test_twcs_prefix_features_and_estimates_equal_the_golden_frames(twcs_prefix, tmp_path, monkeypatch):
    monkeypatch.setenv("MATURITY_TRAIN_ORGS", str(TRAIN_ORGS))
    features, estimates = capture(tmp_path / "golden.duckdb", twcs_prefix)

    expected = pd.read_csv(FEATURES_FILE, keep_default_na=False, na_values=[""])
    for frame in (features, expected):
        frame[["org_id", "platform", "account"]] = frame[["org_id", "platform", "account"]].fillna("")
    merged = expected.merge(features, on=KEYS, how="outer", suffixes=("_golden", ""), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", KEYS + ["_merge"]].head(20)
    for column in ("value", "evidence"):
        pd.testing.assert_series_equal(merged[column].astype(float), merged[f"{column}_golden"].astype(float),
                                       check_names=False, rtol=1e-9, atol=1e-9)

    golden = pd.read_csv(ESTIMATES_FILE)
    for column in ("stage_index", "confidence", "stage_low_index", "stage_high_index"):
        estimates[column] = estimates[column].astype(float)
    pd.testing.assert_frame_equal(estimates.reset_index(drop=True), golden, check_dtype=False,
                                  rtol=1e-6, atol=1e-6)
