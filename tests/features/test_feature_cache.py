"""Feature builds cached by their inputs (features/cache.py): unchanged inputs are skipped; any change
to posts, config, feature SQL or the stored features themselves rebuilds."""
from __future__ import annotations

import pytest

from pipeline.training.synthetic import END, import_synthetic
from features import runner
from features.cache import cached_build
from pipeline.store import Store, writer

WINDOWS = (0, 90)


@pytest.fixture
def synthetic_store(tmp_path):
    with writer(tmp_path / "cache.duckdb") as store:
        import_synthetic(store, seed=5, orgs=2)
        yield store


def snapshot(store):
    return store.df("select * exclude (computed_at) from features order by all")


def test_unchanged_inputs_are_served_from_the_cache(synthetic_store):
    first = cached_build(synthetic_store.con, END, WINDOWS)
    assert (first.built, first.cached) == ([0, 90], [])
    stored = snapshot(synthetic_store)
    stamps = synthetic_store.df("select distinct computed_at from features")
    again = cached_build(synthetic_store.con, END, WINDOWS)
    assert (again.built, again.cached) == ([], [0, 90])
    assert synthetic_store.df("select distinct computed_at from features").equals(stamps)  # nothing rewritten
    assert snapshot(synthetic_store).equals(stored)
    assert synthetic_store.count("features") > 0


def test_a_changed_post_of_one_organisation_rebuilds(synthetic_store):
    cached_build(synthetic_store.con, END, WINDOWS)
    # one organisation's post now carries a link: its inputs changed
    synthetic_store.con.execute(
        "update posts set text = coalesce(text, '') || ' https://t.co/x' "
        "where post_id = (select min(post_id) from posts where is_org_author and created_at <= ?)", [END])
    assert cached_build(synthetic_store.con, END, WINDOWS).built == [0, 90]
    # posts after as_of are not inputs of this as_of
    synthetic_store.con.execute("update posts set text = 'later' where created_at > ?", [END])
    synthetic_store.con.execute(
        "insert into posts select * replace ('late' as post_id, ?::timestamp + interval 1 day as created_at) "
        "from posts limit 1", [END])
    assert cached_build(synthetic_store.con, END, WINDOWS).cached == [0, 90]


def test_config_sql_and_deleted_features_each_invalidate(synthetic_store, monkeypatch):
    cached_build(synthetic_store.con, END, WINDOWS)
    synthetic_store.con.execute("update organisations set timezone = 'Asia/Tokyo' "
                                "where org_id = (select min(org_id) from organisations)")
    assert cached_build(synthetic_store.con, END, (0,)).built == [0]
    assert cached_build(synthetic_store.con, END, (0,)).cached == [0]

    groups = runner.feature_groups()
    edited = [g if g.is_staging else type(g)(g.name, g.filename, g.sql + "\n-- edited", g.features)
              for g in groups]
    monkeypatch.setattr(runner, "feature_groups", lambda: edited)
    assert cached_build(synthetic_store.con, END, (0,)).built == [0]
    monkeypatch.setattr(runner, "feature_groups", lambda: groups)

    assert cached_build(synthetic_store.con, END, (0,)).built == [0]   # back to the original SQL: rebuilt
    synthetic_store.con.execute("delete from features where window_days = 0 and scope = 'org'")
    assert cached_build(synthetic_store.con, END, (0,)).built == [0]
    assert synthetic_store.con.execute(
        "select count(*) from features where window_days = 0 and scope = 'org'").fetchone()[0] > 0


def test_a_build_outside_the_cache_voids_its_record(synthetic_store):
    cached_build(synthetic_store.con, END, (0,))
    runner.build_features(synthetic_store.con, END, windows=(0,))   # e.g. `maturity features`
    assert synthetic_store.count("features") > 0
    assert cached_build(synthetic_store.con, END, (0,)).built == [0]


def test_a_replaced_database_starts_cold(tmp_path):
    path = tmp_path / "replaced.duckdb"
    with writer(path) as store:
        import_synthetic(store, seed=5, orgs=2)
        assert cached_build(store.con, END, (0,)).built == [0]
    for leftover in tmp_path.glob("replaced.duckdb*"):
        leftover.unlink()
    with writer(path) as store:
        import_synthetic(store, seed=6, orgs=2)
        assert cached_build(store.con, END, (0,)).built == [0]
