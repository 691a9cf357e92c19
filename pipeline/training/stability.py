"""Stability of the estimates on real data: split a twcs file's conversation threads into halves,
import each half into its own database, estimate each on its own, and compare.

Splits: random halves of the threads (several seeds) and a time split (threads whose first post is
before the median thread start vs after). Both halves are estimated at the full file's as_of, so the
window is the same. Per (organisation, model) staged in both halves:
- same: the same (low, high) -- for point estimates, the same stage;
- same_stage: the same reported stage (`stage`: the point, or an interval's lowest stage), what a
  reader of `maturity estimates` compares;
- within_one: the points differ by at most one stage (smi: at most one axis);
- overlap: the two intervals share a stage (the halves are consistent, if not equally precise);
- confident_keep: among pairs with confidence >= 0.9 in either half, the share that keep their stage;
  measured with the estimates' own confidence and, when the data confidence is applied
  (pipeline/confidence.py), with the combined one.
The same figures per evidence band (the smaller half's judged mentions) show where the instability
lies; `evidence_ratio` (how unequal the halves' evidence is) and `answer_rate_shift` / `_spread` (how
the halves' answer rates differ where both have enough mentions) tell a split whose halves saw
different amounts of an organisation's conversations from one whose behaviour differed. Whatever models/ is at the time is what gets measured (the estimate records decide low/high).

Run: PYTHONPATH=$PWD python -m pipeline.training.stability [--splits 3] [--window 90] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from connectors.twcs import import_twcs
from features.runner import build_features, default_as_of
from models import dimensions as D
from models.estimate import estimate
from models.evaluate import _within_one, stage_bounds
from models.spec import MODEL_IDS
from pipeline.config import apply_config, load_config
from pipeline.estimation import org_frame
from pipeline.store import writer
from pipeline.confidence import with_data_confidence
from pipeline.training.cache import load_or_train

REPO = Path(__file__).resolve().parents[2]
TWCS_PREFIX = REPO.parent / "shared" / "data" / "raw" / "twcs_prefix5k__monalisapatra26_data_visualization.csv"
ORGS = REPO / "data" / "orgs.example.toml"
TARGETS = {"random.same": 0.90, "random.within_one": 0.98, "time.same": 0.80, "random.confident_keep": 0.95}
CONFIDENT = 0.9
RATE_COMPARED_FROM = 20                  # judged mentions in each half to compare their answer rates
EVIDENCE_BANDS = (0, 10, 20, 40, 80)     # judged mentions in the smaller half: 0-9, 10-19, 20-39, 40-79, 80+


def thread_roots(tweets: pd.DataFrame) -> pd.Series:
    """The conversation thread (root tweet id) of every tweet: follow in_response_to_tweet_id while
    the parent is in the file."""
    parent = pd.Series(tweets["in_response_to_tweet_id"].to_numpy(), index=tweets["tweet_id"].to_numpy())
    parent = parent[parent.isin(parent.index)].astype(tweets["tweet_id"].dtype)
    root = pd.Series(tweets["tweet_id"].to_numpy(), index=tweets["tweet_id"].to_numpy())
    for _ in range(1000):             # a reply chain is far shorter; a cycle in bad data cannot loop forever
        up = root.map(parent)
        moved = up.notna()
        if not moved.any():
            break
        root[moved] = up[moved].astype(root.dtype)
    return root


def split_threads(tweets: pd.DataFrame, kind: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two halves of the file, each holding whole threads: kind "random" (a seeded half of the
    threads) or "time" (threads starting up to the median thread start, and after)."""
    roots = thread_roots(tweets).to_numpy()
    threads = pd.unique(roots)
    if kind == "random":
        first = set(np.random.default_rng(seed).permutation(threads)[: len(threads) // 2])
    elif kind == "time":
        start = pd.to_datetime(tweets["created_at"], format="%a %b %d %H:%M:%S %z %Y", utc=True)
        began = start.groupby(roots).min()
        first = set(began.index[began <= began.median()])
    else:
        raise ValueError(kind)
    in_first = np.array([r in first for r in roots])
    return tweets[in_first], tweets[~in_first]


def estimate_file(csv_path: Path, config_path: Path, db_path: Path, as_of, window_days: int,
                  data_confidence: bool = True) -> list[dict]:
    """Import one twcs file with the organisations of config_path into a new database and estimate
    every organisation at as_of (models trained once per code version, cached for every half)."""
    with writer(db_path, "stability") as store:
        apply_config(store, load_config(config_path))
        import_twcs(store, csv_path)
        build_features(store.con, as_of, windows=(window_days,))
        features = org_frame(store, as_of, window_days)
        dims = D.compute(features)
        fitted = load_or_train(store, dims, window_days)
        rows = estimate(fitted, dims)
        if data_confidence:
            rows = with_data_confidence(store.con, fitted, features, dims, rows, as_of, window_days)
    return rows


def compare(first: list[dict], second: list[dict]) -> pd.DataFrame:
    """One row per (org, model) staged in both halves: same, within_one, and both confidences."""
    a, b = pd.DataFrame(first), pd.DataFrame(second)
    a, b = (f[f["status"] != "insufficient_evidence"] for f in (a, b))
    both = a.merge(b, on=["org", "model"], suffixes=("_a", "_b"))
    rows = []
    for model_id in MODEL_IDS:
        mine = both[both["model"] == model_id]
        if mine.empty:
            continue
        low_a, high_a = stage_bounds(mine, "_a")
        low_b, high_b = stage_bounds(mine, "_b")
        point_a, point_b = mine["stage_index_a"].to_numpy(int), mine["stage_index_b"].to_numpy(int)
        rows.append(pd.DataFrame({
            "org": mine["org"].to_numpy(), "model": model_id,
            "same": (low_a == low_b) & (high_a == high_b),
            "same_stage": point_a == point_b,
            "within_one": _within_one(model_id, point_a, point_b),
            "overlap": _overlap(mine, model_id, (low_a, high_a), (low_b, high_b)),
            "mentions": np.fmin(*(mine[f"explanation_{h}"].map(_judged_mentions).to_numpy(float) for h in "ab")),
            "mentions_larger": np.fmax(*(mine[f"explanation_{h}"].map(_judged_mentions).to_numpy(float)
                                         for h in "ab")),
            "answer_rate_gap": np.subtract(*(mine[f"explanation_{h}"].map(_answer_rate).to_numpy(float)
                                             for h in "ab")),
            "confident": _either_confident(mine["confidence_a"], mine["confidence_b"]),
            "classifier_confident": _either_confident(*(mine[f"explanation_{h}"].map(_classifier_probability)
                                                        for h in "ab")),
        }))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=PAIR_COLUMNS)


PAIR_COLUMNS = ["org", "model", "same", "same_stage", "within_one", "overlap", "mentions", "mentions_larger", "answer_rate_gap",
                "confident", "classifier_confident"]


def _overlap(pairs: pd.DataFrame, model_id: str, bounds_a: tuple[np.ndarray, np.ndarray],
             bounds_b: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Whether the halves' estimates share a stage (smi: a quadrant both still allow; its possible set
    need not be the whole range between low and high)."""
    if model_id == "smi":
        return np.array([bool(set(a.split("|")) & set(b.split("|")))
                         for a, b in zip(pairs["stages_possible_a"], pairs["stages_possible_b"])])
    return np.fmax(bounds_a[0], bounds_b[0]) <= np.fmin(bounds_a[1], bounds_b[1])


def _judged_mentions(explanation: dict) -> float:
    return float(explanation.get("evidence", {}).get("mentions", 0.0))


def _answer_rate(explanation: dict) -> float:
    rate = explanation.get("signals", {}).get("response_rate")
    return float("nan") if rate is None else float(rate)


def _classifier_probability(explanation: dict) -> float:
    """The classifier's probability of the reported stage, before the data confidence replaced it."""
    reading = explanation.get("data_confidence")
    return float("nan") if reading is None else reading["classifier_probability"]


def _either_confident(first: pd.Series, second: pd.Series) -> np.ndarray:
    return np.fmax(first.to_numpy(float), second.to_numpy(float)) >= CONFIDENT


def summarise(pairs: pd.DataFrame) -> dict:
    """The figures of a set of pairs, and what sets the halves apart: `evidence_ratio`, the median of the
    smaller half's judged mentions over the larger's; `answer_rate_shift`, the mean answer rate of the
    first half minus the second's and `answer_rate_spread`, the mean absolute difference, both over
    the pairs with >= 20 judged mentions in each half (a time split's first half is the earlier)."""
    confident = pairs[pairs["confident"]]
    by_classifier = pairs[pairs["classifier_confident"]]
    ratio = pairs["mentions"] / pairs["mentions_larger"].where(pairs["mentions_larger"] > 0)
    gap = pairs.loc[pairs["mentions"] >= RATE_COMPARED_FROM, "answer_rate_gap"]
    return {"pairs": int(len(pairs)), "same": _share(pairs["same"]), "same_stage": _share(pairs["same_stage"]),
            "within_one": _share(pairs["within_one"]),
            "overlap": _share(pairs["overlap"]),
            "confident_pairs": int(len(confident)), "confident_keep": _share(confident["same"]),
            "classifier_confident_pairs": int(len(by_classifier)),
            "classifier_confident_keep": _share(by_classifier["same"]),
            "evidence_ratio": _rounded(ratio.median()),
            "answer_rate_shift": _rounded(gap.mean()), "answer_rate_spread": _rounded(gap.abs().mean()),
            "answer_rate_pairs": int(gap.notna().sum())}


def _rounded(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def _share(values: pd.Series) -> float | None:
    return round(float(values.mean()), 4) if len(values) else None


def measure(csv_path: Path = TWCS_PREFIX, config_path: Path = ORGS, window_days: int = 90, random_splits: int = 3,
            data_confidence: bool = True, folder: Path | None = None) -> dict:
    """Stability figures: {"random": summary, "time": summary, "per_model": {...}, "per_split": {...},
    "by_evidence": {...}, "targets": {...}}."""
    tweets = pd.read_csv(csv_path, index_col=0)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(folder or scratch)
        with writer(folder / "full.duckdb", "stability") as store:
            import_twcs(store, csv_path)
            as_of = default_as_of(store.con)
        splits = [("random", seed) for seed in range(random_splits)] + [("time", 0)]
        pairs = []
        for kind, seed in splits:
            halves = []
            for h, half in enumerate(split_threads(tweets, kind, seed)):
                path = folder / f"{kind}{seed}_{h}.csv"
                half.to_csv(path)
                halves.append(estimate_file(path, config_path, folder / f"{kind}{seed}_{h}.duckdb", as_of,
                                            window_days, data_confidence))
            pairs.append(compare(*halves).assign(kind=kind, split=seed))
    pairs = pd.concat(pairs, ignore_index=True)
    result = {kind: summarise(pairs[pairs["kind"] == kind]) for kind in ("random", "time")}
    result["per_model"] = {f"{kind}.{m}": summarise(g) for (kind, m), g in pairs.groupby(["kind", "model"])}
    # how much one split can differ from the mean: a single split is what an outside check measures
    result["per_split"] = {f"{kind}.{seed}": summarise(g) for (kind, seed), g in pairs.groupby(["kind", "split"])}
    band = pd.cut(pairs["mentions"], [*EVIDENCE_BANDS, np.inf], right=False,
                  labels=[f"{lo}+" if hi == np.inf else f"{lo}-{hi - 1}"
                          for lo, hi in zip(EVIDENCE_BANDS, [*EVIDENCE_BANDS[1:], np.inf])])
    result["by_evidence"] = {f"{kind}.{b} mentions": summarise(g)
                             for (kind, b), g in pairs.groupby(["kind", band], observed=True)}
    result["targets"] = {name: {"target": target, "measured": result[name.split(".")[0]][name.split(".")[1]]}
                         for name, target in TARGETS.items()}
    result["settings"] = {"file": str(csv_path), "orgs": str(config_path), "window_days": window_days,
                          "random_splits": random_splits, "as_of": str(as_of), "data_confidence": data_confidence}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=TWCS_PREFIX)
    parser.add_argument("--orgs", type=Path, default=ORGS)
    parser.add_argument("--window", type=int, default=90)
    parser.add_argument("--splits", type=int, default=3, help="random splits (a time split is always added)")
    parser.add_argument("--without-data-confidence", action="store_true",
                        help="use the estimates' own confidence for the confident-keep figure")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    result = measure(args.csv, args.orgs, args.window, args.splits, not args.without_data_confidence)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
