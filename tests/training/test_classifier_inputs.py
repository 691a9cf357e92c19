"""The classifier's input choice: signals only leaves the rule stage and criterion margins out, and
estimates stay monotone in every signal with either choice."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.runner import build_features
from models import dimensions as D
from models.estimate import estimate, fit_models, model_inputs
from models.spec import load_models
from pipeline.estimation import org_frame
from pipeline.store import writer
from pipeline.training.cache import training_frame
from pipeline.training.synthetic import END, import_synthetic
from tests.models.test_models import _improve


@pytest.fixture(scope="module")
def train():
    return training_frame(23, 60, 90, prefix="ci")


def test_signals_only_inputs_are_the_shared_scores_without_rule_stage_or_margins(train):
    spec = load_models()["forrester"]
    with_rules = model_inputs(spec, train)
    signals = model_inputs(spec, train, inputs="signals")
    assert signals.shape[1] == len(D.INPUT_NAMES) == with_rules.shape[1] - len(spec.criteria) - 1
    np.testing.assert_array_equal(signals, D.classifier_inputs(train))
    with pytest.raises(ValueError):
        model_inputs(spec, train, inputs="rules")


def test_a_signals_only_fit_reads_signals_only_and_skips_rows_without_truth(train):
    partial = train.copy()
    partial.loc[partial.index[::2], "truth_smmm"] = np.nan      # another model's population
    fitted = fit_models(partial, inputs="signals")
    assert fitted.inputs == "signals"
    assert fitted.ordinal["smmm"].n_features_in_ == len(D.INPUT_NAMES)
    rows = estimate(fitted, train)
    assert {r["model"] for r in rows} == set(load_models())


def test_signals_only_estimates_are_monotone_in_every_signal(train):
    fitted = fit_models(train, inputs="signals")
    with writer(":memory:") as store:
        import_synthetic(store, 34, 25, prefix="mo")
        build_features(store.con, END, windows=(90,))
        features = org_frame(store, END, 90)
    base = pd.DataFrame(estimate(fitted, D.compute(features)))
    better = pd.DataFrame(estimate(fitted, D.compute(_improve(features, 1.4))))
    merged = base.merge(better, on=["org", "model"], suffixes=("", "_better"))
    merged = merged[(merged["status"] == "ok") & (merged["status_better"] == "ok") & (merged["model"] != "smi")]
    assert len(merged) > 40
    assert (merged["stage_index_better"] >= merged["stage_index"]).all()
