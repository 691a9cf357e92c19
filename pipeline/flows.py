"""Prefect flows. Thin: every task wraps a plain function from pipeline.jobs."""
from __future__ import annotations

import json
import uuid
from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from pipeline import jobs
from pipeline.config import Source, load_config
from pipeline.locking import exclusive_run
from pipeline.store import Store, utcnow
from pipeline.sync import LIVE_KINDS, configured_kinds


@task(name="prepare-store", cache_policy=NO_CACHE)
def prepare_store_task(db_path: str, config_path: str) -> None:
    jobs.prepare_store(db_path, load_config(config_path))


@task(name="ingest-source", cache_policy=NO_CACHE)
def ingest_source_task(db_path: str, source: Source, keep_customer_text: bool) -> dict:
    return jobs.ingest_source(db_path, source, keep_customer_text).as_dict()


@task(name="sync-live-platforms", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=[300])
def sync_live_task(db_path: str, config_path: str) -> dict:
    """X, Reddit, Mastodon and Bluesky accounts, incrementally (safe to retry: cursors are
    committed with their rows)."""
    return jobs.sync_live(db_path, load_config(config_path))


@task(name="build-features", cache_policy=NO_CACHE)
def build_features_task(db_path: str, as_of: datetime | None) -> jobs.FeatureResult:
    return jobs.compute_features(db_path, as_of)


@task(name="estimate-stages", cache_policy=NO_CACHE)
def estimate_stages_task(db_path: str, as_of: datetime, run_id: str) -> dict:
    return jobs.estimate_stages(db_path, as_of, run_id)


@task(name="write-summary", cache_policy=NO_CACHE)
def write_summary_task(db_path: str, summary: dict) -> dict:
    with Store(db_path) as store:
        store.con.execute(
            "insert into pipeline_runs values (?, 'nightly', ?, ?, ?, ?, ?) on conflict do update set "
            "finished_at = excluded.finished_at, status = excluded.status, summary = excluded.summary",
            [summary["run_id"], summary["started_at"], utcnow(), summary["status"], summary.get("as_of"),
             json.dumps(summary, default=str)])
    return summary


@flow(name="nightly", log_prints=True)
def nightly(config_path: str, db_path: str, as_of: str | None = None) -> dict:
    """Ingest the configured sources, build features, estimate stages and record a run summary."""
    run_id = uuid.uuid4().hex
    with exclusive_run(db_path, f"nightly run {run_id[:8]}"):
        return _nightly(run_id, config_path, db_path, as_of)


def _nightly(run_id: str, config_path: str, db_path: str, as_of: str | None) -> dict:
    started = utcnow()
    config = load_config(config_path)
    prepare_store_task(db_path, config_path)
    sources = []
    for source in config.sources:
        if source.kind in LIVE_KINDS:
            continue  # pulled together by sync_live_task below
        loaded = {s["name"] for s in sources if s["status"] == "ok" and s["loaded"]}
        if source.fallback_for and source.fallback_for in loaded:
            sources.append(jobs.SourceResult(source.name or source.kind, source.kind, None, "skipped",
                                             message=f"fallback for {source.fallback_for}, which loaded")
                           .as_dict())
            continue
        sources.append(ingest_source_task(db_path, source, config.keep_customer_text))
    failures = [f"{s['name']}: {s['message']}" for s in sources if s["status"] == "failed"]
    summary: dict = {"run_id": run_id, "started_at": started, "db": db_path,
                     "config": config_path, "sources": sources, "failures": failures}
    if configured_kinds(config):
        try:
            summary["live"] = sync_live_task(db_path, config_path)
        except Exception as exc:
            failures.append(f"live sync: {exc}")
    try:
        features = build_features_task(db_path, datetime.fromisoformat(as_of) if as_of else None)
    except Exception as exc:
        failures.append(f"features: {exc}")
    else:
        summary["as_of"] = features.as_of
        summary["features"] = {"accounts": features.accounts, "organisations": features.organisations,
                               "seconds": features.seconds}
        try:
            summary["estimates"] = estimate_stages_task(db_path, features.as_of, run_id)
        except Exception as exc:
            failures.append(f"estimates: {exc}")
    summary["unassigned_accounts"] = jobs.unassigned_accounts(db_path)
    summary["status"] = "ok" if not failures else ("partial_failure" if "features" in summary else "failed")
    return write_summary_task(db_path, summary)
