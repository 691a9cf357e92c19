"""What every live connector shares: streams, error sorting, rate-limit backoff, page caps and the
incremental loop that advances a cursor in the same transaction as the rows it covers.

A platform connector (connectors/x.py, reddit.py, mastodon.py, bluesky.py) is a `Connector`
subclass that builds its client, resolves an account, lists its streams and maps its library's
exceptions to an `ErrorInfo`. A `Stream` declares its name, cursor name and page order and fetches
one page; everything else (retries, sleeping, caps, filtering, cursors) happens here.

Cursors are data handed in and handed back: `read_stream` starts from the saved state values the
caller passes (`Stream.state_names`: cursor, page token, pending) and yields one `PageBatch` per
page (posts, records set aside, the state values that page changed); it never reads or writes a
store. `commit_page` writes a batch into a `Sink` in one transaction, so a cursor never gets ahead
of the rows it covers. Every stream emits `Post`s, which the sink merges on (platform, post_id).

Page orders:
* ascending (Mastodon `min_id`): each page holds the posts just newer than the cursor; the cursor
  advances with every committed page, so a stopped sequence resumes from the last committed page.
* descending (X `since_id`, Reddit listings, Bluesky feeds): pages run newest -> oldest. Each page
  commits its rows plus the next page token and the newest position seen (`<stream>.pending`); the
  cursor itself moves to that position only when the sequence reaches its end (or known posts).
  A stopped sequence resumes from the saved page token with the old cursor.
Backfills (`since`/`until`) read and write no cursor and no page token.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping, Protocol, Sequence, TypeVar

from connectors.accounts import Account
from connectors.credentials import Credentials, install_log_redaction, redact
from connectors.records import MalformedRecord, Post, posts_to_batch, to_utc_naive
from connectors.sink import Rejection, Sink

log = logging.getLogger("maturity.connectors")
T = TypeVar("T")

DEFAULT_PAGE_CAP = 50          # pages per stream per run; logged when reached
DEFAULT_MAX_ATTEMPTS = 5       # tries per request for retriable errors
MAX_SLEEP_S = 15 * 60          # never sleep longer than one X rate-limit window at once
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0

# -- errors: sorted in one place ----------------------------------------------------------------
# Any other 4xx is fatal for the account (401/403 credentials or protected, 404/410 unknown or
# deleted account, 400 invalid handle...); `is_retriable` is the rule.
RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 522, 524})


def is_retriable(status: int | None, transient_io: bool = False) -> bool:
    if status is None:
        return transient_io
    return status in RETRIABLE_STATUS or 500 <= status < 600


class ConnectorError(RuntimeError):
    """A problem with one platform account; the message names both."""

    def __init__(self, platform: str, account: str, message: str, status: int | None = None):
        super().__init__(f"{platform} account {account}: {message}")
        self.platform, self.account, self.status, self.reason = platform, account, status, message


class RetriableError(ConnectorError):
    def __init__(self, platform: str, account: str, message: str, status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(platform, account, message, status)
        self.retry_after = retry_after


class FatalError(ConnectorError):
    """Skip this account for the rest of the run (other accounts continue)."""


class RetriesExhausted(ConnectorError):
    """A retriable error persisted; the account stops where its last page committed."""


class HostUnresolved(ConnectorError):
    """The platform's host name did not resolve (offline, DNS down, a mistyped instance): no retry
    can help, and every other account on that host would fail the same way, so the connector stops
    trying for the rest of the run."""


# What resolvers say when a name does not resolve (glibc, macOS, Windows, urllib3), for libraries
# that re-raise network errors as text (Mastodon.py) instead of chaining the socket.gaierror.
_UNRESOLVED_WORDS = re.compile(r"Name or service not known|nodename nor servname|Temporary failure in name "
                               r"resolution|getaddrinfo failed|No address associated with hostname|"
                               r"NameResolutionError|Failed to resolve", re.IGNORECASE)


def unresolved_host(exc: BaseException) -> str | None:
    """The error text when `exc` (or anything it wraps) is a failed host-name lookup, else None."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror) or _UNRESOLVED_WORDS.search(str(current)):
            return str(current)
        # requests and urllib3 wrap the lookup error in .reason or args rather than __cause__
        pending += [e for e in (current.__cause__, current.__context__, getattr(current, "reason", None),
                                *getattr(current, "args", ())) if isinstance(e, BaseException)]
    return None


class SyncInterrupted(RuntimeError):
    """A sleep was interrupted (stop requested); committed pages stay committed."""


@dataclass
class ErrorInfo:
    """A library exception reduced to what the classification needs."""
    status: int | None
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)
    transient_io: bool = False        # timeout, connection reset, truncated / malformed body
    fatal_reason: str | None = None   # e.g. "account suspended" (fatal whatever the status)


def generic_error_info(exc: BaseException) -> ErrorInfo | None:
    """Transport problems every HTTP library shares (requests, httpx, sockets, JSON parsing), and
    payloads a normaliser could not use (fatal: the same page would fail the same way again)."""
    import requests

    if isinstance(exc, MalformedRecord):
        return ErrorInfo(None, str(exc), fatal_reason=f"malformed payload: {exc}")

    if isinstance(exc, (requests.Timeout, TimeoutError, socket.timeout)):
        return ErrorInfo(None, f"timeout: {type(exc).__name__}", transient_io=True)
    if isinstance(exc, (requests.ConnectionError, ConnectionError)):
        return ErrorInfo(None, f"connection error: {type(exc).__name__}", transient_io=True)
    if isinstance(exc, (json.JSONDecodeError, requests.exceptions.JSONDecodeError)):
        return ErrorInfo(None, "malformed JSON in response", transient_io=True)
    try:
        import httpx
    except ImportError:  # pragma: no cover - atproto brings httpx
        httpx = None
    if httpx is not None and isinstance(exc, (httpx.TimeoutException, httpx.NetworkError,
                                              httpx.RemoteProtocolError)):
        return ErrorInfo(None, f"connection error: {type(exc).__name__}", transient_io=True)
    return None


# -- time: injectable so tests never sleep --------------------------------------------------------
class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall clock whose sleeps end early (raising SyncInterrupted) when `stop()` is called."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if self._stop.wait(max(0.0, seconds)):
            raise SyncInterrupted("sync stopped while waiting")

    def stop(self) -> None:
        self._stop.set()


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    for name in names:
        if lowered.get(name) not in (None, ""):
            return str(lowered[name])
    return None


def parse_reset(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds until the rate-limit window resets, from whichever header the platform sends:
    Retry-After (seconds or HTTP date), x-rate-limit-reset (X, epoch), x-ratelimit-reset (Reddit:
    seconds; Mastodon: ISO time), ratelimit-reset (Bluesky, epoch)."""
    retry_after = _header(headers, "retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = _header(headers, "x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")
    if reset is None:
        return None
    try:
        value = float(reset)
    except ValueError:
        try:
            moment = datetime.fromisoformat(reset.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return max(0.0, moment.timestamp() - now)
    return max(0.0, value - now) if value > 1e9 else max(0.0, value)


def parse_remaining(headers: Mapping[str, str]) -> float | None:
    value = _header(headers, "x-rate-limit-remaining", "x-ratelimit-remaining", "ratelimit-remaining")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def timeout_adapter(timeout: float = 30.0, rewrite: tuple[str, str] | None = None):
    """A requests adapter giving every request a timeout (tweepy sets none) and, for tests,
    optionally rewriting a URL prefix (e.g. https://api.twitter.com -> a loopback server)."""
    from requests.adapters import HTTPAdapter

    class _Adapter(HTTPAdapter):
        def send(self, request, **kwargs):
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            if rewrite is not None and request.url.startswith(rewrite[0]):
                request.url = rewrite[1] + request.url[len(rewrite[0]):]
            return super().send(request, **kwargs)

    return _Adapter()


class RateLimitObserver:
    """Watches every response of a requests.Session (a response hook) and remembers the last
    remaining/reset values, so the base can wait *before* a request that would be refused."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.remaining: float | None = None
        self.reset_at: float | None = None
        self.last_headers: dict[str, str] = {}

    def attach(self, session) -> None:
        session.hooks.setdefault("response", []).append(self._on_response)

    def _on_response(self, response, *args, **kwargs):
        self.observe(response.headers)
        return response

    def observe(self, headers: Mapping[str, str]) -> None:
        self.last_headers = dict(headers or {})
        remaining = parse_remaining(headers)
        delay = parse_reset(headers, self.clock.now())
        if remaining is not None:
            self.remaining = remaining
        if delay is not None:
            self.reset_at = self.clock.now() + delay

    def wait_needed(self) -> float:
        if self.remaining is not None and self.remaining <= 0 and self.reset_at is not None:
            return max(0.0, self.reset_at - self.clock.now())
        return 0.0


# -- pages and streams ----------------------------------------------------------------------------
@dataclass
class Page:
    records: list[Post]
    next_token: str | None = None     # more pages in this sequence
    newest: str | None = None         # cursor position this page reaches (default: max position)


@dataclass(frozen=True)
class Window:
    """A backfill window (UTC). Empty = incremental run driven by saved cursors."""
    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_backfill(self) -> bool:
        return self.since is not None or self.until is not None

    def contains(self, moment: datetime) -> bool:
        moment = to_utc_naive(moment)
        return ((self.since is None or moment >= to_utc_naive(self.since))
                and (self.until is None or moment < to_utc_naive(self.until)))


class Stream:
    """One kind of activity of one account. Declarations + a fetch hook; no loops."""

    name: ClassVar[str]
    cursor_name: ClassVar[str]                 # since_id, min_id, after, cursor...
    ascending: ClassVar[bool] = False          # see module docstring
    api_applies_cursor: ClassVar[bool] = True  # False: the base drops posts at/behind the cursor
    tolerated_status: ClassVar[frozenset[int]] = frozenset()  # fatal codes that end only this stream
    # the account's own posts: read to its end, this stream is the account's timeline, so a post it
    # did not return was not written (the evidence an absence stage needs)
    timeline: ClassVar[bool] = False

    def __init__(self, connector: "Connector", account: Account, context: Any):
        self.connector, self.account, self.context = connector, account, context

    @property
    def state_names(self) -> tuple[str, str, str]:
        """The names of this stream's saved state within its account: cursor, page token, pending."""
        return f"{self.name}.{self.cursor_name}", f"{self.name}.page_token", f"{self.name}.pending"

    def fetch_page(self, cursor: str | None, token: str | None, window: Window) -> Page:
        raise NotImplementedError

    def related(self, posts: list[Post]) -> list[Post]:
        """Posts fetched because of this page's posts (reply threads); loaded with the page."""
        return []

    def position(self, post: Post) -> Any:
        return int(post.post_id)

    def parse_cursor(self, value: str) -> Any:
        return int(value)

    def format_cursor(self, position: Any) -> str:
        return str(position)

    def start_cursor(self, window: Window) -> str | None:
        """Ascending streams: where a backfill starts."""
        return None


# -- what a stream yields and what a sync reports ---------------------------------------------------
@dataclass
class PageBatch:
    """What one fetched page commits, all in one sink transaction: its posts (with their related
    posts, once each), the records set aside from it, and the stream state values it changed."""
    posts: list[Post]
    rejected: list[Rejection]
    cursors: dict[str, str | None]    # state name -> new value; empty for backfills
    position: str | None              # the stream's cursor after this page
    more: bool                        # another page follows in this sequence


@dataclass
class StreamResult:
    stream: str
    pages: int = 0
    posts: int = 0
    capped: bool = False
    cursor: str | None = None
    note: str | None = None
    rejected: int = 0                 # payloads set aside as malformed (recorded in rejected_rows)
    timeline: bool = False            # Stream.timeline
    oldest: datetime | None = None    # the oldest of the stream's own records read (UTC, naive)


@dataclass
class AccountResult:
    source: str
    platform: str
    account: str
    status: str = "ok"                # ok, fatal, failed
    posts: int = 0
    pages: int = 0
    message: str | None = None
    streams: list[StreamResult] = field(default_factory=list)

    @property
    def read_timeline(self) -> bool:
        """The account's timeline was read to its end this run: status ok and every timeline stream ran
        without reaching the page cap or being skipped."""
        streams = [s for s in self.streams if s.timeline]
        return self.status == "ok" and bool(streams) and not any(s.capped or s.note for s in streams)

    @property
    def oldest_own_post(self) -> datetime | None:
        found = [s.oldest for s in self.streams if s.timeline and s.oldest is not None]
        return min(found) if found else None

    def as_dict(self) -> dict:
        return asdict(self)


# -- the connector base ---------------------------------------------------------------------------
class Connector:
    source: ClassVar[str]            # sync_state / ingest_runs source, e.g. "x"
    platform: ClassVar[str]          # posts.platform, e.g. "twitter"
    credentials_required: ClassVar[bool] = True

    def __init__(self, credentials: Credentials, org_accounts: Sequence[Account], *,
                 clock: Clock | None = None, page_cap: int = DEFAULT_PAGE_CAP,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS):
        self.credentials = credentials
        self.org_accounts = list(org_accounts)
        self.org_handles = {a.handle.lower() for a in self.org_accounts}
        self.clock = clock or SystemClock()
        self.page_cap = page_cap
        self.max_attempts = max_attempts
        self.limits = RateLimitObserver(self.clock)
        self._secrets = credentials.secrets()
        self.rejected: list[MalformedRecord] = []      # set aside by normalise() since the last page
        self.unresolved: dict[str, str] = {}           # host -> why its name did not resolve this run
        install_log_redaction(self._secrets)

    # hooks ----------------------------------------------------------------------------------
    def host(self, account: Account) -> str:
        """The host an account's requests go to; one per platform unless a connector says otherwise
        (Mastodon: the account's instance)."""
        return self.platform

    def resolve(self, account: Account) -> Any:
        """Look the account up (user id...). Raise via the library; errors are classified."""
        return None

    def streams(self, account: Account, context: Any) -> list[Stream]:
        raise NotImplementedError

    def error_info(self, exc: BaseException) -> ErrorInfo | None:
        return None

    # helpers ---------------------------------------------------------------------------------
    def normalise(self, items: Iterable[Any], convert: Callable[[Any], Post]) -> list[Post]:
        """The posts of a page. A payload the normaliser cannot use (MalformedRecord: platform, record
        id, field) is set aside, to be recorded in rejected_rows with the page, and the rest loads:
        one odd record must not stop an account's sync night after night."""
        posts = []
        for item in items:
            try:
                posts.append(convert(item))
            except MalformedRecord as exc:
                log.warning("%s (record set aside; recorded in rejected_rows)", exc)
                self.rejected.append(exc)
        return posts

    def is_org(self, handle: str | None) -> bool:
        return bool(handle) and handle.lower() in self.org_handles

    def clean(self, text: str) -> str:
        return redact(text, self._secrets)

    def classify(self, exc: BaseException, account: Account) -> ConnectorError:
        """The one place errors are sorted into retriable and fatal."""
        if isinstance(exc, ConnectorError):
            return exc
        unresolved = unresolved_host(exc)
        if unresolved is not None:
            return HostUnresolved(self.platform, account.handle,
                                  self.clean(f"cannot resolve the platform's host name (offline, DNS, or a "
                                             f"mistyped instance?): {unresolved}"))
        info = self.error_info(exc) or generic_error_info(exc)
        handle = account.handle
        if info is None:
            return FatalError(self.platform, handle,
                              self.clean(f"unexpected {type(exc).__name__}: {exc}"))
        message = self.clean(info.message)
        if info.fatal_reason:
            return FatalError(self.platform, handle, self.clean(info.fatal_reason), info.status)
        if is_retriable(info.status, info.transient_io):
            delay = parse_reset(info.headers, self.clock.now()) if info.headers else None
            if delay is None and info.status == 429 and self.limits.reset_at is not None:
                delay = max(0.0, self.limits.reset_at - self.clock.now())
            return RetriableError(self.platform, handle, message, info.status, delay)
        what = {401: "credentials rejected (401)", 403: "access forbidden (403): protected, suspended "
                "or not permitted", 404: "account or resource not found (404)",
                410: "gone (410)"}.get(info.status, f"HTTP {info.status}" if info.status else "error")
        return FatalError(self.platform, handle, f"{what}: {message}", info.status)

    def _sleep(self, seconds: float, why: str) -> None:
        seconds = min(max(seconds, 0.0), MAX_SLEEP_S)
        log.warning("%s: sleeping %.0f s (%s)", self.platform, seconds, why)
        self.clock.sleep(seconds)

    def call(self, account: Account, what: str, fn: Callable[[], T]) -> T:
        """Run one request with rate-limit waits and bounded retries of retriable errors."""
        for attempt in range(1, self.max_attempts + 1):
            wait = self.limits.wait_needed()
            if wait > 0:
                self._sleep(wait + 1, f"{account.handle} {what}: rate-limit window exhausted, until reset")
                self.limits.remaining = None
            try:
                return fn()
            except SyncInterrupted:
                raise
            except Exception as exc:  # noqa: BLE001 - every library error is classified here
                error = self.classify(exc, account)
                if not isinstance(error, RetriableError):
                    raise error from None
                if attempt == self.max_attempts:
                    raise RetriesExhausted(self.platform, account.handle,
                                           f"{what}: gave up after {attempt} attempts: {error.reason}",
                                           error.status) from None
                if error.retry_after is not None:
                    delay, why = error.retry_after + 1, "rate limited, until reset"
                else:
                    delay, why = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S), "backoff"
                self._sleep(delay, f"{account.handle} {what}: {error.reason}; {why}, "
                                   f"attempt {attempt}/{self.max_attempts}")
        raise AssertionError("unreachable")

    # the incremental loop --------------------------------------------------------------------
    def sync_account(self, sink: Sink, account: Account, *, cursors: Mapping[str, str | None],
                     source: str, run_id: int | None, window: Window = Window()) -> AccountResult:
        """Sync every stream of one account from its saved `cursors` (state name -> value, as
        `Stream.state_names` names them; ignored by backfills)."""
        result = AccountResult(source, self.platform, account.handle)
        if self.host(account) in self.unresolved:
            result.status, result.message = "failed", f"not tried: {self.unresolved[self.host(account)]}"
            return result
        try:
            context = self.call(account, "resolve account", lambda: self.resolve(account))
            for stream in self.streams(account, context):
                stream_result = StreamResult(stream.name, timeline=stream.timeline)
                result.streams.append(stream_result)
                try:
                    self.sync_stream(sink, stream, cursors=cursors, source=source, run_id=run_id,
                                     window=window, out=stream_result)
                except FatalError as exc:
                    if exc.status not in stream.tolerated_status:
                        raise
                    stream_result.note = str(exc)
                    log.info("%s (stream skipped; tolerated)", exc)
        except FatalError as exc:
            result.status, result.message = "fatal", str(exc)
            log.error("%s (account skipped for this run)", exc)
        except RetriesExhausted as exc:
            result.status, result.message = "failed", str(exc)
            log.error("%s (resumes from the last committed page next run)", exc)
        except HostUnresolved as exc:
            # failed, not fatal: the account resumes from its cursors once the host resolves again
            result.status, result.message = "failed", str(exc)
            self.unresolved[self.host(account)] = exc.reason
            log.error("%s (no other account on this host is tried this run)", exc)
        result.posts = sum(s.posts for s in result.streams)
        result.pages = sum(s.pages for s in result.streams)
        return result

    def sync_stream(self, sink: Sink, stream: Stream, *, cursors: Mapping[str, str | None],
                    source: str | None = None, run_id: int | None = None, window: Window = Window(),
                    out: StreamResult | None = None) -> StreamResult:
        """Read the stream and commit each page as it arrives."""
        out = out if out is not None else StreamResult(stream.name)
        source = source or self.source
        for batch in self.read_stream(stream, cursors, window, out):
            commit_page(sink, batch, source=source, account=stream.account.key, run_id=run_id)
            out.posts += len(batch.posts)
            out.rejected += len(batch.rejected)
            out.cursor = batch.position
            log.info("%s %s %s: page %d, %d posts%s", self.platform, stream.account.handle, stream.name,
                     out.pages, len(batch.posts), ", more pages" if batch.more else "")
        return out

    def read_stream(self, stream: Stream, cursors: Mapping[str, str | None], window: Window,
                    out: StreamResult) -> Iterator[PageBatch]:
        """One PageBatch per fetched page, from the saved `cursors` on. Counts the pages fetched
        and notes a reached page cap in `out`; writes nothing (the caller commits each batch)."""
        account = stream.account
        names = stream.state_names
        incremental = not window.is_backfill
        if incremental:
            saved = {n: cursors.get(n) for n in names}
            cursor, token, pending = (saved[n] for n in names)
        else:
            saved = {}
            cursor, token, pending = (stream.start_cursor(window) if stream.ascending else None), None, None
        done = False
        while not done:
            if out.pages >= self.page_cap:
                out.capped = True
                log.warning("%s %s %s: page cap of %d reached; %s", self.platform, account.handle,
                            stream.name, self.page_cap, "the next run resumes from the last committed page"
                            if incremental else "backfill stopped early")
                return
            def fetch_page():
                self.rejected = []        # a retried fetch normalises its page again
                return stream.fetch_page(cursor, token, window)

            page = self.call(account, f"{stream.name} page {out.pages + 1}", fetch_page)
            out.pages += 1
            records = list(page.records)
            reached_known = False
            if not stream.ascending and cursor is not None and not stream.api_applies_cursor:
                known = stream.parse_cursor(cursor)
                fresh = [r for r in records if stream.position(r) > known]
                reached_known = len(fresh) < len(records)
                records = fresh
            newest = page.newest
            if newest is None and records:
                newest = stream.format_cursor(max(stream.position(r) for r in records))
            if window.is_backfill:
                before = [r for r in records if window.since is not None and not window.contains(r.created_at)
                          and to_utc_naive(r.created_at) < to_utc_naive(window.since)]
                after = [r for r in records if window.until is not None
                         and to_utc_naive(r.created_at) >= to_utc_naive(window.until)]
                records = [r for r in records if window.contains(r.created_at)]
                if (before and not stream.ascending) or (after and stream.ascending):
                    reached_known = True   # ordered pages have left the window
            if records:
                oldest = min(to_utc_naive(r.created_at) for r in records)
                out.oldest = oldest if out.oldest is None else min(out.oldest, oldest)
            related = self.call(account, f"{stream.name} replies", lambda: stream.related(records)) \
                if records else []
            posts = {p.post_id: p for p in records + related}   # one row per post per page
            if stream.ascending:
                next_cursor = newest if newest is not None else cursor
                done = (not page.records and page.next_token is None) or reached_known
                next_token = None if done else page.next_token
                updates = {names[0]: next_cursor, names[1]: next_token}
                cursor, token = next_cursor, next_token
            else:
                if newest is not None and (pending is None or
                                           stream.parse_cursor(newest) > stream.parse_cursor(pending)):
                    pending = newest
                done = page.next_token is None or reached_known
                if done:
                    final = pending if pending is not None else cursor
                    updates = {names[0]: final, names[1]: None, names[2]: None}
                    cursor = final
                else:
                    updates = {names[1]: page.next_token, names[2]: pending}
                token = None if done else page.next_token
            rejected = {str(exc): exc for exc in self.rejected}      # once each, related pages included
            self.rejected = []
            # only changed values are written, so a re-run with nothing new changes nothing
            changed = {n: v for n, v in updates.items() if saved.get(n) != v} if incremental else {}
            saved.update(changed)
            yield PageBatch(posts=list(posts.values()),
                            rejected=[(None, exc.field, self.clean(message), None)
                                      for message, exc in rejected.items()],
                            cursors=changed, position=cursor, more=not done)


def commit_page(sink: Sink, batch: PageBatch, *, source: str, account: str, run_id: int | None) -> None:
    """The one place a page is written: its posts, the records set aside from it and the cursor
    values covering it, in one sink transaction."""
    with sink.transaction():
        if batch.posts:
            sink.load_posts(posts_to_batch(batch.posts), source=source, run_id=run_id)
        sink.reject(run_id, source, batch.rejected)
        for name, value in batch.cursors.items():
            sink.set_cursor(source, account, name, value)


def parse_time(value: Any) -> datetime:
    """Aware UTC datetime from a datetime or an ISO 8601 string (with Z)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
