"""`maturity sync` and the nightly flow's live-platform step: pull new public activity of the
configured organisation accounts, one connector per platform, incrementally.

A platform without credentials is skipped with one line; a fatal error (unknown, suspended or
forbidden account, rejected credentials) skips that account only; retriable errors that persist
stop the account at its last committed page. All of it is listed in the returned summary.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Callable

from connectors.base import AccountResult, Clock, Connector, Window
from connectors.credentials import load_credentials
from pipeline.config import Config
from pipeline.store import LoadCounts

log = logging.getLogger("maturity.sync")

LIVE_KINDS = ("x", "reddit", "mastodon", "bluesky")
KIND_PLATFORM = {"x": "twitter", "reddit": "reddit", "mastodon": "mastodon", "bluesky": "bluesky"}


def _connector_class(kind: str) -> type[Connector]:
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
            out.append(f"{a.platform}:{a.account}: {a.status}, {a.posts} posts in {a.pages} pages{cap_note}{extra}")
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
         kinds: list[str] | None = None, env=None, dotenv_path=".env",
         connector_factory: Callable[..., Connector] | None = None, page_cap: int | None = None) -> SyncSummary:
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
        plat = KIND_PLATFORM[kind]
        all_org_accounts = [a for o in config.organisations for a in o.accounts if a.platform == plat]
        targets = [a for o in config.organisations if org is None or o.id == org
                   for a in o.accounts if a.platform == plat]
        if not targets:
            continue
        credentials = load_credentials(kind, env=env, dotenv_path=dotenv_path)
        cls = _connector_class(kind)
        if cls.credentials_required and not credentials.complete:
            reason = f"no credentials (set {', '.join(credentials.missing)})"
            summary.skipped[kind] = reason
            log.warning("%s: skipped - %s", kind, reason)
            continue
        kwargs = {"clock": clock}
        if page_cap is not None:
            kwargs["page_cap"] = page_cap
        connector = (connector_factory or cls)(credentials, all_org_accounts, **kwargs)
        run_id = store.start_run(kind, kind)
        summary.runs[kind] = run_id
        results = []
        for account in targets:
            results.append(connector.sync_account(store, account, source=kind, run_id=run_id, window=window))
        summary.accounts.extend(results)
        posts = sum(r.posts for r in results)
        problems = [r.message for r in results if r.status != "ok"]
        store.finish_run(run_id, LoadCounts(read=posts, loaded=posts),
                         status="ok" if not problems else "failed" if len(problems) == len(results) else "partial_failure",
                         message="; ".join(p for p in problems if p) or None)
    return summary


def summary_dict(summary: SyncSummary) -> dict:
    return summary.as_dict()


__all__ = ["SyncSummary", "sync", "configured_kinds", "LIVE_KINDS", "asdict"]
