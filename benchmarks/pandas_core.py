"""Baseline: the core features (cadence: posts, posts_per_day, active_day_share;
responsiveness: mentions, answered, response_rate, first_reply_median_s, first_reply_p90_s) written in
idiomatic pandas, for all data up to as_of (window 0), per account and per organisation.

Same definitions as features/sql/00_staging.sql, 10_cadence.sql and 20_responsiveness.sql: mention
rules 1-3, the 72 h judgement delay and reply limit, linear-interpolated quantiles. `load_inputs` reads
the store into memory (not part of the timed work); `core_features` is the timed part.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

REPLY_LIMIT_S = 72 * 3600


def load_inputs(store, as_of=None):
    posts = store.con.execute(
        "select platform, post_id, author_key, created_at, in_reply_to, mentions from posts").df()
    accounts = store.con.execute(
        "select platform, handle_key, coalesce(org_id, '') as org_id, pseudonym(handle_key) as mention_key "
        "from accounts").df()
    as_of = as_of or posts["created_at"].max()
    return posts, accounts, pd.Timestamp(as_of)


def _summarise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = frame.groupby(keys)
    return pd.DataFrame({
        "mentions": grouped.size(),
        "answered": grouped["first_reply_s"].count(),
        "first_reply_median_s": grouped["first_reply_s"].median(),
        "first_reply_p90_s": grouped["first_reply_s"].quantile(0.9),
    })


def _cadence(own: pd.DataFrame, keys: list[str], as_of: pd.Timestamp) -> pd.DataFrame:
    grouped = own.groupby(keys)
    out = pd.DataFrame({"posts": grouped.size(), "first": grouped["created_at"].min(),
                        "active_days": grouped["day"].nunique()})
    days = (as_of - out["first"]).dt.total_seconds() / 86400
    out["posts_per_day"] = out["posts"] / days.clip(lower=1.0)
    out["active_day_share"] = out["active_days"] / ((as_of.normalize() - out["first"].dt.normalize()).dt.days + 1)
    return out.drop(columns=["first", "active_days"])


def core_features(posts: pd.DataFrame, accounts: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    posts = posts[posts["created_at"] <= as_of]
    org_keys = accounts[["platform", "handle_key", "org_id"]].rename(columns={"handle_key": "author_key"})
    posts = posts.merge(org_keys, on=["platform", "author_key"], how="left")
    posts["by_org"] = posts["org_id"].notna()
    own = posts[posts["by_org"]].assign(day=lambda f: f["created_at"].dt.normalize())

    customer = posts[~posts["by_org"] & (posts["created_at"] <= as_of - pd.Timedelta(seconds=REPLY_LIMIT_S))]
    customer = customer[["platform", "post_id", "created_at", "in_reply_to", "mentions"]]
    # rule 1: replies to an org account's post
    parents = own[["platform", "post_id", "author_key"]].rename(
        columns={"post_id": "in_reply_to", "author_key": "rule1"})
    customer = customer.merge(parents, on=["platform", "in_reply_to"], how="left")
    # rule 2: the org account whose reply came first
    replies = own[own["in_reply_to"].notna()].sort_values(["created_at", "post_id"])
    first = replies.drop_duplicates(["platform", "in_reply_to"])[["platform", "in_reply_to", "author_key"]]
    customer = customer.merge(first.rename(columns={"in_reply_to": "post_id", "author_key": "rule2"}),
                              on=["platform", "post_id"], how="left")
    # rule 3: the first org account @-mentioned
    needs_text = customer[customer["rule1"].isna() & customer["rule2"].isna()]
    mentioned = needs_text[["platform", "post_id", "mentions"]].explode("mentions")
    mentioned["position"] = mentioned.groupby(level=0).cumcount()
    mentioned = mentioned.merge(accounts[["platform", "mention_key", "handle_key"]],
                                left_on=["platform", "mentions"], right_on=["platform", "mention_key"])
    rule3 = mentioned.sort_values("position").drop_duplicates(["platform", "post_id"])
    customer = customer.merge(rule3[["platform", "post_id", "handle_key"]].rename(columns={"handle_key": "rule3"}),
                              on=["platform", "post_id"], how="left")
    customer["account"] = customer["rule1"].fillna(customer["rule2"]).fillna(customer["rule3"])
    mentions = customer[customer["account"].notna()][["platform", "post_id", "created_at", "account"]]

    # answered: a direct reply by the assigned account within [0, 72 h]
    answers = replies[["platform", "in_reply_to", "author_key", "created_at"]].rename(
        columns={"in_reply_to": "post_id", "author_key": "account", "created_at": "replied_at"})
    answers = answers.merge(mentions, on=["platform", "post_id", "account"])
    answers["latency"] = (answers["replied_at"] - answers["created_at"]).dt.total_seconds()
    answers = answers[answers["latency"].between(0, REPLY_LIMIT_S)]
    latency = answers.groupby(["platform", "post_id"])["latency"].min().rename("first_reply_s")
    mentions = mentions.merge(latency, on=["platform", "post_id"], how="left")
    mentions = mentions.merge(org_keys.rename(columns={"author_key": "account"}), on=["platform", "account"])

    by_account = _summarise(mentions, ["org_id", "platform", "account"]).join(
        _cadence(own.rename(columns={"author_key": "account"}), ["org_id", "platform", "account"], as_of),
        how="outer")
    by_org = _summarise(mentions[mentions["org_id"] != ""], ["org_id"]).join(
        _cadence(own[own["org_id"] != ""], ["org_id"], as_of), how="outer")
    frames = []
    for scope, frame in (("account", by_account), ("org", by_org)):
        frame = frame.reset_index()
        frame.insert(0, "scope", scope)
        frame[["mentions", "answered", "posts"]] = frame[["mentions", "answered", "posts"]].fillna(0)
        frame["response_rate"] = frame["answered"] / frame["mentions"].replace(0, np.nan)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
