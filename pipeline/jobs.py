"""Plain, tested functions the nightly flow's tasks wrap. Each opens the store it needs."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from connectors.facebook_pages import import_facebook_pages
from connectors.sp500 import import_sp500
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


FILE_IMPORTERS = {"twcs": import_twcs, "sp500": import_sp500, "facebook_pages": import_facebook_pages}


def _import_synthetic(store: Store, source: Source):
    from connectors.synthetic import import_synthetic
    run_id, counts, _ = import_synthetic(store, source.seed if source.seed is not None else 7,
                                         source.orgs or 40, source=source.name or "synthetic")
    return run_id, counts


# Sources that generate their data instead of reading a file.
GENERATED_IMPORTERS = {"synthetic": _import_synthetic}


def prepare_store(db_path: str, config: Config) -> None:
    """Apply migrations and write the configured organisations and accounts."""
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        apply_config(store, config)


def ingest_source(db_path: str, source: Source, keep_customer_text: bool = False) -> SourceResult:
    """Load one configured source. A missing optional file is skipped with a note, never a crash."""
    result = SourceResult(name=source.name or source.kind, kind=source.kind,
                          path=str(source.path) if source.path else None, status="ok")
    started = time.perf_counter()
    if source.kind in GENERATED_IMPORTERS:
        with Store(db_path, keep_customer_text=keep_customer_text) as store:
            try:
                _, counts = GENERATED_IMPORTERS[source.kind](store, source)
            except Exception as exc:  # reported per source; other sources still load
                result.status, result.message = "failed", str(exc)
            else:
                result.read, result.loaded, result.rejected = counts.read, counts.loaded, counts.rejected
        result.seconds = round(time.perf_counter() - started, 3)
        return result
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


def sync_live(db_path: str, config: Config) -> dict:
    """Incremental pull from the live platforms listed as [[source]] kinds x/reddit/mastodon/bluesky
    (pipeline/sync.py); per-account results, skipped platforms and fatal errors in the dict."""
    from pipeline.sync import configured_kinds, sync

    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        return sync(store, config, kinds=configured_kinds(config)).as_dict()


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


def estimate_stages(db_path: str, as_of: datetime | None = None, run_id: str | None = None) -> dict:
    """Maturity estimates for every organisation x model (stored per as_of); returns counts by status."""
    from models.estimate import estimate_store

    started = time.perf_counter()
    with Store(db_path) as store:
        if store.count("organisations") == 0:
            return {"as_of": as_of, "estimates": 0, "statuses": {}, "seconds": 0.0,
                    "note": "no organisations configured; nothing to estimate"}
        rows, as_of = estimate_store(store, as_of, run_id=run_id)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"as_of": as_of, "estimates": len(rows), "statuses": statuses,
            "seconds": round(time.perf_counter() - started, 3)}


def unassigned_accounts(db_path: str) -> list[str]:
    """Org accounts seen in data that no configured organisation claims."""
    with Store(db_path) as store:
        rows = store.con.execute(
            "select platform || ':' || handle from accounts where org_id is null order by 1").fetchall()
    return [r[0] for r in rows]


def backfill(db_path: str, start: datetime, end: datetime, every_days: int = 7,
             windows: tuple[int, ...] = (0, 90), progress=None) -> list[dict]:
    """Features and estimates for past as_of dates from stored posts, so stage trajectories exist
    from day one. Each as_of replaces what was stored for it: running a backfill twice duplicates
    nothing."""
    from datetime import timedelta

    if every_days < 1:
        raise ValueError("--every must be at least 1 day")
    if end < start:
        raise ValueError(f"--to ({end:%Y-%m-%d}) is before --from ({start:%Y-%m-%d})")
    moments = []
    moment = start
    while moment <= end:
        moments.append(moment)
        moment += timedelta(days=every_days)
    from pipeline.locking import exclusive_run

    results = []
    with exclusive_run(db_path, "backfill"), Store(db_path) as store:
        has_orgs = store.count("organisations") > 0
        for as_of in moments:
            build_features(store, as_of, windows=windows)
            result = {"as_of": as_of, "estimates": 0, "statuses": {}}
            if has_orgs:
                from models.estimate import estimate_store

                rows, _ = estimate_store(store, as_of, run_id=f"backfill-{as_of:%Y%m%d%H%M}")
                result["estimates"] = len(rows)
                for row in rows:
                    result["statuses"][row["status"]] = result["statuses"].get(row["status"], 0) + 1
            results.append(result)
            if progress:
                progress(1)
    return results
