"""Property-based fuzzing of every connector's normaliser (the code turning a platform payload into
`Post` records) and of the file importers.

Property: a payload becomes a Post the store loads, or the normaliser raises MalformedRecord naming
the platform and the field — never another exception type. Through the connector base a bad record
makes its page fail whole (nothing of it stored, row counts unchanged) and the account fatal with
a clear message; the run goes on. File importers: InputFileError naming the file, or counts that add
up — nothing half-stored.
"""
from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import praw
import pytest
import tweepy
from atproto_client.models.app.bsky.feed.defs import PostView
from atproto_client.models.utils import get_or_create
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.accounts import Account
from connectors.base import Connector, Page, Stream
from connectors.bluesky import BlueskyConnector
from connectors.credentials import Credentials
from connectors.facebook_pages import import_facebook_pages
from connectors.mastodon import MastodonConnector
from connectors.records import MalformedRecord, Post, posts_to_batch, reading
from connectors.reddit import RedditConnector
from connectors.sp500 import import_sp500
from connectors.twcs import InputFileError, import_twcs
from connectors.x import XConnector
from pipeline.sync import account_cursors, saved_cursors

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])

# -- payload strategies: valid-looking payloads with fields dropped, retyped, huge or nested -------
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True), st.text(max_size=30),
                    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
                    st.just("x" * 200_000), st.just("2017-10-01T10:00:00Z"), st.just("not a time"))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                           max_leaves=12)
DEEP = {"a": [[[[[[[[[[{"b": [[[[[[[[[[1]]]]]]]]]]}]]]]]]]]]]}


def mutated(base: dict) -> st.SearchStrategy[dict]:
    """The base payload with some fields removed and some replaced by arbitrary JSON values."""
    keys = sorted(base)
    return st.tuples(st.sets(st.sampled_from(keys)),
                     st.dictionaries(st.sampled_from(keys), st.one_of(json_values, st.just(DEEP)), max_size=4),
                     st.dictionaries(st.text(max_size=6), json_values, max_size=2)).map(
        lambda parts: {**{k: v for k, v in base.items() if k not in parts[0]}, **parts[1], **parts[2]})


TWEET = {"id": "920000000000000001", "text": "@115712 Sorry! ^JK", "author_id": "100",
         "edit_history_tweet_ids": ["920000000000000001"], "created_at": "2017-10-01T10:00:00.000Z",
         "conversation_id": "920000000000000000", "public_metrics": {"like_count": 1, "retweet_count": 0,
                                                                     "reply_count": 0},
         "referenced_tweets": [{"type": "replied_to", "id": "920000000000000000"}],
         "attachments": {"media_keys": ["3_1"]}}
REDDIT = {"id": "abc123", "created_utc": 1506852000.0, "author": "acme_care", "body": "Sorry u/someone",
          "parent_id": "t3_xyz", "link_id": "t3_xyz", "score": -3, "title": "Help", "selftext": "text",
          "num_comments": 2, "is_video": False}
STATUS = {"id": "109000000000000001", "created_at": datetime(2017, 10, 1, 10, tzinfo=timezone.utc),
          "in_reply_to_id": None, "content": "<p>@carol thanks</p>", "account": {"acct": "brand"},
          "media_attachments": [], "favourites_count": 1, "reblogs_count": 0, "replies_count": 0}
BSKY_VIEW = {"uri": "at://did:plc:abc/app.bsky.feed.post/1", "cid": "bafyreid", "indexedAt": "2017-10-01T10:00:00Z",
             "author": {"did": "did:plc:abc", "handle": "acme.bsky.social"},
             "record": {"$type": "app.bsky.feed.post", "text": "hi @someone.bsky.social",
                        "createdAt": "2017-10-01T10:00:00Z"},
             "likeCount": 1, "repostCount": 0, "replyCount": 0}


def account(platform: str, handle: str) -> Account:
    return Account(platform=platform, handle=handle, role="support", instance="social.example")


def connectors() -> dict[str, Connector]:
    none = Credentials("none", {})
    reddit = praw.Reddit(client_id="fuzz", client_secret="fuzz", user_agent="fuzz", check_for_updates=False)
    return {
        "x": XConnector(none, [account("twitter", "AcmeCare")], client=tweepy.Client(bearer_token="fuzz")),
        "reddit": RedditConnector(none, [account("reddit", "acme_care")], reddit=reddit),
        "mastodon": MastodonConnector(none, [account("mastodon", "brand")]),
        "bluesky": BlueskyConnector(none, [account("bluesky", "acme.bsky.social")]),
    }


CONNECTORS = connectors()


def normalise(kind: str, payload: dict) -> Post:
    """The payload -> Post path each connector takes in production (the library's model building,
    then the connector's to_post)."""
    c = CONNECTORS[kind]
    if kind == "x":
        with reading("twitter"):                         # tweepy builds Tweets inside the request
            tweet = tweepy.Tweet(payload)
        return c.to_post(tweet, {"100": "AcmeCare"}, {"id": "100", "username": "AcmeCare"}, None)
    if kind == "reddit":
        with reading("reddit"):                          # praw builds its models inside reddit.get
            item = c.reddit._objector.objectify(data={"kind": "t1" if "body" in payload else "t3", "data": payload})
        if not isinstance(item, (praw.models.Comment, praw.models.Submission)):
            raise MalformedRecord("reddit", "kind", f"not a comment or submission: {type(item).__name__}")
        return c.to_post(item)
    if kind == "mastodon":
        return c.to_post(payload, "https://social.example")
    view = get_or_create(payload, PostView, strict=False)   # atproto's own parsing (ModelError when unusable)
    return c.to_post(view)


def check_normalised(kind: str, payload: dict) -> Post | None:
    try:
        post = normalise(kind, payload)
    except MalformedRecord as exc:
        assert exc.platform in ("twitter", "reddit", "mastodon", "bluesky") and exc.field, exc
        assert str(exc).startswith(exc.platform) and exc.field in str(exc)
        return None
    except Exception as exc:  # noqa: BLE001 - only atproto's own model errors are expected here
        if kind == "bluesky" and type(exc).__module__.startswith("atproto"):
            return None           # raised inside the client call: the base retries, then stops the account
        raise
    posts_to_batch([post])        # loads: the store's schema accepts it
    return post


@pytest.mark.parametrize("kind,base", [("x", TWEET), ("reddit", REDDIT), ("reddit", {**REDDIT, "body": None}),
                                       ("mastodon", STATUS), ("bluesky", BSKY_VIEW)])
def test_the_unmutated_payloads_normalise(kind, base):
    payload = {k: v for k, v in base.items() if v is not None}
    assert isinstance(check_normalised(kind, payload), Post)


@FUZZ
@given(payload=mutated(TWEET))
def test_fuzz_x_normaliser(payload):
    check_normalised("x", payload)


@FUZZ
@given(payload=mutated(REDDIT), comment=st.booleans())
def test_fuzz_reddit_normaliser(payload, comment):
    if not comment:
        payload.pop("body", None)
    check_normalised("reddit", payload)


@FUZZ
@given(payload=mutated(STATUS), account_payload=mutated(STATUS["account"]))
def test_fuzz_mastodon_normaliser(payload, account_payload):
    if isinstance(payload.get("account"), dict):
        payload["account"] = account_payload
    check_normalised("mastodon", payload)


@FUZZ
@given(payload=mutated(BSKY_VIEW), record=mutated(BSKY_VIEW["record"]))
def test_fuzz_bluesky_normaliser(payload, record):
    if isinstance(payload.get("record"), dict):
        payload["record"] = record
    check_normalised("bluesky", payload)


# -- through the connector base: a bad record fails its page whole, the account only -------------
class ScriptedStream(Stream):
    """One page: a good payload and the fuzzed one, normalised the way the connector does."""
    name, cursor_name, ascending = "fuzz", "min_id", True
    served = False

    def fetch_page(self, cursor, token, window):
        if self.served:
            return Page([])
        self.served = True
        return Page(self.connector.normalise(self.context, lambda p: normalise(self.connector.source, p)),
                    newest="1")


@pytest.mark.parametrize("kind,base", [("x", TWEET), ("mastodon", STATUS)])
@settings(max_examples=30, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_bad_record_is_set_aside_and_the_rest_of_its_page_loads(store, kind, base, data):
    bad = data.draw(mutated(base))
    good = dict(base, id=str(int(base["id"]) + 7))
    connector = CONNECTORS[kind]
    target = account(connector.platform, "AcmeCare" if kind == "x" else "brand")
    rejected_before = store.count("rejected_rows")
    original_streams = connector.streams
    connector.streams = lambda acct, ctx: [ScriptedStream(connector, acct, [good, bad])]
    connector.resolve = lambda acct: None
    source = f"fuzz-{kind}"
    cursors = account_cursors(saved_cursors(store, [(source, target.key)]), source, target.key)
    try:
        result = connector.sync_account(store, target, cursors=cursors, source=source, run_id=None)
    finally:
        connector.streams = original_streams
        del connector.resolve
    assert result.status == "ok", result.message                     # never the account, never the run
    assert store.con.execute("select count(*) from posts where post_id = ?", [good["id"]]).fetchone()[0] == 1
    set_aside = store.count("rejected_rows") - rejected_before
    assert set_aside == result.streams[0].rejected in (0, 1)
    if set_aside:                                                     # recorded with platform and field
        source, field, reason = store.con.execute(
            "select source, field, reason from rejected_rows order by rowid desc limit 1").fetchone()
        assert source == f"fuzz-{kind}" and field and reason.startswith(f"{connector.platform} record")


# -- file importers ---------------------------------------------------------------------------------
def rows_text(rows: list[list[str]], delimiter: str) -> str:
    from io import StringIO

    out = StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()


cells = st.one_of(st.text(max_size=12), st.from_regex(r"\d{1,25}", fullmatch=True), st.just(""),
                  st.just("1/2/2018 10:00"), st.just("x" * 100_000), st.just("\x00"))


def check_import(store, importer, path) -> None:
    before = store.count("posts")
    try:
        _, counts = importer(store, path)
    except InputFileError as exc:
        assert str(path) in str(exc)
        assert store.count("posts") == before                      # nothing from the file
    else:
        assert counts.read == counts.loaded + counts.rejected
        assert before <= store.count("posts") <= before + counts.loaded


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=3), max_size=8), raw=st.binary(max_size=60))
def test_fuzz_sp500_importer(store, tmp_path, rows, raw):
    path = tmp_path / "SP500-tweet-id-fuzz.txt"
    path.write_bytes(rows_text(rows, "\t").encode("utf-8", "surrogatepass") + raw)
    check_import(store, import_sp500, path)


@FUZZ
@given(rows=st.lists(st.lists(cells, min_size=5, max_size=7), max_size=8), raw=st.binary(max_size=60))
def test_fuzz_facebook_pages_importer(store, tmp_path, rows, raw):
    header = ["status_id", "status_type", "status_published", "num_reactions", "num_comments", "num_shares"]
    path = tmp_path / "Live.csv"
    path.write_bytes(rows_text([header, *rows], ",").encode("utf-8", "surrogatepass") + raw)
    check_import(store, import_facebook_pages, path)


TWCS_LINE = {"tweet_id": 1, "author_id": "AcmeCare", "inbound": False, "created_at": "2017-10-01T10:00:00Z",
             "text": "@115712 hi", "response_tweet_id": "2", "in_response_to_tweet_id": 3}


@FUZZ
@given(lines=st.lists(mutated(TWCS_LINE), max_size=6), junk=st.binary(max_size=40))
def test_fuzz_twcs_jsonl_lines(store, tmp_path, lines, junk):
    path = tmp_path / "fuzz.jsonl"
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    path.write_bytes(text.encode("utf-8", "surrogatepass") + b"\n" + junk + b"\n" + json.dumps(DEEP).encode())
    check_import(store, import_twcs, path)
