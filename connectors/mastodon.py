"""Mastodon through Mastodon.py (public endpoints; a token adds notifications).

Streams per configured account (ascending `min_id` cursors: each page holds the items just newer
than the cursor, the same position Mastodon's `prev` Link carries, so pagination runs to the end
and a stopped sequence resumes from the last committed page):
* statuses - GET /api/v1/accounts/:id/statuses, plus GET /api/v1/statuses/:id/context for statuses
             that reply or have replies (ancestors and descendants are loaded with the page)
* mentions - with a token for the account's instance: GET /api/v1/notifications?types[]=mention;
             without: the newest page of GET /api/v2/search for `@acct` (most servers refuse status
             search without a token: 401/403 then ends only this stream, noted in the summary)
"""
from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Any, Callable
from urllib.parse import urlparse

from mastodon import Mastodon
from mastodon import errors as merr

from connectors.accounts import Account
from connectors.base import Connector, ErrorInfo, Page, Stream, Window
from connectors.records import Post, reading

PAGE_LIMIT = 40
ASSUMED_VERSION = "4.0.0"   # every endpoint used here exists since Mastodon 3.x


class _Text(HTMLParser):
    def __init__(self, mention_name: Callable[[str], str | None] | None = None):
        super().__init__()
        self.parts: list[str] = []
        self.mention_name = mention_name
        self._mention: tuple[str, int] | None = None     # (href, index of its first text part)

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "p") and self.parts:
            self.parts.append("\n")
        attrs = dict(attrs)
        if tag == "a" and self.mention_name and "mention" in (attrs.get("class") or "").split() \
                and "hashtag" not in (attrs.get("class") or "").split():
            self._mention = (attrs.get("href") or "", len(self.parts))

    def handle_endtag(self, tag):
        if tag == "a" and self._mention is not None:
            href, start = self._mention
            self._mention = None
            name = self.mention_name(href)
            if name:
                self.parts[start:] = [f"@{name}"]

    def handle_data(self, data):
        self.parts.append(data)


def mentioned_acct(href: str) -> str | None:
    """user@server of a mention link (https://server/@user or https://server/users/user)."""
    url = urlparse(href)
    found = re.fullmatch(r"/(?:@|users/)([^/@]+)(?:@([^/]+))?/?", url.path)
    if not found or not url.netloc:
        return None
    return f"{found.group(1)}@{found.group(2) or url.netloc}".lower()


def html_to_text(content: str | None, mention_name: Callable[[str], str | None] | None = None) -> str | None:
    """Plain text of a status. With mention_name, each mention link's text (Mastodon shows only
    @user) becomes @ + mention_name(href), so a mention names the account as the author column does."""
    if content is None:
        return None
    parser = _Text(mention_name)
    parser.feed(content)
    return html.unescape(re.sub(r"\n{2,}", "\n", "".join(parser.parts))).strip()


def instance_url(instance: str) -> str:
    return instance.rstrip("/") if "://" in instance else f"https://{instance.strip('/')}"


def _host(url: str) -> str:
    return urlparse(url).netloc.lower()


class MastodonConnector(Connector):
    source = "mastodon"
    platform = "mastodon"
    credentials_required = False

    def __init__(self, credentials, org_accounts, *, session=None, **kwargs):
        super().__init__(credentials, org_accounts, **kwargs)
        self._session = session
        self._clients: dict[str, Mastodon] = {}
        token_instance = credentials.get("MATURITY_MASTODON_INSTANCE")
        self.token_host = _host(instance_url(token_instance)) if token_instance else None
        # org accounts by full address user@host
        self.org_full = {self.full_acct(a.handle, self.base_url(a)): a.handle for a in self.org_accounts
                         if self._has_instance(a)}

    @staticmethod
    def _has_instance(account: Account) -> bool:
        return bool(account.instance) or "@" in account.handle

    def host(self, account: Account) -> str:
        try:
            return _host(self.base_url(account))
        except _NoInstance:
            return self.platform

    def base_url(self, account: Account) -> str:
        if account.instance:
            return instance_url(account.instance)
        if "@" in account.handle:
            return instance_url(account.handle.split("@", 1)[1])
        raise _NoInstance(f"no instance configured for {account.handle} (set instance = \"server\")")

    def mention_name(self, href: str) -> str | None:
        """A mention as the author column names that account: the configured handle of an org
        account, else user@server."""
        full = mentioned_acct(href)
        return self.org_full.get(full, full) if full else None

    @staticmethod
    def full_acct(acct: str, base_url: str) -> str:
        return acct.lower() if "@" in acct else f"{acct.lower()}@{_host(base_url)}"

    def token_for(self, base_url: str) -> str | None:
        token = self.credentials.get("MATURITY_MASTODON_ACCESS_TOKEN")
        # a token is only ever sent to the instance it was issued by
        return token if token and self.token_host == _host(base_url) else None

    def client(self, base_url: str) -> Mastodon:
        if base_url not in self._clients:
            api = Mastodon(api_base_url=base_url, access_token=self.token_for(base_url),
                           ratelimit_method="throw", request_timeout=30, version_check_mode="none",
                           mastodon_version=ASSUMED_VERSION,   # no extra /api/v1/instance round trip
                           session=self._session, user_agent="maturity-sync")
            self.limits.attach(api.session)
            self._clients[base_url] = api
        return self._clients[base_url]

    def resolve(self, account: Account) -> dict:
        base = self.base_url(account)
        api = self.client(base)
        local = account.handle.split("@", 1)[0] if "@" in account.handle and \
            _host(instance_url(account.handle.split("@", 1)[1])) == _host(base) else account.handle
        found = api.account_lookup(local)
        if found.get("suspended"):
            raise _Suspended(f"account {account.handle} is suspended")
        return {"id": str(found["id"]), "base_url": base, "api": api, "has_token": self.token_for(base) is not None}

    def streams(self, account: Account, context: dict) -> list[Stream]:
        mentions = NotificationMentionsStream if context["has_token"] else SearchMentionsStream
        return [StatusesStream(self, account, context), mentions(self, account, context)]

    def error_info(self, exc: BaseException) -> ErrorInfo | None:
        if isinstance(exc, _NoInstance):
            return ErrorInfo(None, str(exc), fatal_reason=str(exc))
        if isinstance(exc, _Suspended):
            return ErrorInfo(403, str(exc), fatal_reason=str(exc))
        if isinstance(exc, merr.MastodonRatelimitError):
            return ErrorInfo(429, "rate limited (429)", headers=self.limits.last_headers)
        if isinstance(exc, (merr.MastodonNetworkError, merr.MastodonReadTimeout)):
            return ErrorInfo(None, f"network error: {exc.args[0] if exc.args else exc}", transient_io=True)
        if isinstance(exc, merr.MastodonAPIError):
            status = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
            if status is None and "parse response as JSON" in str(exc.args[0] if exc.args else ""):
                return ErrorInfo(None, "malformed JSON in response", transient_io=True)
            detail = exc.args[3] if len(exc.args) > 3 and exc.args[3] else (exc.args[0] if exc.args else "")
            return ErrorInfo(status, f"HTTP {status}: {detail}")
        return None

    def to_post(self, status: Any, base_url: str, conversation: str | None = None) -> Post:
        with reading(self.platform, status.get("id") if isinstance(status, dict) else None):
            return self._to_post(status, base_url, conversation)

    def _to_post(self, status: Any, base_url: str, conversation: str | None) -> Post:
        full = self.full_acct(status["account"]["acct"], base_url)
        org_handle = self.org_full.get(full)
        author = org_handle or full
        return Post(platform=self.platform, post_id=str(status["id"]), author=author,
                    is_org_author=org_handle is not None, created_at=status["created_at"],
                    in_reply_to=str(status["in_reply_to_id"]) if status.get("in_reply_to_id") else None,
                    conversation_id=conversation or (None if status.get("in_reply_to_id") else str(status["id"])),
                    text=html_to_text(status.get("content"), self.mention_name),
                    has_media=bool(status.get("media_attachments")),
                    like_count=status.get("favourites_count"), repost_count=status.get("reblogs_count"),
                    reply_count=status.get("replies_count"))

    def context_posts(self, api: Mastodon, status_id: str, base_url: str) -> list[Post]:
        context = api.status_context(status_id)
        ancestors = list(context["ancestors"])
        root = str(ancestors[0]["id"]) if ancestors else str(status_id)
        return self.normalise(ancestors + list(context["descendants"]),
                              lambda s: self.to_post(s, base_url, conversation=root))


class _NoInstance(Exception):
    pass


class _Suspended(Exception):
    pass


class _MastodonStream(Stream):
    ascending = True
    cursor_name = "min_id"

    @property
    def api(self) -> Mastodon:
        return self.context["api"]

    def start_cursor(self, window: Window) -> str | None:
        if window.since is None:
            return None
        # Mastodon ids are (milliseconds since the epoch) << 16
        return str(int(window.since.timestamp() * 1000) << 16)


class StatusesStream(_MastodonStream):
    name = "statuses"
    timeline = True

    def fetch_page(self, cursor, token, window) -> Page:
        statuses = self.api.account_statuses(self.context["id"], min_id=cursor or "0", limit=PAGE_LIMIT)
        base = self.context["base_url"]
        return Page(self.connector.normalise(statuses, lambda s: self.connector.to_post(s, base)))

    def related(self, posts: list[Post]) -> list[Post]:
        found: list[Post] = []
        for post in posts:
            if post.in_reply_to or (post.reply_count or 0) > 0:
                found.extend(self.connector.context_posts(self.api, post.post_id, self.context["base_url"]))
        return found


class NotificationMentionsStream(_MastodonStream):
    """Mentions of the token's own account (configure the org account's token)."""
    name = "mentions"

    def fetch_page(self, cursor, token, window) -> Page:
        notes = self.api.notifications(types=["mention"], min_id=cursor or "0", limit=PAGE_LIMIT)
        base = self.context["base_url"]
        posts = self.connector.normalise([n["status"] for n in notes if n.get("status")],
                                         lambda s: self.connector.to_post(s, base))
        newest = max((int(n["id"]) for n in notes), default=None)
        return Page(posts, newest=str(newest) if newest is not None else None)


class SearchMentionsStream(_MastodonStream):
    """Without a token: the newest page of status search for `@acct` (newest first); the base keeps
    only statuses newer than the cursor. (Mastodon.py refuses min_id on search unless it has
    verified the server version, so this stream does not page.)"""
    name = "mentions"
    ascending = False
    api_applies_cursor = False
    cursor_name = "since_id"
    tolerated_status = frozenset({401, 403})   # status search needs a token on most servers

    def fetch_page(self, cursor, token, window) -> Page:
        found = self.api.search_v2(f"@{self.account.handle}", resolve=False, result_type="statuses",
                                   limit=PAGE_LIMIT)
        base = self.context["base_url"]
        return Page(self.connector.normalise(found["statuses"], lambda s: self.connector.to_post(s, base)))
