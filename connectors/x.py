"""X (Twitter) API v2 through tweepy's `Client` (app-only bearer token).

Streams per configured account (all `since_id` cursors, pages newest -> oldest):
* timeline  - GET /2/users/:id/tweets (the account's posts including its replies)
* mentions  - GET /2/users/:id/mentions
* replies   - GET /2/tweets/search/recent, query `to:<handle> is:reply`: replies in the account's
              conversations (recent search covers the last 7 days)
"""
from __future__ import annotations

from typing import Any

import tweepy

from connectors.accounts import Account
from connectors.base import Connector, ErrorInfo, Page, Stream, Window, timeout_adapter
from connectors.records import Post, reading, snowflake_time

TWEET_FIELDS = ["created_at", "author_id", "in_reply_to_user_id", "referenced_tweets", "conversation_id",
                "public_metrics", "attachments"]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username"]
MAX_RESULTS = 100


class XConnector(Connector):
    source = "x"
    platform = "twitter"

    def __init__(self, credentials, org_accounts, *, client: tweepy.Client | None = None, **kwargs):
        super().__init__(credentials, org_accounts, **kwargs)
        self.client = client or tweepy.Client(bearer_token=credentials.get("MATURITY_X_BEARER_TOKEN"),
                                              wait_on_rate_limit=False)
        self.limits.attach(self.client.session)
        if client is None:
            self.client.session.mount("https://", timeout_adapter(30.0))

    def resolve(self, account: Account) -> dict:
        response = self.client.get_user(username=account.handle)
        if response.data is None:
            problem = "; ".join(str(e.get("detail") or e.get("title") or e) for e in (response.errors or []))
            raise _Unresolvable(problem or "unknown account")
        return {"id": str(response.data.id), "username": response.data.username}

    def streams(self, account: Account, context: dict) -> list[Stream]:
        return [TimelineStream(self, account, context), MentionsStream(self, account, context),
                RepliesStream(self, account, context)]

    def error_info(self, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, _Unresolvable):
            return ErrorInfo(None, str(exc), fatal_reason=f"unknown or suspended account: {exc}")
        if isinstance(exc, tweepy.HTTPException):
            response = exc.response
            detail = "; ".join(exc.api_messages) if getattr(exc, "api_messages", None) else response.reason
            return ErrorInfo(response.status_code, f"HTTP {response.status_code} {detail}",
                             headers=dict(response.headers))
        if isinstance(exc, tweepy.TweepyException):
            return ErrorInfo(None, str(exc), transient_io=False)
        return None

    # normalisation ------------------------------------------------------------------------------
    def to_post(self, tweet: tweepy.Tweet, users: dict[str, str], account_ctx: dict,
                default_author: str | None) -> Post:
        with reading(self.platform, getattr(tweet, "id", None)):
            return self._to_post(tweet, users, account_ctx, default_author)

    def _to_post(self, tweet: tweepy.Tweet, users: dict[str, str], account_ctx: dict,
                 default_author: str | None) -> Post:
        author_id = str(tweet.author_id) if tweet.author_id is not None else None
        if author_id is not None and author_id in users:
            author = users[author_id]
        elif author_id is not None and author_id == account_ctx["id"]:
            author = account_ctx["username"]
        elif default_author is not None:
            author = default_author
        else:
            author = author_id or "unknown"
        replied_to = next((str(ref.id) for ref in (tweet.referenced_tweets or []) if ref.type == "replied_to"),
                          None)
        metrics = tweet.public_metrics or {}
        created = tweet.created_at or snowflake_time(tweet.id)   # created_at not requested or absent
        return Post(platform=self.platform, post_id=str(tweet.id), author=author,
                    is_org_author=self.is_org(author), created_at=created, in_reply_to=replied_to,
                    conversation_id=str(tweet.conversation_id) if tweet.conversation_id else None,
                    text=tweet.text, has_media=bool((tweet.attachments or {}).get("media_keys")),
                    like_count=metrics.get("like_count"), repost_count=metrics.get("retweet_count"),
                    reply_count=metrics.get("reply_count"))


class _Unresolvable(Exception):
    pass


class _XStream(Stream):
    cursor_name = "since_id"
    ascending = False
    api_applies_cursor = True
    token_param = "pagination_token"
    own_posts = False

    def request(self, **params) -> tweepy.Response:
        raise NotImplementedError

    def fetch_page(self, cursor: str | None, token: str | None, window: Window) -> Page:
        params: dict[str, Any] = {"max_results": MAX_RESULTS, "tweet_fields": TWEET_FIELDS,
                                  "expansions": EXPANSIONS, "user_fields": USER_FIELDS}
        if cursor:
            params["since_id"] = cursor
        if token:
            params[self.token_param] = token
        if window.since:
            params["start_time"] = window.since
        if window.until:
            params["end_time"] = window.until
        with reading(self.connector.platform):    # tweepy builds its Tweet models from the payload here
            response = self.request(**params)
        users = {str(u.id): u.username for u in (response.includes or {}).get("users", [])}
        default_author = self.context["username"] if self.own_posts else None
        records = self.connector.normalise(
            response.data or [], lambda t: self.connector.to_post(t, users, self.context, default_author))
        meta = response.meta or {}
        newest = meta.get("newest_id")
        return Page(records, next_token=meta.get("next_token"), newest=str(newest) if newest else None)


class TimelineStream(_XStream):
    name = "timeline"
    own_posts = True     # the user timeline only holds the account's own posts
    timeline = True

    def request(self, **params):
        return self.connector.client.get_users_tweets(self.context["id"], **params)


class MentionsStream(_XStream):
    name = "mentions"

    def request(self, **params):
        return self.connector.client.get_users_mentions(self.context["id"], **params)


class RepliesStream(_XStream):
    name = "replies"
    token_param = "next_token"

    def request(self, **params):
        params["max_results"] = min(params["max_results"], 100)
        return self.connector.client.search_recent_tweets(f"to:{self.context['username']} is:reply", **params)
