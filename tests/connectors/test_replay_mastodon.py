"""Mastodon connector replayed through Mastodon.py on the cassettes Mastodon.py's own suite recorded
against a local test instance (http://localhost:3000)."""
from __future__ import annotations

import pytest
import vcr

from connector_helpers import FakeClock, account, creds, vcr_payloads
from connectors.base import FatalError
from connectors.mastodon import MastodonConnector, NotificationMentionsStream, html_to_text
from connectors.records import to_utc_naive
from connectors.base import parse_time

replay = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path"])
ORG = account("mastodon", "mastodonpy_test", instance="http://localhost:3000")


def connector(**kw) -> MastodonConnector:
    return MastodonConnector(creds("mastodon", MATURITY_MASTODON_ACCESS_TOKEN="__MASTODON_PY_TEST_ACCESS_TOKEN",
                                   MATURITY_MASTODON_INSTANCE="http://localhost:3000"),
                             [ORG], clock=FakeClock(), **kw)


def test_account_lookup_resolves_id(cassettes):
    m = connector()
    tape = vcr.VCR(record_mode="none", match_on=["method", "path", "query"])
    with tape.use_cassette(str(cassettes / "mastodon" / "test_account_lookup.yaml")):
        ctx = m.resolve(ORG)
    assert ctx["id"] == "117020565966271181" and ctx["has_token"]


def test_unknown_account_is_fatal_naming_platform_and_account(cassettes):
    m = connector()
    ghost = account("mastodon", "kljadklajsdkljlkjlkjlkjasdasd", instance="http://localhost:3000")
    # the recorded 404 lookup is the second interaction; match on the query to pick it
    tape = vcr.VCR(record_mode="none", match_on=["method", "path", "query"])
    with tape.use_cassette(str(cassettes / "mastodon" / "test_account_lookup.yaml")):
        with pytest.raises(FatalError) as caught:
            m.call(ghost, "resolve account", lambda: m.resolve(ghost))
    assert "mastodon account kljadklajsdkljlkjlkjlkjasdasd" in str(caught.value)
    assert caught.value.status == 404


def test_mentions_from_notifications_match_payload(cassettes, store):
    m = connector()
    cassette = cassettes / "mastodon" / "test_notifications_mentions_only.yaml"
    notes = next(body for method, uri, body in vcr_payloads(cassette)
                 if method == "GET" and uri.endswith("/notifications?types%5B%5D=mention"))
    api = m.client("http://localhost:3000")
    ctx = {"id": "117020565966271181", "base_url": "http://localhost:3000", "api": api, "has_token": True}
    m.page_cap = 1   # the recording holds one page; the cursor is the notification id
    with replay.use_cassette(str(cassette)):
        result = m.sync_stream(store, NotificationMentionsStream(m, ORG, ctx), cursors={})
    statuses = [n["status"] for n in notes]
    rows = store.df("select post_id, author, is_org_author, created_at, in_reply_to, conversation_id "
                    "from posts order by post_id").to_dict("records")
    assert [r["post_id"] for r in rows] == sorted(s["id"] for s in statuses)
    for row, status in zip(rows, sorted(statuses, key=lambda s: s["id"])):
        assert row["created_at"] == to_utc_naive(parse_time(status["created_at"]))
        assert row["in_reply_to"] == status["in_reply_to_id"]
        assert not row["is_org_author"]          # admin@localhost:3000 mentions the org account
    assert store.get_cursor("mastodon", "mastodonpy_test", "mentions.min_id") == str(max(int(n["id"]) for n in notes))
    assert result.pages == 1


def test_status_context_and_html_text(cassettes):
    m = connector()
    api = m.client("http://localhost:3000")
    with replay.use_cassette(str(cassettes / "mastodon" / "test_status_context.yaml")):
        posts = m.context_posts(api, "117020585487094447", "http://localhost:3000")
    assert posts == []   # the recorded status had no ancestors and no replies
    assert html_to_text('<p><span class="h-card"><a href="x">@<span>mastodonpy_test</span></a></span> hello!</p>') \
        == "@mastodonpy_test hello!"
