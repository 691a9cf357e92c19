"""Prefect flows. Thin: every task wraps a plain function from pipeline.jobs.

Per-organisation isolation: live pulls and estimation are tasks mapped over organisations; a task
that fails is recorded as that organisation's failure and the others carry on. A sharded feature
build is the exception: every shard is part of the whole, so a failed shard fails the feature step
and nothing of it is stored.

Single writer: only tasks called directly in the flow (which run in the flow's own process) open
the database. The mapped tasks (`pull-organisation`, `estimate-organisations`, and
`build-feature-shard` when the feature build is sharded) take plain inputs -- a shard task a folder
of Parquet files -- and return records or frames, so they can run on any task runner, a Dask cluster included
(`nightly.with_options(task_runner=task_runner("dask", address))`), while every write goes through
the flow process that holds the run lock (pipeline/locking.py).

Final state: a run with failures ends in a FAILED Prefect state named "PartialFailure" (some
organisations or sources failed, the rest is stored) or "Failed" (no features could be built),
whose message lists each failure. FAILED rather than COMPLETED so schedules, automations and
notifications treat it as the failure it is; the state's data is a `RunFailures` exception carrying
the full summary, so calling `nightly(...)` raises it and `maturity run` exits 1 after printing it.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from features.runner import FeatureError
from pipeline import jobs
from pipeline.config import Config, Source, load_config
from pipeline.locking import exclusive_run
from pipeline.store import Store, utcnow
from pipeline.summary import EstimationResult, Failure, FeatureResult, RunSummary, SourceResult
from pipeline.sync import LIVE_KINDS, configured_kinds

# Network pulls: a pull that raised is retried from the same saved cursors (nothing was written,
# the flow writes only what comes back), so a retry re-reads the same pages and duplicates nothing.
PULL_RETRIES = 2
PULL_RETRY_DELAYS_S = [60, 300]


class RunFailures(RuntimeError):
    """The nightly run finished with failures; `summary` is the whole run summary."""

    def __init__(self, summary: RunSummary):
        super().__init__(summary.failure_message())
        self.summary = summary

    def __reduce__(self):  # picklable with its summary (Prefect keeps it as the state's data)
        return type(self), (self.summary,)


def task_runner(name: str = "threads", address: str | None = None, **cluster_kwargs):
    """The task runner for the mapped per-organisation tasks: "threads" (Prefect's default thread
    pool in the flow process) or "dask" (prefect-dask: the cluster at `address`, else a LocalCluster
    built with `cluster_kwargs`)."""
    if name == "threads":
        if address:
            raise ValueError("--dask-address needs --task-runner dask")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner()
    if name == "dask":
        from prefect_dask import DaskTaskRunner

        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs=cluster_kwargs or None)
    raise ValueError(f"unknown task runner {name!r} (use threads or dask)")


@task(name="prepare-store", cache_policy=NO_CACHE)
def prepare_store_task(db_path: str, config: Config) -> None:
    jobs.prepare_store(db_path, config)


@task(name="ingest-source", cache_policy=NO_CACHE)
def ingest_source_task(db_path: str, source: Source, keep_customer_text: bool) -> SourceResult:
    return jobs.ingest_source(db_path, source, keep_customer_text)


@task(name="plan-live-pulls", cache_policy=NO_CACHE)
def plan_live_pulls_task(db_path: str, config: Config) -> jobs.LivePlan:
    return jobs.plan_live_pulls(db_path, config)


@task(name="pull-organisation", cache_policy=NO_CACHE, retries=PULL_RETRIES,
      retry_delay_seconds=PULL_RETRY_DELAYS_S)
def pull_org_task(org_id: str, config: Config, plan: jobs.LivePlan):
    """One organisation's X, Reddit, Mastodon and Bluesky accounts, incrementally. Errors of single
    accounts are in its result (the connectors already retry rate limits and 5xx with backoff); an
    exception (connection setup, a crash) fails the task, which Prefect retries."""
    return jobs.pull_org(config, plan, org_id)


@task(name="store-live-pulls", cache_policy=NO_CACHE)
def store_live_pulls_task(db_path: str, config: Config, plan: jobs.LivePlan, pulls: list,
                          crashed: dict[str, str]) -> dict:
    return jobs.store_live_pulls(db_path, config, plan, pulls, crashed)


@task(name="build-features", cache_policy=NO_CACHE)
def build_features_task(db_path: str, as_of: datetime | None, windows: tuple[int, ...]) -> FeatureResult:
    return jobs.compute_features(db_path, as_of, windows)


@task(name="export-feature-shards", cache_policy=NO_CACHE)
def export_feature_shards_task(db_path: str, as_of: datetime | None, windows: tuple[int, ...], shards: int,
                               shard_dir: str | None, rebuild: bool) -> jobs.ShardedFeatures:
    return jobs.export_feature_shards(db_path, as_of, windows, shards, shard_dir, rebuild)


@task(name="build-feature-shard", cache_policy=NO_CACHE)
def build_feature_shard_task(shard: str, as_of: datetime, windows: tuple[int, ...]):
    return jobs.build_feature_shard(shard, as_of, windows)


@task(name="store-feature-shards", cache_policy=NO_CACHE)
def store_feature_shards_task(db_path: str, build: jobs.ShardedFeatures, rows: list) -> FeatureResult:
    return jobs.store_feature_shards(db_path, build, rows)


@task(name="discard-feature-shards", cache_policy=NO_CACHE)
def discard_feature_shards_task(build: jobs.ShardedFeatures) -> None:
    jobs.discard_feature_shards(build)


@task(name="prepare-estimation", cache_policy=NO_CACHE)
def prepare_estimation_task(db_path: str, as_of: datetime, window_days: int) -> jobs.EstimationInputs | None:
    return jobs.prepare_estimation(db_path, as_of, window_days)


@task(name="estimate-organisations", cache_policy=NO_CACHE)
def estimate_chunk_task(dims, fitted) -> tuple[list[dict], dict[str, str]]:
    return jobs.estimate_orgs(fitted, dims)


@task(name="store-estimates", cache_policy=NO_CACHE)
def store_estimates_task(db_path: str, inputs: jobs.EstimationInputs, run_id: str, rows: list[dict],
                         failed: dict[str, str]) -> EstimationResult:
    return jobs.store_estimates(db_path, inputs, run_id, rows, failed)


@task(name="write-summary", cache_policy=NO_CACHE)
def write_summary_task(db_path: str, summary: RunSummary) -> RunSummary:
    with Store(db_path) as store:
        store.con.execute(
            "insert into pipeline_runs values (?, 'nightly', ?, ?, ?, ?, ?) on conflict do update set "
            "finished_at = excluded.finished_at, status = excluded.status, summary = excluded.summary",
            [summary.run_id, summary.started_at, utcnow(), summary.status, summary.as_of, summary.to_json()])
    return summary


def gather(futures: dict) -> tuple[dict, dict]:
    """Results of mapped tasks (keyed by organisation or chunk) and, for those that failed, why
    (after retries)."""
    results, failed = {}, {}
    for org, future in futures.items():
        future.wait()
        outcome = future.result(raise_on_failure=False)
        if future.state.is_completed():
            results[org] = outcome
        else:
            failed[org] = str(outcome) if isinstance(outcome, BaseException) else (future.state.message or "failed")
    return results, failed


@flow(name="nightly", log_prints=True)
def nightly(config_path: str, db_path: str, as_of: str | None = None,
            window_days: int | None = None) -> RunSummary | State:
    """Ingest the configured sources, pull live platforms per organisation, build features (cached by
    their inputs), estimate stages per organisation on the estimation window (default: the config's
    `[settings] window_days`) and record a run summary."""
    run_id = uuid.uuid4().hex
    with exclusive_run(db_path, f"nightly run {run_id[:8]}"):
        summary = _nightly(run_id, load_config(config_path), config_path, db_path,
                           datetime.fromisoformat(as_of) if as_of else None, window_days)
    if summary.status == "ok":
        return summary
    return Failed(name="PartialFailure" if summary.status == "partial_failure" else "Failed",
                  message=summary.failure_message(), data=RunFailures(summary))


def _nightly(run_id: str, config: Config, config_path: str, db_path: str, as_of: datetime | None,
             window_days: int | None) -> RunSummary:
    summary = RunSummary(run_id, utcnow(), db_path, config_path, window_days or config.window_days)
    prepare_store_task(db_path, config)
    for source in config.sources:
        if source.kind in LIVE_KINDS:
            continue  # pulled per organisation below
        loaded = {s.name for s in summary.sources if s.status == "ok" and s.loaded}
        if source.fallback_for and source.fallback_for in loaded:
            summary.sources.append(SourceResult(source.name or source.kind, source.kind, None, "skipped",
                                                message=f"fallback for {source.fallback_for}, which loaded"))
            continue
        summary.sources.append(ingest_source_task(db_path, source, config.keep_customer_text))
    failures = summary.failures
    failures += [Failure("ingest", None, f"{s.name}: {s.message}") for s in summary.sources if s.status == "failed"]
    if configured_kinds(config):
        summary.live = _pull_live(db_path, config)
        failures += [Failure("pull", org, cause) for org, cause in summary.live["crashed"].items()]
        # fatal (unknown, suspended, forbidden account) and failed (retries exhausted) accounts alike
        failures += [Failure("pull", a["org"], a["message"] or f"{a['account']}: {a['status']}")
                     for a in summary.live["accounts"] if a["status"] != "ok"]
    windows = jobs.feature_windows(summary.window_days)
    try:
        if config.feature_shards:
            summary.features = _features_sharded(db_path, as_of, windows, config.feature_shards,
                                                 str(config.shard_dir) if config.shard_dir else None)
        else:
            summary.features = build_features_task(db_path, as_of, windows)
    except Exception as exc:
        failures.append(Failure("features", None, str(exc)))
    else:
        summary.as_of = summary.features.as_of
        try:
            summary.estimates = _estimate(db_path, summary.as_of, summary.window_days, run_id)
        except Exception as exc:
            failures.append(Failure("estimate", None, str(exc)))
        else:
            failures += [Failure("estimate", org, cause) for org, cause in summary.estimates.failed.items()]
    summary.unassigned_accounts = jobs.unassigned_accounts(db_path)
    summary.status = "ok" if not failures else ("partial_failure" if summary.features else "failed")
    return write_summary_task(db_path, summary)


@flow(name="features-sharded", log_prints=True)
def build_features_sharded(db_path: str, shards: int, windows: list[int], as_of: str | None = None,
                           shard_dir: str | None = None) -> FeatureResult:
    """Build every feature of as_of (default: the newest post) and the windows, sharded by organisation:
    the shards are built on the task runner, the flow process stores them."""
    with exclusive_run(db_path, "sharded feature build"):
        return _features_sharded(db_path, datetime.fromisoformat(as_of) if as_of else None, tuple(windows),
                                 shards, shard_dir, rebuild=True)


def _features_sharded(db_path: str, as_of: datetime | None, windows: tuple[int, ...], shards: int,
                      shard_dir: str | None, rebuild: bool = False) -> FeatureResult:
    """The feature step sharded: export (writer), one task per shard (task runner), store (writer); a
    shard that fails fails the build, which stores nothing (every shard is needed for the whole)."""
    build = export_feature_shards_task(db_path, as_of, windows, shards, shard_dir, rebuild)
    if not build.shards:   # every window current: nothing to build, the stored features stand
        return store_feature_shards_task(db_path, build, [])
    try:
        futures = dict(zip(build.shards, build_feature_shard_task.map(
            build.shards, unmapped(build.plan.as_of), unmapped(build.built))))
        rows, failed = gather(futures)
        if failed:
            raise FeatureError("the feature build stored nothing: " + "; ".join(
                f"shard {Path(shard).name} failed: {cause}" for shard, cause in failed.items()))
        return store_feature_shards_task(db_path, build, [rows[shard] for shard in build.shards])
    finally:
        discard_feature_shards_task(build)


def _pull_live(db_path: str, config: Config) -> dict:
    plan = plan_live_pulls_task(db_path, config)
    futures = dict(zip(plan.orgs, pull_org_task.map(plan.orgs, unmapped(config), unmapped(plan))))
    pulls, crashed = gather(futures)
    return store_live_pulls_task(db_path, config, plan, list(pulls.values()), crashed)


def _estimate(db_path: str, as_of: datetime, window_days: int, run_id: str) -> EstimationResult:
    inputs = prepare_estimation_task(db_path, as_of, window_days)
    if inputs is None:
        return EstimationResult(as_of, window_days, note="no organisations configured; nothing to estimate")
    chunks = inputs.chunks()
    futures = dict(enumerate(estimate_chunk_task.map(chunks, unmapped(inputs.fitted))))
    results, crashed = gather(futures)
    rows, failed = [], {}
    for index, chunk in enumerate(chunks):
        if index in results:
            chunk_rows, chunk_failed = results[index]
            rows += chunk_rows
            failed.update(chunk_failed)
        else:  # the task itself failed (e.g. its worker died): every organisation in it
            failed.update({str(org): crashed[index] for org in chunk["org"]})
    return store_estimates_task(db_path, inputs, run_id, rows, failed)
