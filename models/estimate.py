"""Stage estimates: the rule interval and the calibrated classifier, combined; training and persistence.

How the two are combined (per organisation and model):
1. Rule reading (models/rules.py): the lowest and highest stage the evidence supports, from criteria
   over the signals the organisation's sources can show (a signal they cannot show is not observed,
   never 0). Status `ok` (low = high, a point), `interval`, or `insufficient_evidence` when no
   criterion reached a verdict or every stage is still possible (then no stage and no confidence).
2. Classifier: calibrated probabilities for every stage (models/classifier.py) from the signal and
   dimension scores only (no rule stage, no criterion margins; a signal not observed, or observed only
   as a lower bound, is a missing input: models.dimensions.classifier_inputs).
3. The classifier may only move mass inside [low, high]: its probability outside the interval moves to
   the nearest end (the distribution is clipped as its median is), and its median inside the interval
   is `classifier_stage`, the most likely stage the evidence allows. The reported stage (`stage`,
   `stage_index`) is the point, or the lowest stage of an interval; `confidence` is the classifier's
   own probability of the reported point (an interval: of the interval), i.e. how far it agrees with
   the evidence. Low, high and the clipped median are monotone in every signal.
   smi: each axis (Investment, Innovation) has its own binary classifier; the quadrant probabilities are
   the product of the axis probabilities, restricted to the quadrants still possible.

Training data (pipeline/training): synthetic organisations with known stages, featurised by the feature
library, plus analyst labels (the labelled organisation's dimension rows; weight ANALYST_WEIGHT). This
module is pure: frames in, fitted models and estimate records out.
"""
from __future__ import annotations

import gc
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.rules import ABSTAIN, INSUFFICIENT, OK, UNKNOWN, UNOBSERVED, RuleFrame, row_patterns, rule_frame
from models.spec import ModelSpec, load_models

ANALYST_WEIGHT = 3.0
# From this many organisations, models are predicted on several cores (measured break-even on 2 cores)
PARALLEL_MIN_ROWS = 500


@dataclass
class FittedModels:
    """One classifier per ordinal model, one per SMI axis; plus what they were trained on."""
    ordinal: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    axes: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _axis_labels(spec: ModelSpec, stage_index: int) -> dict[str, int]:
    levels = dict(spec.stages[stage_index].levels)
    return {axis.name: int(levels[axis.name] == "high") for axis in spec.axes}


def model_inputs(dims: pd.DataFrame) -> np.ndarray:
    """Classifier inputs (models.dimensions.classifier_inputs): the same for every model."""
    return D.classifier_inputs(dims)


def fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None = None, *,
               classifier: OrdinalStageClassifier | None = None,
               observations: Sequence[dict[str, str]] = ()) -> FittedModels:
    """Fit every model. `train`: fully observed dimension rows with `truth_<model>` (ordinal) and
    `truth_smi_<axis>` (0/1) columns; `analyst`: dimension rows of labelled organisations with columns
    `model` and `stage_index` (one row per label). `observations`: how the sources estimates will read
    observe each need (need -> exact | lower_bound | upper_bound | none, one mapping per kind of source): the training
    rows are learned once as they are and once as each of those would show them (D.as_observed), so a
    classifier has seen what an input its sources cannot show leaves it to go on; an organisation's
    views weigh one organisation together (an analyst label weighs ANALYST_WEIGHT of them) and stay in
    one calibration fold."""
    from threadpoolctl import threadpool_limits

    # Many small fits: OpenMP threads cost more than they give (about 12x slower on 2 shared cores).
    with threadpool_limits(limits=1):
        return _fit_models(train, analyst, classifier, observations)


def _fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None,
                classifier: OrdinalStageClassifier | None, observations: Sequence[dict[str, str]]) -> FittedModels:
    from sklearn.base import clone

    template = classifier or OrdinalStageClassifier()
    specs = load_models()
    fitted = FittedModels(info={"train_orgs": int(len(train)), "observations": len(observations),
                                "analyst_labels": 0 if analyst is None else int(len(analyst))})
    views = [train] + [D.as_observed(train, observes) for observes in observations]
    X_train = np.vstack([model_inputs(view) for view in views])
    # an organisation's views share a group (one calibration fold) and weigh one organisation together
    organisation = np.tile(np.arange(len(train)), len(views))
    for model_id, spec in specs.items():
        targets: dict[str, np.ndarray] = {}
        if spec.kind == "quadrant":
            for axis in spec.axes:
                targets[axis.name] = np.tile(train[f"truth_smi_{axis.name}"].to_numpy(), len(views))
        else:
            targets[model_id] = np.tile(train[f"truth_{model_id}"].to_numpy(), len(views))
        for name, y in targets.items():
            # a population generated for another model has no truth for this one: left out of its fit
            known = ~pd.isna(y)
            Xs, ys = [X_train[known]], [y[known].astype(int)]
            ws, gs = [np.full(int(known.sum()), 1.0 / len(views))], [organisation[known]]
            if analyst is not None and len(analyst):
                mine = analyst[analyst["model"] == model_id]
                if len(mine):
                    if spec.kind == "quadrant":
                        labels = np.array([_axis_labels(spec, int(i))[name] for i in mine["stage_index"]])
                    else:
                        labels = mine["stage_index"].to_numpy(dtype=int)
                    Xs.append(model_inputs(mine))
                    ys.append(labels)
                    ws.append(np.full(len(labels), ANALYST_WEIGHT))
                    gs.append(-1 - np.arange(len(labels)))       # each label a group of its own
            model = clone(template).fit(np.vstack(Xs), np.concatenate(ys), sample_weight=np.concatenate(ws),
                                        groups=np.concatenate(gs))
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


def quadrant_proba(spec: ModelSpec, axis_p: dict[str, np.ndarray]) -> np.ndarray:
    """Quadrant probabilities from the axes' P(high) (independent axes)."""
    n = len(next(iter(axis_p.values())))
    proba = np.zeros((n, len(spec.stages)))
    for stage in spec.stages:
        p = np.ones(n)
        for axis, level in stage.levels:
            p = p * (axis_p[axis] if level == "high" else 1 - axis_p[axis])
        proba[:, stage.index] = p
    return proba


def _axis_high_proba(fitted: FittedModels, X: np.ndarray) -> dict[str, np.ndarray]:
    """P(high) of every SMI axis."""
    return {name: _full_proba(m, X, 2)[0][:, 1] for name, m in fitted.axes.items()}


def classifier_proba(spec: ModelSpec, fitted: FittedModels, dims: pd.DataFrame,
                     X: np.ndarray | None = None) -> np.ndarray:
    """The classifier's own distribution over the model's stages for every row of `dims` (`X`: their
    model_inputs, when already computed)."""
    X = model_inputs(dims) if X is None else X
    if spec.kind == "quadrant":
        return quadrant_proba(spec, _axis_high_proba(fitted, X))
    return _full_proba(fitted.ordinal[spec.id], X, len(spec.stages))[0]


@dataclass
class _ModelReading:
    """One model's readings for every organisation (row), computed with array operations; probabilities
    already rounded to 4 places as estimates report them."""
    rules: RuleFrame
    classifier_proba: np.ndarray           # (rows, stages): the classifier's own distribution per row
    classifier_stage: list[int]            # its most likely stage inside the evidence's interval
    proba: np.ndarray                      # (rows, stages): the distribution restricted to the interval
    confidence: list[float]                # the classifier's own probability of the reported point / interval
    axes: dict[str, list[float]]           # smi: P(high) per axis


def _round4(values: np.ndarray) -> list:
    """_round4_array as nested lists of Python floats."""
    return _round4_array(values).tolist()


def _round4_array(values: np.ndarray) -> np.ndarray:
    """`round(v, 4)` of every element. numpy's rint(v * 1e4) / 1e4 is
    the builtin's result except where v * 1e4 lies within its rounding error of a half (the product is
    inexact), so those few elements are rounded by the builtin. For |v| up to 1e4."""
    scaled = values * 1e4
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    rounded = np.rint(scaled) / 1e4
    rounded[near_half] = [round(v, 4) for v in values[near_half].tolist()]
    return rounded


def _read_model(spec: ModelSpec, fitted: FittedModels, dims: pd.DataFrame,
                X: np.ndarray | None = None) -> _ModelReading:
    X = model_inputs(dims) if X is None else X
    rules = rule_frame(spec, dims)
    rows = np.arange(len(dims))
    judged = rules.status != INSUFFICIENT
    if spec.kind == "quadrant":
        axis_p = _axis_high_proba(fitted, X)
        proba = quadrant_proba(spec, axis_p)
        allowed = np.where(judged[:, None], rules.possible, True)
        inside = np.where(allowed, proba, 0.0)
        mass = inside.sum(axis=1)
        restricted = np.where(mass[:, None] > 0, inside / np.where(mass > 0, mass, 1)[:, None],
                              allowed / allowed.sum(axis=1, keepdims=True))
        clf_stage = restricted.argmax(axis=1)
        point = np.where(rules.status == "ok", rules.low, -1)
        confidence = np.where(point >= 0, proba[rows, np.maximum(point, 0)], mass)
        return _ModelReading(rules, _round4_array(proba), clf_stage.tolist(), _round4_array(restricted),
                             _round4(confidence), {a: _round4(v) for a, v in axis_p.items()})
    proba = classifier_proba(spec, fitted, dims, X)
    n = len(spec.stages)
    lo = np.where(judged, rules.low, 0)
    hi = np.where(judged, rules.high, n - 1)
    # The classifier's mass outside [low, high] moves to the nearest end: the distribution is clipped
    # exactly as its median is, so the most likely stage inside stays the median of the reported one.
    clipped = np.zeros_like(proba)
    for k in range(n):
        clipped[rows, np.clip(k, lo, hi)] += proba[:, k]
    clipped /= clipped.sum(axis=1, keepdims=True)
    clf_stage = (np.cumsum(clipped, axis=1) < 0.5).sum(axis=1)
    cumulative = np.column_stack([np.zeros(len(dims)), np.cumsum(proba, axis=1)])
    confidence = cumulative[rows, hi + 1] - cumulative[rows, lo]
    return _ModelReading(rules, _round4_array(proba), np.clip(clf_stage, lo, hi).tolist(), _round4_array(clipped),
                         _round4(confidence), {})


def _one_openmp_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="openmp")


def estimate(fitted: FittedModels, dims: pd.DataFrame) -> list[dict]:
    """One estimate per organisation (row of `dims`, from models.dimensions.compute) and model.

    Rules and classifiers run over all organisations at once per model; the records (with the
    explanation stored beside each estimate) are assembled a model at a time, organisation by
    organisation, from parts built once for all rows alike, which are one object in each of those
    records: read records, never modify them in place (copy first, as
    models.confidence.apply_data_confidence does)."""
    specs = load_models()
    dims = dims.reset_index(drop=True)
    # Models are predicted side by side, one per core (the tree code releases the GIL); within a model
    # one OpenMP thread, since a parallel region per boosted tree costs far more than it gives. OpenMP's
    # thread count is per calling thread: each pool thread sets its own, for its lifetime.
    # A few rows are mostly per-call Python overhead, which holds the GIL: one thread is faster there.
    workers = min(len(specs), os.cpu_count() or 1) if len(dims) >= PARALLEL_MIN_ROWS else 1
    # The readings and records are many small acyclic lists and dicts: without this, the cyclic garbage
    # collector rescans everything alive over and over as they grow (it cost more than building them).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with ThreadPoolExecutor(max_workers=workers, initializer=_one_openmp_thread) as pool:
            X = model_inputs(dims)   # the same for every model
            readings = dict(zip(specs, pool.map(lambda spec: _read_model(spec, fitted, dims, X), specs.values())))
        return _records(specs, readings, dims)
    finally:
        if collecting:
            gc.enable()


def interval_reasons(spec: ModelSpec, rules: dict) -> list[str]:
    """Why the evidence cannot narrow an estimate further: per stage above the low end that is still
    possible, what public activity cannot show of it or which of its criteria lack evidence."""
    if spec.kind == "quadrant":
        return [f"{axis.name} axis unknown: {axis.observability_note}" for axis in spec.axes
                if rules["axes"][axis.name] == "unknown"]
    low, high = spec.index_of(rules["low"]), spec.index_of(rules["high"])
    open_criteria = {(e["stage_index"], e["criterion"]): kind for kind in ("unobserved", "abstained")
                     for e in rules[kind]}
    reasons = []
    for stage in spec.stages[low + 1:high + 1]:
        if not stage.criteria:
            reasons.append(f"{stage.name}: not assessable from public activity ({stage.observability_note})")
            continue
        for criterion in stage.criteria:
            kind = open_criteria.get((stage.index, criterion.name))
            if kind == "unobserved":
                reasons.append(f"{criterion.name}: not observed in these sources")
            elif kind == "abstained" and criterion.required:
                reasons.append(f"{criterion.name}: too little evidence (or only a bound from a sample)")
    return reasons


@dataclass
class _RulePattern:
    """What every row with one rule reading (the same low, high, status, possible stages, verdicts and
    axis levels) reports alike: one object of each for all of them."""
    status: str
    judged: bool                    # not insufficient: a stage is reported, with its confidence
    low: int | None
    low_name: str | None
    high: int | None
    stages_possible: str | None
    explained: str                  # the explanation's last key: "interval" or "insufficient"
    explanation: dict | list[str]   # the interval in words and why it is not narrower, or why insufficient


def _rule_patterns(spec: ModelSpec, rules: RuleFrame, readings: list[dict]) -> list[_RulePattern]:
    """Every row's _RulePattern (`readings`: the results of `rules`), one object per distinct reading."""
    names = spec.stage_names
    first = rules.alike
    patterns = {}
    for i in set(first):
        status, reading = str(rules.status[i]), readings[i]
        if status == INSUFFICIENT:
            patterns[i] = _RulePattern(status, False, None, None, None, None, "insufficient",
                                       _insufficient_reasons(spec, rules, i))
            continue
        low, high, possible = int(rules.low[i]), int(rules.high[i]), reading["possible"]
        interval = {"low": names[low], "high": names[high], "possible": possible,
                    "text": spec.describe(low, high, possible),
                    "reasons": interval_reasons(spec, reading) if status != OK else []}
        patterns[i] = _RulePattern(status, True, low, names[low], high, "|".join(possible), "interval", interval)
    return [patterns[i] for i in first]


def _records(specs: dict[str, ModelSpec], readings: dict[str, _ModelReading], dims: pd.DataFrame) -> list[dict]:
    """The records, organisation by organisation, each model's in turn. What rows share is built once
    and is one object in each of their records (records are never modified in place): what a rule
    reading reports alike (_rule_patterns, RuleFrame.results); an organisation's signals, observation,
    evidence and dimensions."""
    column = lambda name, default: dims[name].tolist() if name in dims.columns else [default] * len(dims)  # noqa: E731
    by_row = lambda columns: list(zip(*columns)) if columns else [()] * len(dims)  # noqa: E731
    reported = lambda name, default: _none_where_missing(_rounded(column(name, default)))  # noqa: E731
    signals = [dict(zip(D.SIGNALS, values)) for values in by_row([reported(f"sig_{s}", None) for s in D.SIGNALS])]
    kind_columns = [column(f"obs_{s}", D.EXACT) for s in D.SIGNALS]
    kinds = by_row(kind_columns)
    # how the sources observe the signals: few combinations, each one object
    alike = row_patterns(np.column_stack([pd.factorize(pd.Series(k, dtype=object))[0] for k in kind_columns]))
    observations = {i: {s: k for s, k in zip(D.SIGNALS, kinds[i]) if k != D.EXACT} for i in set(alike)}
    organisation = _OrganisationParts(
        dims["org"].tolist(), signals, [observations[i] for i in alike],
        [dict(zip(D.EVIDENCE, values)) for values in by_row([reported(e, 0.0) for e in D.EVIDENCE])],
        [dict(zip(D.DIMENSIONS, values)) for values in by_row([reported(d, None) for d in D.DIMENSIONS])],
        reported("completeness", None))
    by_model = [_model_records(model_id, specs[model_id], reading, organisation)
                for model_id, reading in readings.items()]
    return [record for records in zip(*by_model) for record in records]


@dataclass
class _OrganisationParts:
    """Per organisation (row), what its records in every model report alike."""
    org: list[str]
    signals: list[dict]
    observation: list[dict]
    evidence: list[dict]
    dimensions: list[dict]
    completeness: list[float | None]


def _model_records(model_id: str, spec: ModelSpec, reading: _ModelReading,
                   organisation: _OrganisationParts) -> list[dict]:
    """One model's record of every organisation, built a column at a time."""
    names = spec.stage_names
    rule_readings = reading.rules.results()
    patterns = _rule_patterns(spec, reading.rules, rule_readings)
    classifier_stage = [names[c] for c in reading.classifier_stage]
    # the calibrated distributions take few distinct values: rows alike share one dict
    proba = _shared(reading.proba, lambda i: dict(zip(names, reading.proba[i].tolist())))
    own = _shared(reading.classifier_proba, lambda i: dict(zip(names, reading.classifier_proba[i].tolist())))
    classifier = _shared(np.column_stack([reading.classifier_stage, reading.classifier_proba]),
                         lambda i: {"stage": classifier_stage[i], "probabilities": own[i]})
    explanations = [{"rules": rules, "classifier": reading_of_classifier, "signals": signals,
                     "observation": observation, "evidence": evidence, "dimensions": dimensions,
                     "completeness": completeness}
                    for rules, reading_of_classifier, signals, observation, evidence, dimensions, completeness
                    in zip(rule_readings, classifier, organisation.signals, organisation.observation,
                           organisation.evidence, organisation.dimensions, organisation.completeness)]
    if reading.axes:
        for explanation, levels in zip(explanations, zip(*reading.axes.values())):
            explanation["axes"] = dict(zip(reading.axes, levels))
    for explanation, pattern in zip(explanations, patterns):
        explanation[pattern.explained] = pattern.explanation
    return [{"org": org, "model": model_id, "probabilities": distribution, "explanation": explanation,
             "stage": pattern.low_name, "stage_index": pattern.low, "stage_low_index": pattern.low,
             "stage_high_index": pattern.high, "stages_possible": pattern.stages_possible,
             "confidence": confidence if pattern.judged else None, "status": pattern.status,
             "rule_stage": pattern.low_name, "classifier_stage": stage if pattern.judged else None}
            for org, distribution, explanation, pattern, confidence, stage
            in zip(organisation.org, proba, explanations, patterns, reading.confidence, classifier_stage)]


def _shared(key: np.ndarray, make) -> list:
    """make(i) for every row i, made once per distinct row of `key` (alike bit for bit) and shared."""
    first = row_patterns(key)
    made = {i: make(i) for i in set(first)}
    return [made[i] for i in first]


def _insufficient_reasons(spec: ModelSpec, rules: RuleFrame, i: int) -> list[str]:
    verdicts = rules.verdicts[i]
    if not len(verdicts) or set(verdicts.tolist()) <= {UNOBSERVED}:
        return ["none of the signals this model reads can be observed in these sources"]
    if spec.kind == "quadrant" and all(v[i] == UNKNOWN for v in rules.axis_levels.values()):
        return ["neither axis can be judged from these sources and this evidence"]
    if set(verdicts.tolist()) <= {UNOBSERVED, ABSTAIN}:
        return ["too little evidence: no criterion reached a verdict (see each criterion's min_evidence)"]
    return ["every stage is still possible: the evidence rules none out"]


def _rounded(values) -> np.ndarray:
    """A column as reported: every value `round(v, 4)`, NaN where missing (None in a column is missing)."""
    values = np.asarray(values, dtype=float)
    in_range = np.abs(values) < 1e4     # _round4_array's range; False where missing
    rounded = values.copy()
    rounded[in_range] = _round4_array(values[in_range])
    outside = ~in_range & ~np.isnan(values)
    rounded[outside] = [round(v, 4) for v in values[outside].tolist()]
    return rounded


def _none_where_missing(values: np.ndarray) -> list:
    reported = values.astype(object)
    reported[np.isnan(values)] = None
    return reported.tolist()
