"""Reddit through praw (OAuth app credentials; read-only unless a username/password is set).

Configured handles: `u/name` or `name` is a brand's user account, `r/name` a brand-owned subreddit.
Streams (listings newest -> oldest, `after` page tokens; the cursor is the newest base-36 id seen,
and the base drops posts at or behind it, ending the sequence there):
* user account: submissions (/user/:name/submitted), comments (/user/:name/comments),
  replies to them (/message/comments, only when praw is logged in as that same user),
  mentions (/search for "name", newest first)
* subreddit: new posts (/r/:name/new) and comments (/r/:name/comments)
Post ids are fullnames (t3_..., t1_...) so `in_reply_to` (a comment's parent) and
`conversation_id` (the submission) link records directly.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import praw
import prawcore

from connectors.accounts import Account
from connectors.base import Connector, ErrorInfo, Page, Stream, Window
from connectors.records import Post, reading

PAGE_LIMIT = 100
REDDIT_OAUTH_URL = "https://oauth.reddit.com"
REDDIT_URL = "https://www.reddit.com"
REDDIT_SHORT_URL = "https://redd.it"


def split_handle(handle: str) -> tuple[str, str]:
    lowered = handle.strip().lstrip("/")
    if lowered.lower().startswith("r/"):
        return "subreddit", lowered[2:]
    if lowered.lower().startswith("u/"):
        return "user", lowered[2:]
    return "user", lowered


def praw_http_session(reddit: praw.Reddit):
    """The requests.Session praw sends everything through (the one praw's tests wrap in betamax)."""
    core = reddit._core
    requestor = getattr(core, "_requestor", None) or core._authorizer._authenticator._requestor
    return requestor._http


class RedditConnector(Connector):
    source = "reddit"
    platform = "reddit"

    def __init__(self, credentials, org_accounts, *, reddit: praw.Reddit | None = None,
                 requestor_kwargs: dict | None = None, **kwargs):
        super().__init__(credentials, org_accounts, **kwargs)
        self.org_handles |= {split_handle(a.handle)[1].lower() for a in self.org_accounts}
        if reddit is None:
            options: dict[str, Any] = dict(
                client_id=credentials.get("MATURITY_REDDIT_CLIENT_ID"),
                client_secret=credentials.get("MATURITY_REDDIT_CLIENT_SECRET"),
                user_agent=credentials.get("MATURITY_REDDIT_USER_AGENT") or "maturity-sync/0.1 (research)",
                check_for_updates=False, requestor_kwargs=requestor_kwargs or {},
                # explicit, so a praw.ini in the working directory cannot send credentials elsewhere
                oauth_url=REDDIT_OAUTH_URL, reddit_url=REDDIT_URL, short_url=REDDIT_SHORT_URL)
            if credentials.get("MATURITY_REDDIT_USERNAME") and credentials.get("MATURITY_REDDIT_PASSWORD"):
                options.update(username=credentials.get("MATURITY_REDDIT_USERNAME"),
                               password=credentials.get("MATURITY_REDDIT_PASSWORD"))
            reddit = praw.Reddit(**options)
        self.reddit = reddit
        self.logged_in_as = (credentials.get("MATURITY_REDDIT_USERNAME") or "").lower() or None
        self.limits.attach(praw_http_session(self.reddit))

    def resolve(self, account: Account) -> dict:
        kind, name = split_handle(account.handle)
        return {"kind": kind, "name": name}

    def streams(self, account: Account, context: dict) -> list[Stream]:
        if context["kind"] == "subreddit":
            return [SubredditPostsStream(self, account, context), SubredditCommentsStream(self, account, context)]
        streams: list[Stream] = [SubmissionsStream(self, account, context), CommentsStream(self, account, context)]
        if self.logged_in_as == context["name"].lower():
            streams.append(RepliesStream(self, account, context))
        streams.append(MentionsStream(self, account, context))
        return streams

    def error_info(self, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, prawcore.Redirect):
            return ErrorInfo(404, "not found (redirected to search)")
        if isinstance(exc, prawcore.RequestException):
            return ErrorInfo(None, f"request failed: {type(exc.original_exception).__name__}", transient_io=True)
        if isinstance(exc, prawcore.BadJSON):
            return ErrorInfo(None, "malformed JSON in response", transient_io=True)
        if isinstance(exc, prawcore.ResponseException):
            response = exc.response
            return ErrorInfo(response.status_code, f"HTTP {response.status_code} {response.reason}",
                             headers=dict(response.headers))
        if isinstance(exc, prawcore.OAuthException):
            return ErrorInfo(401, f"OAuth error: {exc.error}")
        if isinstance(exc, prawcore.InvalidToken):
            return ErrorInfo(401, "invalid token")
        return None

    def to_post(self, item: Any) -> Post:
        # read the fetched attributes only: getattr on a missing one makes praw fetch the object
        data = vars(item)
        with reading(self.platform, data.get("id")):
            return self._to_post(item, data)

    def _to_post(self, item: Any, data: dict) -> Post:
        author = data.get("author")
        author = author.name if author is not None else "[deleted]"
        created = datetime.fromtimestamp(data["created_utc"], tz=timezone.utc)
        comment = isinstance(item, praw.models.Comment)
        # the fullname from the payload's id: item.fullname on an object without one makes praw fetch it
        fullname = f"{'t1' if comment else 't3'}_{data['id']}"
        if comment:
            text, parent, conversation, replies = data.get("body"), data.get("parent_id"), data.get("link_id"), None
        else:
            text = data.get("title", "") + ("\n\n" + data["selftext"] if data.get("selftext") else "")
            parent, conversation, replies = None, fullname, data.get("num_comments")
        return Post(platform=self.platform, post_id=fullname, author=author,
                    is_org_author=self.is_org(author), created_at=created, in_reply_to=parent,
                    conversation_id=conversation, text=text,
                    has_media=bool(data.get("is_video") or data.get("media")),
                    like_count=data.get("score"), repost_count=None, reply_count=replies)


class _ListingStream(Stream):
    cursor_name = "after"          # newest id seen (the listing's `after` token is the page token)
    ascending = False
    api_applies_cursor = False
    path: str = ""
    sort: str | None = "new"

    def params(self) -> dict:
        return {}

    def fetch_page(self, cursor: str | None, token: str | None, window: Window) -> Page:
        params: dict[str, Any] = {"limit": PAGE_LIMIT, **self.params()}
        if self.sort:
            params["sort"] = self.sort
        if token:
            params["after"] = token
        with reading(self.connector.platform):    # praw builds its models from the payload here
            listing = self.connector.reddit.get(self.path.format(**self.context), params=params)
        records = self.connector.normalise(
            [item for item in listing.children if isinstance(item, (praw.models.Comment, praw.models.Submission))],
            self.connector.to_post)
        # an empty page can still name a next one (items filtered out, or a listing glitch)
        return Page(records, next_token=listing.after)

    def position(self, post: Post) -> int:
        return int(post.post_id.split("_", 1)[1], 36)


class SubmissionsStream(_ListingStream):
    name = "submissions"
    timeline = True
    path = "user/{name}/submitted"


class CommentsStream(_ListingStream):
    name = "comments"
    path = "user/{name}/comments"
    timeline = True


class RepliesStream(_ListingStream):
    """Replies to the logged-in brand account's submissions and comments (its inbox)."""
    name = "replies"
    path = "message/comments/"
    sort = None


class MentionsStream(_ListingStream):
    name = "mentions"
    path = "search"

    def params(self) -> dict:
        return {"q": f'"{self.context["name"]}"', "type": "link"}


class SubredditPostsStream(_ListingStream):
    name = "posts"
    path = "r/{name}/new"
    sort = None


class SubredditCommentsStream(_ListingStream):
    name = "comments"
    path = "r/{name}/comments"
    sort = None
