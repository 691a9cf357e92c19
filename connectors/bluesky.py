"""Bluesky through atproto's Client, on the public AppView without login.

Streams per configured account (descending pages, `cursor` page tokens; the saved cursor is the
newest indexedAt|uri seen, and the base drops posts at or behind it):
* feed - app.bsky.feed.getAuthorFeed (posts and replies by the account; reposts are skipped),
         plus app.bsky.feed.getPostThread for its posts with replies (the replies are loaded with
         the page)
With MATURITY_BLUESKY_HANDLE / MATURITY_BLUESKY_PASSWORD set, the connector logs in once and
reuses that session for every call (never a login per call).
Post ids are at:// URIs; in_reply_to is the parent URI, conversation_id the thread root URI.
"""
from __future__ import annotations

from typing import Any

from atproto import Client, models
from atproto_client import exceptions as aexc

from connectors.accounts import Account
from connectors.base import Connector, ErrorInfo, Page, Stream, Window, parse_time
from connectors.records import Post, reading

PUBLIC_APPVIEW = "https://public.api.bsky.app/xrpc"
PAGE_LIMIT = 100
THREAD_DEPTH = 10


class MalformedResponse(Exception):
    """An XRPC answer that is not valid JSON (cut off or garbled in transit): retried."""


def xrpc(call, *args, **kwargs):
    """Call the atproto client; its JSON parser raises a bare ValueError on a cut-off answer."""
    try:
        return call(*args, **kwargs)
    except aexc.AtProtocolError:
        raise
    except ValueError as exc:
        raise MalformedResponse(str(exc)) from None


class BlueskyConnector(Connector):
    source = "bluesky"
    platform = "bluesky"
    credentials_required = False

    def __init__(self, credentials, org_accounts, *, client: Client | None = None,
                 base_url: str = PUBLIC_APPVIEW, **kwargs):
        super().__init__(credentials, org_accounts, **kwargs)
        self.client = client or Client(base_url=base_url)
        self._logged_in = False

    def ensure_session(self) -> None:
        handle, password = (self.credentials.get("MATURITY_BLUESKY_HANDLE"),
                            self.credentials.get("MATURITY_BLUESKY_PASSWORD"))
        if handle and password and not self._logged_in:
            self.client.login(handle, password)      # once; the client refreshes its own session
            self._logged_in = True

    def resolve(self, account: Account) -> dict:
        self.ensure_session()
        profile = xrpc(self.client.get_profile, account.handle)
        return {"did": profile.did, "handle": profile.handle}

    def streams(self, account: Account, context: dict) -> list[Stream]:
        return [FeedStream(self, account, context)]

    def error_info(self, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, (aexc.NetworkError, aexc.InvokeTimeoutError)):
            return ErrorInfo(None, f"network error: {type(exc).__name__}", transient_io=True)
        if isinstance(exc, aexc.RequestErrorBase) and exc.response is not None:
            content = exc.response.content
            detail = getattr(content, "message", None) or getattr(content, "error", None) or ""
            return ErrorInfo(exc.response.status_code, f"HTTP {exc.response.status_code} {detail}".strip(),
                             headers=dict(exc.response.headers or {}))
        if isinstance(exc, (aexc.ModelError, MalformedResponse)):
            return ErrorInfo(None, "malformed response", transient_io=True)
        return None

    def to_post(self, view: Any) -> Post:
        with reading(self.platform, getattr(view, "uri", None)):
            return self._to_post(view)

    def _to_post(self, view: Any) -> Post:
        record = view.record
        reply = getattr(record, "reply", None)
        author = view.author.handle
        return Post(platform=self.platform, post_id=view.uri, author=author, is_org_author=self.is_org(author),
                    created_at=parse_time(record.created_at),
                    in_reply_to=reply.parent.uri if reply else None,
                    conversation_id=reply.root.uri if reply else view.uri,
                    text=getattr(record, "text", None), has_media=view.embed is not None,
                    like_count=view.like_count, repost_count=view.repost_count, reply_count=view.reply_count)

    def thread_posts(self, uri: str) -> list[Post]:
        thread = xrpc(self.client.get_post_thread, uri, depth=THREAD_DEPTH, parent_height=0).thread
        views = []
        stack = list(getattr(thread, "replies", None) or [])
        while stack:
            node = stack.pop()
            if isinstance(node, models.AppBskyFeedDefs.ThreadViewPost):
                views.append(node.post)
                stack.extend(node.replies or [])
        return self.normalise(views, self.to_post)


class FeedStream(Stream):
    name = "feed"
    timeline = True
    cursor_name = "cursor"
    ascending = False
    api_applies_cursor = False

    def __init__(self, *args):
        super().__init__(*args)
        self._positions: dict[str, str] = {}

    def fetch_page(self, cursor: str | None, token: str | None, window: Window) -> Page:
        response = xrpc(self.connector.client.get_author_feed, self.context["did"], cursor=token,
                        limit=PAGE_LIMIT, filter="posts_with_replies")
        def convert(item) -> Post:
            post = self.connector.to_post(item.post)
            with reading(self.connector.platform, post.post_id):
                self._positions[post.post_id] = f"{parse_time(item.post.indexed_at).isoformat()}|{post.post_id}"
            return post

        # reposts of someone else's post carry a reason and are skipped
        posts = self.connector.normalise([item for item in response.feed if item.reason is None], convert)
        # an empty page can still name a next one (reposts filtered out, or an AppView glitch)
        return Page(posts, next_token=response.cursor)

    def position(self, post: Post) -> str:
        return self._positions[post.post_id]

    def parse_cursor(self, value: str) -> str:
        return value

    def format_cursor(self, position: str) -> str:
        return position

    def related(self, posts: list[Post]) -> list[Post]:
        found: list[Post] = []
        for post in posts:
            if (post.reply_count or 0) > 0:
                found.extend(self.connector.thread_posts(post.post_id))
        return found
