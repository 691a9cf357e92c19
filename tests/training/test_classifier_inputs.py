"""The classifiers read signal scores only (never the rule stage or criterion margins, which would let
them learn the rules back as the answer), and a fit leaves out rows with no truth for a model."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors.observation import observe, source_observations
from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.estimate import classifier_proba, estimate, fit_models, model_inputs
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


def test_as_a_sample_shows_them_signals_it_cannot_show_are_missing_and_bounds_are_not_read(train):
    twcs = observe(["twcs"])
    seen = D.as_observed(train, twcs)
    assert seen["obs_posts_per_day_robust"].eq(D.NOT_OBSERVED).all() and seen["sig_media_share"].isna().all()
    assert seen["obs_official_posts"].eq(D.LOWER_BOUND).all()
    assert seen["obs_response_rate"].eq(D.UPPER_BOUND).all() and seen["obs_first_reply_median_s"].eq(D.EXACT).all()
    np.testing.assert_array_equal(seen["sig_response_rate"], train["sig_response_rate"])
    inputs = pd.DataFrame(D.classifier_inputs(seen), columns=D.INPUT_NAMES)
    # a bound keeps its value for the rules, but the classifier does not read it as one
    assert seen["score_official_posts"].notna().any() and inputs["score_official_posts"].isna().all()
    assert inputs["score_response_rate"].isna().all() and inputs["score_first_reply_median_s"].notna().all()
    # a dimension is the mean of the exactly observed scores only (presence: none of them under twcs)
    assert inputs["presence"].isna().all()
    responsiveness = [f"score_{s.signal}" for s in D.SCALES if s.dimension == "responsiveness"
                      and s.signal != "response_rate"]
    np.testing.assert_allclose(inputs["responsiveness"], seen[responsiveness].mean(axis=1))


def test_a_fit_on_the_sources_observation_reads_no_minimum(train):
    fitted = fit_models(train, observations=list(source_observations().values()),
                        classifier=OrdinalStageClassifier(max_iter=20))
    assert fitted.info["observations"] == len(source_observations())
    seen = D.as_observed(train, observe(["twcs"]))
    more = seen.copy()
    more["sig_official_posts"] *= 10       # a sample ten times as large: a higher minimum, nothing else
    more["score_official_posts"] = more["sig_official_posts"].map(D.SCALE_BY_SIGNAL["official_posts"].score)
    for spec in load_models().values():
        np.testing.assert_array_equal(classifier_proba(spec, fitted, seen), classifier_proba(spec, fitted, more))


class _Recording(OrdinalStageClassifier):
    fits: list = []

    def fit(self, X, y, sample_weight=None, groups=None):
        type(self).fits.append((y, sample_weight, groups))
        return super().fit(X, y, sample_weight=sample_weight, groups=groups)


def test_each_view_keeps_its_organisations_truth_group_and_share_of_weight(train):
    _Recording.fits.clear()
    fit_models(train, observations=[observe(["twcs"]), observe(["sp500"])], classifier=_Recording(max_iter=5))
    y, weight, groups = _Recording.fits[0]
    first = next(iter(load_models()))
    n = len(train)
    assert len(y) == 3 * n and y[:n].tolist() == train[f"truth_{first}"].astype(int).tolist()
    assert (y[:n] == y[n:2 * n]).all() and (y[:n] == y[2 * n:]).all()
    assert (groups[:n] == groups[n:2 * n]).all() and len(set(groups[:n].tolist())) == n
    np.testing.assert_allclose(weight, 1 / 3)        # the three views of an organisation weigh one
