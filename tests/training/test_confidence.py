"""Confidence from the data: the resampling maths (models/confidence.py) on known answers, the
resampled signals equal to the feature library's on the unresampled rows, and the record hook."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.runner import build_features
from models import confidence as C
from pipeline.estimation import org_frame
from pipeline.store import writer
from pipeline import confidence as BT
from pipeline.training.synthetic import END, import_synthetic


def test_weighted_quantile_is_quantile_cont_over_repeated_rows():
    rng = np.random.default_rng(1)
    values = rng.lognormal(6, 1.5, size=37)
    weights = rng.multinomial(37, np.full(37, 1 / 37), size=50).astype(float)
    for q in (0.5, 0.9):
        expected = [np.quantile(np.repeat(values, w.astype(int)), q) for w in weights]   # linear = quantile_cont
        assert C.weighted_quantile_cont(values, weights, q) == pytest.approx(expected)
    assert np.isnan(C.weighted_quantile_cont(values, np.zeros((1, 37)), 0.5)).all()
    assert np.isnan(C.weighted_quantile_cont(np.array([]), np.zeros((2, 0)), 0.5)).all()


def test_shares_distinct_counts_and_stage_share():
    weights = np.array([[1.0, 1, 1, 1], [0, 2, 2, 0], [0, 0, 0, 0]])
    share = C.weighted_share(np.array([True, False, True, False]), weights)
    assert share[:2].tolist() == [0.5, 0.5] and np.isnan(share[2])
    codes = np.array([0, 1, 1, -1])
    assert C.distinct_count(codes, weights).tolist() == [2, 1, 0]
    assert C.distinct_count(codes, weights, at_least=2).tolist() == [1, 1, 0]
    assert C.stage_share(np.array([1, 1, 2, -1]), np.array([1, 2, 2, -1]), 1, 1) == 0.25
    rng = np.random.default_rng(0)
    counts = C.thread_weights(9, 20000, rng)
    assert counts.shape == (20000, 9) and (counts == np.round(counts)).all() and counts.min() >= 0
    # a replicate differs from the sample as much as an independent second sample does: variance 2 per thread
    assert counts.mean() == pytest.approx(1.0, abs=0.02) and counts.var() == pytest.approx(2.0, abs=0.06)
    assert C.thread_weights(0, 5, rng).shape == (5, 0)


def test_input_reference_flags_and_shrinks_inputs_far_outside_the_training_data():
    rng = np.random.default_rng(2)
    base = rng.uniform(0, 1, size=(400, 1))
    train = np.clip(base + rng.normal(0, 0.05, size=(400, 3)), 0, 1)   # three strongly correlated inputs
    reference = C.InputReference(train)
    typical, opposite, partly = reference.assess(np.array([[0.5, 0.5, 0.5], [0.0, 1.0, 0.0], [0.5, np.nan, 0.5]]))
    assert not typical["out_of_distribution"] and typical["shrink"] == 0
    assert opposite["out_of_distribution"] and opposite["shrink"] == 1       # correlation broken
    assert not partly["out_of_distribution"]                                 # judged on the observed columns
    assert reference.assess(np.array([[np.nan] * 3])) == [None]


def _record(org, model, point, probabilities, low=None, high=None):
    """An estimate record as models.estimate writes it: a point is the interval [point, point]; the
    confidence is the classifier's own probability of it, `probabilities` its distribution restricted
    to the interval (the mass outside moved to the nearest end)."""
    low, high = (point, point) if low is None else (low, high)
    restricted = np.zeros(len(probabilities))
    for k, p in enumerate(probabilities):
        restricted[min(max(k, low), high)] += p
    return {"org": org, "model": model, "stage_index": point, "stage": f"s{point}",
            "status": "ok" if low == high else "interval", "stage_low_index": low, "stage_high_index": high,
            "confidence": float(sum(probabilities[low:high + 1])), "explanation": {},
            "probabilities": {f"s{k}": p for k, p in enumerate(restricted.tolist())}}


def test_apply_data_confidence_on_points_intervals_and_far_inputs():
    point = _record("a", "smmm", 2, [0.0, 0.2, 0.64, 0.16])
    interval = _record("b", "smmm", 1, [0.1, 0.3, 0.4, 0.2], low=1, high=2)
    insufficient = {**_record("c", "smmm", 0, [1, 0, 0, 0]), "stage_index": None, "status": "insufficient_evidence"}
    bounds = {("a", "smmm"): (np.array([2, 2, 2, 1]), np.array([2, 2, 2, 1])),
              ("b", "smmm"): (np.array([1, 1, 0, 1]), np.array([2, 2, 2, 1]))}
    far = {"a": {"shrink": 1.0, "out_of_distribution": True}, "b": {"shrink": 0.0, "out_of_distribution": False}}
    a, b, c = C.apply_data_confidence([point, interval, insufficient], bounds, far)
    assert a["bootstrap_share"] == 0.75 and a["confidence"] == 0.75 and a["out_of_distribution"]  # classifier ignored
    assert b["bootstrap_share"] == 0.5 and b["confidence"] == pytest.approx(0.5 * 0.7 ** 0.5, abs=1e-4)
    assert b["explanation"]["data_confidence"]["classifier_probability"] == pytest.approx(0.7)
    assert c["bootstrap_share"] is None and c["confidence"] == insufficient["confidence"]
    assert point["confidence"] == 0.64 and "bootstrap_share" not in point          # inputs are not changed


@pytest.fixture(scope="module")
def synthetic_store(tmp_path_factory):
    with writer(tmp_path_factory.mktemp("boot") / "b.duckdb") as store:
        import_synthetic(store, 41, 12, prefix="bt")
        build_features(store.con, END, windows=(90,))
        yield store


def test_resampled_signals_equal_the_feature_library_on_the_original_rows(synthetic_store):
    features = org_frame(synthetic_store, END, 90).set_index("org")
    mentions, posts = BT.staging_rows(synthetic_store.con, END, 90)
    checked = 0
    for org, row in features.iterrows():
        m, p = mentions[mentions["org"] == org], posts[posts["org"] == org]
        threads = np.array(sorted(set(m["thread"]) | set(p["thread"])))
        if not len(threads):
            continue
        signals = BT.replicate_signals(m, p, np.ones((1, len(threads))), threads)
        assert set(signals) == set(BT.RESAMPLED_FEATURES)
        for name, value in signals.items():
            expected = row[name]
            if pd.isna(expected):
                assert np.isnan(value[0]), (org, name)
            else:
                assert value[0] == pytest.approx(expected, rel=1e-9), (org, name)
        checked += 1
    assert checked >= 10
