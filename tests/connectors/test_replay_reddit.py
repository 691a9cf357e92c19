"""Reddit connector replayed through praw/prawcore on the betamax cassettes praw's own integration
suite recorded, with betamax wrapped around praw's HTTP session as praw's tests do."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from betamax import Betamax

from connector_helpers import FakeClock, account, betamax_payloads, creds, register_praw_cassette_format
from connectors.reddit import (praw_http_session, CommentsStream, RedditConnector, RepliesStream, SubmissionsStream,
                               SubredditPostsStream)

SPEZ = account("reddit", "u/spez")


def connector(org, **kw) -> RedditConnector:
    return RedditConnector(creds("reddit", MATURITY_REDDIT_CLIENT_ID="dummy-client-id",
                                 MATURITY_REDDIT_CLIENT_SECRET="dummy-client-secret",
                                 MATURITY_REDDIT_USERNAME=kw.pop("username", "")),
                           org, clock=FakeClock(), page_cap=1, **kw)


def replay(reddit_connector, cassettes, name):
    recorder = Betamax(praw_http_session(reddit_connector.reddit),
                       cassette_library_dir=str(cassettes / "praw"))
    return recorder.use_cassette(name, record="none", match_requests_on=["method", "uri"],
                                 serialize_with=register_praw_cassette_format())


def listing_children(cassettes, name):
    for method, uri, body in betamax_payloads(cassettes / "praw" / f"{name}.json"):
        if method == "GET":
            return body["data"]
    raise AssertionError(name)


@pytest.mark.parametrize("stream_cls,cassette", [
    (SubmissionsStream, "TestRedditorListings.test_submissions__new"),
    (CommentsStream, "TestRedditorListings.test_comments__new"),
])
def test_user_listings_match_payload(cassettes, store, stream_cls, cassette):
    r = connector([SPEZ])
    payload = listing_children(cassettes, cassette)
    with replay(r, cassettes, cassette):
        result = r.sync_stream(store, stream_cls(r, SPEZ, {"kind": "user", "name": "spez"}), cursors={})
    assert result.pages == 1
    rows = store.df("select * from posts").set_index("post_id")
    children = [c["data"] for c in payload["children"]]
    assert set(rows.index) == {c["name"] for c in children} and len(rows) == len(children)
    for child in children:
        row = rows.loc[child["name"]]
        assert row["created_at"] == datetime.fromtimestamp(child["created_utc"], tz=timezone.utc).replace(tzinfo=None)
        if stream_cls is CommentsStream:
            assert row["in_reply_to"] == child["parent_id"] and row["conversation_id"] == child["link_id"]
        else:
            assert row["in_reply_to"] is None and row["conversation_id"] == child["name"]
        assert (row["author"] == "spez") == (child["author"] == "spez")
        assert row["is_org_author"] == (child["author"].lower() == "spez")
    # the listing continues: its `after` token waits for the next run, the newest id is pending
    assert store.get_cursor("reddit", SPEZ.key, f"{stream_cls.name}.page_token") == payload["after"]
    newest = max(children, key=lambda c: int(c["id"], 36))
    assert store.get_cursor("reddit", SPEZ.key, f"{stream_cls.name}.pending") == str(int(newest["id"], 36))


def test_subreddit_new_posts(cassettes, store):
    brand_sub = account("reddit", "r/askreddit")
    r = connector([brand_sub])
    payload = listing_children(cassettes, "TestSubredditListings.test_new")
    with replay(r, cassettes, "TestSubredditListings.test_new"):
        r.sync_stream(store, SubredditPostsStream(r, brand_sub, {"kind": "subreddit", "name": "askreddit"}), cursors={})
    ids = {c["data"]["name"] for c in payload["children"]}
    assert set(store.df("select post_id from posts")["post_id"]) == ids
    assert not store.df("select is_org_author from posts")["is_org_author"].any()  # posts by users


def test_inbox_replies_when_logged_in(cassettes, store):
    brand = account("reddit", "u/pythonprawtest")
    r = connector([brand], username="pythonprawtest")
    r.credentials.values  # noqa: B018 - logged-in variant adds the replies stream
    assert [s.name for s in r.streams(brand, {"kind": "user", "name": "pythonprawtest"})] == \
        ["submissions", "comments", "replies", "mentions"]
    payload = listing_children(cassettes, "TestComment.test_parent__from_replies")
    with replay(r, cassettes, "TestComment.test_parent__from_replies"):
        r.sync_stream(store, RepliesStream(r, brand, {"kind": "user", "name": "pythonprawtest"}), cursors={})
    rows = store.df("select post_id, in_reply_to, author from posts").set_index("post_id")
    for child in (c["data"] for c in payload["children"]):
        assert rows.loc[child["name"], "in_reply_to"] == child["parent_id"]


def test_a_planted_praw_ini_cannot_redirect_credentials(tmp_path, monkeypatch):
    (tmp_path / "praw.ini").write_text("[DEFAULT]\noauth_url = https://attacker.example\n"
                                       "reddit_url = https://attacker.example\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    import praw.config
    monkeypatch.setattr(praw.config.Config, "CONFIG", None)      # praw caches the ini it read
    from connectors.reddit import RedditConnector
    r = RedditConnector(creds("reddit", MATURITY_REDDIT_CLIENT_ID="id", MATURITY_REDDIT_CLIENT_SECRET="s"), [SPEZ])
    assert r.reddit.config.oauth_url == "https://oauth.reddit.com"
    assert r.reddit.config.reddit_url == "https://www.reddit.com"
