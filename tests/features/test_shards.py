"""A feature build sharded by organisation (features/shards.py) stores exactly the rows of the build over
the whole store: organisation and account scope, windows 0/30/90, the latest and a past as_of, with
organisations sharing threads and mentions, an account without an organisation, and any shard count."""
from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from connectors.twcs import import_twcs
from features.runner import FeatureError, build_features, store_feature_rows
from features.shards import SHARD_TABLES, build_shard, export_shards
from pipeline.store import writer
from tests.features.test_facts import START, conversations, write_csv

WINDOWS = (0, 30, 90)
PAST = START + timedelta(days=40)


def write_orgs_store(path):
    """Five brands in three organisations and one account without any; a mention replied to (after the
    past as_of) by an organisation other than the one its text names, so that as_of falls back to it."""
    rows = conversations()
    mention = str(len(rows) + 1)
    rows += [{"tweet_id": mention, "author_id": "901", "inbound": "True",
              "created_at": (PAST - timedelta(hours=80)).isoformat(), "text": "@Acme2 my order is late",
              "response_tweet_id": "", "in_response_to_tweet_id": ""},
             {"tweet_id": str(len(rows) + 2), "author_id": "Acme3", "inbound": "False",
              "created_at": (PAST + timedelta(hours=10)).isoformat(), "text": "@x Sorry for the wait",
              "response_tweet_id": "", "in_response_to_tweet_id": mention}]
    with writer(path) as store:
        import_twcs(store, write_csv(path.with_suffix(".csv"), rows))
        with store.transaction() as con:
            con.execute("insert into organisations (org_id, name, timezone, business_start, business_end) values "
                        "('north', 'North', 'Europe/Berlin', time '08:00', time '16:00'), "
                        "('south', 'South', 'America/New_York', time '22:00', time '06:00'), "
                        "('east', 'East', 'Asia/Tokyo', time '09:00', time '17:00')")
            con.execute("update accounts set org_id = case handle_key when 'acme0' then 'north' "
                        "when 'acme1' then 'north' when 'acme2' then 'south' when 'acme3' then 'east' end, "
                        "role = case handle_key when 'acme1' then 'support' end")
        assert store.df("select handle_key from accounts where org_id is null")["handle_key"].tolist() == ["acme4"]
    return path


@pytest.fixture
def orgs_store(tmp_path):
    with writer(write_orgs_store(tmp_path / "orgs.duckdb")) as store:
        yield store


def stored(store):
    return store.df("select * exclude (computed_at) from features order by all")


def sharded_build(store, folder, shards, as_of):
    rows = [build_shard(duckdb.connect(), shard, as_of, WINDOWS) for shard in export_shards(store.con, folder, shards)]
    store_feature_rows(store.con, as_of, WINDOWS, rows)
    return rows


@pytest.mark.parametrize("shards", [1, 2, 3, 7])
def test_a_sharded_build_stores_the_rows_of_the_single_build(orgs_store, tmp_path, shards):
    latest = orgs_store.con.execute("select max(created_at) from posts").fetchone()[0]
    for as_of in (latest, PAST):
        build_features(orgs_store.con, as_of, windows=WINDOWS)
    single = stored(orgs_store)
    assert set(single["scope"]) == {"org", "account"} and set(single["window_days"]) == set(WINDOWS)
    assert "" in set(single.query("scope == 'account'")["org_id"])   # acme4's rows
    for as_of in (latest, PAST):
        rows = sharded_build(orgs_store, tmp_path / f"shards-{as_of:%Y%m%d}", shards, as_of)
        if shards > 1:   # the organisations really are spread over several shards
            assert sum(len(r) > 0 for r in rows) > 1
    assert stored(orgs_store).equals(single)


def test_a_shard_holds_the_threads_and_fallback_mentions_of_its_organisations(orgs_store, tmp_path):
    folders = export_shards(orgs_store.con, tmp_path / "shards", 7)
    shard_of = {}
    for folder in folders:
        for (org,) in duckdb.sql(f"select distinct coalesce(org_id, '') from '{folder}/accounts.parquet'").fetchall():
            shard_of[org] = folder
    assert set(shard_of) == {"north", "south", "east", ""}
    # mentions whose text names Acme2 (south) and which Acme3 (east) answered first are in both shards
    crossed = "where text_account = 'acme2' and account = 'acme3'"
    (expected,) = orgs_store.con.execute(f"select count(*) from fact_mentions {crossed}").fetchone()
    assert expected > 0
    for org in ("south", "east"):
        assert duckdb.sql(f"select count(*) from '{shard_of[org]}/fact_mentions.parquet' {crossed}").fetchone()[0] == expected
    # a shard has every post of the threads its mentions are in, other organisations' replies included
    north = shard_of["north"]
    (missing,) = duckdb.sql(
        f"select count(*) from (select distinct root_id from '{north}/fact_mentions.parquet' where root_id is not null) r "
        f"where (select count(*) from '{north}/fact_thread_posts.parquet' t where t.root_id = r.root_id) = 0").fetchone()
    assert missing == 0
    assert set(duckdb.sql(f"select distinct author_key from '{north}/fact_thread_posts.parquet' where by_org")
               .df()["author_key"]) > {"acme0", "acme1"}


def test_export_refuses_a_used_folder_and_a_shard_count_below_one(orgs_store, tmp_path):
    export_shards(orgs_store.con, tmp_path / "shards", 2)
    with pytest.raises(FeatureError, match="already exists"):
        export_shards(orgs_store.con, tmp_path / "shards", 2)
    with pytest.raises(FeatureError, match="at least 1"):
        export_shards(orgs_store.con, tmp_path / "other", 0)
    (tmp_path / "shards" / "shard-001" / "fact_mentions.parquet").unlink()
    with pytest.raises(FeatureError, match="no fact_mentions.parquet"):
        build_shard(duckdb.connect(), tmp_path / "shards" / "shard-001", PAST, WINDOWS)
    assert len(SHARD_TABLES) == len(list((tmp_path / "shards" / "shard-000").iterdir()))
