"""One estimation window and one recovery per run: the journeys that used to end in partial failure
(a nightly run after `maturity estimate` or after a backfill) and live ingest runs that another open of
the store used to mark interrupted while their pulls were still under way."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pipeline import flows, jobs
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.flows import nightly
from pipeline.store import Store
from tests.connectors.fake_api import FakeAPI

runner = CliRunner()


def write_twcs_config(tmp_path, twcs_file) -> str:
    from tests.golden.capture import REPO

    path = tmp_path / "pipeline.toml"
    path.write_text(f'include = ["{(REPO / "data" / "orgs.example.toml").as_posix()}"]\n'
                    f'[[source]]\nkind = "twcs"\npath = "{twcs_file.as_posix()}"\n', encoding="utf-8")
    return str(path)


def run_statuses(db) -> list[tuple[str, str]]:
    with Store(db, read_only=True) as store:
        return store.con.execute("select kind, status from ingest_runs order by run_id").fetchall()


@pytest.mark.flow
def test_nightly_run_after_maturity_estimate_ends_ok(harness, twcs_prefix, tmp_path):
    db = str(tmp_path / "fresh.duckdb")
    config = write_twcs_config(tmp_path, twcs_prefix)
    imported = runner.invoke(app, ["import", "twcs", str(twcs_prefix), "--db", db, "--config", config])
    assert imported.exit_code == 0, imported.output
    estimated = runner.invoke(app, ["estimate", "--db", db])
    assert estimated.exit_code == 0, estimated.output
    summary = nightly(config_path=config, db_path=db)
    assert summary.status == "ok", summary.failure_message()
    assert summary.estimates.window_days == 90 and summary.estimates.estimates > 0
    with Store(db, read_only=True) as store:
        windows = store.con.execute("select distinct window_days from estimates").fetchall()
    assert windows == [(90,)]          # `estimate` and the nightly read the same window


@pytest.mark.flow
def test_nightly_run_after_a_backfill_ends_ok(harness, twcs_prefix, tmp_path):
    db = str(tmp_path / "history.duckdb")
    config = write_twcs_config(tmp_path, twcs_prefix)
    first = nightly(config_path=config, db_path=db)
    assert first.status == "ok", first.failure_message()
    backfilled = runner.invoke(app, ["backfill", "--from", "2017-10-20", "--to", "2017-11-30", "--every", "14d",
                                     "--db", db])
    assert backfilled.exit_code == 0, backfilled.output
    again = nightly(config_path=config, db_path=db)
    assert again.status == "ok", again.failure_message()
    with Store(db, read_only=True) as store:
        history = store.con.execute("select count(distinct as_of), min(window_days), max(window_days) "
                                    "from estimates").fetchone()
    assert history[0] >= 4 and history[1:] == (90, 90)


@pytest.fixture
def api():
    with FakeAPI(page_size=3) as server:
        yield server


@pytest.fixture
def mastodon_config(api, tmp_path, monkeypatch):
    for name in ("MATURITY_MASTODON_ACCESS_TOKEN", "MATURITY_MASTODON_INSTANCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    api.add_statuses(4, "brand")
    path = tmp_path / "live.toml"
    path.write_text(f'[[source]]\nkind = "mastodon"\n[[org]]\nid = "acme"\n'
                    f'accounts = [{{ platform = "mastodon", handle = "brand", instance = "{api.url}" }}]\n',
                    encoding="utf-8")
    return path


def test_live_ingest_runs_stay_running_while_other_steps_open_the_store(mastodon_config, tmp_path):
    db = str(tmp_path / "live.duckdb")
    config = load_config(mastodon_config)
    jobs.prepare_store(db, config)
    plan = jobs.plan_live_pulls(db, config)
    assert run_statuses(db) == [("mastodon", "running")]
    jobs.unassigned_accounts(db)              # other tasks of the same run open the store meanwhile
    with Store(db):
        pass
    pull = jobs.pull_org(config, plan, "acme")
    assert run_statuses(db) == [("mastodon", "running")]
    live = jobs.store_live_pulls(db, config, plan, [pull], {})
    assert live["status"] == "ok" and run_statuses(db) == [("mastodon", "ok")]


@pytest.mark.flow
def test_a_retried_pull_ends_ok_never_interrupted(harness, mastodon_config, tmp_path, monkeypatch):
    calls = []
    real_pull = jobs.pull_org

    def flaky_pull(config, plan, org_id):       # the first attempt dies outside the connector's retries
        calls.append(org_id)
        if len(calls) == 1:
            raise ConnectionError("network unreachable")
        return real_pull(config, plan, org_id)

    monkeypatch.setattr(jobs, "pull_org", flaky_pull)
    monkeypatch.setattr(flows, "pull_org_task", flows.pull_org_task.with_options(retry_delay_seconds=0))
    db = str(tmp_path / "retried.duckdb")
    summary = nightly(config_path=str(mastodon_config), db_path=db)
    assert calls == ["acme", "acme"] and summary.live["accounts"][0]["status"] == "ok"
    assert run_statuses(db) == [("mastodon", "ok")]


def test_stages_do_not_depend_on_which_windows_happen_to_be_built(twcs_prefix, tmp_path):
    db = str(tmp_path / "windows.duckdb")
    config = write_twcs_config(tmp_path, twcs_prefix)
    assert runner.invoke(app, ["import", "twcs", str(twcs_prefix), "--db", db, "--config", config]).exit_code == 0

    def stages():
        out = runner.invoke(app, ["estimates", "--db", db, "--format", "csv"]).stdout
        return sorted(line for line in out.splitlines()[1:])

    assert runner.invoke(app, ["estimate", "--db", db]).exit_code == 0
    before = stages()
    assert runner.invoke(app, ["features", "--db", db, "--window", "30", "--quiet"]).exit_code == 0
    assert runner.invoke(app, ["estimate", "--db", db]).exit_code == 0
    assert stages() == before and all(line.endswith(",90,False") for line in before)  # window, not provisional
    org, model, stage = next(line.split(",")[:3] for line in before if ",ok," in line)
    explained = runner.invoke(app, ["explain", org, "--model", model, "--db", db, "--format", "json"])
    assert explained.exit_code == 0, explained.output
    (explanation,) = json.loads(explained.stdout)
    assert (explanation["stage"], explanation["window_days"]) == (stage, 90)
