"""The nightly flow per organisation: one organisation's failed pull or estimation never stops the
others, pulls are retried, and a Dask cluster gives exactly what the default runner gives."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from connectors.mastodon import MastodonConnector
from pipeline import flows, jobs, sync
from pipeline.flows import nightly, task_runner
from pipeline.store import Store
from tests.connectors.fake_api import FakeAPI


@pytest.fixture
def api():
    with FakeAPI(page_size=3) as server:
        yield server


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("MATURITY_MASTODON_ACCESS_TOKEN", "MATURITY_MASTODON_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MATURITY_PSEUDONYM_KEY", "flow-orgs-test-key")  # same pseudonyms in every db
    monkeypatch.chdir(tmp_path)  # no stray .env


def write_config(tmp_path, api, handles: dict[str, str], synthetic_orgs: int):
    orgs = "".join(f'[[org]]\nid = "{org}"\naccounts = [{{ platform = "mastodon", handle = "{handle}", '
                   f'instance = "{api.url}" }}]\n' for org, handle in handles.items())
    path = tmp_path / "pipeline.toml"
    path.write_text('[[source]]\nkind = "synthetic"\nname = "syn"\nseed = 7\n'
                    f'orgs = {synthetic_orgs}\n'
                    '[[source]]\nkind = "mastodon"\n' + orgs, encoding="utf-8")
    return path


class FlakyMastodon(MastodonConnector):
    """The real Mastodon connector, except that some accounts' pulls raise (a network failure
    outside the connector's own retries): `fail[handle]` times, -1 = always."""
    fail: dict[str, int] = {}
    calls: dict[str, int] = {}

    def sync_account(self, store, account, **kwargs):
        FlakyMastodon.calls[account.handle] = FlakyMastodon.calls.get(account.handle, 0) + 1
        left = FlakyMastodon.fail.get(account.handle, 0)
        if left:
            FlakyMastodon.fail[account.handle] = left - 1
            raise ConnectionError(f"{account.instance} unreachable")
        return super().sync_account(store, account, **kwargs)


@pytest.mark.flow
def test_one_organisations_failures_do_not_stop_the_others(harness, api, clean_env, tmp_path, monkeypatch):

    api.add_statuses(4, "alpha")
    api.add_statuses(2, "delta", start=4)
    config = write_config(tmp_path, api, {"alpha": "alpha", "beta": "beta", "gamma": "ghost", "delta": "delta"}, 3)
    FlakyMastodon.fail, FlakyMastodon.calls = {"beta": -1, "delta": 1}, {}
    real_class = sync._connector_class
    monkeypatch.setattr(sync, "_connector_class", lambda kind: FlakyMastodon if kind == "mastodon" else real_class(kind))
    monkeypatch.setattr(flows, "pull_org_task", flows.pull_org_task.with_options(retry_delay_seconds=0))
    real_estimate = jobs.estimate

    def estimate(fitted, dims):  # bad data in one organisation makes its estimation raise
        if "syn7_001" in set(dims["org"]):
            raise ValueError("dimension scores of syn7_001 are not finite")
        return real_estimate(fitted, dims)

    monkeypatch.setattr(jobs, "estimate", estimate)
    db = tmp_path / "orgs.duckdb"

    state = nightly(config_path=str(config), db_path=str(db), return_state=True)

    assert state.is_failed() and state.name == "PartialFailure"
    for name in ("[beta]", "[gamma]", "[syn7_001]"):
        assert name in state.message
    summary = state.result(raise_on_failure=False).summary
    assert summary.status == "partial_failure"
    failures = {(f.step, f.org): f.cause for f in summary.failures}
    assert set(failures) == {("pull", "beta"), ("pull", "gamma"), ("estimate", "syn7_001")}
    assert "unreachable" in failures[("pull", "beta")]
    assert "not found (404)" in failures[("pull", "gamma")]         # a fatal account marks the run partial
    assert "not finite" in failures[("estimate", "syn7_001")]
    assert FlakyMastodon.calls["beta"] == 1 + flows.PULL_RETRIES     # retried, then reported
    assert FlakyMastodon.calls["delta"] == 2                         # failed once, retried, pulled
    with Store(db, read_only=True) as store:
        assert store.con.execute("select count(*) from posts where source = 'mastodon'").fetchone() == (6,)
        cursors = {a for (a,) in store.con.execute("select distinct account from sync_state").fetchall()}
        assert {"alpha", "delta"} <= cursors and "beta" not in cursors
        read = {a for (a,) in store.con.execute("select handle_key from timeline_reads").fetchall()}
        assert read == {"alpha", "delta"}          # the failed pulls recorded no completed read
        estimated = {o for (o,) in store.con.execute("select distinct org_id from estimates").fetchall()}
        assert {"syn7_000", "syn7_002", "alpha", "delta"} <= estimated and "syn7_001" not in estimated
        status, stored = store.con.execute("select status, summary from pipeline_runs").fetchone()
        assert status == "partial_failure"
        assert {"step": "pull", "org": "beta", "cause": failures[("pull", "beta")]} in json.loads(stored)["failures"]
        (run_status, message), = store.con.execute(
            "select status, message from ingest_runs where kind = 'mastodon'").fetchall()
        assert run_status == "partial_failure" and "beta: " in message and "ghost" in message


def comparable(db) -> dict:
    """Everything a run stores, without run ids and clock times."""
    with Store(db, read_only=True) as store:
        return {
            "posts": store.df("select * exclude (loaded_at, ingest_run_id) from posts order by all"),
            "features": store.df("select * exclude (computed_at) from features order by all"),
            "estimates": store.df("select * exclude (run_id, computed_at) from estimates order by all"),
            "cursors": store.df("select * exclude (updated_at) from sync_state order by all"),
        }


def stable(summary) -> dict:
    summary = json.loads(summary.to_json())
    for key in ("run_id", "started_at", "db"):
        summary.pop(key)
    summary["features"].pop("seconds")
    for source in summary["sources"]:
        source.pop("seconds")
    return summary


@pytest.mark.flow
def test_dask_cluster_gives_the_same_results_as_the_default_runner(harness, api, clean_env, tmp_path):
    from distributed import Client, LocalCluster, get_task_stream

    api.add_statuses(5, "alpha")
    config = write_config(tmp_path, api, {"alpha": "alpha", "beta": "beta"}, 2)
    default = nightly(config_path=str(config), db_path=str(tmp_path / "default.duckdb"))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        on_dask = nightly.with_options(task_runner=task_runner("dask", cluster.scheduler_address))(
            config_path=str(config), db_path=str(tmp_path / "dask.duckdb"))
    ran = {entry["key"] for entry in stream.data}
    assert sum(str(k).startswith("pull_org_task-") for k in ran) == 2      # one per organisation with accounts
    assert sum(str(k).startswith("estimate_chunk_task-") for k in ran) == 1  # 4 organisations, one chunk
    assert stable(on_dask) == stable(default) and default.status == "ok"
    a, b = comparable(tmp_path / "default.duckdb"), comparable(tmp_path / "dask.duckdb")
    assert len(a["posts"]) and len(a["features"]) and len(a["estimates"]) and len(a["cursors"])
    for table in a:
        assert a[table].equals(b[table]), table


def test_estimation_chunks_isolate_the_organisation_that_fails(monkeypatch):
    dims = pd.DataFrame({"org": ["a", "b", "c"], "x": [1.0, float("nan"), 3.0]})

    def estimate(fitted, frame):           # stands in for the models: fails on b's data
        if frame["x"].isna().any():
            raise ValueError("dimension scores are not finite")
        return [{"org": org} for org in frame["org"]]

    monkeypatch.setattr(jobs, "estimate", estimate)
    assert jobs.estimate_orgs(None, dims.iloc[[0, 2]]) == ([{"org": "a"}, {"org": "c"}], {})
    rows, failed = jobs.estimate_orgs(None, dims)
    assert rows == [{"org": "a"}, {"org": "c"}] and failed == {"b": "dimension scores are not finite"}
    orgs = pd.DataFrame({"org": [f"o{i}" for i in range(1201)]})
    inputs = jobs.EstimationInputs(None, 90, None, orgs, orgs)
    assert [len(c) for c in inputs.chunks()] == [500, 500, 201]
