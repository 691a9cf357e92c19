"""Stage estimates: the rule stage and the calibrated classifier, combined; training and persistence.

How the two are combined (per organisation and model):
1. Evidence gate. Fewer than MIN_OBSERVATIONS org posts + inbound mentions in the window, or fewer than
   MIN_COMPLETENESS of the signals available: status `insufficient_evidence`, no stage, no confidence
   (the rule and classifier readings are kept in the explanation only).
2. Rule stage r: the transparent criteria of models/<id>.toml (models/rules.py).
3. Classifier: calibrated probabilities for every stage (models/classifier.py); the classifier stage c is
   the median of that distribution.
4. Rules act as a constraint: the reported stage is c clipped to [r - 1, r + 1], i.e. the classifier
   decides within one stage of what the seed-cited criteria say. The reported probabilities are the
   classifier's with the mass outside that window moved to its nearest edge (the distribution is
   clipped as its median is); confidence = the reported stage's probability. Both c and r are
   monotone in every signal, and so is the clip, so an organisation at least as good on every signal
   never gets a lower stage.
   smi: each axis (Investment, Innovation) has its own binary classifier; the quadrant probabilities are
   the product of the axis probabilities and the classifier quadrant takes each axis at P(high) >= 0.5.
   A two-level axis is always within one level of the rule, so for smi the window never binds.

Training data (pipeline/training): synthetic organisations with known stages, featurised by the feature
library, plus analyst labels (the labelled organisation's dimension rows; weight ANALYST_WEIGHT). This
module is pure: frames in, fitted models and estimate records out.
"""
from __future__ import annotations

import gc
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.rules import RuleFrame, rule_frame, rule_stages
from models.spec import MODEL_IDS, ModelSpec, load_models

ANALYST_WEIGHT = 3.0
# What the classifiers read. "rules_and_signals": signal/dimension scores plus the model's criterion
# margins and rule stage (the default). "signals": the scores only -- required whenever the classifier is
# scored against a truth that was not derived from the rules (pipeline/training/evaluation.py), so the
# rules cannot be learnt back as the answer.
CLASSIFIER_INPUTS = ("rules_and_signals", "signals")
# From this many organisations, models are predicted on several cores (measured break-even on 2 cores)
PARALLEL_MIN_ROWS = 500


@dataclass
class FittedModels:
    """One classifier per ordinal model, one per SMI axis; plus what they were trained on."""
    ordinal: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    axes: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    inputs: str = CLASSIFIER_INPUTS[0]


def _axis_labels(spec: ModelSpec, stage_index: int) -> dict[str, int]:
    levels = dict(spec.stages[stage_index].levels)
    return {axis.name: int(levels[axis.name] == "high") for axis in spec.axes}


def model_inputs(spec: ModelSpec, dims: pd.DataFrame, axis: str | None = None,
                 inputs: str = CLASSIFIER_INPUTS[0]) -> np.ndarray:
    """Classifier inputs for one model: the shared inputs (models.dimensions.classifier_inputs), then
    (inputs="rules_and_signals") the model's own criteria as margins (dimension - threshold) and, for
    ordinal models, the rule stage. Every column is non-decreasing in every signal, so the monotone
    classifier stays monotone."""
    if inputs not in CLASSIFIER_INPUTS:
        raise ValueError(f"inputs must be one of {CLASSIFIER_INPUTS}, not {inputs!r}")
    base = D.classifier_inputs(dims)
    if inputs == "signals":
        return base
    if spec.kind == "quadrant":
        chosen = [a for a in spec.axes if a.name == axis]
        margins = [dims[a.dimension].to_numpy(float) - a.threshold for a in chosen]
        return np.column_stack([base, *margins])
    margins = [dims[c.dimension].to_numpy(float) - c.threshold for c in spec.criteria]
    return np.column_stack([base, *margins, rule_stages(spec, dims).astype(float)])


def fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None = None, *,
               classifier: OrdinalStageClassifier | None = None,
               inputs: str = CLASSIFIER_INPUTS[0]) -> FittedModels:
    """Fit every model. `analyst`: dimension rows of labelled organisations with columns `model` and
    `stage_index` (one row per label). Rows whose truth for a model is missing (a population generated
    for another model) are left out of that model's fit. `inputs`: see CLASSIFIER_INPUTS."""
    from threadpoolctl import threadpool_limits

    # Many small fits: OpenMP threads cost more than they give (about 12x slower on 2 shared cores).
    with threadpool_limits(limits=1):
        return _fit_models(train, analyst, classifier, inputs)


def _fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None,
                classifier: OrdinalStageClassifier | None, inputs: str) -> FittedModels:
    from sklearn.base import clone

    template = classifier or OrdinalStageClassifier()
    specs = load_models()
    fitted = FittedModels(info={"train_orgs": int(len(train)),
                                "analyst_labels": 0 if analyst is None else int(len(analyst))}, inputs=inputs)
    for model_id, spec in specs.items():
        targets: dict[str, np.ndarray] = {}
        if spec.kind == "quadrant":
            for axis in spec.axes:
                targets[axis.name] = train[f"truth_smi_{axis.name}"].to_numpy()
        else:
            targets[model_id] = train[f"truth_{model_id}"].to_numpy()
        for name, y in targets.items():
            axis = name if spec.kind == "quadrant" else None
            known = ~pd.isna(y)
            Xs, ys, ws = [model_inputs(spec, train[known], axis, inputs)], [y[known].astype(int)], [np.ones(known.sum())]
            if analyst is not None and len(analyst):
                mine = analyst[analyst["model"] == model_id]
                if len(mine):
                    if spec.kind == "quadrant":
                        labels = np.array([_axis_labels(spec, int(i))[name] for i in mine["stage_index"]])
                    else:
                        labels = mine["stage_index"].to_numpy(dtype=int)
                    Xs.append(model_inputs(spec, mine, axis, inputs))
                    ys.append(labels)
                    ws.append(np.full(len(labels), ANALYST_WEIGHT))
            model = clone(template).fit(np.vstack(Xs), np.concatenate(ys), sample_weight=np.concatenate(ws))
            if spec.kind == "quadrant":
                fitted.axes[name] = model
            else:
                fitted.ordinal[name] = model
    return fitted


def _full_proba(model: OrdinalStageClassifier, X: np.ndarray, n_stages: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over all stage indices 0..n_stages-1 (classes absent in training get 0) and the
    ordinal-median stage index."""
    proba = np.zeros((X.shape[0], n_stages))
    classes = model.classes_.astype(int)
    model_proba, median = model.proba_and_median(X)
    proba[:, classes] = model_proba
    return proba, classes[median]


def insufficient_reasons(row: dict) -> list[str]:
    reasons = []
    observations = float(row.get("posts", 0) or 0) + float(row.get("mentions", 0) or 0)
    if observations < D.MIN_OBSERVATIONS:
        reasons.append(f"only {observations:.0f} posts + mentions in the window "
                       f"(at least {D.MIN_OBSERVATIONS} needed)")
    if float(row.get("completeness", 0) or 0) < D.MIN_COMPLETENESS:
        reasons.append(f"only {row.get('completeness', 0):.0%} of the signals are available "
                       f"(at least {D.MIN_COMPLETENESS:.0%} needed)")
    return reasons


@dataclass
class _ModelReading:
    """One model's readings for every organisation (row), computed with array operations; probabilities
    already rounded to 4 places as estimates report them."""
    rules: RuleFrame
    classifier_proba: list[list[float]]    # the classifier's distribution per row
    classifier_stage: list[int]
    stage_index: list[int]                 # the classifier stage clipped to the rule window
    proba: list[list[float]]               # the distribution clipped as its median is
    axes: dict[str, list[float]]           # smi: P(high) per axis


def _round4(values: np.ndarray) -> list:
    """`round(v, 4)` of every element, as nested lists of Python floats. numpy's rint(v * 1e4) / 1e4 is
    the builtin's result except where v * 1e4 lies within its rounding error of a half (the product is
    inexact), so those few elements are rounded by the builtin. For |v| up to 1e4."""
    scaled = values * 1e4
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    rounded = np.rint(scaled) / 1e4
    rounded[near_half] = [round(v, 4) for v in values[near_half].tolist()]
    return rounded.tolist()


def _read_model(spec: ModelSpec, fitted: FittedModels, dims: pd.DataFrame) -> _ModelReading:
    n = len(spec.stages)
    rules = rule_frame(spec, dims)
    if spec.kind == "quadrant":
        axis_p = {name: _full_proba(m, model_inputs(spec, dims, name, fitted.inputs), 2)[0][:, 1]
                  for name, m in fitted.axes.items()}
        proba = np.zeros((len(dims), n))
        for stage in spec.stages:
            p = np.ones(len(dims))
            for axis, level in stage.levels:
                p = p * (axis_p[axis] if level == "high" else 1 - axis_p[axis])
            proba[:, stage.index] = p
        clf_stage = spec.quadrant_indices({a: axis_p[a] >= 0.5 for a in axis_p}).tolist()
        reported = _round4(proba)
        # two-level axes are always within one level of the rule: the classifier quadrant is reported as is
        return _ModelReading(rules, reported, clf_stage, clf_stage, reported,
                             {a: _round4(v) for a, v in axis_p.items()})
    proba, clf_stage = _full_proba(fitted.ordinal[spec.id], model_inputs(spec, dims, None, fitted.inputs), n)
    lo = np.maximum(rules.stage_index - 1, 0)
    hi = np.minimum(rules.stage_index + 1, n - 1)
    # The classifier's mass outside the window moves to the nearest allowed stage: the distribution is
    # clipped exactly as its median is, so the reported stage stays the median of the reported
    # probabilities and its confidence is meaningful. Added stage by stage, in stage order, per row.
    clipped = np.zeros_like(proba)
    rows = np.arange(len(dims))
    for k in range(n):
        clipped[rows, np.clip(k, lo, hi)] += proba[:, k]
    clipped /= clipped.sum(axis=1, keepdims=True)
    return _ModelReading(rules, _round4(proba), clf_stage.tolist(), np.clip(clf_stage, lo, hi).tolist(),
                         _round4(clipped), {})


def _one_openmp_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def estimate(fitted: FittedModels, dims: pd.DataFrame) -> list[dict]:
    """One estimate per organisation (row of `dims`, from models.dimensions.compute) and model.

    Rules, classifiers and clipping run over all organisations at once per model; only the result
    records (with the explanation stored beside each estimate) are assembled per organisation."""
    specs = load_models()
    dims = dims.reset_index(drop=True)
    # Models are predicted side by side, one per core (the tree code releases the GIL); within a model
    # one OpenMP thread, since a parallel region per boosted tree costs far more than it gives. OpenMP's
    # thread count is per calling thread: each pool thread sets its own, for its lifetime.
    # A few rows are mostly per-call Python overhead, which holds the GIL: one thread is faster there.
    workers = min(len(specs), os.cpu_count() or 1) if len(dims) >= PARALLEL_MIN_ROWS else 1
    with ThreadPoolExecutor(max_workers=workers, initializer=_one_openmp_thread) as pool:
        readings = dict(zip(specs, pool.map(lambda spec: _read_model(spec, fitted, dims), specs.values())))
    # The records are a million small acyclic dicts and lists: without this, the cyclic garbage
    # collector rescans the growing result over and over (it cost more than building the records).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _records(specs, readings, dims)
    finally:
        if collecting:
            gc.enable()


def _records(specs: dict[str, ModelSpec], readings: dict[str, _ModelReading], dims: pd.DataFrame) -> list[dict]:
    column = lambda name, default: dims[name].tolist() if name in dims.columns else [default] * len(dims)  # noqa: E731
    dimension_values = zip(*(column(d, None) for d in D.DIMENSIONS))
    evidence = dims[[c for c in ("posts", "mentions", "completeness") if c in dims.columns]].to_dict("records")
    stage_names = {model_id: [s.name for s in spec.stages] for model_id, spec in specs.items()}
    out: list[dict] = []
    for i, (org, values, posts, mentions, completeness) in enumerate(zip(
            dims["org"].tolist(), dimension_values, column("posts", 0), column("mentions", 0),
            column("completeness", None))):
        reasons = insufficient_reasons(evidence[i])
        reported = {d: _num(v) for d, v in zip(D.DIMENSIONS, values)}
        completeness, observations = _num(completeness), _num(float(posts) + float(mentions))
        for model_id, reading in readings.items():
            names = stage_names[model_id]
            rules = reading.rules.result(i, reported)
            c, p = reading.classifier_stage[i], reading.proba[i]
            explanation = {"rules": {"stage": rules.stage, "held": rules.held, "failed": rules.failed,
                                     "abstained": rules.abstained},
                           "classifier": {"stage": names[c],
                                          "probabilities": dict(zip(names, reading.classifier_proba[i]))},
                           "dimensions": dict(reported), "completeness": completeness,
                           "observations": observations}
            if reading.axes:
                explanation["axes"] = {a: v[i] for a, v in reading.axes.items()}
            if reasons:
                explanation["insufficient"] = list(reasons)
                out.append({"org": org, "model": model_id, "probabilities": dict(zip(names, p)),
                            "explanation": explanation, "stage": None, "stage_index": None, "confidence": None,
                            "status": "insufficient_evidence", "rule_stage": None, "classifier_stage": None})
            else:
                stage_index = reading.stage_index[i]
                out.append({"org": org, "model": model_id, "probabilities": dict(zip(names, p)),
                            "explanation": explanation, "stage": names[stage_index], "stage_index": stage_index,
                            "confidence": p[stage_index], "status": "ok", "rule_stage": rules.stage,
                            "classifier_stage": names[c]})
    return out


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if value != value else round(value, 4)
