"""PatternBoostingClassifier evaluates its trees once per distinct split pattern: its decision function
must be the plain HistGradientBoostingClassifier's bit for bit, also on values lying exactly on a
threshold, missing or infinite, and split patterns must tell rows apart exactly as their sides do."""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from models.classifier import PatternBoostingClassifier, split_patterns


def _rows_on_every_side(rng: np.random.Generator, model: PatternBoostingClassifier, n: int) -> np.ndarray:
    """Random rows whose values are often a threshold itself, just beside one, missing or infinite."""
    X = rng.normal(size=(n, model.n_features_in_))
    for feature, cuts in model.split_thresholds_:
        choice = rng.random(n)
        picked = rng.choice(cuts, n)
        X[:, feature] = np.select([choice < 0.3, choice < 0.4, choice < 0.5, choice < 0.55, choice < 0.6],
                                  [picked, np.nextafter(picked, np.inf), np.nan, np.inf, -np.inf], X[:, feature])
    return X


def test_decision_function_is_the_plain_boosting_bit_for_bit():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 6))
    X[rng.random(X.shape) < 0.1] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 + rng.normal(size=600) > 0.8).astype(int)
    model = PatternBoostingClassifier(max_iter=40, max_leaf_nodes=8, min_samples_leaf=5, random_state=0).fit(X, y)
    rows = _rows_on_every_side(rng, model, 5000)
    patterned = model.decision_function(rows)
    plain = HistGradientBoostingClassifier.decision_function(model, rows)
    assert patterned.dtype == plain.dtype and patterned.shape == plain.shape
    assert np.array_equal(patterned.view(np.int64), plain.view(np.int64))
    assert len(split_patterns(rows, model.split_thresholds_)[0]) < len(rows)


def _sides(X: np.ndarray, thresholds) -> np.ndarray:
    """Per row and split, whether the row goes left (value <= threshold), right, or is missing."""
    columns = []
    for feature, cuts in thresholds:
        for cut in cuts:
            columns.append(np.where(np.isnan(X[:, feature]), 2, (X[:, feature] <= cut).astype(int)))
    return np.column_stack(columns)


def test_split_patterns_are_the_rows_sides_also_past_one_key_word():
    rng = np.random.default_rng(8)
    # 40 features of 30 thresholds each: far more patterns than one int64 key holds
    thresholds = [(feature, np.sort(rng.choice(np.arange(-3, 3, 0.1), 30, replace=False)))
                  for feature in range(40)]
    X = rng.choice(np.arange(-3.2, 3.2, 0.05), size=(3000, 40))
    X[rng.random(X.shape) < 0.05] = np.nan
    X[1000:2000] = X[:1000]    # rows alike
    X[2000:2500, 0] = X[:500, 0] + 0.01   # rows alike but for one side of one feature, most of them
    first, pattern = split_patterns(X, thresholds)
    _, expected_first, expected = np.unique(_sides(X, thresholds), axis=0, return_index=True, return_inverse=True)
    # the same partition of the rows (the numbering of the patterns may differ)
    assert len(first) == len(expected_first)
    pairs = set(zip(pattern.tolist(), expected.reshape(-1).tolist()))
    assert len(pairs) == len(first)
    assert np.array_equal(pattern[first], np.arange(len(first)))
