"""`maturity sync` and the nightly flow's live-platform step: pull new public activity of the
configured organisation accounts, one connector per platform, incrementally.

A platform without credentials is skipped with one line; a fatal error (unknown, suspended or
forbidden account, rejected credentials) skips that account only; retriable errors that persist
stop the account at its last committed page. All of it is listed in the returned summary.

Connectors are given each account's saved cursors and commit pages with the cursors covering
them into a sink (connectors/sink.py). `sync` reads the cursors from the store and gives it the
store as the sink: it writes as it pulls (the `maturity sync` command). The nightly flow pulls per
organisation with `pull_org`, which may run on another process or machine: it gets the cursors as a
snapshot and records every transaction the connector commits in a `BufferedStore`; `apply_pull`
replays them in the single writer, one DuckDB transaction each.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Iterator, Mapping

import pyarrow as pa

from connectors.accounts import Account
from connectors.base import AccountResult, Clock, Connector, Window
from connectors.records import to_utc_naive
from connectors.credentials import Credentials, load_credentials
from connectors.sink import LoadCounts, Rejection, Sink
from pipeline.config import Config
from pipeline.store import utcnow

log = logging.getLogger("maturity.sync")

CursorKey = tuple[str, str, str]   # (source, account key, cursor name), as in sync_state

LIVE_KINDS = ("x", "reddit", "mastodon", "bluesky")
KIND_PLATFORM = {"x": "twitter", "reddit": "reddit", "mastodon": "mastodon", "bluesky": "bluesky"}


def _connector_class(kind: str) -> type[Connector]:
    # imported on demand: each platform library takes up to a second to import, and a run needs
    # only the configured ones
    if kind == "x":
        from connectors.x import XConnector
        return XConnector
    if kind == "reddit":
        from connectors.reddit import RedditConnector
        return RedditConnector
    if kind == "mastodon":
        from connectors.mastodon import MastodonConnector
        return MastodonConnector
    if kind == "bluesky":
        from connectors.bluesky import BlueskyConnector
        return BlueskyConnector
    raise ValueError(f"unknown live source kind {kind!r} (expected one of: {', '.join(LIVE_KINDS)})")


class MissingCredentials(RuntimeError):
    """A live kind whose required credentials are not set here; `reason` is the summary's note."""

    def __init__(self, kind: str, credentials: Credentials):
        variables = ", ".join(credentials.missing)
        self.reason = f"no credentials (set {variables})"
        super().__init__(f"{kind}: no credentials on this machine (set {variables})")


def _credentials(kind: str, *, env, dotenv_path) -> Credentials:
    """The kind's credentials; MissingCredentials when a required one is not set."""
    credentials = load_credentials(kind, env=env, dotenv_path=dotenv_path)
    if _connector_class(kind).credentials_required and not credentials.complete:
        raise MissingCredentials(kind, credentials)
    return credentials


def build_connector(kind: str, config: Config, *, clock: Clock | None = None, page_cap: int | None = None,
                    env=None, dotenv_path=".env") -> Connector:
    """The connector of one live kind. It knows every organisation's accounts on the platform, so
    replies between organisations stay organisation posts."""
    credentials = _credentials(kind, env=env, dotenv_path=dotenv_path)
    org_accounts = [a for o in config.organisations for a in o.accounts if a.platform == KIND_PLATFORM[kind]]
    options = {"clock": clock} if page_cap is None else {"clock": clock, "page_cap": page_cap}
    return _connector_class(kind)(credentials, org_accounts, **options)


@dataclass
class SyncSummary:
    accounts: list[AccountResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)     # platform kind -> reason
    runs: dict[str, int] = field(default_factory=dict)        # kind -> ingest run id

    @property
    def fatal(self) -> list[str]:
        return [a.message or "" for a in self.accounts if a.status == "fatal"]

    @property
    def failed(self) -> list[str]:
        return [a.message or "" for a in self.accounts if a.status == "failed"]

    @property
    def posts(self) -> int:
        return sum(a.posts for a in self.accounts)

    @property
    def status(self) -> str:
        if not self.accounts:
            return "skipped"
        bad = [a for a in self.accounts if a.status != "ok"]
        return "ok" if not bad else ("failed" if len(bad) == len(self.accounts) else "partial_failure")

    def as_dict(self) -> dict:
        return {"status": self.status, "posts": self.posts, "skipped": dict(self.skipped),
                "fatal": self.fatal, "failed": self.failed, "runs": dict(self.runs),
                "accounts": [a.as_dict() for a in self.accounts]}

    def lines(self) -> list[str]:
        out = [f"{kind}: skipped - {reason}" for kind, reason in self.skipped.items()]
        for a in self.accounts:
            extra = f" ({a.message})" if a.message else ""
            capped = [s.stream for s in a.streams if s.capped]
            cap_note = f" [page cap reached: {', '.join(capped)}]" if capped else ""
            rejected = sum(s.rejected for s in a.streams)
            reject_note = f", {rejected} malformed records set aside (rejected_rows)" if rejected else ""
            out.append(f"{a.platform}:{a.account}: {a.status}, {a.posts} posts in {a.pages} pages"
                       f"{reject_note}{cap_note}{extra}")
        return out


def configured_kinds(config: Config) -> list[str]:
    """Live source kinds listed as [[source]] in the config, in order, once each."""
    seen: list[str] = []
    for source in config.sources:
        if source.kind in LIVE_KINDS and source.kind not in seen:
            seen.append(source.kind)
    return seen


def sync(store, config: Config, platform: str | None = None, org: str | None = None,
         since: datetime | None = None, until: datetime | None = None, *, clock: Clock | None = None,
         kinds: list[str] | None = None, env=None, dotenv_path=".env", page_cap: int | None = None) -> SyncSummary:
    """Sync the configured accounts of every live source kind (or `platform` only, accepting
    x/twitter), optionally one organisation, incrementally or as a since/until backfill."""
    if platform is not None:
        platform = {"twitter": "x"}.get(platform.lower(), platform.lower())
        if platform not in LIVE_KINDS:
            raise ValueError(f"unknown platform {platform!r} (expected one of: {', '.join(LIVE_KINDS)})")
    if org is not None and org not in {o.id for o in config.organisations}:
        raise ValueError(f"unknown organisation {org!r} (not in {config.path or 'the config'})")
    if since and until and until <= since:
        raise ValueError("--until must be after --since")
    kinds = kinds if kinds is not None else (configured_kinds(config) or list(LIVE_KINDS))
    if platform is not None:
        kinds = [platform]
    window = Window(since, until)
    summary = SyncSummary()
    for kind in kinds:
        targets = [a for o in config.organisations if org is None or o.id == org
                   for a in o.accounts if a.platform == KIND_PLATFORM[kind]]
        if not targets:
            continue
        try:
            connector = build_connector(kind, config, clock=clock, page_cap=page_cap, env=env,
                                        dotenv_path=dotenv_path)
        except MissingCredentials as exc:
            summary.skipped[kind] = exc.reason
            log.warning("%s: skipped - %s", kind, exc.reason)
            continue
        run_id = store.start_run(kind, kind)
        summary.runs[kind] = run_id
        cursors = saved_cursors(store, [(kind, a.key) for a in targets])
        started = utcnow()
        results = sync_accounts(connector, store, targets, cursors, source=kind, run_id=run_id, window=window)
        summary.accounts.extend(results)
        record_timeline_reads(store, TimelineReads(kind, run_id, started, window, cursors, targets, results))
        finish_kind_run(store, run_id, results)
    return summary


def sync_accounts(connector: Connector, sink: Sink, accounts: list[Account], cursors: Mapping[CursorKey, str | None],
                  *, source: str, run_id: int | None, window: Window = Window()) -> list[AccountResult]:
    """Sync each account from its saved cursors, the connector committing into `sink`."""
    return [connector.sync_account(sink, account, cursors=account_cursors(cursors, source, account.key),
                                   source=source, run_id=run_id, window=window)
            for account in accounts]


@dataclass
class TimelineReads:
    """One platform kind's account reads of one run, as record_timeline_reads needs them: `accounts`
    and `results` in the same order, `cursors` as the reads started from, `started` before the first read."""
    source: str
    run_id: int | None
    started: datetime
    window: Window
    cursors: Mapping[CursorKey, str | None]
    accounts: list[Account]
    results: list[AccountResult]


def record_timeline_reads(store, reads: TimelineReads) -> None:
    """Record the period each account's timeline was read to its end (Store.record_timeline_read): a
    backfill covers its window; an incremental read from saved cursors continues the stored period up
    to when the run started; a first read reaches back to its oldest own post (to the platform's start
    when it returned none: the account never posted)."""
    window = reads.window
    for account, result in zip(reads.accounts, reads.results):
        if not result.read_timeline:
            continue
        if window.is_backfill:
            read_from, continues = window.since, False
        else:
            continues = bool(account_cursors(reads.cursors, reads.source, account.key))
            read_from = result.oldest_own_post
        through = reads.started if window.until is None else min(to_utc_naive(window.until), reads.started)
        store.record_timeline_read(reads.source, result.platform, account.key,
                                   to_utc_naive(read_from) if read_from else None, through, reads.run_id, continues)


def finish_kind_run(store, run_id: int, results: list[AccountResult], crashed: list[str] = ()) -> None:
    """Close one platform's ingest run: ok, partial_failure or failed, listing every problem
    (`crashed`: organisations whose whole pull raised, so they have no account results)."""
    posts = sum(r.posts for r in results)
    problems = [r.message or f"{r.platform}:{r.account}: {r.status}" for r in results if r.status != "ok"]
    problems += list(crashed)
    attempts = len(results) + len(crashed)
    status = "ok" if not problems else "failed" if len(problems) == attempts else "partial_failure"
    store.finish_run(run_id, LoadCounts(read=posts, loaded=posts), status=status,
                     message="; ".join(problems) or None)


def live_kinds_ready(config: Config, *, env=None, dotenv_path=".env") -> tuple[list[str], dict[str, str]]:
    """The configured live kinds that can run here, and the skipped ones with the reason."""
    ready, skipped = [], {}
    for kind in configured_kinds(config):
        try:
            _credentials(kind, env=env, dotenv_path=dotenv_path)
        except MissingCredentials as exc:
            skipped[kind] = exc.reason
            log.warning("%s: skipped - %s", kind, exc.reason)
        else:
            ready.append(kind)
    return ready, skipped


# -- per-organisation pulls for the nightly flow -------------------------------------------------


@dataclass
class Commit:
    """What one connector transaction committed: post batches (with source and ingest run), records
    set aside as malformed, and the cursor values that cover them."""
    batches: list[tuple[pa.Table, str, int | None]] = field(default_factory=list)
    rejected: list[tuple[int | None, str, list[Rejection]]] = field(default_factory=list)
    cursors: dict[CursorKey, str | None] = field(default_factory=dict)


class BufferedStore:
    """The sink of a pull: each transaction the connector commits is recorded, in order, for the
    writer to replay (`apply_pull`)."""

    def __init__(self) -> None:
        self.commits: list[Commit] = []
        self._open: Commit | None = None

    def set_cursor(self, source: str, account: str, cursor_name: str, value: str | None) -> None:
        self._current().cursors[(source, account, cursor_name)] = value

    def load_posts(self, batch: pa.Table, *, source: str, run_id: int | None) -> int:
        self._current().batches.append((batch, source, run_id))
        return batch.num_rows

    def reject(self, run_id: int | None, source: str, rows: list[Rejection]) -> None:
        if rows:
            self._current().rejected.append((run_id, source, rows))

    @contextmanager
    def transaction(self) -> Iterator["BufferedStore"]:
        self._open = Commit()
        try:
            yield self
        except BaseException:
            self._open = None   # like a rollback: nothing from this transaction is kept
            raise
        commit, self._open = self._open, None
        self.commits.append(commit)

    def _current(self) -> Commit:
        if self._open is None:
            raise RuntimeError("connectors write posts and cursors inside sink.transaction()")
        return self._open


@dataclass
class OrgPull:
    org: str
    commits: list[Commit]
    reads: list[TimelineReads]     # per platform kind: its accounts and their results

    @property
    def accounts(self) -> list[AccountResult]:
        return [result for kind in self.reads for result in kind.results]


def saved_cursors(store, accounts: Iterable[tuple[str, str]]) -> dict[CursorKey, str | None]:
    """The saved sync_state values of the given (source, account key) pairs."""
    keys = list(accounts)
    if not keys:
        return {}
    rows = store.con.execute(
        "select source, account, cursor_name, cursor_value from sync_state "
        "where (source, account) in (select unnest(?::varchar[]), unnest(?::varchar[]))",
        [[k for k, _ in keys], [a for _, a in keys]]).fetchall()
    return {(source, account, name): value for source, account, name, value in rows}


def account_cursors(cursors: Mapping[CursorKey, str | None], source: str, account_key: str) -> dict[str, str | None]:
    """One account's cursors (state name -> value), as a connector is given them."""
    return {name: value for (s, a, name), value in cursors.items() if s == source and a == account_key}


def cursor_snapshot(store, config: Config, org_id: str, kinds: list[str]) -> dict[CursorKey, str | None]:
    """The saved cursors of one organisation's accounts on the given live kinds."""
    return saved_cursors(store, [(kind, a.key) for kind in kinds for a in config.org(org_id).accounts
                                 if a.platform == KIND_PLATFORM[kind]])


def pull_org(config: Config, org_id: str, kinds: list[str], cursors: dict[CursorKey, str | None],
             runs: dict[str, int], *, clock: Clock | None = None, env=None, dotenv_path=".env") -> OrgPull:
    """Pull one organisation's accounts on the given live kinds, incrementally from `cursors`,
    without opening the database: returns the committed work for `apply_pull`. Re-running it from
    the same cursors fetches the same pages, so it is safe to retry."""
    buffer = BufferedStore()
    reads = []
    for kind in kinds:
        targets = [a for a in config.org(org_id).accounts if a.platform == KIND_PLATFORM[kind]]
        if targets:
            connector = build_connector(kind, config, clock=clock, env=env, dotenv_path=dotenv_path)
            started = utcnow()
            results = sync_accounts(connector, buffer, targets, cursors, source=kind, run_id=runs[kind])
            reads.append(TimelineReads(kind, runs[kind], started, Window(), cursors, targets, results))
    return OrgPull(org_id, buffer.commits, reads)


def apply_pull(store, pull: OrgPull) -> int:
    """Write a pull's committed work in order, each connector transaction as one DuckDB transaction
    (rows and the cursors covering them together). Returns the posts written."""
    written = 0
    for commit in pull.commits:
        with store.transaction():
            for batch, source, run_id in commit.batches:
                written += store.load_posts(batch, source=source, run_id=run_id)
            for run_id, source, rows in commit.rejected:
                store.reject(run_id, source, rows)
            for (source, account, name), value in commit.cursors.items():
                store.set_cursor(source, account, name, value)
    with store.transaction():
        for reads in pull.reads:
            record_timeline_reads(store, reads)
    return written


__all__ = ["SyncSummary", "sync", "configured_kinds", "LIVE_KINDS", "pull_org", "apply_pull", "cursor_snapshot",
           "live_kinds_ready", "finish_kind_run", "OrgPull", "BufferedStore", "build_connector", "sync_accounts",
           "saved_cursors", "account_cursors", "MissingCredentials", "TimelineReads", "record_timeline_reads"]
