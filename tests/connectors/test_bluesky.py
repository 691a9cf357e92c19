"""Bluesky connector: atproto's real Client against a loopback XRPC server whose answers are built
from atproto's own response models (no recorded Bluesky traffic exists)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from atproto import models
from atproto_client.models.utils import get_model_as_json

from connector_helpers import FakeClock, account, bsky_view as view, creds, sync_from_store
from connectors.bluesky import BlueskyConnector

DID = "did:plc:brand123"
BRAND = account("bluesky", "brand.bsky.social")


class XrpcServer:
    def __init__(self, feed_pages, threads):
        self.feed_pages, self.threads, self.requests = feed_pages, threads, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                q = {k: v[-1] for k, v in parse_qs(url.query).items()}
                outer.requests.append(self.path)
                method = url.path.rsplit("/", 1)[-1]
                if method == "app.bsky.actor.getProfile":
                    if q["actor"] == "ghost.bsky.social":
                        return self.send(400, json.dumps({"error": "InvalidRequest", "message": "Profile not found"}))
                    body = get_model_as_json(models.AppBskyActorDefs.ProfileViewDetailed(did=DID, handle=q["actor"]))
                elif method == "app.bsky.feed.getAuthorFeed":
                    body = get_model_as_json(outer.feed_pages[q.get("cursor", "")])
                elif method == "app.bsky.feed.getPostThread":
                    body = get_model_as_json(outer.threads[q["uri"]])
                else:
                    return self.send(404, json.dumps({"error": "MethodNotImplemented"}))
                self.send(200, body)

            def send(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def xrpc(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/xrpc"


@pytest.fixture
def xrpc():
    p1 = view("p1", "brand.bsky.social", DID, "2024-05-02T10:00:00.000Z", "Hello, how can we help?", replies=1)
    p0 = view("p0", "brand.bsky.social", DID, "2024-05-01T10:00:00.000Z", "Launch day")
    reply = view("r1", "cust.bsky.social", "did:plc:cust", "2024-05-02T10:05:00.000Z", "@brand my order?",
                 parent=p1.uri, root=p1.uri)
    repost = models.AppBskyFeedDefs.FeedViewPost(
        post=view("x9", "other.bsky.social", "did:plc:other", "2024-05-01T12:00:00.000Z", "not ours"),
        reason=models.AppBskyFeedDefs.ReasonRepost(by=models.AppBskyActorDefs.ProfileViewBasic(did=DID, handle="brand.bsky.social"),
                                                   indexed_at="2024-05-01T12:00:00.000Z"))
    pages = {"": models.AppBskyFeedGetAuthorFeed.Response(
                 feed=[models.AppBskyFeedDefs.FeedViewPost(post=p1), repost], cursor="c2"),
             "c2": models.AppBskyFeedGetAuthorFeed.Response(feed=[models.AppBskyFeedDefs.FeedViewPost(post=p0)],
                                                            cursor="c3"),
             "c3": models.AppBskyFeedGetAuthorFeed.Response(feed=[])}
    threads = {p1.uri: models.AppBskyFeedGetPostThread.Response(thread=models.AppBskyFeedDefs.ThreadViewPost(
        post=p1, replies=[models.AppBskyFeedDefs.ThreadViewPost(post=reply, replies=[])]))}
    server = XrpcServer(pages, threads)
    yield server, {"p1": p1, "p0": p0, "r1": reply}
    server.server.shutdown()


def test_feed_and_reply_threads(xrpc, store):
    server, posts = xrpc
    bsky = BlueskyConnector(creds("bluesky"), [BRAND], clock=FakeClock(), base_url=server.xrpc)
    result = sync_from_store(bsky, store, BRAND, source="bluesky", run_id=None)
    assert result.status == "ok", result.message
    rows = store.df("select post_id, author, is_org_author, created_at, in_reply_to, conversation_id from posts")
    rows = rows.set_index("post_id")
    assert set(rows.index) == {posts["p1"].uri, posts["p0"].uri, posts["r1"].uri}   # repost skipped
    assert rows.loc[posts["r1"].uri, "in_reply_to"] == posts["p1"].uri
    assert rows.loc[posts["r1"].uri, "conversation_id"] == posts["p1"].uri
    assert rows.loc[posts["p1"].uri, "is_org_author"] and not rows.loc[posts["r1"].uri, "is_org_author"]
    assert str(rows.loc[posts["p0"].uri, "created_at"]) == "2024-05-01 10:00:00"
    cursor = store.get_cursor("bluesky", "brand.bsky.social", "feed.cursor")
    assert cursor.endswith(posts["p1"].uri)
    # re-run: the first page reaches known posts, so the sequence ends there with nothing new
    again = sync_from_store(bsky, store, BRAND, source="bluesky", run_id=None)
    assert again.posts == 0 and store.count("posts") == 3
    assert not any("login" in r.lower() or "createSession" in r for r in server.requests)   # public API


def test_unknown_handle_is_fatal(xrpc, store):
    server, _ = xrpc
    ghost = account("bluesky", "ghost.bsky.social")
    bsky = BlueskyConnector(creds("bluesky"), [ghost], clock=FakeClock(), base_url=server.xrpc)
    result = sync_from_store(bsky, store, ghost, source="bluesky", run_id=None)
    assert result.status == "fatal" and "bluesky account ghost.bsky.social" in result.message
    assert "Profile not found" in result.message


def test_login_happens_once(xrpc, store):
    server, _ = xrpc
    calls = []

    class Recorder:
        def __init__(self, real):
            self.real = real

        def login(self, handle, password):
            calls.append(handle)

        def __getattr__(self, name):
            return getattr(self.real, name)

    from atproto import Client
    bsky = BlueskyConnector(creds("bluesky", MATURITY_BLUESKY_HANDLE="brand.bsky.social",
                                  MATURITY_BLUESKY_PASSWORD="app-password-xyz"), [BRAND], clock=FakeClock(),
                            client=Recorder(Client(base_url=server.xrpc)))
    sync_from_store(bsky, store, BRAND, source="bluesky", run_id=None)
    sync_from_store(bsky, store, BRAND, source="bluesky", run_id=None)
    assert calls == ["brand.bsky.social"]
