"""Plain, tested functions the nightly flow's tasks wrap. Each opens the store it needs."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from connectors.twcs import import_twcs
from features.runner import build_features
from pipeline.config import Config, Source, apply_config
from pipeline.store import Store


@dataclass
class SourceResult:
    name: str
    kind: str
    path: str | None
    status: str                 # ok, skipped, failed
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    seconds: float = 0.0
    message: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


FILE_IMPORTERS = {"twcs": import_twcs}


def prepare_store(db_path: str, config: Config) -> None:
    """Apply migrations and write the configured organisations and accounts."""
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        apply_config(store, config)


def ingest_source(db_path: str, source: Source, keep_customer_text: bool = False) -> SourceResult:
    """Load one configured source. A missing optional file is skipped with a note, never a crash."""
    result = SourceResult(name=source.name or source.kind, kind=source.kind,
                          path=str(source.path) if source.path else None, status="ok")
    started = time.perf_counter()
    importer = FILE_IMPORTERS.get(source.kind)
    if importer is None:
        result.status, result.message = "skipped", f"no importer for source kind {source.kind!r} yet"
        return result
    if source.path is None or not Path(source.path).exists():
        if source.required:
            result.status, result.message = "failed", f"file not found: {source.path}"
        else:
            result.status, result.message = "skipped", f"optional file not present: {source.path}"
        return result
    with Store(db_path, keep_customer_text=keep_customer_text) as store:
        try:
            _, counts = importer(store, source.path)
        except Exception as exc:  # reported per source; other sources still load
            result.status, result.message = "failed", str(exc)
        else:
            result.read, result.loaded, result.rejected = counts.read, counts.loaded, counts.rejected
    result.seconds = round(time.perf_counter() - started, 3)
    return result


@dataclass
class FeatureResult:
    as_of: datetime
    accounts: int
    organisations: int
    seconds: float
    windows: list[int] = field(default_factory=list)


def compute_features(db_path: str, as_of: datetime | None, windows: tuple[int, ...] = (0,)) -> FeatureResult:
    started = time.perf_counter()
    with Store(db_path) as store:
        as_of = build_features(store, as_of, windows=windows)
        accounts, orgs = store.con.execute(
            "select count(distinct (platform, account)) filter (where scope = 'account'), "
            "count(distinct org_id) filter (where scope = 'org') from features where as_of = ?",
            [as_of]).fetchone()
    return FeatureResult(as_of, accounts, orgs, round(time.perf_counter() - started, 3), list(windows))


def unassigned_accounts(db_path: str) -> list[str]:
    """Org accounts seen in data that no configured organisation claims."""
    with Store(db_path) as store:
        rows = store.con.execute(
            "select platform || ':' || handle from accounts where org_id is null order by 1").fetchall()
    return [r[0] for r in rows]
