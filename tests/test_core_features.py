"""Core responsiveness and cadence features: hand-made known answers and the real twcs prefix file
compared with an independent implementation of the written definitions."""
import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from connectors.records import Post, posts_to_batch
from connectors.twcs import import_twcs
from features.runner import build_features, features_frame

T0 = datetime(2024, 3, 1, 12, 0, 0)


def load(store, posts):
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="test", run_id=None)


def p(pid, author, minutes, reply=None, text="", org=None):
    return Post("twitter", pid, author, org if org is not None else not author.isdigit(),
                T0 + timedelta(minutes=minutes), in_reply_to=reply, text=text)


@pytest.fixture
def scenario(store):
    hours = 60
    load(store, [
        # rule 1: customer replies to a post by acme -> acme; acme answers 10 min later
        p("1", "acme", 0, text="Big news today"),
        p("2", "100", 5, reply="1", text="great?"),
        p("3", "acme", 15, reply="2", text="@100 thanks -Becky"),
        # rule 2: replied to by beta first (30 min) and acme later: beta's mention, answered in 30 min
        p("4", "101", 60, text="@somebody help"),
        p("5", "acme", 120, reply="4"),
        p("6", "beta", 90, reply="4"),
        # rule 3: text mentions beta then acme -> beta; never answered
        p("7", "102", 200, text="hey @Beta and @acme, anyone?"),
        # rule 1 wins over rule 2: reply to acme's post, answered by beta -> acme, unanswered
        p("8", "103", 300, reply="1"),
        p("9", "beta", 310, reply="8"),
        # answer beyond 72 h does not count
        p("10", "104", 400, text="@acme hello"),
        p("11", "acme", 400 + 73 * 60, reply="10"),
        # mentions nobody known -> not a mention
        p("12", "105", 500, text="@nobody"),
        # younger than 72 h before as_of: not judged yet
        p("13", "106", 400 + 80 * 60, text="@acme late"),
        p("14", "acme", 400 + 80 * 60 + 10 * hours, text="last post"),
    ])
    return store


def test_mentions_assignment_rules_and_latency(scenario):
    build_features(scenario.con)
    frame = features_frame(scenario.con).set_index("account")
    acme, beta = frame.loc["acme"], frame.loc["beta"]
    # acme: mentions 2 (rule 1) + 8 (rule 1) + 10 (rule 3); answered only 2 (10 min)
    assert (acme.mentions, acme.answered) == (3, 1)
    assert acme.response_rate == pytest.approx(1 / 3)
    assert acme.first_reply_median_s == 600 and acme.first_reply_p90_s == 600
    # beta: 4 (rule 2, 30 min) and 7 (rule 3, unanswered)
    assert (beta.mentions, beta.answered) == (2, 1)
    assert beta.first_reply_median_s == 1800


def test_cadence(scenario):
    as_of = build_features(scenario.con)
    assert as_of == T0 + timedelta(minutes=400 + 80 * 60 + 600)
    acme = features_frame(scenario.con).set_index("account").loc["acme"]
    assert acme.posts == 5
    days = (as_of - T0).total_seconds() / 86400
    assert acme.posts_per_day == pytest.approx(5 / days)
    # posts on 2024-03-01 (x3), 03-04 (x1: 73 h later), 03-05 (last post): 3 of 5 calendar days
    assert acme.active_day_share == pytest.approx(3 / 5)


def test_window_and_org_scope(scenario, tmp_path):
    from pipeline.config import apply_config, load_config
    cfg = tmp_path / "orgs.toml"
    cfg.write_text('[[org]]\nid = "acme_group"\naccounts = [\n'
                   '  { platform = "twitter", handle = "acme", role = "brand" },\n'
                   '  { platform = "twitter", handle = "beta", role = "support" },\n]\n')
    apply_config(scenario, load_config(cfg))
    as_of = build_features(scenario.con, windows=(0, 1))
    org = features_frame(scenario.con, as_of, 0, scope="org").iloc[0]
    assert (org.org, org.mentions, org.answered) == ("acme_group", 5, 2)
    assert org.first_reply_median_s == pytest.approx(1200)  # median of 600 and 1800
    assert org.first_reply_p90_s == pytest.approx(600 + 0.9 * 1200)
    last_day = features_frame(scenario.con, as_of, 1).set_index("account").loc["acme"]
    assert last_day.posts == 2 and last_day.mentions == 0 and last_day.posts_per_day == 2


def test_history_is_keyed_by_as_of(scenario):
    first = build_features(scenario.con, as_of=T0 + timedelta(days=1))
    latest = build_features(scenario.con)
    build_features(scenario.con)  # rebuilding the same as_of replaces, never duplicates
    stored = scenario.con.execute("select as_of, count(*) from features group by 1 order by 1").fetchall()
    assert [row[0] for row in stored] == [first, latest]
    assert stored[0][1] == stored[1][1]
    early = features_frame(scenario.con, first).set_index("account").loc["acme"]
    assert early.posts == 3


# ---- real data against an independent implementation ----------------------------------------

def independent_responsiveness(path) -> pd.DataFrame:
    """The written definitions, implemented directly on a pandas read of the file."""
    df = pd.read_csv(path, dtype={"author_id": str, "text": str})
    df = df[pd.to_numeric(df["tweet_id"], errors="coerce").notna() & df["author_id"].notna()
            & df["created_at"].notna()]
    df = df.assign(
        tweet_id=df["tweet_id"].astype("int64"),
        created=pd.to_datetime(df["created_at"], format="%a %b %d %H:%M:%S %z %Y", utc=True),
        parent=pd.to_numeric(df["in_response_to_tweet_id"], errors="coerce"),
        inbound=df["inbound"].astype(str).str.lower() == "true",
    )
    org = {a.lower(): a for a in df.loc[~df.inbound & ~df.author_id.str.fullmatch(r"\d+"), "author_id"]}
    author = dict(zip(df.tweet_id, df.author_id.str.lower()))
    created = dict(zip(df.tweet_id, df.created))
    children: dict[int, list[int]] = {}
    for tid, parent in zip(df.tweet_id, df.parent):
        if not np.isnan(parent):
            children.setdefault(int(parent), []).append(tid)
    as_of = df.created.max()
    limit = timedelta(hours=72)
    rows = []
    for tid, who, when, parent, text in zip(df.tweet_id, df.author_id.str.lower(), df.created, df.parent,
                                            df.text.fillna("")):
        if who in org or when > as_of - limit:
            continue
        account = None
        if not np.isnan(parent) and author.get(int(parent)) in org:
            account = author[int(parent)]
        if account is None:
            replies = sorted((created[c], c) for c in children.get(tid, []) if author[c] in org)
            if replies:
                account = author[replies[0][1]]
        if account is None:
            for handle in re.findall(r"@(\w+)", text):
                if handle.lower() in org:
                    account = handle.lower()
                    break
        if account is None:
            continue
        latencies = [(created[c] - when).total_seconds() for c in children.get(tid, [])
                     if author[c] == account and timedelta(0) <= created[c] - when <= limit]
        rows.append((account, min(latencies) if latencies else None))
    mentions = pd.DataFrame(rows, columns=["account", "latency"])
    out = mentions.groupby("account").agg(
        mentions=("latency", "size"), answered=("latency", "count"),
        first_reply_median_s=("latency", lambda s: s.dropna().quantile(0.5) if s.notna().any() else None),
        first_reply_p90_s=("latency", lambda s: s.dropna().quantile(0.9) if s.notna().any() else None))
    out["response_rate"] = out.answered / out.mentions
    return out


def test_real_prefix_file_matches_independent_implementation(store, twcs_prefix):
    import_twcs(store, twcs_prefix)
    build_features(store.con)
    ours = features_frame(store.con).assign(account=lambda f: f.account.str.lower()).set_index("account")
    theirs = independent_responsiveness(twcs_prefix)
    judged = theirs[theirs.mentions >= 20]
    assert len(judged) >= 15, "the prefix file has many accounts with >= 20 mentions"
    for account, expected in judged.iterrows():
        got = ours.loc[account]
        assert (got.mentions, got.answered) == (expected.mentions, expected.answered), account
        assert got.response_rate == pytest.approx(expected.response_rate, abs=1e-12), account
        assert abs(got.first_reply_median_s - expected.first_reply_median_s) <= 1, account
        assert abs(got.first_reply_p90_s - expected.first_reply_p90_s) <= 1, account
    # every account with mentions agrees on the counts, not only the big ones
    small = theirs.join(ours[["mentions", "answered"]].add_suffix("_ours"))
    assert (small.mentions == small.mentions_ours).all() and (small.answered == small.answered_ours).all()
