"""pipeline.sync / `maturity sync` / jobs.sync_live: platforms without credentials are skipped with
one line, backfills leave saved cursors alone, and the nightly job runs the same code."""
from __future__ import annotations

from datetime import datetime

import pytest
from typer.testing import CliRunner

from connector_helpers import FakeClock
from fake_api import BASE_TIME, FakeAPI
from pipeline.config import load_config
from pipeline.store import Store
from pipeline.sync import sync


@pytest.fixture
def api():
    with FakeAPI(page_size=3) as server:
        yield server


def write_config(tmp_path, api: FakeAPI):
    path = tmp_path / "orgs.toml"
    path.write_text(f'''
[[source]]
kind = "x"
[[source]]
kind = "reddit"
[[source]]
kind = "mastodon"

[[org]]
id = "acme"
accounts = [
  {{ platform = "x", handle = "acme" }},
  {{ platform = "reddit", handle = "u/acme" }},
  {{ platform = "mastodon", handle = "brand", instance = "{api.url}" }},
]
''', encoding="utf-8")
    return path


def test_sync_skips_platforms_without_credentials_and_syncs_the_rest(api, store, tmp_path):
    statuses = set(api.add_statuses(5, "brand"))
    config = load_config(write_config(tmp_path, api))
    summary = sync(store, config, clock=FakeClock(), env={}, dotenv_path=None)
    assert summary.skipped == {"x": "no credentials (set MATURITY_X_BEARER_TOKEN)",
                               "reddit": "no credentials (set MATURITY_REDDIT_CLIENT_ID, "
                                         "MATURITY_REDDIT_CLIENT_SECRET)"}
    assert [a.account for a in summary.accounts] == ["brand"] and summary.status == "ok"
    assert set(store.df("select post_id from posts")["post_id"]) == statuses
    assert "x: skipped - no credentials (set MATURITY_X_BEARER_TOKEN)" in summary.lines()
    run = store.df("select kind, status, rows_loaded from ingest_runs")
    assert run.to_dict("records") == [{"kind": "mastodon", "status": "ok", "rows_loaded": 5}]


def test_backfill_window_leaves_cursors_alone(api, store, tmp_path):
    ids = api.add_statuses(10, "brand")           # one a minute from BASE_TIME
    config = load_config(write_config(tmp_path, api))
    sync(store, config, platform="mastodon", clock=FakeClock(), env={}, dotenv_path=None)
    before = store.df("select * from sync_state order by all")
    store.con.execute("delete from posts")
    since = BASE_TIME.replace(tzinfo=None).replace(minute=2)
    until = BASE_TIME.replace(tzinfo=None).replace(minute=6)
    summary = sync(store, config, platform="mastodon", since=since, until=until, clock=FakeClock(),
                   env={}, dotenv_path=None)
    assert summary.status == "ok"
    assert sorted(store.df("select post_id from posts")["post_id"], key=int) == ids[2:6]
    assert store.df("select * from sync_state order by all").equals(before)


def test_unknown_platform_or_org_is_a_clear_error(api, store, tmp_path):
    config = load_config(write_config(tmp_path, api))
    with pytest.raises(ValueError, match="unknown platform 'myspace'"):
        sync(store, config, platform="myspace")
    with pytest.raises(ValueError, match="unknown organisation 'nope'"):
        sync(store, config, org="nope")


def test_cli_sync_and_nightly_job(api, tmp_path, monkeypatch):
    from pipeline import jobs
    from pipeline.cli import app

    api.add_statuses(4, "brand")
    api.add_mentions(2, "dave")
    config_path = write_config(tmp_path, api)
    for name in ("MATURITY_X_BEARER_TOKEN", "MATURITY_REDDIT_CLIENT_ID", "MATURITY_REDDIT_CLIENT_SECRET",
                 "MATURITY_MASTODON_ACCESS_TOKEN", "PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)                     # no stray .env
    db = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(app, ["sync", "--config", str(config_path), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "x: skipped - no credentials (set MATURITY_X_BEARER_TOKEN)" in result.output
    assert "mastodon:brand: ok, 4 posts" in result.output   # mentions need a token here: search is tried
    reads = "select read_from, read_through from timeline_reads where handle_key = 'brand'"
    with Store(db) as store:
        (first_from, first_through), = store.con.execute(reads).fetchall()
    live = jobs.sync_live(str(db), load_config(config_path))  # the nightly task's function
    assert live["status"] == "ok" and live["posts"] == 0 and live["skipped"]["x"].startswith("no credentials")
    with Store(db) as store:   # the nightly's incremental read extends the period the first read began
        (read_from, read_through), = store.con.execute(reads).fetchall()
    assert read_from == first_from and read_through > first_through


def test_cli_sync_exits_1_when_an_account_fails_and_still_syncs_the_others(api, tmp_path, monkeypatch):
    from pipeline.cli import app

    api.add_statuses(3, "brand")
    config_path = write_config(tmp_path, api)
    config_path.write_text(config_path.read_text(encoding="utf-8") + f'''
[[org]]
id = "gone"
accounts = [{{ platform = "mastodon", handle = "ghost", instance = "{api.url}" }}]
''', encoding="utf-8")
    monkeypatch.delenv("MATURITY_MASTODON_ACCESS_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sync", "--config", str(config_path), "--db", str(tmp_path / "s.duckdb"),
                                      "--platform", "mastodon"])
    assert result.exit_code == 1, result.output
    assert "mastodon account ghost" in result.output and "404" in result.output
    assert "mastodon:brand: ok, 3 posts" in result.output
