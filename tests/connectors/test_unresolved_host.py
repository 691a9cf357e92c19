"""Offline, or with a mistyped instance, a host name that does not resolve fails the run's accounts on
that host at once: no retries with backoff per account (that took ~30 s each), and accounts on other
hosts are still tried. `.invalid` never resolves (RFC 2606), so no network is needed."""
from __future__ import annotations

import socket
import time

import requests

from connector_helpers import FakeClock, account, creds, sync_from_store
from connectors.mastodon import MastodonConnector
from fake_api import FakeAPI

UNRESOLVABLE = "https://mastodon.example.invalid"


def test_a_failed_name_lookup_is_recognised_through_the_http_libraries_wrapping():
    from connectors.base import unresolved_host

    try:
        requests.get(f"{UNRESOLVABLE}/api/v1/instance", timeout=5)
    except requests.ConnectionError as exc:
        assert unresolved_host(exc) is not None
    assert unresolved_host(socket.gaierror(-2, "Name or service not known")) is not None
    assert unresolved_host(requests.ConnectionError("connection reset by peer")) is None


def test_unresolvable_host_fails_fast_without_retries_and_other_hosts_still_sync(store):
    clock = FakeClock()
    offline = [account("mastodon", name, instance=UNRESOLVABLE) for name in ("brand", "brandhelp", "brandnews")]
    with FakeAPI(page_size=3) as api:
        api.add_statuses(2, "brand")
        reachable = account("mastodon", "brand", instance=api.url)
        connector = MastodonConnector(creds("mastodon", MATURITY_MASTODON_ACCESS_TOKEN="secret-masto-token-123",
                                            MATURITY_MASTODON_INSTANCE=api.url), [*offline, reachable], clock=clock)
        started = time.perf_counter()
        results = [sync_from_store(connector, store, a, source="mastodon", run_id=None) for a in offline]
        elapsed = time.perf_counter() - started
        ok = sync_from_store(connector, store, reachable, source="mastodon", run_id=None)
    assert clock.sleeps == []                                   # no backoff: retrying cannot help
    assert elapsed < 10
    assert [r.status for r in results] == ["failed"] * 3        # failed, not fatal: resumes next run
    assert "cannot resolve" in results[0].message and "mastodon.example.invalid" in results[0].message
    assert all(r.message.startswith("not tried:") for r in results[1:])
    assert ok.status == "ok" and ok.posts > 0
