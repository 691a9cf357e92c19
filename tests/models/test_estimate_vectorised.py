"""models.estimate.estimate evaluates rules and classifiers over all organisations at once and assembles
its records from readings shared by rows alike; its records must be exactly what estimating each
organisation on its own gives and what assembling each record on its own gives (kept below as a per-row
reference), and the vectorised rule walk must be the stage walk the model files document (likewise)."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.estimate import (_insufficient_reasons, _none_where_missing, _read_model, _round4, _rounded,
                             classifier_proba, estimate, fit_models, interval_reasons)
from models.rules import (FAIL, HIGH, HOLD, INSUFFICIENT, LOW, UNOBSERVED, VERDICT_NAMES, criterion_entry, rule_frame,
                          with_criterion_values)
from models.spec import load_models

KINDS = np.array([D.EXACT, D.LOWER_BOUND, D.UPPER_BOUND, D.NOT_OBSERVED])


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
        features[f"observes_{need}"] = KINDS[rng.choice(4, n, p=[0.55, 0.2, 0.1, 0.15])]
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


def _reference_num(value):
    """A value as reported, on its own."""
    if value is None:
        return None
    value = float(value)
    return None if value != value else round(value, 4)


def _reference_rules(rules, i: int) -> dict:
    """Row i's rule reading, built on its own."""
    names = rules.spec.stage_names
    out = {"low": names[int(rules.low[i])], "high": names[int(rules.high[i])],
           "possible": [n for n, p in zip(names, rules.possible[i].tolist()) if p]}
    out.update({name: [] for name in VERDICT_NAMES})
    for criterion, verdict in zip(rules.criteria, rules.verdicts[i].tolist()):
        out[VERDICT_NAMES[verdict]].append(criterion_entry(criterion))
    if rules.axis_levels:
        out["axes"] = {a: {HIGH: "high", LOW: "low", -1: "unknown"}[int(v[i])] for a, v in rules.axis_levels.items()}
    return out


def _reference_records(fitted, dims: pd.DataFrame) -> list[dict]:
    """Every record assembled on its own, organisation by organisation and model by model."""
    specs = load_models()
    readings = {model_id: _read_model(spec, fitted, dims) for model_id, spec in specs.items()}
    out = []
    for i, row in enumerate(dims.to_dict("records")):
        signals = {s: _reference_num(row.get(f"sig_{s}")) for s in D.SIGNALS}
        not_exact = {s: row.get(f"obs_{s}", D.EXACT) for s in D.SIGNALS if row.get(f"obs_{s}", D.EXACT) != D.EXACT}
        volumes = {e: _reference_num(row.get(e, 0.0)) for e in D.EVIDENCE}
        for model_id, reading in readings.items():
            spec, names = specs[model_id], specs[model_id].stage_names
            rules = _reference_rules(reading.rules, i)
            status = str(reading.rules.status[i])
            low, high = int(reading.rules.low[i]), int(reading.rules.high[i])
            c, p = reading.classifier_stage[i], reading.proba[i].tolist()
            explanation = {"rules": rules,
                           "classifier": {"stage": names[c],
                                          "probabilities": dict(zip(names, reading.classifier_proba[i].tolist()))},
                           "signals": signals, "observation": not_exact, "evidence": volumes,
                           "dimensions": {d: _reference_num(row.get(d)) for d in D.DIMENSIONS},
                           "completeness": _reference_num(row.get("completeness"))}
            if reading.axes:
                explanation["axes"] = {a: v[i] for a, v in reading.axes.items()}
            record = {"org": row["org"], "model": model_id, "probabilities": dict(zip(names, p)),
                      "explanation": explanation}
            if status == INSUFFICIENT:
                explanation["insufficient"] = _insufficient_reasons(spec, reading.rules, i)
                record.update({"stage": None, "stage_index": None, "stage_low_index": None,
                               "stage_high_index": None, "stages_possible": None, "confidence": None,
                               "status": status, "rule_stage": None, "classifier_stage": None})
            else:
                explanation["interval"] = {"low": names[low], "high": names[high], "possible": rules["possible"],
                                           "text": spec.describe(low, high, rules["possible"]),
                                           "reasons": interval_reasons(spec, rules) if status != "ok" else []}
                record.update({"stage": names[low], "stage_index": low, "stage_low_index": low,
                               "stage_high_index": high, "stages_possible": "|".join(rules["possible"]),
                               "confidence": reading.confidence[i], "status": status,
                               "rule_stage": names[low], "classifier_stage": names[c]})
            out.append(record)
    return out


def test_records_equal_the_records_assembled_one_by_one(fitted_and_dims):
    fitted, dims = fitted_and_dims
    records = estimate(fitted, dims)
    expected = _reference_records(fitted, dims)
    assert json.dumps(records) == json.dumps(expected)   # key order included
    assert records == expected
    assert len({r["status"] for r in records}) == 3 and any(r["explanation"]["interval"]["reasons"]
                                                            for r in records if r["status"] == "interval")
    smi = load_models()["smi"]
    assert _read_model(smi, fitted, dims).classifier_proba.tolist() == _round4(classifier_proba(smi, fitted, dims))


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


def test_a_column_as_reported_is_each_value_as_reported():
    column = [0.00005, 12345.67895, 86400.00005, -1e-5, -0.0, None, np.nan, np.inf, 3, 1 / 3]
    reported = _none_where_missing(_rounded(column))
    assert json.dumps(reported) == json.dumps([_reference_num(v) for v in column])


def test_rows_alike_share_one_reading_and_get_their_own_values_back_on_read(fitted_and_dims):
    """A reading holds no values, so rows alike share it; with_criterion_values gives each criterion the
    row's own values (0.0 and -0.0 differ), as every value of the row's explanation."""
    fitted, dims = fitted_and_dims
    rows = dims.iloc[[0, 0, 0]].reset_index(drop=True)
    for s in D.SIGNALS:
        rows[f"sig_{s}"] = [0.0, -0.0, 0.0]
    records = [r for r in estimate(fitted, rows) if r["model"] == "smmm"]
    assert records[0]["explanation"]["rules"] is records[1]["explanation"]["rules"] is records[2]["explanation"]["rules"]
    expanded = [with_criterion_values(r["explanation"]["rules"], r["explanation"]["signals"]) for r in records]
    signs = [{math.copysign(1, v) for k in VERDICT_NAMES for e in x[k] for v in e["signals"].values()} for x in expanded]
    assert signs == [{1.0}, {-1.0}, {1.0}]
    criteria = {c.name: [m.signal for m in c.comparisons] for c in load_models()["smmm"].criteria}
    entries = [e for k in VERDICT_NAMES for e in expanded[1][k]]
    assert len(entries) == len(criteria) and all(list(e["signals"]) == criteria[e["criterion"]] for e in entries)
    assert with_criterion_values(expanded[1], {}) == expanded[1]   # values already there are kept
