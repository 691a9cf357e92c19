"""The classifiers read signal scores only (never the rule stage or criterion margins, which would let
them learn the rules back as the answer), and a fit leaves out rows with no truth for a model."""
from __future__ import annotations

import numpy as np
import pytest

from models import dimensions as D
from models.estimate import estimate, fit_models, model_inputs
from models.spec import load_models
from pipeline.training.cache import training_frame


@pytest.fixture(scope="module")
def train():
    return training_frame(23, 60, 90, prefix="ci")


def test_classifier_inputs_are_the_shared_signal_scores(train):
    inputs = model_inputs(train)
    assert inputs.shape[1] == len(D.INPUT_NAMES)
    np.testing.assert_array_equal(inputs, D.classifier_inputs(train))
    assert not any(name.startswith(("rule", "margin")) for name in D.INPUT_NAMES)


def test_a_fit_skips_rows_without_truth_for_a_model(train):
    partial = train.copy()
    partial.loc[partial.index[::2], "truth_smmm"] = np.nan      # another model's population
    fitted = fit_models(partial)
    assert fitted.ordinal["smmm"].n_features_in_ == len(D.INPUT_NAMES)
    rows = estimate(fitted, train)
    assert {r["model"] for r in rows} == set(load_models())
