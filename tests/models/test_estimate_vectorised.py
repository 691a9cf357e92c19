"""models.estimate.estimate evaluates rules and classifiers over all organisations at once; its records
must be exactly what estimating each organisation on its own gives, and the vectorised rule walk must
be the stage walk the model files document (kept below as a per-row reference)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.estimate import _round4, estimate, fit_models
from models.rules import FAIL, HOLD, UNOBSERVED, rule_frame
from models.spec import load_models

KINDS = np.array([D.EXACT, D.LOWER_BOUND, D.NOT_OBSERVED])


def _random_dims(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Signal rows across every threshold, with random observation kinds and thin evidence."""
    features = pd.DataFrame({"org": [f"o{i}" for i in range(n)]})
    for scale in D.SCALES:
        lo, hi = sorted((scale.lo, scale.hi))
        value = lo + rng.random(n) * (hi - lo) * 1.3
        value[rng.random(n) < 0.08] = np.nan
        features[scale.feature or scale.signal] = value
    features["customer_to_customer_replies"] = rng.random(n) * 20
    for volume in ("mentions", "answered", "replies"):
        features[volume] = rng.integers(0, 60, n).astype(float)
    for need in D.NEEDS:
        features[f"observes_{need}"] = KINDS[rng.choice(3, n, p=[0.6, 0.25, 0.15])]
    return D.compute(features)


@pytest.fixture(scope="module")
def fitted_and_dims():
    rng = np.random.default_rng(3)
    train = _random_dims(rng, 240)
    for model_id, spec in load_models().items():
        if spec.kind == "quadrant":
            for axis in spec.axes:
                train[f"truth_smi_{axis.name}"] = rng.integers(0, 2, len(train))
        else:
            train[f"truth_{model_id}"] = rng.integers(0, len(spec.stages), len(train))
    return fit_models(train, classifier=OrdinalStageClassifier(max_iter=20)), _random_dims(rng, 300)


def test_estimate_of_each_organisation_alone_matches_the_vectorised_records(fitted_and_dims):
    fitted, dims = fitted_and_dims
    together = estimate(fitted, dims)
    alone = [r for i in range(0, len(dims), 37) for r in estimate(fitted, dims.iloc[[i]])]
    chosen = {dims["org"].iloc[i] for i in range(0, len(dims), 37)}
    assert alone == [r for r in together if r["org"] in chosen]


def _reference_walk(spec, verdicts: np.ndarray) -> tuple[int, int]:
    """One row's low and high, written as the stage walk models/smmm.toml describes."""
    k = len(spec.stages)
    supported, excluded, passable, implies = [True] + [False] * (k - 1), [False] * k, [False] * k, [False] * k
    for stage in spec.stages[1:]:
        mine = [(c, verdicts[j]) for j, c in enumerate(spec.criteria) if c.stage_index == stage.index]
        if not mine:
            passable[stage.index] = True
            continue
        fails = any(v == FAIL for _, v in mine)
        required = [v for c, v in mine if c.required]
        supported[stage.index] = all(v == HOLD for v in required) and not fails
        excluded[stage.index] = fails
        passable[stage.index] = (all(v in (HOLD, UNOBSERVED) for v in required) and not fails
                                 and not supported[stage.index])
        implies[stage.index] = any(c.implies_below and v == HOLD for c, v in mine)
    low, j = 0, 1
    while j < k:
        if supported[j]:
            low = j
        elif not (passable[j] and not excluded[j]):
            jump = [h for h in range(k - 1, j, -1) if supported[h] and implies[h] and not any(excluded[1:h + 1])]
            if not jump:
                break
            low = j = jump[0]
        j += 1
    high = low
    for h in range(low + 1, k):
        if excluded[h]:
            break
        high = h
    return low, high


def test_vectorised_rule_walk_matches_the_documented_walk(fitted_and_dims):
    _, dims = fitted_and_dims
    for spec in load_models().values():
        if spec.kind == "quadrant":
            continue
        rules = rule_frame(spec, dims)
        expected = [_reference_walk(spec, rules.verdicts[i]) for i in range(len(dims))]
        assert list(zip(rules.low.tolist(), rules.high.tolist())) == expected, spec.id
        assert len(set(expected)) > 3, spec.id   # the random rows reach several intervals


def test_round4_is_the_builtin_round():
    values = np.array([[0.00005, 0.12345, 0.99995, 1 / 3], [2.5e-5, 0.6, 0.0, 1.0]])
    assert _round4(values) == [[round(v, 4) for v in row] for row in values.tolist()]
