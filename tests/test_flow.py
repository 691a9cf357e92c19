"""The nightly flow under a real (temporary) Prefect API."""
import json

import pytest

from pipeline.flows import RunFailures, nightly
from pipeline.store import Store

CSV = (",tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
       "0,1,115712,True,Mon Oct 02 10:00:00 +0000 2017,@AcmeCare help?,2,\n"
       "1,2,AcmeCare,False,Mon Oct 02 10:05:00 +0000 2017,@115712 on it ^JK,,1.0\n"
       "2,3,115713,True,Fri Oct 06 10:00:00 +0000 2017,@AcmeCare thanks,,\n"
       "junk line\n")


@pytest.mark.flow
def test_nightly_flow_ingests_builds_features_and_records_the_run(harness, tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    config = tmp_path / "pipeline.toml"
    config.write_text(
        '[[source]]\nkind = "twcs"\npath = "t.csv"\n'
        '[[source]]\nkind = "twcs"\nname = "absent-optional"\npath = "nope.csv"\nrequired = false\n'
        '[[org]]\nid = "acme"\nsector = "retail"\naccounts = [{ platform = "twitter", handle = "AcmeCare", role = "support" }]\n')
    db = tmp_path / "flow.duckdb"
    summary = nightly(config_path=str(config), db_path=str(db))
    assert summary.status == "ok", summary.failures
    first, skipped = summary.sources
    assert (first.read, first.loaded, first.rejected) == (4, 3, 1)
    assert skipped.status == "skipped" and "not present" in skipped.message
    assert summary.features.organisations == 1
    assert (summary.window_days, summary.estimates.window_days) == (90, 90)
    from pipeline.store import Store
    with Store(db, read_only=True) as store:
        (status, stored) = store.con.execute("select status, summary from pipeline_runs").fetchone()
        assert status == "ok" and json.loads(stored)["sources"][0]["loaded"] == 3
        mentions = store.con.execute(
            "select value from features where scope = 'org' and feature = 'mentions'").fetchone()
        assert mentions == (1.0,)  # the second mention is younger than 72 h before as_of


@pytest.mark.flow
def test_a_failing_source_is_reported_and_the_rest_runs(harness, tmp_path):
    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "bad.csv").write_text("tweet_id,text\n1,hi\n")
    config = tmp_path / "pipeline.toml"
    config.write_text('[[source]]\nkind = "twcs"\nname = "bad"\npath = "bad.csv"\n'
                      '[[source]]\nkind = "twcs"\nname = "good"\npath = "t.csv"\n')
    state = nightly(config_path=str(config), db_path=str(tmp_path / "flow.duckdb"), return_state=True)
    assert state.is_failed() and state.name == "PartialFailure" and "missing required column" in state.message
    failures = state.result(raise_on_failure=False)
    assert isinstance(failures, RunFailures)
    summary = failures.summary
    assert summary.status == "partial_failure"
    (failure,) = summary.failures
    assert failure.step == "ingest" and "missing required column" in failure.cause
    assert summary.sources[1].loaded == 3
    # no [[org]] in the config: the account found is estimated as its own provisional organisation
    assert summary.unassigned_accounts == [] and summary.estimates.statuses
    with Store(tmp_path / "flow.duckdb", read_only=True) as store:
        assert store.df("select org_id, provisional from organisations").to_dict("records") == [
            {"org_id": "acmecare", "provisional": True}]


@pytest.mark.flow
def test_serve_registers_a_scheduled_deployment(harness, tmp_path):
    from prefect.client.orchestration import get_client

    from pipeline.deploy import nightly_deployment

    config = tmp_path / "pipeline.toml"
    config.write_text('[settings]\ntimezone = "Europe/London"\n')
    deployment = nightly_deployment(config, tmp_path / "n.duckdb", timezone="Europe/London")
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        stored = client.read_deployment(deployment_id)
    assert stored.name == "nightly"
    (schedule,) = stored.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 2 * * *", "Europe/London")
    assert stored.parameters == {"config_path": str(config.resolve()),
                                 "db_path": str((tmp_path / "n.duckdb").resolve())}


def test_prefect_yaml_points_at_the_nightly_flow():
    import yaml

    from pipeline.config import load_config
    from pipeline.flows import nightly

    repo = __import__("pathlib").Path(__file__).resolve().parents[1]
    spec = yaml.safe_load((repo / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    module, name = deployment["entrypoint"].split(":")
    assert module == "pipeline/flows.py" and name == nightly.fn.__name__
    assert deployment["schedules"][0]["cron"] == "0 2 * * *"
    load_config(repo / deployment["parameters"]["config_path"])  # the referenced config is valid


@pytest.mark.flow
def test_run_command_lists_failures_and_exits_1(harness, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "t.csv").write_text(CSV)
    (tmp_path / "bad.csv").write_text("tweet_id,text\n1,hi\n")
    config = tmp_path / "pipeline.toml"
    config.write_text('[[source]]\nkind = "twcs"\nname = "bad"\npath = "bad.csv"\n'
                      '[[source]]\nkind = "twcs"\nname = "good"\npath = "t.csv"\n')
    result = CliRunner().invoke(app, ["run", "--config", str(config), "--db", str(tmp_path / "cli.duckdb")])
    assert result.exit_code == 1, result.output
    assert "failed: ingest: bad: " in result.output and "missing required column" in result.output
    assert ": partial_failure" in result.output
