"""models.estimate.estimate evaluates rules, classifiers and clipping over all organisations at once; its
records must be exactly what the per-organisation path (kept below as the reference) produced."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.estimate import _full_proba, _round4, estimate, fit_models, insufficient_reasons, model_inputs
from models.rules import apply_rules, rule_stages
from models.spec import load_models


def _random_dims(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Dimension rows covering every stage, abstaining criteria (NaN dimensions) and thin evidence."""
    frame = pd.DataFrame({"org": [f"o{i}" for i in range(n)]})
    for column in D.INPUT_NAMES:
        frame[column] = rng.random(n)
        frame.loc[rng.random(n) < 0.08, column] = np.nan
    frame["completeness"] = np.where(rng.random(n) < 0.1, 0.4, 1.0)
    frame["posts"] = rng.integers(0, 200, n).astype(float)
    frame["mentions"] = np.where(rng.random(n) < 0.05, np.nan, rng.integers(0, 200, n).astype(float))
    return frame


@pytest.fixture(scope="module")
def fitted_and_dims():
    rng = np.random.default_rng(3)
    train = _random_dims(rng, 240)
    for model_id, spec in load_models().items():
        if spec.kind == "quadrant":
            for axis in spec.axes:
                train[f"truth_smi_{axis.name}"] = (train[axis.dimension].fillna(0) >= axis.threshold).astype(int)
        else:
            noise = rng.integers(-1, 2, len(train))
            train[f"truth_{model_id}"] = np.clip(rule_stages(spec, train) + noise, 0, len(spec.stages) - 1)
    return fit_models(train, classifier=OrdinalStageClassifier(max_iter=20)), _random_dims(rng, 400)


def _reference_estimate(fitted, dims: pd.DataFrame) -> list[dict]:
    """The per-organisation implementation the vectorised one replaced (apply_rules per row)."""
    def num(value):
        if value is None:
            return None
        value = float(value)
        return None if value != value else round(value, 4)

    specs = load_models()
    dims = dims.reset_index(drop=True)
    records = dims.to_dict("records")
    out, per_model = [], {}
    for model_id, spec in specs.items():
        n = len(spec.stages)
        if spec.kind == "quadrant":
            axis_p = {name: _full_proba(m, model_inputs(spec, dims, name), 2)[0][:, 1]
                      for name, m in fitted.axes.items()}
            proba = np.zeros((len(dims), n))
            for stage in spec.stages:
                p = np.ones(len(dims))
                for axis, level in stage.levels:
                    p = p * (axis_p[axis] if level == "high" else 1 - axis_p[axis])
                proba[:, stage.index] = p
            clf_stage = np.array([spec.quadrant_index({a: axis_p[a][i] >= 0.5 for a in axis_p})
                                  for i in range(len(dims))], dtype=int)
            per_model[model_id] = (proba, clf_stage, axis_p)
        else:
            proba, median = _full_proba(fitted.ordinal[model_id], model_inputs(spec, dims), n)
            per_model[model_id] = (proba, median, {})
    for i, row in enumerate(records):
        reasons = insufficient_reasons(row)
        for model_id, spec in specs.items():
            proba, clf_stage, axis_p = per_model[model_id]
            rules = apply_rules(spec, row)
            c, r = int(clf_stage[i]), rules.stage_index
            p = proba[i].copy()
            if spec.kind == "quadrant":
                stage_index = c
            else:
                lo, hi = max(r - 1, 0), min(r + 1, len(spec.stages) - 1)
                stage_index = int(min(max(c, lo), hi))
                clipped = np.zeros_like(p)
                np.add.at(clipped, np.clip(np.arange(len(p)), lo, hi), p)
                p = clipped / clipped.sum()
            base = {"org": row["org"], "model": model_id,
                    "probabilities": {s.name: round(float(v), 4) for s, v in zip(spec.stages, p)},
                    "explanation": {"rules": {"stage": rules.stage, "held": rules.held, "failed": rules.failed,
                                              "abstained": rules.abstained},
                                    "classifier": {"stage": spec.stages[c].name,
                                                   "probabilities": {s.name: round(float(v), 4) for s, v in
                                                                     zip(spec.stages, proba[i])}},
                                    "dimensions": {d: num(row.get(d)) for d in D.DIMENSIONS},
                                    "completeness": num(row.get("completeness")),
                                    "observations": num(float(row.get("posts", 0)) + float(row.get("mentions", 0)))}}
            if axis_p:
                base["explanation"]["axes"] = {a: round(float(v[i]), 4) for a, v in axis_p.items()}
            if reasons:
                base.update(stage=None, stage_index=None, confidence=None, status="insufficient_evidence",
                            rule_stage=None, classifier_stage=None)
                base["explanation"]["insufficient"] = reasons
            else:
                base.update(stage=spec.stages[stage_index].name, stage_index=stage_index,
                            confidence=round(float(p[stage_index]), 4), status="ok", rule_stage=rules.stage,
                            classifier_stage=spec.stages[c].name)
            out.append(base)
    return out


def test_estimate_matches_the_per_organisation_reference(fitted_and_dims, monkeypatch):
    import models.estimate

    monkeypatch.setattr(models.estimate, "PARALLEL_MIN_ROWS", 0)  # models predicted on a thread pool
    fitted, dims = fitted_and_dims
    fast, reference = estimate(fitted, dims), _reference_estimate(fitted, dims)
    assert fast == reference
    assert json.dumps(fast) == json.dumps(reference)  # what the estimates table stores, key order included
    statuses = {r["status"] for r in fast}
    assert statuses == {"ok", "insufficient_evidence"}
    assert any(r["explanation"]["rules"]["abstained"] for r in fast)


def test_estimate_of_one_organisation_matches_the_reference(fitted_and_dims):
    fitted, dims = fitted_and_dims
    one = dims.iloc[[7]]  # what-if and `maturity explain` estimate a single row with its original index
    assert estimate(fitted, one) == _reference_estimate(fitted, one)


def test_vectorised_rule_stages_match_apply_rules(fitted_and_dims):
    _, dims = fitted_and_dims
    for spec in load_models().values():
        expected = [apply_rules(spec, row).stage_index for row in dims.to_dict("records")]
        assert rule_stages(spec, dims).tolist() == expected, spec.id


def test_one_pass_proba_and_median_match_the_separate_calls(fitted_and_dims):
    fitted, dims = fitted_and_dims
    for model_id, model in fitted.ordinal.items():
        X = model_inputs(load_models()[model_id], dims)
        proba, median = model.proba_and_median(X)
        assert np.array_equal(proba, model.predict_proba(X))
        assert np.array_equal(median, model.ordinal_median(X))


def test_round4_is_the_builtin_round():
    rng = np.random.default_rng(11)
    halves = (np.arange(20000) + 0.5) / 1e4           # ties and near-ties of the 4th decimal
    values = np.concatenate([rng.random(200_000), halves, np.nextafter(halves, 0), np.nextafter(halves, 1),
                             np.array([0.0, -0.0, 1.0, 0.03125, 1e-17, -1e-17])])
    assert _round4(values) == [round(v, 4) for v in values.tolist()]
