"""Plain, tested functions the nightly flow's tasks wrap. Each opens the store it needs."""
from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from connectors.facebook_pages import import_facebook_pages
from connectors.sp500 import import_sp500
from connectors.twcs import import_twcs
from features.cache import CachedBuild, cached_build, plan_build, record_builds
from features.runner import as_of_dates, store_feature_rows
from features.shards import build_shard, export_shards
from models import dimensions as D
from models.estimate import FittedModels, estimate
from pipeline import sync
from pipeline.config import Config, Source, apply_config
from pipeline.confidence import with_data_confidence
from pipeline.estimation import estimate_store, org_dimensions, org_frame, replace_estimates, sample_of_posts_note
from pipeline.orgs import assign_provisional_orgs
from pipeline.store import Store, writer
from pipeline.summary import EstimationResult, FeatureResult, SourceResult
from pipeline.training.cache import load_or_train
from pipeline.training.synthetic import import_synthetic

FILE_IMPORTERS = {"twcs": import_twcs, "sp500": import_sp500, "facebook_pages": import_facebook_pages}


def _import_synthetic(store: Store, source: Source):
    run_id, counts, _ = import_synthetic(store, source.seed if source.seed is not None else 7,
                                         source.orgs or 40, source=source.name or "synthetic")
    return run_id, counts


# Sources that generate their data instead of reading a file.
GENERATED_IMPORTERS = {"synthetic": _import_synthetic}


def feature_windows(window_days: int) -> tuple[int, ...]:
    """The windows a run builds: all data (what the feature tables show) and the estimation window."""
    return tuple(sorted({0, window_days}))


def prepare_store(db_path: str, config: Config) -> None:
    """Once per run, under its lock: migrate the schema, close the ingest runs a killed process left
    'running', and write the configured organisations and accounts."""
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        store.migrate()
        store.close_interrupted_runs()
        apply_config(store, config)   # brings the conversation facts up to date too


def ingest_source(db_path: str, source: Source, keep_customer_text: bool = False) -> SourceResult:
    """Load one configured source. A missing optional file is skipped with a note, never a crash."""
    result = SourceResult(name=source.name or source.kind, kind=source.kind,
                          path=str(source.path) if source.path else None, status="ok")
    started = time.perf_counter()
    if source.kind in GENERATED_IMPORTERS:
        with Store(db_path, keep_customer_text=keep_customer_text) as store:
            try:
                _, counts = GENERATED_IMPORTERS[source.kind](store, source)
                store.refresh_facts()
            except Exception as exc:  # reported per source; other sources still load
                result.status, result.message = "failed", str(exc)
            else:
                result.read, result.loaded, result.rejected = counts.read, counts.loaded, counts.rejected
        result.seconds = round(time.perf_counter() - started, 3)
        return result
    importer = FILE_IMPORTERS[source.kind]
    if source.path is None or not Path(source.path).exists():
        if source.required:
            result.status, result.message = "failed", f"file not found: {source.path}"
        else:
            result.status, result.message = "skipped", f"optional file not present: {source.path}"
        return result
    with Store(db_path, keep_customer_text=keep_customer_text) as store:
        try:
            run_id, counts = importer(store, source.path)
            store.refresh_facts()
        except Exception as exc:  # reported per source; other sources still load
            result.status, result.message = "failed", str(exc)
        else:
            result.read, result.loaded, result.rejected = counts.read, counts.loaded, counts.rejected
            result.message = sample_of_posts_note(store, run_id)
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
    kinds, skipped = sync.live_kinds_ready(config)
    platforms = {sync.KIND_PLATFORM[kind]: kind for kind in kinds}
    orgs = [o.id for o in config.organisations if any(a.platform in platforms for a in o.accounts)]
    used = [kind for kind in kinds if any(a.platform == sync.KIND_PLATFORM[kind]
                                          for o in config.organisations for a in o.accounts)]
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        runs = {kind: store.start_run(kind, kind) for kind in used}
        cursors = {org: sync.cursor_snapshot(store, config, org, used) for org in orgs}
    return LivePlan(used, skipped, runs, orgs, cursors)


def pull_org(config: Config, plan: LivePlan, org_id: str):
    """One organisation's incremental pull (no database access; see pipeline.sync.pull_org)."""
    return sync.pull_org(config, org_id, plan.kinds, plan.cursors[org_id], plan.runs)


def store_live_pulls(db_path: str, config: Config, plan: LivePlan, pulls: list, crashed: dict[str, str]) -> dict:
    """Write the pulls (each connector transaction as one DuckDB transaction) and close the ingest
    runs. `crashed`: organisation -> why its pull raised. Returns the live summary."""
    summary = sync.SyncSummary([a for pull in pulls for a in pull.accounts], dict(plan.skipped), dict(plan.runs))
    with Store(db_path, keep_customer_text=config.keep_customer_text) as store:
        for pull in pulls:
            sync.apply_pull(store, pull)
        store.refresh_facts()
        for kind, run_id in plan.runs.items():
            on_kind = [f"{org}: {cause}" for org, cause in crashed.items()
                       if any(a.platform == sync.KIND_PLATFORM[kind] for a in config.org(org).accounts)]
            sync.finish_kind_run(store, run_id, [a for a in summary.accounts if a.source == kind], on_kind)
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


def compute_features(db_path: str, as_of: datetime | None, windows: tuple[int, ...]) -> FeatureResult:
    """Features for as_of, rebuilt only for windows whose inputs changed (features/cache.py); without
    configured organisations, discovered accounts are provisional ones first (pipeline/orgs.py)."""
    started = time.perf_counter()
    with Store(db_path) as store:
        assign_provisional_orgs(store)
        build = cached_build(store.con, as_of, windows=windows)
        return _feature_result(store, build, windows, started)


def _feature_result(store: Store, build: CachedBuild, windows: tuple[int, ...], started: float) -> FeatureResult:
    accounts, orgs = store.con.execute(
        "select count(distinct (platform, account)) filter (where scope = 'account'), "
        "count(distinct org_id) filter (where scope = 'org') from features where as_of = ?",
        [build.as_of]).fetchone()
    return FeatureResult(build.as_of, accounts, orgs, round(time.perf_counter() - started, 3), list(windows),
                         build.cached)


def default_shard_dir(db_path: str | Path) -> Path:
    """Where a sharded build writes its shards unless `[settings] shard_dir` says: beside the database
    (enough for workers on this machine; workers elsewhere need a folder they all reach)."""
    return Path(f"{db_path}.shards")


@dataclass
class ShardedFeatures:
    """A sharded feature build in progress: its cache plan and the shard folders of the stale windows."""
    plan: CachedBuild
    windows: tuple[int, ...]
    folder: Path | None       # this build's shards, deleted once they are stored (None: nothing to build)
    shards: list[str]
    started: float            # perf_counter in the flow process, for the build's seconds

    @property
    def built(self) -> tuple[int, ...]:
        return tuple(self.plan.built)


def export_feature_shards(db_path: str, as_of: datetime | None, windows: tuple[int, ...], shards: int,
                          shard_dir: str | Path | None = None, rebuild: bool = False) -> ShardedFeatures:
    """In the writer: provisional organisations as for compute_features, the windows to build (all with
    `rebuild`, else those whose inputs changed) and, when there are any, the facts exported to `shards`
    shard folders in a new folder under shard_dir (default_shard_dir)."""
    started = time.perf_counter()
    with Store(db_path) as store:
        assign_provisional_orgs(store)
        plan = plan_build(store.con, as_of, windows, rebuild=rebuild)
        if not plan.built:
            return ShardedFeatures(plan, windows, None, [], started)
        folder = Path(shard_dir or default_shard_dir(db_path)) / f"{plan.as_of:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        folders = export_shards(store.con, folder, shards)
    return ShardedFeatures(plan, windows, folder, [str(f) for f in folders], started)


def build_feature_shard(shard: str, as_of: datetime, windows: tuple[int, ...]) -> pa.Table:
    """One shard's feature rows on a DuckDB connection of its own (any worker that reaches the shard
    folder; no store access)."""
    con = duckdb.connect()
    try:
        return build_shard(con, shard, as_of, windows)
    finally:
        con.close()


def store_feature_shards(db_path: str, build: ShardedFeatures, rows: list[pa.Table]) -> FeatureResult:
    """In the writer: every shard's rows stored in one transaction and the build's fingerprints recorded."""
    with Store(db_path) as store:
        if build.built:
            store_feature_rows(store.con, build.plan.as_of, build.built, rows)
            record_builds(store.con, build.plan)
        return _feature_result(store, build.plan, build.windows, build.started)


def discard_feature_shards(build: ShardedFeatures) -> None:
    if build.folder is not None:
        shutil.rmtree(build.folder, ignore_errors=True)


def compute_features_sharded(db_path: str, as_of: datetime | None, windows: tuple[int, ...], shards: int,
                             shard_dir: str | Path | None = None, rebuild: bool = False) -> FeatureResult:
    """The sharded build without Prefect, its shards built one after another in this process (the flow
    maps them over the task runner: pipeline.flows.build_features_sharded)."""
    build = export_feature_shards(db_path, as_of, windows, shards, shard_dir, rebuild)
    try:
        rows = [build_feature_shard(shard, build.plan.as_of, build.built) for shard in build.shards]
        return store_feature_shards(db_path, build, rows)
    finally:
        discard_feature_shards(build)


# Organisations per estimation task: a vectorised call costs ~0.1 s fixed plus ~0.15 ms per
# organisation (docs/benchmarks.md), so a task per organisation made 5,000 organisations take
# ~10 minutes; chunks keep that to seconds and still spread over a Dask cluster.
ESTIMATE_CHUNK_ORGS = 500


@dataclass
class EstimationInputs:
    """Everything per-organisation estimation needs, read once by the writer process."""
    as_of: datetime
    window_days: int
    fitted: FittedModels
    dims: pd.DataFrame      # one row per organisation (models.dimensions.compute)
    features: pd.DataFrame  # the organisation features dims were computed from (for the data confidence)

    def chunks(self, size: int = ESTIMATE_CHUNK_ORGS) -> list[pd.DataFrame]:
        return [self.dims.iloc[start:start + size] for start in range(0, len(self.dims), size)]


def prepare_estimation(db_path: str, as_of: datetime, window_days: int) -> EstimationInputs | None:
    """Organisation dimensions at (as_of, window) and the fitted models (trained once, cached beside
    the database); None when no organisations are configured."""
    with Store(db_path) as store:
        if store.count("organisations") == 0:
            return None
        features = org_frame(store, as_of, window_days)
        dims = D.compute(features)
        fitted = load_or_train(store, dims, window_days)
    return EstimationInputs(as_of, window_days, fitted, dims, features)


def estimate_orgs(fitted: FittedModels, dims: pd.DataFrame) -> tuple[list[dict], dict[str, str]]:
    """Estimates of a chunk of organisations under every model, in one vectorised call, and the
    organisations whose estimation failed (org -> cause); no database access. When the chunk raises
    (bad data in some organisation), each organisation is estimated alone, so only those that fail
    are lost."""
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


def count_statuses(rows: list[dict]) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return statuses


def store_estimates(db_path: str, inputs: EstimationInputs, run_id: str, rows: list[dict],
                    failed: dict[str, str] | None = None) -> EstimationResult:
    """Replace the estimates of (as_of, window) with `rows`, given their confidence from the data
    (pipeline/confidence.py: it reads the feature staging, so it runs here, in the writer). Re-running
    never duplicates; an organisation whose estimation failed has none for it."""
    as_of, window_days = inputs.as_of, inputs.window_days
    with Store(db_path) as store:
        rows = with_data_confidence(store.con, inputs.fitted, inputs.features, inputs.dims, rows, as_of,
                                    window_days)
        replace_estimates(store, as_of, window_days, run_id, rows)
    return EstimationResult(as_of, window_days, len(rows), count_statuses(rows), dict(failed or {}))


def unassigned_accounts(db_path: str) -> list[str]:
    """Org accounts seen in data that no configured organisation claims."""
    with Store(db_path) as store:
        rows = store.con.execute(
            "select platform || ':' || handle from accounts where org_id is null order by 1").fetchall()
    return [r[0] for r in rows]


def backfill(db_path: str, start: datetime, end: datetime, every_days: int, window_days: int,
             progress=None) -> list[EstimationResult]:
    """Features and estimates for past as_of dates from stored posts, so stage trajectories exist
    from day one. Each as_of replaces what was stored for it: running a backfill twice duplicates
    nothing."""
    moments = as_of_dates(start, end, timedelta(days=every_days))
    results = []
    with writer(db_path, "backfill", create=False) as store:
        assign_provisional_orgs(store)
        has_orgs = store.count("organisations") > 0
        for as_of in moments:
            cached_build(store.con, as_of, windows=feature_windows(window_days))   # unchanged inputs: reused
            result = EstimationResult(as_of, window_days)
            if has_orgs:
                fitted = load_or_train(store, org_dimensions(store, as_of, window_days), window_days)
                rows, _ = estimate_store(store, fitted, as_of, window_days,
                                         run_id=f"backfill-{as_of:%Y%m%d%H%M}")
                result.estimates, result.statuses = len(rows), count_statuses(rows)
            results.append(result)
            if progress:
                progress(1)
    return results
