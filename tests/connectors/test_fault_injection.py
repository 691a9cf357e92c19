"""Fault injection against a loopback API served by tests/connectors/fake_api.py.

The real client libraries talk HTTP to 127.0.0.1: tweepy's Client (its fixed https://api.twitter.com
host rewritten at the transport adapter) and Mastodon.py (api_base_url = the local server). Every
scenario runs the real base-class loop, retries and cursor code; the clock is fake (no real sleeps).
After recovery and a re-run: zero posts lost, zero duplicated, cursors exactly at the newest post.
"""
from __future__ import annotations

import pytest
import tweepy

from connector_helpers import FakeClock, account, creds, sync_from_store
from connectors.base import timeout_adapter
from connectors.mastodon import MastodonConnector
from connectors.x import XConnector
from fake_api import FakeAPI

BRAND_X = account("twitter", "brand")
BRAND_M = account("mastodon", "brand", instance="")   # instance filled in per test


@pytest.fixture
def api():
    with FakeAPI(page_size=3) as server:
        yield server


def x_connector(api: FakeAPI, clock: FakeClock, accounts=(BRAND_X,), timeout: float = 5.0) -> XConnector:
    client = tweepy.Client(bearer_token="secret-bearer-value-XYZ", wait_on_rate_limit=False)
    client.session.mount("https://", timeout_adapter(timeout, rewrite=("https://api.twitter.com", api.url)))
    return XConnector(creds("x", MATURITY_X_BEARER_TOKEN="secret-bearer-value-XYZ"), list(accounts),
                      client=client, clock=clock)


def mastodon_connector(api: FakeAPI, clock: FakeClock, accounts=None) -> tuple[MastodonConnector, object]:
    brand = account("mastodon", "brand", instance=api.url)
    c = MastodonConnector(creds("mastodon", MATURITY_MASTODON_ACCESS_TOKEN="secret-masto-token-123",
                                MATURITY_MASTODON_INSTANCE=api.url), accounts or [brand], clock=clock)
    return c, brand


def x_data(api: FakeAPI) -> set[str]:
    ids = api.add_tweets("timeline", 7, "100", "brand")
    ids += api.add_tweets("mentions", 5, "200", "alice", start=20)
    ids += api.add_tweets("replies", 4, "300", "bob", start=40, reply_to=ids[0])
    return set(ids)


def stored_ids(store, platform: str) -> list[str]:
    return list(store.df("select post_id from posts where platform = ?", [platform])["post_id"])


def sync_state(store) -> dict:
    return {(a, n): v for a, n, v in store.con.execute(
        "select account, cursor_name, cursor_value from sync_state").fetchall()}


def assert_complete_x(store, api, expected: set[str]) -> None:
    ids = stored_ids(store, "twitter")
    assert len(ids) == len(set(ids)) and set(ids) == expected      # nothing lost, nothing twice
    state = sync_state(store)
    for stream in ("timeline", "mentions", "replies"):
        newest = max(int(t["id"]) for t in api.tweets[stream])
        assert state[("brand", f"{stream}.since_id")] == str(newest)
        assert state.get(("brand", f"{stream}.page_token")) is None
        assert state.get(("brand", f"{stream}.pending")) is None


def test_clean_run_then_rerun_changes_nothing(api, store, clock):
    expected = x_data(api)
    result = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert result.status == "ok" and result.posts == len(expected)    # every post fetched once
    assert_complete_x(store, api, expected)
    before_posts = store.df("select * from posts order by post_id")
    before_state = store.df("select * from sync_state order by all")
    again = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert again.posts == 0 and again.status == "ok"
    assert store.df("select * from posts order by post_id").equals(before_posts)
    assert store.df("select * from sync_state order by all").equals(before_state)
    # only new posts come in afterwards, and the cursor follows them
    new = set(api.add_tweets("timeline", 2, "100", "brand", start=50))
    third = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert third.posts == 2
    assert_complete_x(store, api, expected | new)


def test_429_sleeps_until_reset_header(api, store, clock):
    expected = x_data(api)
    reset = int(clock.now()) + 120
    api.fault("x.timeline", ("headers", {}), ("status", 429, {"x-rate-limit-reset": str(reset),
                                                             "x-rate-limit-remaining": "0"}))
    result = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert result.status == "ok"
    assert clock.sleeps[0] == pytest.approx(121, abs=1)   # until reset (+1 s), not a tight loop
    assert_complete_x(store, api, expected)


def test_exhausted_window_waits_before_the_next_request(api, store, clock):
    expected = x_data(api)
    reset = int(clock.now()) + 300
    api.fault("x.timeline", ("headers", {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}))
    sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert clock.sleeps and clock.sleeps[0] == pytest.approx(301, abs=1)
    assert api.count("x.timeline") == 3        # no request was refused: the wait came first
    assert_complete_x(store, api, expected)


@pytest.mark.parametrize("faults", [
    [("status", 500), ("status", 503)],
    [("reset",)],
    [("malformed",)],
    [("slow", 0.6)],
], ids=["5xx", "connection-reset", "malformed-json", "timeout"])
def test_retriable_faults_mid_pagination_lose_nothing(api, store, clock, faults):
    expected = x_data(api)
    # let the first page through, then fail the second page of each stream
    for route in ("x.timeline", "x.mentions"):
        api.fault(route, ("headers", {}), *faults)
    result = sync_from_store(x_connector(api, clock, timeout=0.3), store, BRAND_X, source="x", run_id=None)
    assert result.status == "ok", result.message
    assert len(clock.sleeps) == 2 * len(faults)
    assert clock.sleeps[:2] == ([2.0, 4.0] if len(faults) == 2 else [2.0, 2.0])   # exponential backoff
    assert_complete_x(store, api, expected)


def test_empty_page_with_next_token_continues(api, store, clock):
    expected = x_data(api)
    api.fault("x.timeline", ("empty_next",))
    result = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert result.status == "ok"
    assert_complete_x(store, api, expected)


def test_failure_halfway_resumes_from_last_committed_page(api, store, clock):
    expected = x_data(api)
    timeline = sorted((t["id"] for t in api.tweets["timeline"]), key=int, reverse=True)
    api.fault("x.timeline", ("headers", {}), *[("status", 503)] * 5)    # page 2 never succeeds
    first = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert first.status == "failed" and "twitter account brand" in first.message
    assert "gave up after 5 attempts" in first.message
    assert set(stored_ids(store, "twitter")) == set(timeline[:3])      # page 1 committed, kept
    state = sync_state(store)
    assert state[("brand", "timeline.page_token")] == "p3"             # where page 2 starts
    assert state[("brand", "timeline.pending")] == timeline[0]
    assert ("brand", "timeline.since_id") not in state                  # not advanced past a gap
    page1_requests = api.count("x.timeline")
    second = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert second.status == "ok"
    assert second.streams[0].posts == 4                                 # pages 2-3 only
    resumed = [path for route, path in api.requests if route == "x.timeline"][page1_requests]
    assert "pagination_token=p3" in resumed                            # not from the top again
    assert_complete_x(store, api, expected)


def test_page_cap_stops_and_resumes(api, store, clock):
    expected = x_data(api)
    capped = x_connector(api, clock)
    capped.page_cap = 1
    result = sync_from_store(capped, store, BRAND_X, source="x", run_id=None)
    assert all(s.capped for s in result.streams) and result.status == "ok"
    for _ in range(3):
        sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert_complete_x(store, api, expected)


def test_fatal_errors_skip_only_that_account(api, store, clock):
    expected = x_data(api)
    ghost, suspended = account("twitter", "ghost"), account("twitter", "suspended")
    connector = x_connector(api, clock, accounts=(BRAND_X, ghost, suspended))
    results = [sync_from_store(connector, store, a, source="x", run_id=None) for a in (ghost, suspended, BRAND_X)]
    assert [r.status for r in results] == ["fatal", "fatal", "ok"]
    assert "twitter account ghost: unknown or suspended account" in results[0].message
    assert "twitter account suspended: access forbidden (403)" in results[1].message
    assert clock.sleeps == []                                           # fatal: no retries
    assert_complete_x(store, api, expected)


def test_secret_never_in_errors_logs_or_database(api, store, clock, caplog):
    import logging

    x_data(api)
    api.fault("x.user", ("status", 401, {}))
    caplog.set_level(logging.DEBUG)
    result = sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert result.status == "fatal" and "credentials rejected (401)" in result.message
    sync_from_store(x_connector(api, clock), store, BRAND_X, source="x", run_id=None)
    assert "secret-bearer-value-XYZ" not in caplog.text           # tweepy logs headers at DEBUG
    assert "Bearer ***" in caplog.text
    assert "secret-bearer-value-XYZ" not in result.message
    dump = store.con.execute("select string_agg(cast(t as varchar), '') from "
                             "(select * from sync_state) t").fetchone()[0]
    assert "secret-bearer-value-XYZ" not in (dump or "")


# -- Mastodon: ascending min_id pages through Mastodon.py ------------------------------------------
def assert_complete_mastodon(store, api, expected: set[str]) -> None:
    ids = stored_ids(store, "mastodon")
    assert len(ids) == len(set(ids)) and set(ids) == expected
    state = sync_state(store)
    assert state[("brand", "statuses.min_id")] == max((s["id"] for s in api.statuses), key=int)
    assert state[("brand", "mentions.min_id")] == max((n["id"] for n in api.notifications), key=int)


def test_mastodon_faults_and_halfway_failure(api, store, clock):
    statuses = set(api.add_statuses(8, "brand"))
    mentions = set(api.add_mentions(5, "carol"))
    api.fault("m.statuses", ("status", 429, {"X-RateLimit-Reset": "2099-01-01T00:00:00.000Z"}))
    api.fault("m.notifications", ("status", 500), ("malformed",))
    connector, brand = mastodon_connector(api, clock)
    result = sync_from_store(connector, store, brand, source="mastodon", run_id=None)
    assert result.status == "ok", result.message
    assert clock.sleeps[0] == 15 * 60                     # reset far away: capped, logged sleep
    assert_complete_mastodon(store, api, statuses | mentions)
    org = store.df("select author, is_org_author, text from posts where post_id in "
                   f"({','.join(repr(s) for s in statuses)})")
    assert org["is_org_author"].all() and set(org["author"]) == {"brand"}
    assert org["text"].str.startswith("status ").all()

    # a failure halfway through a later sequence: the cursor stays at the last committed page
    new = set(api.add_statuses(7, "brand", start=100))
    api.fault("m.statuses", ("headers", {}), *[("status", 502)] * 5)
    connector, brand = mastodon_connector(api, clock)
    failed = sync_from_store(connector, store, brand, source="mastodon", run_id=None)
    assert failed.status == "failed" and "mastodon account brand" in failed.message
    first_page = sorted(new, key=int)[:3]
    assert sync_state(store)[("brand", "statuses.min_id")] == first_page[-1]
    assert set(stored_ids(store, "mastodon")) == statuses | mentions | set(first_page)
    again = sync_from_store(mastodon_connector(api, clock)[0], store, brand, source="mastodon", run_id=None)
    assert again.status == "ok" and again.posts == 4
    assert_complete_mastodon(store, api, statuses | mentions | new)
    rerun = sync_from_store(mastodon_connector(api, clock)[0], store, brand, source="mastodon", run_id=None)
    assert rerun.posts == 0


def test_mastodon_unknown_account_is_fatal(api, store, clock):
    ghost = account("mastodon", "ghost", instance=api.url)
    connector, _ = mastodon_connector(api, clock, accounts=[ghost])
    result = sync_from_store(connector, store, ghost, source="mastodon", run_id=None)
    assert result.status == "fatal" and "mastodon account ghost" in result.message and "404" in result.message


def test_a_malformed_status_is_set_aside_and_the_account_syncs_on(api, store, clock):
    good = set(api.add_statuses(5, "brand"))
    broken = dict(api.statuses[2])
    broken.pop("account")                      # a status the normaliser cannot attribute
    broken["id"] = str(int(broken["id"]) + 1)
    api.statuses.append(broken)
    connector, brand = mastodon_connector(api, clock)
    result = sync_from_store(connector, store, brand, source="mastodon", run_id=None)
    assert result.status == "ok", result.message
    assert set(stored_ids(store, "mastodon")) == good
    assert sum(s.rejected for s in result.streams) == 1
    (source, reason), = store.con.execute("select source, reason from rejected_rows").fetchall()
    assert source == "mastodon" and reason.startswith(f"mastodon record {broken['id']}: ")
    assert sync_state(store)[("brand", "statuses.min_id")] == max(good, key=int)
    rerun = sync_from_store(mastodon_connector(api, clock)[0], store, brand, source="mastodon", run_id=None)
    assert rerun.status == "ok" and rerun.posts == 0
