"""A new user's first journey, with no file written by hand: import → estimate → estimates → report
on provisional organisations, then `orgs suggest` → `config-check` → `orgs apply`; commands on stored
data never create a database; terminal output people can read."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.console import human_duration, print_stage_table
from pipeline.summary import RunSummary

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()

# Two accounts of one brand (AmazonHelp, Amazon) and one of another (AppleSupport); numeric authors
# are customers, as in twcs.
CSV = (",tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
       "0,1,115712,True,Mon Oct 02 10:00:00 +0000 2017,@AmazonHelp where is my parcel?,2,\n"
       "1,2,AmazonHelp,False,Mon Oct 02 10:05:00 +0000 2017,@115712 checking now ^JK,,1.0\n"
       "2,3,115713,True,Tue Oct 03 09:00:00 +0000 2017,@AppleSupport my phone?,4,\n"
       "3,4,AppleSupport,False,Tue Oct 03 11:43:00 +0000 2017,@115713 try a restart,,3.0\n"
       "4,5,Amazon,False,Wed Oct 04 12:00:00 +0000 2017,New deals today,,\n"
       "5,6,115714,True,Mon Oct 09 10:00:00 +0000 2017,@AmazonHelp thanks,,\n")


def imported(tmp_path) -> str:
    source = tmp_path / "twcs.csv"
    source.write_text(CSV, encoding="utf-8")
    db = str(tmp_path / "first.duckdb")
    result = runner.invoke(app, ["import", "twcs", str(source), "--db", db])
    assert result.exit_code == 0, result.output
    assert "3 organisation accounts found and no organisation config yet" in result.output
    return db


def test_import_estimate_estimates_report_without_a_config(tmp_path):
    from pipeline.api import open_store

    db = imported(tmp_path)
    estimate = runner.invoke(app, ["estimate", "--db", db])
    assert estimate.exit_code == 0, estimate.output
    assert "15 estimates" in estimate.output and "3 of them provisional" in estimate.output

    table = runner.invoke(app, ["estimates", "--db", db])
    assert table.exit_code == 0, table.output
    assert "amazonhelp (provisional)" in table.output and "maturity orgs suggest" in table.output
    assert "Social Media Maturity Model (smmm)" in table.output            # models named, not only ids
    rows = json.loads(runner.invoke(app, ["estimates", "--db", db, "--format", "json"]).stdout)
    assert {r["org"] for r in rows} == {"amazon", "amazonhelp", "applesupport"}
    assert all(r["provisional"] for r in rows) and rows[0]["model"] == "smmm"

    with open_store(db) as mi:
        assert mi.organisations()["provisional"].all()
        assert mi.estimates()["provisional"].all()

    out = tmp_path / "r.html"
    report = runner.invoke(app, ["report", "--db", db, "--out", str(out)])
    assert report.exit_code == 0, report.output
    assert "Provisional organisations</strong>: 3 of 3" in out.read_text(encoding="utf-8")


def test_orgs_suggest_groups_a_brand_and_orgs_apply_attaches_the_config_without_reimport(tmp_path):
    from pipeline.config import load_config
    from pipeline.store import Store

    db = imported(tmp_path)
    suggested = runner.invoke(app, ["orgs", "suggest", "--db", db])
    assert suggested.exit_code == 0, suggested.output
    text = suggested.stdout
    assert "sector" in text and "maturity orgs apply" in text               # says what to edit and how
    config = tmp_path / "orgs.toml"
    config.write_text(text, encoding="utf-8")
    check = runner.invoke(app, ["config-check", str(config)])
    assert check.exit_code == 0 and "2 organisations, 3 accounts" in check.output, check.output
    orgs = {o.id: o for o in load_config(config).organisations}
    assert sorted(a.handle for a in orgs["amazon"].accounts) == ["Amazon", "AmazonHelp"]
    assert orgs["amazon"].name == "Amazon" and orgs["amazon"].sector is None
    assert [(a.handle, a.role) for a in orgs["apple"].accounts] == [("AppleSupport", "support")]

    assert runner.invoke(app, ["estimate", "--db", db]).exit_code == 0
    config.write_text(text.replace('sector = ""', 'sector = "retail"'), encoding="utf-8")
    applied = runner.invoke(app, ["orgs", "apply", str(config), "--db", db])
    assert applied.exit_code == 0 and "2 organisations, 3 accounts" in applied.output, applied.output
    with Store(db, read_only=True) as store:
        assert store.count("posts") == 6                                      # nothing re-imported
        assert store.count("estimates") == 0                                  # provisional ones are gone
    assert runner.invoke(app, ["estimate", "--db", db]).exit_code == 0
    rows = json.loads(runner.invoke(app, ["estimates", "--db", db, "--format", "json"]).stdout)
    assert {r["org"] for r in rows} == {"amazon", "apple"} and not any(r["provisional"] for r in rows)


def test_commands_on_stored_data_fail_clearly_and_create_nothing(tmp_path):
    missing = tmp_path / "typo" / "mistyped.duckdb"
    config = tmp_path / "orgs.toml"
    config.write_text('[[org]]\nid = "acme"\naccounts = [{ platform = "twitter", handle = "Acme" }]\n')
    commands = [["features"], ["features", "--scope", "org"], ["estimate"], ["estimates"],
                ["report", "--out", str(tmp_path / "r.html")], ["explain", "acme"], ["orgs", "suggest"],
                ["orgs", "apply", str(config)], ["label", "acme", "smmm", "Introductory"],
                ["backfill", "--from", "2017-10-01", "--to", "2017-10-08"]]
    for command in commands:
        result = runner.invoke(app, [*command, "--db", str(missing)])
        assert result.exit_code == 1, (command, result.output)
        assert f"database {missing} does not exist" in result.output, (command, result.output)
        assert "Traceback" not in result.output
    assert not missing.parent.exists()                         # no database, lock, key or folder


def test_features_table_shows_core_columns_and_human_durations_csv_stays_exact(tmp_path):
    db = imported(tmp_path)
    table = runner.invoke(app, ["features", "--db", db, "--as-of", "2017-10-12"])
    assert table.exit_code == 0, table.output
    assert "first_reply_median_s" in table.output and "posts_per_day" not in table.output
    assert "2 h 43 m" in table.output and "5 m" in table.output and "9780" not in table.output
    assert "--all" in table.output                                          # says how to see the rest
    every = runner.invoke(app, ["features", "--db", db, "--as-of", "2017-10-12", "--all"])
    header = next(line for line in every.output.splitlines() if line.startswith("┃"))
    assert every.exit_code == 0 and header.count("┃") > 40                 # every column, cut to fit
    some = runner.invoke(app, ["features", "--db", db, "--as-of", "2017-10-12", "--columns", "posts,response_rate"])
    assert "response_rate" in some.output and "mentions" not in some.output and "account" in some.output
    bad = runner.invoke(app, ["features", "--db", db, "--columns", "postz"])
    assert bad.exit_code == 2 and "postz" in bad.output
    csv_out = runner.invoke(app, ["features", "--db", db, "--as-of", "2017-10-12", "--format", "csv"])
    frame = pd.read_csv(pd.io.common.StringIO(csv_out.stdout))
    assert "posts_per_day" in frame.columns and len(frame.columns) > 30
    assert sorted(frame["first_reply_median_s"].dropna()) == [300, 9780]


def test_human_durations():
    assert [human_duration(s) for s in (45, 300, 305, 9780, 163590, -600)] == [
        "45 s", "5 m", "5 m 5 s", "2 h 43 m", "1 d 21 h", "-10 m"]


def test_stage_table_names_the_models_and_lists_every_thin_organisation():
    orgs = [f"organisation_{i:02d}" for i in range(14)]
    frame = pd.DataFrame([{"org": o, "model": m, "stage": None, "confidence": None,
                           "status": "insufficient_evidence", "stage_low_index": None, "stage_high_index": None,
                           "stages_possible": None, "as_of": pd.Timestamp("2017-12-01"),
                           "window_days": 90} for o in orgs for m in ("smmm", "s3m", "forrester", "altimeter", "smi")]
                         + [{"org": "acme", "model": "smmm", "stage": "Introductory", "confidence": 0.9,
                             "status": "ok", "stage_low_index": 0, "stage_high_index": 0,
                             "stages_possible": "Introductory", "as_of": pd.Timestamp("2017-12-01"),
                             "window_days": 90}])
    out = Console(record=True, width=400)
    print_stage_table(frame, set(), out=out, provisional={"acme"})
    text = out.export_text()
    assert "Forrester Social Media Maturity Model" in text and "acme (provisional)" in text
    assert all(o in text for o in orgs) and "…" not in text


def test_config_check_reports_every_problem_at_once(tmp_path):
    bad = tmp_path / "typos.toml"
    bad.write_text('[settings]\nwindow_dayz = 30\n\n'
                   '[[org]]\nid = "a"\nsectr = "x"\ntimezone = "Mars/Olympus"\n'
                   'accounts = [{ platform = "myspace", handle = "A" }, { platform = "twitter", handle = "B", role = "astronaut" }]\n\n'
                   '[[org]]\nid = "b"\nbusiness_hours = "9 to 5"\naccounts = []\n', encoding="utf-8")
    result = runner.invoke(app, ["config-check", str(bad)])
    assert result.exit_code == 1
    for problem in (":2: window_dayz: unknown key", ":6: sectr: unknown key", ":7: timezone: unknown time zone",
                    ":8: platform: unknown platform", ":8: role: unknown role", ":12: business_hours: expected"):
        assert problem in result.output, (problem, result.output)
    assert "6 problems in" in result.output


def _fake_flow(monkeypatch, summary: RunSummary) -> None:
    import pipeline.flows

    class Flow:
        def with_options(self, **options):
            return lambda **arguments: summary

    monkeypatch.setattr(pipeline.flows, "nightly", Flow())


def test_a_stored_run_does_not_exit_1_when_printing_its_summary_fails(tmp_path, monkeypatch):
    import pipeline.cli

    config = tmp_path / "run.toml"
    config.write_text('[[source]]\nkind = "synthetic"\norgs = 2\n', encoding="utf-8")
    _fake_flow(monkeypatch, RunSummary("a" * 32, None, str(tmp_path / "x.duckdb"), str(config), 90))

    def broken(summary):
        raise OSError("stdout closed")

    monkeypatch.setattr(pipeline.cli, "print_run_summary", broken)
    result = runner.invoke(app, ["run", "--config", str(config), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 0, result.output
    assert "results are stored" in result.output and "stdout closed" in result.output


def test_a_concurrent_run_says_the_database_is_in_use_before_anything_else(tmp_path):
    db = tmp_path / "busy.duckdb"
    config = tmp_path / "run.toml"
    config.write_text('[[source]]\nkind = "synthetic"\norgs = 2\n', encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pipeline.locking import exclusive_run\n"
                               f"with exclusive_run({str(db)!r}, 'nightly run 1234abcd'):\n"
                               "    print('held', flush=True)\n    time.sleep(60)\n"],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # a run that waited for the lock would proceed once the holder's 60 s are over and succeed
        result = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--config", str(config),
                                 "--db", str(db)], env=env, capture_output=True, text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: database {db} is in use by nightly run 1234abcd"), result.stderr
    assert "Traceback" not in result.stderr and "Flow run" not in result.stderr + result.stdout
