"""Held-out evaluation metrics (pipeline/training/evaluation.py trains on one synthetic seed and tests
on organisations from another).

Metrics per model, over test organisations with status ok (`n` and `insufficient` are reported too):
- exact_accuracy: reported stage == true stage.
- within_one_accuracy: |reported - true| <= 1 stage. For smi (a 2x2 matrix, not an order) "within one"
  means at most one of the two axes is wrong.
- macro_f1: F1 per true stage, averaged over stages.
- ece: expected calibration error of the reported stage's confidence (10 equal-width bins, weighted by
  bin size): sum_b |B|/n * |accuracy(B) - mean confidence(B)|.
- rules_only_exact_accuracy: exact accuracy of the rule stage alone.
- confusion: rows = true stage, columns = reported stage, in stage order.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from models.spec import MODEL_IDS, load_models

TARGETS = {"exact_accuracy": 0.85, "within_one_accuracy": 0.98, "ece": 0.05}


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    confidence, correct = np.asarray(confidence, float), np.asarray(correct, float)
    if len(confidence) == 0:
        return float("nan")
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(total)


def _within_one(model_id: str, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    if model_id == "smi":
        spec = load_models()["smi"]
        levels = [dict(s.levels) for s in spec.stages]
        return np.array([sum(levels[t][a] != levels[p][a] for a in levels[t]) <= 1 for t, p in zip(true, pred)])
    return np.abs(true - pred) <= 1


def metrics(rows: list[dict], test: pd.DataFrame) -> dict:
    specs = load_models()
    frame = pd.DataFrame(rows)
    result = {}
    for model_id in MODEL_IDS:
        spec = specs[model_id]
        mine = frame[frame["model"] == model_id].merge(test[["org", f"truth_{model_id}"]], on="org")
        ok = mine[mine["status"] == "ok"]
        true = ok[f"truth_{model_id}"].to_numpy(dtype=int)
        pred = ok["stage_index"].to_numpy(dtype=int)
        rule = np.array([spec.index_of(s) for s in ok["rule_stage"]], dtype=int)
        labels = list(range(len(spec.stages)))
        result[model_id] = {
            "exact_accuracy": round(float((true == pred).mean()), 4),
            "within_one_accuracy": round(float(_within_one(model_id, true, pred).mean()), 4),
            "macro_f1": round(float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)), 4),
            "ece": round(expected_calibration_error(ok["confidence"].to_numpy(float), true == pred), 4),
            "rules_only_exact_accuracy": round(float((true == rule).mean()), 4),
            "confusion": confusion_matrix(true, pred, labels=labels).tolist(),
            "n": int(len(ok)),
            "insufficient": int(len(mine) - len(ok)),
            "stages": spec.stage_names,
        }
    return result


def meets_targets(result: dict) -> dict[str, list[str]]:
    """Per model, the targets missed (empty lists when all are met)."""
    missed = {}
    for model_id, m in result.items():
        missed[model_id] = [f"{k} {m[k]} (target {'<=' if k == 'ece' else '>='} {t})"
                            for k, t in TARGETS.items()
                            if (m[k] > t if k == "ece" else m[k] < t)]
    return missed


def stage_bounds(frame: pd.DataFrame, suffix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(low, high) stage indices of estimate records: `stage_low_index` / `stage_high_index` where the
    records carry intervals, else low = high = stage_index (columns named with `suffix` after a merge)."""
    point = frame[f"stage_index{suffix}"].to_numpy(dtype=float)
    low, high = f"stage_low_index{suffix}", f"stage_high_index{suffix}"
    low = frame[low].to_numpy(dtype=float) if low in frame else point
    high = frame[high].to_numpy(dtype=float) if high in frame else point
    return np.where(np.isnan(low), point, low), np.where(np.isnan(high), point, high)


def score_against_truth(rows: list[dict], truth: pd.DataFrame) -> dict:
    """Per model, the combined estimate and the rule stage alone scored against `truth` (columns org and
    truth_<model>; organisations without a truth for a model, NaN, are not scored for it).

    combined: exact / within-one of the reported point (stage_index, the low end of an interval), ECE of
    its confidence (the probability of the reported point or interval, so counted right when the truth
    lies in the interval), and -- only when the records carry intervals -- coverage (the truth among
    the stages still possible: low <= truth <= high for an ordinal model), the mean width (high - low)
    and `classifier_exact`, how often the classifier's most likely stage inside the interval is the
    truth. rules_only: exact / within-one of the rule stage. Estimates with status
    insufficient_evidence are counted, not scored."""
    specs = load_models()
    frame = pd.DataFrame(rows)
    intervals = "stage_low_index" in frame.columns
    result = {}
    for model_id in MODEL_IDS:
        spec = specs[model_id]
        column = f"truth_{model_id}"
        if column not in truth.columns:
            continue
        known = truth[["org", column]].dropna()
        mine = frame[frame["model"] == model_id].merge(known, on="org")
        staged = mine[mine["status"] != "insufficient_evidence"]
        true = staged[column].to_numpy(dtype=int)
        pred = staged["stage_index"].to_numpy(dtype=int)
        rule = np.array([spec.index_of(s) for s in staged["rule_stage"]], dtype=int) if len(staged) else pred
        low, high = stage_bounds(staged) if intervals else (pred, pred)
        # the stages still possible, where the records name them (smi's quadrants are not a range)
        covered = (np.array([spec.stage_names[t] in possible.split("|")
                             for t, possible in zip(true, staged["stages_possible"])], dtype=bool)
                   if "stages_possible" in staged else (low <= true) & (true <= high))
        combined = {"exact": _mean(true == pred), "within_one": _mean(_within_one(model_id, true, pred)),
                    "ece": round(expected_calibration_error(staged["confidence"].to_numpy(float), covered), 4)}
        if intervals:
            combined.update(coverage=_mean(covered), mean_width=_mean(high - low))
        if intervals and "classifier_stage" in staged:
            chosen = np.array([spec.index_of(s) for s in staged["classifier_stage"]], dtype=int)
            combined["classifier_exact"] = _mean(chosen == true)
        result[model_id] = {"combined": combined,
                            "rules_only": {"exact": _mean(true == rule),
                                           "within_one": _mean(_within_one(model_id, true, rule))},
                            "n": int(len(staged)), "insufficient": int(len(mine) - len(staged))}
    return result


def _mean(values) -> float:
    values = np.asarray(values, dtype=float)
    return round(float(values.mean()), 4) if len(values) else float("nan")
