"""Confidence from the data: how often a stage holds under resampling of the organisation's own
conversations, combined with the classifier's probability, and shrunk where the inputs lie outside
the training data. Pure numpy; pipeline/confidence.py supplies the resampled rows.

1. Replication bootstrap (cluster = conversation thread). The question a confidence answers is whether
   another, independent sample of the same behaviour would give the same stage. The difference between
   two independent samples has twice the variance of one, so each of an organisation's T threads gets
   an i.i.d. weight W ~ NegativeBinomial(mean 1, variance 2) per replicate (B x T), instead of the
   ordinary bootstrap's variance-1 counts: every weighted total and share varies as much as a second
   sample differs from this one (the ordinary bootstrap centres on the observed sample and is
   over-confident near a threshold). Weights are integers, so every per-row input (a mention, a reply)
   is repeated its thread's weight times. Signals are weighted reductions with the feature library's
   definitions: `weighted_share` (answered / mentions ...), `weighted_quantile_cont` (DuckDB's
   quantile_cont, linear interpolation, over the rows repeated by their weights), `distinct_count`
   (distinct signatures, hours). The replicate signals are estimated like any organisation;
   `stage_share` is the share of replicates whose (low, high) equals the reported one.
2. Combination. confidence = bootstrap_share * p_clf ** w, where p_clf is the classifier's
   probability of the reported point (or the sum over the reported interval) and w = CLASSIFIER_WEIGHT
   in distribution: the two are treated as separate sources of error (the stage changing with another
   sample of the same behaviour; the classifier being wrong about the behaviour), w < 1 because the
   classifier was fitted on synthetic organisations and is the less trusted of the two.
3. Out of distribution. `InputReference` holds the training frame's classifier inputs; d^2 is the
   Mahalanobis distance on the columns observed for the organisation (ridge-regularised covariance of
   the training rows complete on those columns), compared with the training rows' own d^2 on the same
   columns: lambda = clip((d^2 - q95) / (q99 - q95), 0, 1); out_of_distribution = d^2 > q99. The
   classifier's weight becomes w * (1 - lambda): far outside the training data only the bootstrap
   speaks.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

CLASSIFIER_WEIGHT = 0.5
REPLICATION_VARIANCE = 2.0   # per thread weight: one sample's variance (1) plus the other's (1)
RIDGE = 1e-3          # covariance regularisation, relative to the mean variance of the columns


def thread_weights(threads: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """Replication weights per replicate and thread, shape (replicates, threads): i.i.d. integers with
    mean 1 and variance REPLICATION_VARIANCE (a negative binomial with r = 1 / (variance - 1))."""
    r = 1.0 / (REPLICATION_VARIANCE - 1.0)
    return rng.negative_binomial(r, r / (r + 1.0), size=(replicates, threads)).astype(float)


def weighted_share(flags: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per replicate: weighted share of true flags among the rows (NaN without rows)."""
    total = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, weights[:, np.asarray(flags, bool)].sum(axis=1) / total, np.nan)


def weighted_quantile_cont(values: np.ndarray, weights: np.ndarray, q: float) -> np.ndarray:
    """Per replicate: quantile_cont(values, q) over the rows repeated `weights` times (integer
    weights), i.e. linear interpolation between the order statistics at (n - 1) * q. NaN for n = 0."""
    values = np.asarray(values, float)
    replicates = weights.shape[0]
    if len(values) == 0:
        return np.full(replicates, np.nan)
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[:, order], axis=1)
    total = cum[:, -1]
    position = np.maximum(total - 1, 0) * q
    below, above = np.floor(position), np.ceil(position)
    at = lambda rank: v[np.minimum((cum <= rank[:, None]).sum(axis=1), len(v) - 1)]  # noqa: E731
    low, high = at(below), at(above)
    return np.where(total > 0, low + (position - below) * (high - low), np.nan)


def distinct_count(codes: np.ndarray, weights: np.ndarray, at_least: int = 1) -> np.ndarray:
    """Per replicate: distinct non-negative codes whose weighted row count reaches `at_least`."""
    codes = np.asarray(codes, int)
    keep = codes >= 0
    if not keep.any():
        return np.zeros(weights.shape[0])
    onehot = np.zeros((keep.sum(), codes[keep].max() + 1))
    onehot[np.arange(keep.sum()), codes[keep]] = 1.0
    return ((weights[:, keep] @ onehot) >= at_least).sum(axis=1).astype(float)


def stage_share(replicate_low: np.ndarray, replicate_high: np.ndarray, low: int, high: int) -> float:
    """Share of replicates reporting the same (low, high); replicates without a stage never agree."""
    return float(np.mean((replicate_low == low) & (replicate_high == high)))


def combined_confidence(bootstrap_share: float, classifier_probability: float,
                        classifier_weight: float = CLASSIFIER_WEIGHT) -> float:
    return float(bootstrap_share * classifier_probability ** classifier_weight)


@dataclass
class InputReference:
    """The training frame's classifier inputs (rows x columns, NaN = not observed)."""
    train: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    def _fit(self, columns: tuple[int, ...]):
        if columns not in self._cache:
            rows = self.train[:, list(columns)]
            rows = rows[~np.isnan(rows).any(axis=1)]
            if len(rows) <= len(columns):
                self._cache[columns] = None
            else:
                mean = rows.mean(axis=0)
                cov = np.atleast_2d(np.cov(rows, rowvar=False))
                cov += np.eye(len(columns)) * RIDGE * max(float(np.trace(cov)) / len(columns), 1e-6)
                precision = np.linalg.inv(cov)
                centred = rows - mean
                own = np.einsum("ij,jk,ik->i", centred, precision, centred)
                self._cache[columns] = (mean, precision, float(np.quantile(own, 0.95)), float(np.quantile(own, 0.99)))
        return self._cache[columns]

    def assess(self, inputs: np.ndarray) -> list[dict | None]:
        """Per row of `inputs`: {squared_distance, q95, q99, shrink, out_of_distribution}; None when
        no column is observed or the training data cannot estimate the columns' covariance."""
        out: list[dict | None] = []
        for row in np.asarray(inputs, float):
            columns = tuple(int(j) for j in np.flatnonzero(~np.isnan(row)))
            fitted = self._fit(columns) if columns else None
            if fitted is None:
                out.append(None)
                continue
            mean, precision, q95, q99 = fitted
            centred = row[list(columns)] - mean
            d2 = float(centred @ precision @ centred)
            shrink = float(np.clip((d2 - q95) / max(q99 - q95, 1e-9), 0.0, 1.0))
            out.append({"squared_distance": round(d2, 2), "q95": round(q95, 2), "q99": round(q99, 2),
                        "shrink": round(shrink, 4), "out_of_distribution": bool(d2 > q99)})
        return out


def apply_data_confidence(records: list[dict], replicate_bounds: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                          distributions: dict[str, dict | None] | None = None,
                          classifier_weight: float = CLASSIFIER_WEIGHT) -> list[dict]:
    """Estimate records (models.estimate.estimate) with `confidence` replaced by the combined
    confidence, plus `bootstrap_share` and `out_of_distribution`; the readings behind them go to
    explanation["data_confidence"]. `replicate_bounds[(org, model)]`: the replicates' low and high
    stage indices (-1 where a replicate had insufficient evidence); `distributions[org]`: an
    InputReference.assess row. Records without a stage, or without replicates, keep their fields and
    get bootstrap_share = None. Works on point records (low = high = stage_index) and interval ones."""
    out = []
    for record in records:
        record = copy.copy(record)
        replicates = replicate_bounds.get((record["org"], record["model"]))
        distribution = (distributions or {}).get(record["org"])
        if record.get("stage_index") is None or replicates is None:
            record.update(bootstrap_share=None, out_of_distribution=None if distribution is None
                          else distribution["out_of_distribution"])
            out.append(record)
            continue
        low, high = record["stage_low_index"], record["stage_high_index"]
        share = stage_share(replicates[0], replicates[1], low, high)
        # the classifier's own probability of the point or interval (its `probabilities` are restricted
        # to the interval, so they hold all of it)
        classifier_probability = float(record["confidence"])
        shrink = 0.0 if distribution is None else distribution["shrink"]
        weight = classifier_weight * (1.0 - shrink)
        record["confidence"] = round(combined_confidence(share, classifier_probability, weight), 4)
        record["bootstrap_share"] = round(share, 4)
        record["out_of_distribution"] = None if distribution is None else distribution["out_of_distribution"]
        record["explanation"] = {**record["explanation"], "data_confidence": {
            "bootstrap_share": round(share, 4), "replicates": int(len(replicates[0])),
            "classifier_probability": round(classifier_probability, 4), "classifier_weight": round(weight, 4),
            "input_distance": distribution}}
        out.append(record)
    return out
