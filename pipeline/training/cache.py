"""Training frames and the fitted models cached beside the database.

A fit is keyed by the code that shapes its inputs (model files, model code, feature SQL, the
generator), the training set (seed, size, estimation window) and the analyst labels, so a stored
fit from other code, another window or other labels is never reused.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import joblib
import pandas as pd

from connectors import observation
from features.cache import code_digest as feature_code_digest
from features.runner import build_features
from models import dimensions as D
from models.estimate import FittedModels, fit_models
from models.spec import MODEL_IDS, load_models
from pipeline.estimation import org_frame
from pipeline.store import writer
from pipeline.training import synthetic
from pipeline.confidence import input_reference

DEFAULT_TRAIN_SEED = 7001
DEFAULT_TRAIN_ORGS = 400


def training_frame(seed: int, orgs: int, window_days: int, behaviour=None, prefix: str = "train",
                   thread_fraction: float | None = None) -> pd.DataFrame:
    """Generate synthetic organisations into a scratch store, build features for the estimation
    window and return their dimension rows with the true stage indices (`truth_<model>`, and
    `truth_smi_investment` / `truth_smi_innovation` for the SMI axes). With `thread_fraction`, the store
    holds only that share of their conversation threads, observed as a twcs sample is."""
    with writer(":memory:", "training") as store:
        _, _, data = synthetic.import_synthetic(store, seed, orgs, behaviour=behaviour or synthetic.Behaviour(),
                                                prefix=prefix, thread_fraction=thread_fraction)
        build_features(store.con, synthetic.END, windows=(window_days,))
        dims = D.compute(org_frame(store, synthetic.END, window_days))
    smi = load_models()["smi"]
    truth = []
    for org in data.orgs:
        row = {"org": org.org.id}
        row.update({f"truth_{m}": org.truth_index[m] for m in MODEL_IDS})
        levels = dict(smi.stages[org.truth_index["smi"]].levels)
        for axis in smi.axes:
            row[f"truth_smi_{axis.name}"] = int(levels[axis.name] == "high")
        truth.append(row)
    return dims.merge(pd.DataFrame(truth), on="org", how="inner")


def fit_for_sources(train: pd.DataFrame, analyst: pd.DataFrame | None = None) -> FittedModels:
    """The models as the store uses them: fitted on the training rows as generated and as every kind of
    real source shows them (connectors.observation.source_observations)."""
    return fit_models(train, analyst, observations=list(observation.source_observations().values()))


def training_code_digest() -> str:
    """Changes whenever the model files, the model code, the feature SQL, the generator or the sources'
    observation model change."""
    h = hashlib.sha256(feature_code_digest().encode())
    models_folder = resources.files("models")
    for entry in sorted(models_folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith((".toml", ".py")):
            h.update(entry.name.encode() + entry.read_bytes())
    h.update(Path(synthetic.__file__).read_bytes())
    h.update(Path(observation.__file__).read_bytes())
    return h.hexdigest()[:16]


def analyst_training_rows(store, dims: pd.DataFrame) -> pd.DataFrame:
    """Dimension rows of organisations with analyst labels (latest label per org and model)."""
    labels = store.df("select org_id as org, model, stage from labels qualify row_number() over "
                      "(partition by org_id, model order by created_at desc) = 1")
    if labels.empty:
        return pd.DataFrame()
    specs = load_models()
    labels["stage_index"] = [specs[m].index_of(s) for m, s in zip(labels["model"], labels["stage"])]
    return labels.merge(dims, on="org", how="inner")


@dataclass(frozen=True)
class ModelCache:
    """Where fitted models and training sets live: $MATURITY_MODEL_CACHE, else a `models/` folder
    beside the database; None for in-memory stores (nothing is cached). Databases sharing a folder
    share the label-free fits and keep their own labelled ones."""
    folder: Path | None

    @classmethod
    def beside(cls, db_path) -> "ModelCache":
        if os.environ.get("MATURITY_MODEL_CACHE"):
            return cls(Path(os.environ["MATURITY_MODEL_CACHE"]))
        if db_path is None or str(db_path) == ":memory:":
            return cls(None)
        return cls(Path(db_path).resolve().parent / "models")

    @staticmethod
    def key(seed: int, orgs: int, window_days: int) -> str:
        return f"{training_code_digest()}-s{seed}-n{orgs}-w{window_days}"

    def train_file(self, key: str) -> Path | None:
        return self.folder / f"train-{key}.parquet" if self.folder else None

    def fit_file(self, key: str, labels: str) -> Path | None:
        return self.folder / f"fit-{key}-{labels}.joblib" if self.folder else None

    def newest_fit(self, window_days: int) -> FittedModels | None:
        """The fit for the current code and window written last (the one the last estimate used)."""
        if self.folder is None or not self.folder.exists():
            return None
        fits = sorted(self.folder.glob(f"fit-{training_code_digest()}-*-w{window_days}-*.joblib"),
                      key=lambda p: p.stat().st_mtime)
        return joblib.load(fits[-1]) if fits else None

    def newest_training_set(self, window_days: int) -> pd.DataFrame | None:
        if self.folder is None or not self.folder.exists():
            return None
        sets = sorted(self.folder.glob(f"train-{training_code_digest()}-*-w{window_days}.parquet"),
                      key=lambda p: p.stat().st_mtime)
        return pd.read_parquet(sets[-1]) if sets else None


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    write(partial)
    partial.replace(path)  # a concurrent reader never sees half a file


def load_or_train(store, dims: pd.DataFrame | None, window_days: int, *, seed: int = DEFAULT_TRAIN_SEED,
                  orgs: int | None = None, log=None) -> FittedModels:
    """The fitted models for this store and estimation window: loaded when a fit for the same code,
    training set and analyst labels is cached, else trained (and cached)."""
    # $MATURITY_TRAIN_ORGS trades accuracy for speed (the test suite uses a small training set)
    orgs = orgs or int(os.environ.get("MATURITY_TRAIN_ORGS", DEFAULT_TRAIN_ORGS))
    analyst = analyst_training_rows(store, dims) if dims is not None else pd.DataFrame()
    label_key = hashlib.sha256(analyst[["org", "model", "stage_index"]].to_csv(index=False).encode()
                               if len(analyst) else b"").hexdigest()[:12]
    cache = ModelCache.beside(store.path)
    key = cache.key(seed, orgs, window_days)
    model_file = cache.fit_file(key, label_key)
    if model_file and model_file.exists():
        return joblib.load(model_file)
    train_file = cache.train_file(key)
    if train_file and train_file.exists():
        train = pd.read_parquet(train_file)
    else:
        if log:
            log(f"training: generating {orgs} synthetic organisations (seed {seed})")
        train = training_frame(seed, orgs, window_days)
        if train_file:
            _write_atomically(train_file, train.to_parquet)
    fitted = fit_for_sources(train, analyst if len(analyst) else None)
    # the training inputs travel with the fit: estimates are checked against them (out of distribution)
    fitted.info.update(seed=seed, code=key, labels=label_key, window_days=window_days,
                       input_reference=input_reference(train))
    if model_file:
        _write_atomically(model_file, lambda path: joblib.dump(fitted, path))
    return fitted
