"""estimate / estimates / explain / label through the CLI on a small synthetic store."""
import json

import pytest
from typer.testing import CliRunner

from pipeline.training.synthetic import END, import_synthetic
from features.runner import build_features
from pipeline.cli import app
from pipeline.store import Store, writer

runner = CliRunner()


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("cli") / "syn.duckdb"
    with writer(db) as store:
        import_synthetic(store, 21, 8)
        build_features(store.con, END, windows=(0, 90))
    return db


def test_estimate_then_estimates_explain_and_label(synthetic_db):
    db = str(synthetic_db)
    result = runner.invoke(app, ["estimate", "--db", db])
    assert result.exit_code == 0, result.output
    rows = json.loads(runner.invoke(app, ["estimates", "--db", db, "--format", "json"]).stdout)
    assert {r["model"] for r in rows} == {"smmm", "s3m", "forrester", "altimeter", "smi"}
    assert all(set(r) >= {"org", "model", "stage", "stage_index", "confidence", "status"} for r in rows)
    header = runner.invoke(app, ["estimates", "--db", db, "--format", "csv"]).stdout.splitlines()[0]
    assert header == ("org,model,stage,stage_index,confidence,status,stage_low_index,stage_high_index,"
                      "stages_possible,as_of,window_days,provisional")
    with Store(synthetic_db, read_only=True) as store:
        stored = dict(store.con.execute("select org_id || model, stages_possible from estimates").fetchall())
    assert {r["org"] + r["model"]: r["stages_possible"] for r in rows} == stored
    judged = next(r for r in rows if r["status"] == "ok" and r["model"] == "forrester")

    explained = runner.invoke(app, ["explain", judged["org"], "--model", "forrester", "--db", db])
    assert explained.exit_code == 0, explained.output
    text = explained.stdout
    assert judged["stage"] in text and "advice" in text.lower()
    assert "next stage needs" in text and "quoted from the seed" in text

    unknown = runner.invoke(app, ["explain", "no-such-org", "--db", db])
    assert unknown.exit_code == 1 and "unknown organisation 'no-such-org' (known: syn21_000, " in unknown.output
    other_case = runner.invoke(app, ["explain", judged["org"].upper(), "--model", "forrester", "--db", db])
    assert other_case.exit_code == 0 and other_case.stdout == text
    by_handle = runner.invoke(app, ["explain", f"{judged['org']}_TW", "--model", "forrester", "--db", db])
    assert by_handle.exit_code == 0 and by_handle.stdout == text
    assert f"{judged['org']}_TW is an account of {judged['org']}" in by_handle.stderr
    assert runner.invoke(app, ["explain", judged["org"], "--format", "xml", "--db", db]).exit_code == 2
    unknown_label = runner.invoke(app, ["label", "nobody", "forrester", "Early Majority", "--db", db])
    assert unknown_label.exit_code == 1 and "unknown organisation 'nobody' (known: " in unknown_label.output

    labelled = runner.invoke(app, ["label", judged["org"], "forrester", "Innovators", "--db", db])
    assert labelled.exit_code == 0, labelled.output
    bad = runner.invoke(app, ["label", judged["org"], "forrester", "Wizards", "--db", db])
    assert bad.exit_code == 1 and "Wizards" in bad.output
    with Store(synthetic_db, read_only=True) as store:
        assert store.con.execute("select org_id, model, stage from labels").fetchall() == [
            (judged["org"], "forrester", "Innovators")]


def test_backfill_fills_history_idempotently(tmp_path):
    db = tmp_path / "history.duckdb"
    with writer(db) as store:
        import_synthetic(store, 22, 6)
    args = ["backfill", "--from", "2024-06-02", "--to", "2024-06-30", "--every", "14d", "--db", str(db)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert first.stdout.count("estimates on the last 90 days (") == 3  # 06-02, 06-16, 06-30

    def history():
        with Store(db, read_only=True) as store:
            return (store.con.execute("select as_of, count(*) from estimates group by 1 order by 1").fetchall(),
                    store.count("features"))

    before = history()
    assert [row[1] for row in before[0]] == [30, 30, 30]  # 6 organisations x 5 models per as_of
    assert runner.invoke(app, args).exit_code == 0
    assert history() == before  # re-running replaces, never duplicates
    # a past date computed after the newest one does not become the latest estimates
    assert runner.invoke(app, ["backfill", "--from", "2024-06-16", "--to", "2024-06-16", "--db", str(db)]
                         ).exit_code == 0
    latest = json.loads(runner.invoke(app, ["estimates", "--db", str(db), "--format", "json"]).stdout)
    assert {row["as_of"][:10] for row in latest} == {"2024-06-30"}
    assert runner.invoke(app, ["backfill", "--from", "2024-06-30", "--to", "2024-06-01",
                               "--db", str(db)]).exit_code == 1
    assert runner.invoke(app, ["backfill", "--from", "2024-06-01", "--to", "2024-06-30", "--every", "weekly",
                               "--db", str(db)]).exit_code == 2


def test_stage_table_separates_organisations_without_posts_from_thin_ones(synthetic_db, tmp_path):
    import shutil

    from rich.console import Console

    from pipeline.console import print_stage_table
    from pipeline.estimation import orgs_without_posts, stored_estimates

    db = tmp_path / "copy.duckdb"
    shutil.copy(synthetic_db, db)
    with writer(db) as store:
        store.con.execute("insert into organisations (org_id, name) values ('newco', 'New Co')")
        store.con.execute("insert into accounts (platform, handle_key, handle, org_id, role, configured) "
                          "values ('twitter', 'newcocare', 'NewCoCare', 'newco', 'support', true)")
        build_features(store.con, END, windows=(0, 90))
    assert runner.invoke(app, ["estimate", "--db", str(db)]).exit_code == 0
    with Store(db, read_only=True) as store:
        frame, without_posts = stored_estimates(store), orgs_without_posts(store)
    console = Console(record=True, width=200)
    print_stage_table(frame, without_posts, console)
    text = console.export_text()
    assert "1 organisations have no posts stored yet (configured, no data): newco" in text
    assert "newco │" not in text                          # not in the stage table
