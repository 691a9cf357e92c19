"""Fault injection for Reddit (real praw/prawcore) and Bluesky (real atproto Client) against the
loopback FakeAPI, extended with a Reddit-like OAuth listing API and a Bluesky-like XRPC API.

Same scenarios as test_fault_injection.py: 429 with reset headers, 5xx, timeouts, malformed JSON,
an empty page that still carries a next cursor, a failure halfway through pagination. After
recovery and a re-run: zero posts lost, zero duplicated, cursors at the newest post.
"""
from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import praw
import prawcore.rate_limit
import prawcore.sessions
import pytest
from atproto import Client, models
from atproto_client.models.utils import get_model_as_json

from connector_helpers import FakeClock, account, bsky_view, creds, sync_from_store
from connectors.bluesky import BlueskyConnector
from connectors.reddit import RedditConnector
from fake_api import BASE_TIME, FakeAPI

BRAND_R = account("reddit", "u/brand")
BRAND_B = account("bluesky", "brand.bsky.social")
BRAND_DID = "did:plc:brand"


def to_base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


class PlatformAPI(FakeAPI):
    """FakeAPI plus Reddit listings (newest first, `after` fullname tokens; OAuth token by POST)
    and Bluesky's author feed and post threads (newest first, opaque `cursor` tokens)."""

    def __init__(self, page_size: int = 3):
        self.listings: dict[str, list[dict]] = {"submitted": [], "comments": [], "search": []}
        self.feed: list[dict] = []
        self.bsky_threads: dict[str, list[dict]] = {}
        super().__init__(page_size)

    # Reddit ---------------------------------------------------------------------------------
    def add_reddit(self, listing: str, n: int, author: str, start: int = 0, kind: str = "t3",
                   parent: str | None = None) -> list[str]:
        ids = []
        for i in range(start, start + n):
            moment = BASE_TIME + timedelta(minutes=i)
            rid = to_base36(10_000 + i)
            data = {"id": rid, "author": author, "created_utc": moment.timestamp(), "score": i,
                    "subreddit": "brandsub", "name": f"{kind}_{rid}"}
            if kind == "t3":
                data.update(title=f"{listing} {i}", selftext="", num_comments=0, is_video=False)
            else:
                data.update(body=f"comment {i}", parent_id=parent, link_id=parent)
            self.listings[listing].append({"kind": kind, "data": data})
            ids.append(f"{kind}_{rid}")
        return ids

    def reddit_page(self, listing: str, query: dict):
        items = sorted(self.listings[listing], key=lambda c: -int(c["data"]["id"], 36))
        names = [c["data"]["name"] for c in items]
        offset = names.index(query["after"]) + 1 if query.get("after") in names else 0
        page = items[offset:offset + self.page_size]
        after = page[-1]["data"]["name"] if page and offset + self.page_size < len(items) else None
        return 200, {"kind": "Listing", "data": {"after": after, "before": None, "children": page}}, {}

    # Bluesky --------------------------------------------------------------------------------
    def add_bsky(self, n: int, start: int = 0, replies: int = 0) -> list[str]:
        uris = []
        for i in range(start, start + n):
            moment = (BASE_TIME + timedelta(minutes=i)).isoformat().replace("+00:00", ".000Z")
            post = bsky_view(f"p{i:04d}", "brand.bsky.social", BRAND_DID, moment, f"post {i}", replies)
            self.feed.append(json.loads(get_model_as_json(models.AppBskyFeedDefs.FeedViewPost(post=post))))
            uris.append(post.uri)
            if replies:
                reply_moment = (BASE_TIME + timedelta(minutes=i, seconds=20)).isoformat().replace("+00:00", ".000Z")
                reply = bsky_view(f"r{i:04d}", "cust.bsky.social", "did:plc:cust", reply_moment, "@brand why?",
                                  parent=post.uri)
                thread = models.AppBskyFeedGetPostThread.Response(thread=models.AppBskyFeedDefs.ThreadViewPost(
                    post=post, replies=[models.AppBskyFeedDefs.ThreadViewPost(post=reply, replies=[])]))
                self.bsky_threads[post.uri] = json.loads(get_model_as_json(thread))
                uris.append(reply.uri)
        return uris

    def bsky_page(self, query: dict):
        items = sorted(self.feed, key=lambda f: f["post"]["indexedAt"], reverse=True)
        offset = int(query.get("cursor", "c0")[1:])
        page = items[offset:offset + self.page_size]
        body: dict = {"feed": page}
        if offset + self.page_size < len(items):
            body["cursor"] = f"c{offset + self.page_size}"
        return 200, body, {}

    # routing --------------------------------------------------------------------------------
    def route(self, path: str, query: dict):
        if path in ("/user/brand/submitted", "/user/brand/comments"):
            listing = path.rsplit("/", 1)[1]
            return f"r.{listing}", lambda: self.reddit_page(listing, query)
        if path == "/search":
            return "r.search", lambda: self.reddit_page("search", query)
        if path == "/xrpc/app.bsky.actor.getProfile":
            profile = models.AppBskyActorDefs.ProfileViewDetailed(did=BRAND_DID, handle=query["actor"])
            return "b.profile", lambda: (200, json.loads(get_model_as_json(profile)), {})
        if path == "/xrpc/app.bsky.feed.getAuthorFeed":
            return "b.feed", lambda: self.bsky_page(query)
        if path == "/xrpc/app.bsky.feed.getPostThread":
            return "b.thread", lambda: (200, self.bsky_threads[query["uri"]], {})
        return super().route(path, query)

    def _handler(self):
        base = super()._handler()
        api = self

        class Handler(base):
            def do_GET(self):
                # an empty page that still names a next page: the one the client asked for
                parsed = urlparse(self.path)
                asked = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                route, _ = api.route(parsed.path, asked)
                with api.lock:
                    empty = bool(api.faults[route]) and api.faults[route][0][0] == "empty_next_page"
                    if empty:
                        api.faults[route].popleft()
                        api.requests.append((route, self.path))
                if not empty:
                    return super().do_GET()
                if route.startswith("r."):
                    return self.reply(200, {"kind": "Listing", "data": {
                        "after": asked.get("after", "t3_start"), "before": None, "children": []}})
                return self.reply(200, {"feed": [], "cursor": asked.get("cursor", "c0")})

            def do_POST(self):   # Reddit's application-only OAuth token
                with api.lock:
                    api.requests.append(("r.token", self.path))
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.reply(200, {"access_token": "loopback-token", "token_type": "bearer",
                                 "expires_in": 3600, "scope": "*"})

        return Handler


@pytest.fixture
def api():
    with PlatformAPI(page_size=3) as server:
        yield server


class RecordedSleeps:
    """Stands in for the `time` module inside one prawcore module: sleeps are recorded, not slept."""

    def __init__(self, real):
        self.real, self.sleeps = real, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture
def prawcore_sleeps(monkeypatch) -> dict[str, list[float]]:
    """prawcore retries 5xx and timeouts itself (sleeping a few seconds in between) and spaces requests
    by Reddit's x-ratelimit headers; both are recorded instead of slept."""
    recorded = {}
    for name, module in (("retry", prawcore.sessions), ("rate_limit", prawcore.rate_limit)):
        fake = RecordedSleeps(module.time)
        monkeypatch.setattr(module, "time", fake)
        recorded[name] = fake.sleeps
    return recorded


def reddit_connector(api: PlatformAPI, clock: FakeClock, timeout: float = 5.0) -> RedditConnector:
    reddit = praw.Reddit(client_id="loopback-id", client_secret="loopback-secret", user_agent="tests",
                         oauth_url=api.url, reddit_url=api.url, check_for_updates=False, timeout=timeout)
    return RedditConnector(creds("reddit", MATURITY_REDDIT_CLIENT_ID="loopback-id",
                                 MATURITY_REDDIT_CLIENT_SECRET="loopback-secret"),
                           [BRAND_R], reddit=reddit, clock=clock)


def bluesky_connector(api: PlatformAPI, clock: FakeClock) -> BlueskyConnector:
    return BlueskyConnector(creds("bluesky"), [BRAND_B], clock=clock, client=Client(base_url=f"{api.url}/xrpc"))


def reddit_data(api: PlatformAPI) -> set[str]:
    ids = api.add_reddit("submitted", 7, "brand")
    ids += api.add_reddit("comments", 5, "brand", start=20, kind="t1", parent=ids[0])
    ids += api.add_reddit("search", 4, "alice", start=40)
    return set(ids)


def stored(store, platform: str) -> list[str]:
    return list(store.df("select post_id from posts where platform = ?", [platform])["post_id"])


def cursors(store, source: str) -> dict:
    return {n: v for n, v in store.con.execute(
        "select cursor_name, cursor_value from sync_state where source = ?", [source]).fetchall()}


def assert_complete_reddit(store, api: PlatformAPI, expected: set[str]) -> None:
    ids = stored(store, "reddit")
    assert len(ids) == len(set(ids)) and set(ids) == expected      # nothing lost, nothing twice
    state = cursors(store, "reddit")
    for stream, listing in (("submissions", "submitted"), ("comments", "comments"), ("mentions", "search")):
        newest = max((c["data"] for c in api.listings[listing]), key=lambda d: int(d["id"], 36))
        assert state[f"{stream}.after"] == str(int(newest["id"], 36))
        assert state.get(f"{stream}.page_token") is None and state.get(f"{stream}.pending") is None


def test_reddit_faults_lose_and_duplicate_nothing(api, store, clock, prawcore_sleeps):
    expected = reddit_data(api)
    # 429 with Reddit's seconds-until-reset header; 5xx twice, then malformed JSON (prawcore's BadJSON);
    # an empty page that still names the next one
    api.fault("r.submitted", ("status", 429, {"x-ratelimit-reset": "120", "x-ratelimit-remaining": "0",
                                                  "x-ratelimit-used": "600"}))
    api.fault("r.comments", ("status", 503), ("status", 500), ("malformed",))
    api.fault("r.search", ("empty_next_page",))
    result = sync_from_store(reddit_connector(api, clock), store, BRAND_R, source="reddit", run_id=None)
    assert result.status == "ok", result.message
    assert 121 in clock.sleeps                 # slept until the announced reset (+1 s), via the base
    assert len(prawcore_sleeps["retry"]) == 2  # prawcore's own retries of the 5xx answers
    assert prawcore_sleeps["rate_limit"] and max(prawcore_sleeps["rate_limit"]) > 100   # and its own pacing
    assert_complete_reddit(store, api, expected)
    rerun = sync_from_store(reddit_connector(api, clock), store, BRAND_R, source="reddit", run_id=None)
    assert rerun.status == "ok" and rerun.posts == 0
    assert_complete_reddit(store, api, expected)


def test_reddit_timeout_is_retried_and_halfway_failure_resumes(api, store, clock, prawcore_sleeps):
    first = reddit_data(api)
    api.fault("r.search", ("slow", 1.0))     # longer than the client's timeout
    result = sync_from_store(reddit_connector(api, clock, timeout=0.3), store, BRAND_R, source="reddit", run_id=None)
    assert result.status == "ok", result.message
    assert_complete_reddit(store, api, first)

    new = set(api.add_reddit("submitted", 7, "brand", start=100))
    # page 1 answers, then every attempt fails (prawcore's 3 tries per base attempt x 5 base attempts)
    api.fault("r.submitted", ("headers", {}), *[("status", 502)] * 15)
    failed = sync_from_store(reddit_connector(api, clock), store, BRAND_R, source="reddit", run_id=None)
    assert failed.status == "failed" and "reddit account u/brand" in failed.message
    newest_three = sorted(new, key=lambda f: int(f[3:], 36))[-3:]
    assert set(stored(store, "reddit")) == first | set(newest_three)   # page 1 committed
    assert cursors(store, "reddit")["submissions.page_token"] == newest_three[0]
    again = sync_from_store(reddit_connector(api, clock), store, BRAND_R, source="reddit", run_id=None)
    assert again.status == "ok" and again.posts == 4
    assert_complete_reddit(store, api, first | new)


def assert_complete_bluesky(store, api: PlatformAPI, expected: set[str]) -> None:
    ids = stored(store, "bluesky")
    assert len(ids) == len(set(ids)) and set(ids) == expected
    state = cursors(store, "bluesky")
    newest = max(api.feed, key=lambda f: f["post"]["indexedAt"])["post"]["uri"]
    assert state["feed.cursor"].endswith("|" + newest)
    assert state.get("feed.page_token") is None and state.get("feed.pending") is None


def test_bluesky_faults_lose_and_duplicate_nothing(api, store, clock):
    expected = set(api.add_bsky(8, replies=1))
    far_reset = str(int(clock.now()) + 90)
    api.fault("b.feed", ("status", 429, {"ratelimit-reset": far_reset, "ratelimit-remaining": "0"}),
              ("headers", {}), ("status", 503), ("malformed",), ("empty_next_page",))
    api.fault("b.thread", ("status", 500), ("reset",))
    result = sync_from_store(bluesky_connector(api, clock), store, BRAND_B, source="bluesky", run_id=None)
    assert result.status == "ok", result.message
    assert clock.sleeps[0] == 91               # epoch reset header: until then, +1 s
    assert_complete_bluesky(store, api, expected)
    rerun = sync_from_store(bluesky_connector(api, clock), store, BRAND_B, source="bluesky", run_id=None)
    assert rerun.status == "ok" and rerun.posts == 0 and store.count("posts") == len(expected)


def test_bluesky_halfway_failure_resumes_from_the_last_committed_page(api, store, clock):
    first = set(api.add_bsky(4))
    assert sync_from_store(bluesky_connector(api, clock), store, BRAND_B, source="bluesky", run_id=None).status == "ok"
    new = api.add_bsky(7, start=100)
    api.fault("b.feed", ("headers", {}), *[("status", 502)] * 5)
    failed = sync_from_store(bluesky_connector(api, clock), store, BRAND_B, source="bluesky", run_id=None)
    assert failed.status == "failed" and "bluesky account brand.bsky.social" in failed.message
    assert set(stored(store, "bluesky")) == first | set(new[-3:])      # newest page committed
    assert cursors(store, "bluesky")["feed.page_token"] == "c3"
    again = sync_from_store(bluesky_connector(api, clock), store, BRAND_B, source="bluesky", run_id=None)
    assert again.status == "ok"
    assert_complete_bluesky(store, api, first | set(new))
