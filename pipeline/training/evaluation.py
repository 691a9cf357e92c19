"""Held-out evaluation: train on synthetic organisations of one seed, test on those of another."""
from __future__ import annotations

import pandas as pd

from models.estimate import estimate, fit_models
from models.evaluate import metrics
from pipeline.training.cache import training_frame
from pipeline.training.synthetic import SHIFTED, Behaviour


def evaluate(train_seed: int = 11, test_seed: int = 12, orgs: int = 300, *, window_days: int,
             shifted: bool = False, train: pd.DataFrame | None = None, test_orgs: int | None = None) -> dict:
    """Train on `orgs` organisations from train_seed, test on `test_orgs` (default: orgs) from test_seed,
    both featurised on the estimation window. shifted=True perturbs the test behaviour (SHIFTED:
    noisier latency, fewer mentions, more behaviour noise)."""
    train = train if train is not None else training_frame(train_seed, orgs, window_days, prefix="train")
    fitted = fit_models(train)
    test = training_frame(test_seed, test_orgs or orgs, window_days,
                          behaviour=SHIFTED if shifted else Behaviour(), prefix="test")
    return metrics(estimate(fitted, test), test)
