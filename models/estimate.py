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

Training data: synthetic organisations (connectors/synthetic.py, true stages known) loaded through the
normal path and featurised by the feature library, plus every analyst label in the `labels` table (the
labelled organisation's stored features; weight ANALYST_WEIGHT). Fitted models are persisted beside the
database and refitted when the labels, the model files or the code that shapes the inputs change.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from models import dimensions as D
from models.classifier import OrdinalStageClassifier
from models.rules import RuleFrame, rule_frame
from models.spec import MODEL_IDS, ModelSpec, load_models

DEFAULT_TRAIN_SEED = 7001
DEFAULT_TRAIN_ORGS = 400
ANALYST_WEIGHT = 3.0
WINDOW_DAYS = 90
# From this many organisations, models are predicted on several cores (measured break-even on 2 cores)
PARALLEL_MIN_ROWS = 500


def training_frame(seed: int, orgs: int, behaviour=None, prefix: str = "train") -> pd.DataFrame:
    """Generate synthetic organisations into a scratch store, build features (90-day window, as the
    nightly flow does) and return their dimension rows with the true stage indices (`truth_<model>`,
    and `truth_smi_investment` / `truth_smi_innovation` for the SMI axes)."""
    from connectors.synthetic import END, Behaviour, import_synthetic
    from features.runner import build_features
    from pipeline.store import Store

    with Store(":memory:") as store:
        _, _, data = import_synthetic(store, seed, orgs, behaviour=behaviour or Behaviour(), prefix=prefix)
        build_features(store.con, END, windows=(WINDOW_DAYS,))
        features, _, _ = D.org_frame(store, END, WINDOW_DAYS)
    dims = D.compute(features)
    smi = load_models()["smi"]
    truth = []
    for org in data.orgs:
        row = {"org": org.org.id}
        row.update({f"truth_{m}": org.truth_index[m] for m in MODEL_IDS})
        for axis in smi.axes:
            row[f"truth_smi_{axis.name}"] = int(org.latent[axis.dimension] >= axis.threshold)
        truth.append(row)
    return dims.merge(pd.DataFrame(truth), on="org", how="inner")


@dataclass
class FittedModels:
    """One classifier per ordinal model, one per SMI axis; plus what they were trained on."""
    ordinal: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    axes: dict[str, OrdinalStageClassifier] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _axis_labels(spec: ModelSpec, stage_index: int) -> dict[str, int]:
    levels = dict(spec.stages[stage_index].levels)
    return {axis.name: int(levels[axis.name] == "high") for axis in spec.axes}


def model_inputs(spec: ModelSpec, dims: pd.DataFrame, axis: str | None = None) -> np.ndarray:
    """Classifier inputs for one model: the shared inputs (models.dimensions.classifier_inputs), then the
    model's own criteria as margins (dimension - threshold) and, for ordinal models, the rule stage.
    Every column is non-decreasing in every signal, so the monotone classifier stays monotone."""
    from models.rules import rule_stages

    base = D.classifier_inputs(dims)
    if spec.kind == "quadrant":
        chosen = [a for a in spec.axes if a.name == axis]
        margins = [dims[a.dimension].to_numpy(float) - a.threshold for a in chosen]
        return np.column_stack([base, *margins])
    margins = [dims[c.dimension].to_numpy(float) - c.threshold for c in spec.criteria]
    return np.column_stack([base, *margins, rule_stages(spec, dims).astype(float)])


def fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None = None, *,
               classifier: OrdinalStageClassifier | None = None) -> FittedModels:
    """Fit every model. `analyst`: dimension rows of labelled organisations with columns `model` and
    `stage_index` (one row per label)."""
    from threadpoolctl import threadpool_limits

    # Many small fits: OpenMP threads cost more than they give (about 12x slower on 2 shared cores).
    with threadpool_limits(limits=1):
        return _fit_models(train, analyst, classifier)


def _fit_models(train: pd.DataFrame, analyst: pd.DataFrame | None,
                classifier: OrdinalStageClassifier | None) -> FittedModels:
    from sklearn.base import clone

    template = classifier or OrdinalStageClassifier()
    specs = load_models()
    fitted = FittedModels(info={"train_orgs": int(len(train)),
                                "analyst_labels": 0 if analyst is None else int(len(analyst))})
    for model_id, spec in specs.items():
        targets: dict[str, np.ndarray] = {}
        if spec.kind == "quadrant":
            for axis in spec.axes:
                targets[axis.name] = train[f"truth_smi_{axis.name}"].to_numpy()
        else:
            targets[model_id] = train[f"truth_{model_id}"].to_numpy()
        for name, y in targets.items():
            axis = name if spec.kind == "quadrant" else None
            Xs, ys, ws = [model_inputs(spec, train, axis)], [y], [np.ones(len(y))]
            if analyst is not None and len(analyst):
                mine = analyst[analyst["model"] == model_id]
                if len(mine):
                    if spec.kind == "quadrant":
                        labels = np.array([_axis_labels(spec, int(i))[name] for i in mine["stage_index"]])
                    else:
                        labels = mine["stage_index"].to_numpy(dtype=int)
                    Xs.append(model_inputs(spec, mine, axis))
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
        axis_p = {name: _full_proba(m, model_inputs(spec, dims, name), 2)[0][:, 1]
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
    proba, clf_stage = _full_proba(fitted.ordinal[spec.id], model_inputs(spec, dims), n)
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
    import gc
    from concurrent.futures import ThreadPoolExecutor

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


# -- persistence ---------------------------------------------------------------------------------------
def code_digest() -> str:
    """Changes whenever the model files, the dimension layer, the generator, the classifier or the
    feature SQL change: a stored training frame or fitted model from other code is never reused."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    for folder, suffix in ((here, ".toml"), (here, ".py"), (resources.files("features.sql"), ".sql")):
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(suffix):
                h.update(entry.name.encode() + entry.read_bytes())
    h.update(resources.files("connectors").joinpath("synthetic.py").read_bytes())
    return h.hexdigest()[:16]


def model_dir(db_path) -> Path | None:
    """Where fitted models and the synthetic training set are cached: $MATURITY_MODEL_CACHE, else a
    `models/` folder beside the database. Fits are keyed by code, training set and analyst labels,
    so databases sharing a folder share the label-free fit and keep their own labelled ones."""
    if os.environ.get("MATURITY_MODEL_CACHE"):
        return Path(os.environ["MATURITY_MODEL_CACHE"])
    if db_path is None or str(db_path) == ":memory:":
        return None
    return Path(db_path).resolve().parent / "models"


def analyst_training_rows(store, dims: pd.DataFrame) -> pd.DataFrame:
    """Dimension rows of organisations with analyst labels (latest label per org and model)."""
    labels = store.df("select org_id as org, model, stage from labels qualify row_number() over "
                      "(partition by org_id, model order by created_at desc) = 1")
    if labels.empty:
        return pd.DataFrame()
    specs = load_models()
    labels["stage_index"] = [specs[m].index_of(s) for m, s in zip(labels["model"], labels["stage"])]
    return labels.merge(dims, on="org", how="inner")


def load_or_train(store, dims: pd.DataFrame | None = None, *, seed: int = DEFAULT_TRAIN_SEED,
                  orgs: int | None = None, log=None) -> FittedModels:
    """The fitted models for this store: loaded when a fit for the same code, training set and analyst
    labels is stored beside the database, else trained (and stored)."""
    import joblib

    # $MATURITY_TRAIN_ORGS trades accuracy for speed (the test suite uses a small training set)
    orgs = orgs or int(os.environ.get("MATURITY_TRAIN_ORGS", DEFAULT_TRAIN_ORGS))
    analyst = analyst_training_rows(store, dims) if dims is not None else pd.DataFrame()
    label_key = hashlib.sha256(analyst[["org", "model", "stage_index"]].to_csv(index=False).encode()
                               if len(analyst) else b"").hexdigest()[:12]
    key = f"{code_digest()}-s{seed}-n{orgs}"
    folder = model_dir(store.path)
    model_file = folder / f"fit-{key}-{label_key}.joblib" if folder else None
    if model_file and model_file.exists():
        return joblib.load(model_file)
    train_file = folder / f"train-{key}.parquet" if folder else None
    if train_file and train_file.exists():
        train = pd.read_parquet(train_file)
    else:
        if log:
            log(f"training: generating {orgs} synthetic organisations (seed {seed})")
        train = training_frame(seed, orgs)
        if train_file:
            folder.mkdir(parents=True, exist_ok=True)
            train.to_parquet(train_file.with_suffix(".partial"))
            train_file.with_suffix(".partial").replace(train_file)
    fitted = fit_models(train, analyst if len(analyst) else None)
    fitted.info.update(seed=seed, code=key, labels=label_key)
    if model_file:
        folder.mkdir(parents=True, exist_ok=True)
        partial = model_file.with_suffix(".partial")
        joblib.dump(fitted, partial)
        partial.replace(model_file)  # atomic: a concurrent reader never sees half a file
    return fitted


def estimate_store(store, as_of=None, *, run_id: str | None = None, log=None) -> tuple[list[dict], object]:
    """(Re)compute and store estimates for every organisation with features at as_of. Returns
    (estimates, as_of). A re-run for the same as_of replaces that as_of's rows (history is per as_of)."""
    import uuid

    features, as_of, _ = D.org_frame(store, as_of)
    dims = D.compute(features)
    fitted = load_or_train(store, dims, log=log)
    rows = estimate(fitted, dims)
    replace_estimates(store, as_of, run_id or uuid.uuid4().hex, rows)
    return rows, as_of


def replace_estimates(store, as_of, run_id: str, rows: list[dict]) -> None:
    """Store `rows` as as_of's estimates, replacing that as_of's earlier ones in one transaction."""
    from pipeline.store import utcnow

    now = utcnow()
    with store.transaction() as con:
        con.execute("delete from estimates where as_of = ?", [as_of])
        if rows:
            con.executemany(
                "insert into estimates values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, as_of, r["org"], r["model"], r["stage"], r["stage_index"], r["confidence"],
                  r["status"], r["rule_stage"], r["classifier_stage"], json.dumps(r["probabilities"]),
                  json.dumps(r["explanation"]), now) for r in rows])


def stored_estimates(store, as_of=None) -> pd.DataFrame:
    """Latest (or the given as_of's) estimates: one row per organisation x model."""
    if as_of is None:
        (as_of,) = store.con.execute("select max(as_of) from estimates").fetchone()
    frame = store.df("select org_id as org, model, stage, stage_index, confidence, status, rule_stage, "
                     "classifier_stage, as_of from estimates where as_of = ?", [as_of])
    order = {m: i for i, m in enumerate(MODEL_IDS)}
    frame["_m"] = frame["model"].map(order)
    return frame.sort_values(["org", "_m"]).drop(columns="_m").reset_index(drop=True)
