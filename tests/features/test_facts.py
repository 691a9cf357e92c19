"""Conversation facts (features/facts.py) maintained incrementally equal facts derived from scratch,
whatever order and slices the posts arrive in, and after account changes and deletions; features
built from them for a past as_of equal those of a store holding only the posts up to then."""
from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta

import pytest

from connectors.twcs import import_twcs
from features.facts import FACT_TABLES, rebuild_facts
from features.runner import build_features
from pipeline.store import Store, writer

START = datetime(2024, 3, 1)
COLUMNS = ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]
BRANDS = [f"Acme{i}" for i in range(5)]


@pytest.fixture(autouse=True)
def _shared_pseudonyms(monkeypatch):
    # stores compared with each other must pseudonymise customers alike
    monkeypatch.setenv("MATURITY_PSEUDONYM_KEY", "facts-test-key")


def conversations(seed: int = 3, count: int = 400) -> list[dict]:
    """twcs rows in time order within each conversation: mentions of one or two brands, replies by
    the brand (some after the 72 h limit) or by another brand first, follow-ups, another customer
    joining, private-channel wording and signatures, replies to proactive brand posts."""
    rng = random.Random(seed)
    rows: list[dict] = []

    def post(author, inbound, at, text, parent=None):
        rows.append({"tweet_id": str(len(rows) + 1), "author_id": author, "inbound": str(inbound),
                     "created_at": at.isoformat() + "+00:00", "text": text, "response_tweet_id": "",
                     "in_response_to_tweet_id": parent or ""})
        return rows[-1]["tweet_id"]

    for _ in range(count):
        brand, other = rng.sample(BRANDS, 2)
        customer = str(100 + rng.randrange(120))
        at = START + timedelta(seconds=rng.randrange(60 * 86400))
        if rng.random() < 0.15:   # a customer answers a proactive brand post
            root = post(brand, False, at, "New this week #offer https://t.co/y")
            at += timedelta(hours=rng.uniform(0, 30))
            mention = post(customer, True, at, "is it on sale?", root)
        else:
            extra = f" @{other}" if rng.random() < 0.2 else ""
            mention = post(customer, True, at, f"@{brand}{extra} my order is late" + ("?" if rng.random() < 0.4 else ""))
        if rng.random() < 0.15:   # the other brand replies first
            post(other, False, at + timedelta(minutes=rng.uniform(1, 30)), f"@{customer} Try them ^AB", mention)
        if rng.random() < 0.75:
            reply_at = at + timedelta(hours=rng.expovariate(1 / 20))
            reply = post(brand, False, reply_at,
                         f"@{customer} " + rng.choice(["Please DM us ^JK", "On it -Becky", "Thanks, we will check"]),
                         mention)
            if rng.random() < 0.3:
                follow = post(customer, True, reply_at + timedelta(hours=rng.uniform(0, 10)),
                              f"@{brand} still waiting", reply)
                if rng.random() < 0.6:
                    post(brand, False, reply_at + timedelta(hours=rng.uniform(10, 20)), f"@{customer} Done ^JK", follow)
        if rng.random() < 0.1:    # another customer joins
            post(str(300 + rng.randrange(50)), True, at + timedelta(hours=rng.uniform(0, 5)), "same here", mention)
    return rows


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer_ = csv.DictWriter(out, COLUMNS)
        writer_.writeheader()
        writer_.writerows(rows)
    return path


def facts_snapshot(store) -> dict:
    return {t: store.df(f"select * from {t} order by all") for t in FACT_TABLES}


def features_snapshot(store, as_of) -> object:
    build_features(store.con, as_of, windows=(0, 30))
    return store.df("select * exclude (computed_at) from features order by all")


def assert_same_facts(left: dict, right: dict) -> None:
    for table in FACT_TABLES:
        assert left[table].equals(right[table]), table


def load_slices(tmp_path, name, slices) -> tuple:
    with writer(tmp_path / f"{name}.duckdb") as store:
        for number, rows in enumerate(slices):
            import_twcs(store, write_csv(tmp_path / f"{name}_{number}.csv", rows))
            store.refresh_facts()
        incremental = facts_snapshot(store)
        as_of = max(datetime.fromisoformat(r["created_at"]).replace(tzinfo=None) for s in slices for r in s)
        features = features_snapshot(store, as_of)
        with store.transaction() as con:
            rebuild_facts(con)
        assert_same_facts(incremental, facts_snapshot(store))   # maintained == derived from scratch
        return incremental, features


@pytest.mark.parametrize("order", ["shuffled", "reversed"])
def test_ten_slices_in_any_order_give_the_facts_and_features_of_the_whole_file(tmp_path, order):
    rows = conversations()
    whole_facts, whole_features = load_slices(tmp_path, "whole", [rows])
    arranged = list(rows)
    random.Random(11).shuffle(arranged) if order == "shuffled" else arranged.reverse()
    size = len(arranged) // 10 + 1
    sliced_facts, sliced_features = load_slices(
        tmp_path, "sliced", [arranged[i:i + size] for i in range(0, len(arranged), size)])
    assert len(whole_facts["fact_mentions"]) > 100 and whole_facts["fact_thread_posts"]["c2c_account"].notna().any()
    assert_same_facts(whole_facts, sliced_facts)
    assert whole_features.equals(sliced_features)


def test_facts_derived_in_several_passes_equal_those_of_one(tmp_path, monkeypatch):
    import features.facts as facts

    with writer(tmp_path / "passes.duckdb") as store:
        import_twcs(store, write_csv(tmp_path / "all.csv", conversations()))
        store.refresh_facts()
        one_pass = facts_snapshot(store)
        monkeypatch.setattr(facts, "POSTS_PER_PASS", 150)   # ~1,000 posts: seven passes
        with store.transaction() as con:
            rebuild_facts(con)
        assert_same_facts(one_pass, facts_snapshot(store))


def test_a_new_org_account_reassigns_and_a_deletion_is_seen(tmp_path):
    with writer(tmp_path / "accounts.duckdb") as store:
        import_twcs(store, write_csv(tmp_path / "all.csv", conversations()))
        store.refresh_facts()
        # a customer handle becomes an organisation account: its posts are the organisation's now, and
        # the posts replying to them are mentions of it
        with store.transaction() as con:
            con.execute("insert into accounts values ('twitter', '101', '101', null, null, true)")
            store.unmask_org_handles([("twitter", "101")])
        assert store.refresh_facts() > 0
        assert store.con.execute("select count(*) from fact_org_posts where account = '101'").fetchone()[0] > 0
        refreshed = facts_snapshot(store)
        with store.transaction() as con:
            rebuild_facts(con)
        assert_same_facts(refreshed, facts_snapshot(store))
        # deleted posts (a brand's replies, so mentions lose their answers) leave the facts too
        store.con.execute("delete from posts where author_key = 'acme1' and in_reply_to is not null")
        assert store.refresh_facts() > 0
        refreshed = facts_snapshot(store)
        assert not refreshed["fact_org_posts"].query("account == 'acme1' and in_reply_to.notna()", engine="python").shape[0]
        with store.transaction() as con:
            rebuild_facts(con)
        assert_same_facts(refreshed, facts_snapshot(store))
        assert store.refresh_facts() == 0   # nothing changed since


def test_features_for_a_past_as_of_equal_those_of_the_posts_up_to_then(tmp_path):
    rows = conversations()
    as_of = START + timedelta(days=40)
    # assignments known only after as_of: replied to (rule 2) after it, by a brand the text does not
    # name, once with no brand named at all
    for number, (text, replier) in enumerate([("my order is late", "Acme1"), ("@Acme2 my order is late", "Acme3")]):
        mention = str(len(rows) + 1)
        rows += [{"tweet_id": mention, "author_id": str(900 + number), "inbound": "True",
                  "created_at": (as_of - timedelta(hours=80)).isoformat(), "text": text,
                  "response_tweet_id": "", "in_response_to_tweet_id": ""},
                 {"tweet_id": str(len(rows) + 2), "author_id": replier, "inbound": "False",
                  "created_at": (as_of + timedelta(hours=10)).isoformat(), "text": "@x Sorry for the wait",
                  "response_tweet_id": "", "in_response_to_tweet_id": mention}]
    earlier = [r for r in rows if datetime.fromisoformat(r["created_at"]).replace(tzinfo=None) <= as_of]
    with writer(tmp_path / "all.duckdb") as store:
        import_twcs(store, write_csv(tmp_path / "all.csv", rows))
        from_all = features_snapshot(store, as_of)
        # threads still growing after as_of, whose stored depth and customers are the whole thread's
        (growing,) = store.con.execute(
            "select count(distinct root_id) from fact_thread_posts where created_at <= ? and thread_last_at > ?",
            [as_of, as_of]).fetchone()
    with writer(tmp_path / "earlier.duckdb") as store:
        import_twcs(store, write_csv(tmp_path / "earlier.csv", earlier))
        from_earlier = features_snapshot(store, as_of)
    assert len(earlier) < len(rows) and growing > 0
    assert from_all.equals(from_earlier)


def test_a_load_run_leaves_the_facts_current_without_a_build(tmp_path):
    from pipeline.config import Source
    from pipeline.jobs import ingest_source

    db = tmp_path / "run.duckdb"
    with writer(db):
        pass
    result = ingest_source(str(db), Source(kind="twcs", path=write_csv(tmp_path / "day.csv", conversations(count=50))))
    assert result.status == "ok"
    with Store(db, read_only=True) as store:   # a writer would refresh the facts itself
        covered = store.con.execute("select loaded_through from fact_state").fetchone()[0]
        assert covered == store.con.execute("select max(loaded_at) from posts").fetchone()[0]
        assert store.count("posts") == store.con.execute("select count(*) from fact_thread_posts").fetchone()[0] > 0
