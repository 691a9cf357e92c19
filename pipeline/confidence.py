"""Data confidence for stored estimates: a thread bootstrap over the feature staging rows, and the
distance of each organisation's inputs from the training data (models/confidence.py does the maths).

pipeline.estimation calls it after models.estimate.estimate with the same feature frame (org_frame)
and the dimensions computed from it:

    dims = D.compute(features)
    rows = with_data_confidence(store.con, fitted, features, dims, estimate(fitted, dims), as_of, window_days)

Resampled signals (RESAMPLED_FEATURES), recomputed per replicate from the per-row staging tables with
the feature SQL's definitions (features/sql/10_cadence, 20_responsiveness, 25_responsiveness_signals,
30_mention_handling, 40_team): the mention counts and shares, the first-reply quantiles
(quantile_cont), the reply shares, distinct signatures and recurring ones, reply hours. Every other
feature (cadence, structure, content, dialogue) keeps its plug-in value in every replicate: those are
either not sampled by conversation (accounts, platforms) or not observable from a conversation sample.
"""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from features.runner import build_staging
from models import dimensions as D
from models.confidence import (InputReference, apply_data_confidence, distinct_count, thread_weights,
                               weighted_quantile_cont, weighted_share)
from models.rules import INSUFFICIENT, rule_frame
from models.spec import load_models

REPLICATES = 200
RESAMPLED_FEATURES = ("posts", "replies", "mentions", "answered", "response_rate", "first_reply_median_s",
                      "first_reply_p90_s", "answered_within_1h_share", "signed_reply_share",
                      "private_channel_share", "agent_signatures", "estimated_team_size", "reply_hours_covered")
ONE_HOUR_S = 3600


def staging_rows(con, as_of: datetime, window_days: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mentions, own posts) of the window, one row each with the organisation and thread root:
    mentions: org, thread, answered, first_reply_s; posts: org, thread, is_reply, signature,
    private_channel, local_hour."""
    build_staging(con, as_of, window_days)
    mentions = con.execute("""
        select org_id as org, root_id as thread, answered, first_reply_s
        from stg_mentions
        where org_id <> '' and root_id is not null""").df()
    posts = con.execute("""
        select org_id as org, root_id as thread, in_reply_to is not null as is_reply, signature,
               private_channel, hour(local_at) as local_hour
        from stg_org_posts
        where org_id <> '' and root_id is not null
          and created_at >= coalesce(getvariable('window_start'), timestamp '-infinity')""").df()
    return mentions, posts


def _codes(values: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(values)    # NaN/None -> -1
    return codes


def replicate_signals(mentions: pd.DataFrame, posts: pd.DataFrame, weights: np.ndarray,
                      threads: np.ndarray) -> dict[str, np.ndarray]:
    """RESAMPLED_FEATURES for one organisation under thread weights (replicates x threads)."""
    index = {t: i for i, t in enumerate(threads)}
    wm = weights[:, mentions["thread"].map(index).to_numpy(int)]
    wp = weights[:, posts["thread"].map(index).to_numpy(int)]
    answered = mentions["answered"].to_numpy(bool)
    latency = mentions["first_reply_s"].to_numpy(float)
    replies = posts[posts["is_reply"].to_numpy(bool)]
    wr = wp[:, posts["is_reply"].to_numpy(bool)]
    n_mentions, n_replies = wm.sum(axis=1), wr.sum(axis=1)
    signed = replies["signature"].notna().to_numpy()
    private_known = replies["private_channel"].notna().to_numpy()    # avg() skips NULL flags
    signature_codes = _codes(replies["signature"])
    recurring = distinct_count(signature_codes, wr, at_least=2)   # signatures signing >= 2 replies
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "posts": wp.sum(axis=1),
            "replies": n_replies,
            "mentions": n_mentions,
            "answered": wm[:, answered].sum(axis=1),
            "response_rate": weighted_share(answered, wm),
            "first_reply_median_s": weighted_quantile_cont(latency[answered], wm[:, answered], 0.5),
            "first_reply_p90_s": weighted_quantile_cont(latency[answered], wm[:, answered], 0.9),
            "answered_within_1h_share": weighted_share(answered & (latency <= ONE_HOUR_S), wm),
            "signed_reply_share": np.where(n_replies > 0, wr[:, signed].sum(axis=1) / n_replies, np.nan),
            "private_channel_share": weighted_share(replies["private_channel"].fillna(False).to_numpy(bool)[private_known],
                                                    wr[:, private_known]),
            "agent_signatures": distinct_count(signature_codes, wr),
            "estimated_team_size": np.where(n_replies > 0, np.maximum(recurring, 1), 0.0),
            "reply_hours_covered": distinct_count(replies["local_hour"].to_numpy(int), wr),
        }


def replicate_features(features: pd.DataFrame, mentions: pd.DataFrame, posts: pd.DataFrame,
                       replicates: int = REPLICATES, seed: int = 13) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """The feature frame repeated `replicates` times per organisation with RESAMPLED_FEATURES
    recomputed from thread-resampled rows; returns (frame, [(org, replicate)] per row). Organisations
    without threads are left out (there is nothing to resample)."""
    rng = np.random.default_rng(seed)
    by_org_m = dict(tuple(mentions.groupby("org")))
    by_org_p = dict(tuple(posts.groupby("org")))
    frames, keys = [], []
    for _, row in features.iterrows():
        org = row["org"]
        m = by_org_m.get(org, mentions.iloc[:0])
        p = by_org_p.get(org, posts.iloc[:0])
        threads = np.array(sorted(set(m["thread"]) | set(p["thread"])))
        if len(threads) == 0:
            continue
        signals = replicate_signals(m, p, thread_weights(len(threads), replicates, rng), threads)
        frame = pd.DataFrame([row.to_dict()] * replicates)
        for name, values in signals.items():
            if name in frame.columns:
                frame[name] = values
        frame["org"] = [f"{org}\x1f{b}" for b in range(replicates)]
        frames.append(frame)
        keys.extend((org, b) for b in range(replicates))
    return (pd.concat(frames, ignore_index=True) if frames else features.iloc[:0]), keys


def replicate_bounds(features: pd.DataFrame, mentions: pd.DataFrame, posts: pd.DataFrame,
                     replicates: int = REPLICATES, seed: int = 13) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (org, model): the replicates' (low, high) stage indices, -1 where a replicate is
    insufficient. The bounds are the rules' (models.rules.rule_frame, vectorised over every replicate):
    the classifier only places the point inside them, so it need not run per replicate."""
    frame, keys = replicate_features(features, mentions, posts, replicates, seed)
    if frame.empty:
        return {}
    orgs = [org for org, b in keys[::replicates]]        # each organisation's replicates are one block
    dims = D.compute(frame)
    bounds: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for model_id, spec in load_models().items():
        rules = rule_frame(spec, dims)
        judged = rules.status != INSUFFICIENT
        low = np.where(judged, rules.low, -1).reshape(len(orgs), replicates)
        high = np.where(judged, rules.high, -1).reshape(len(orgs), replicates)
        for i, org in enumerate(orgs):
            bounds[(org, model_id)] = (low[i], high[i])
    return bounds


def input_reference(train: pd.DataFrame) -> InputReference:
    """The training frame's classifier inputs, for the out-of-distribution check."""
    return InputReference(D.classifier_inputs(train))


def with_data_confidence(con, fitted, features: pd.DataFrame, dims: pd.DataFrame, records: list[dict],
                         as_of: datetime, window_days: int, *, replicates: int = REPLICATES,
                         seed: int = 13) -> list[dict]:
    """`records` (estimate(fitted, dims), dims = D.compute(features)) with the combined confidence, bootstrap_share
    and out_of_distribution (models.confidence.apply_data_confidence). The training inputs come from
    fitted.info["input_reference"] (set by pipeline.training.cache.load_or_train); without it the
    distance is not assessed."""
    mentions, posts = staging_rows(con, as_of, window_days)
    bounds = replicate_bounds(features, mentions, posts, replicates, seed)
    reference = fitted.info.get("input_reference")
    distributions = None
    if reference is not None:
        distributions = dict(zip(dims["org"], reference.assess(D.classifier_inputs(dims))))
    return apply_data_confidence(records, bounds, distributions)
