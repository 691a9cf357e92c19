"""Plain, tested functions the nightly flow's tasks wrap. Each opens the store it needs."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from connectors.facebook_pages import import_facebook_pages
from connectors.sp500 import import_sp500
from connectors.twcs import import_twcs
from features.cache import cached_build
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


@dataclass
class LivePlan:
    """What one run's live pulls need, prepared by the writer before they start: the live kinds that
    can run (others skipped with the reason), one ingest run per kind, the organisations to pull and
    each one's saved cursors."""
    kinds: list[str]
    skipped: dict[str, str]
    runs: dict[str, int]
    orgs: list[str]
    cursors: dict[str, dict]


def plan_live_pulls(db_path: str, config: Config) -> LivePlan:
    from pipeline.sync import KIND_PLATFORM, cursor_snapshot, live_kinds_ready

    kinds, skipped = live_kinds_ready(config)
    platforms = {KIND_PLATFORM[kind]: kind for kind in kinds}
    orgs = [o.id for o in config.organisations if any(a.platform in platforms for a in o.accounts)]
    used = [kind for kind in kinds if any(a.platform == KIND_PLATFORM[kind]
                                          for o in config.organisations for a in o.accounts)]
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        runs = {kind: store.start_run(kind, kind) for kind in used}
        cursors = {org: cursor_snapshot(store, config, org, used) for org in orgs}
    return LivePlan(used, skipped, runs, orgs, cursors)


def pull_org(config: Config, plan: LivePlan, org_id: str):
    """One organisation's incremental pull (no database access; see pipeline.sync.pull_org)."""
    from pipeline.sync import pull_org as pull

    return pull(config, org_id, plan.kinds, plan.cursors[org_id], plan.runs)


def store_live_pulls(db_path: str, config: Config, plan: LivePlan, pulls: list, crashed: dict[str, str]) -> dict:
    """Write the pulls (each connector transaction as one DuckDB transaction) and close the ingest
    runs. `crashed`: organisation -> why its pull raised. Returns the live summary."""
    from pipeline.sync import KIND_PLATFORM, SyncSummary, apply_pull, finish_kind_run

    summary = SyncSummary([a for pull in pulls for a in pull.accounts], dict(plan.skipped), dict(plan.runs))
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        for pull in pulls:
            apply_pull(store, pull)
        for kind, run_id in plan.runs.items():
            on_kind = [f"{org}: {cause}" for org, cause in crashed.items()
                       if any(a.platform == KIND_PLATFORM[kind] for a in config.org(org).accounts)]
            finish_kind_run(store, run_id, [a for a in summary.accounts if a.source == kind], on_kind)
    live = summary.as_dict()
    for entry, org in zip(live["accounts"], [pull.org for pull in pulls for _ in pull.accounts]):
        entry["org"] = org
    live["crashed"] = dict(crashed)
    if crashed:
        live["status"] = "partial_failure" if any(a.status == "ok" for a in summary.accounts) else "failed"
    return live


def sync_live(db_path: str, config: Config) -> dict:
    """The nightly flow's live step without Prefect: the same plan, per-organisation pulls (one
    after another here) and single writer."""
    plan = plan_live_pulls(db_path, config)
    pulls, crashed = [], {}
    for org in plan.orgs:
        try:
            pulls.append(pull_org(config, plan, org))
        except Exception as exc:  # one organisation's failure never stops the others
            crashed[org] = str(exc)
    return store_live_pulls(db_path, config, plan, pulls, crashed)


@dataclass
class FeatureResult:
    as_of: datetime
    accounts: int
    organisations: int
    seconds: float
    windows: list[int] = field(default_factory=list)
    cached: list[int] = field(default_factory=list)   # windows whose inputs were unchanged: not rebuilt


def compute_features(db_path: str, as_of: datetime | None, windows: tuple[int, ...] = (0,)) -> FeatureResult:
    """Features for as_of, rebuilt only for windows whose inputs changed (features/cache.py)."""
    started = time.perf_counter()
    with Store(db_path) as store:
        build = cached_build(store.con, as_of, windows=windows)
        accounts, orgs = store.con.execute(
            "select count(distinct (platform, account)) filter (where scope = 'account'), "
            "count(distinct org_id) filter (where scope = 'org') from features where as_of = ?",
            [build.as_of]).fetchone()
    return FeatureResult(build.as_of, accounts, orgs, round(time.perf_counter() - started, 3), list(windows),
                         build.cached)


# Organisations per estimation task: a vectorised call costs ~0.1 s fixed plus ~0.15 ms per
# organisation (docs/benchmarks.md), so a task per organisation made 5,000 organisations take
# ~10 minutes; chunks keep that to seconds and still spread over a Dask cluster.
ESTIMATE_CHUNK_ORGS = 500


@dataclass
class EstimationInputs:
    """Everything per-organisation estimation needs, read once by the writer process."""
    as_of: datetime
    fitted: object          # models.estimate.FittedModels
    dims: pd.DataFrame      # one row per organisation (models.dimensions.compute)

    def chunks(self, size: int = ESTIMATE_CHUNK_ORGS) -> list[pd.DataFrame]:
        return [self.dims.iloc[start:start + size] for start in range(0, len(self.dims), size)]


def prepare_estimation(db_path: str, as_of: datetime | None = None) -> EstimationInputs | None:
    """Organisation dimensions at as_of and the fitted models (trained once, cached beside the
    database); None when no organisations are configured."""
    from models import dimensions as D
    from models.estimate import load_or_train

    with Store(db_path) as store:
        if store.count("organisations") == 0:
            return None
        features, as_of, _ = D.org_frame(store, as_of)
        dims = D.compute(features)
        fitted = load_or_train(store, dims)
    return EstimationInputs(as_of, fitted, dims)


def estimate_orgs(fitted, dims: pd.DataFrame) -> tuple[list[dict], dict[str, str]]:
    """Estimates of a chunk of organisations under every model, in one vectorised call, and the
    organisations whose estimation failed (org -> cause); no database access. When the chunk raises
    (bad data in some organisation), each organisation is estimated alone, so only those that fail
    are lost."""
    from models.estimate import estimate

    try:
        return estimate(fitted, dims), {}
    except Exception:  # noqa: BLE001 - isolated per organisation below
        rows, failed = [], {}
        for position in range(len(dims)):
            one = dims.iloc[[position]]
            try:
                rows += estimate(fitted, one)
            except Exception as exc:  # noqa: BLE001 - reported as this organisation's failure
                failed[str(one["org"].iloc[0])] = str(exc)
        return rows, failed


def store_estimates(db_path: str, as_of: datetime, run_id: str, rows: list[dict],
                    failed: dict[str, str] | None = None) -> dict:
    """Replace as_of's estimates with `rows` (re-running an as_of never duplicates; an organisation
    whose estimation failed has none for it). Returns counts by status and the failures."""
    from models.estimate import replace_estimates

    with Store(db_path) as store:
        replace_estimates(store, as_of, run_id, rows)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {"as_of": as_of, "estimates": len(rows), "statuses": statuses, "failed": dict(failed or {})}


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
            cached_build(store.con, as_of, windows=windows)   # unchanged inputs: stored features reused
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
