import json

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.store import writer

runner = CliRunner()
CSV = (",tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
       "0,1,115712,True,Mon Oct 02 10:00:00 +0000 2017,@AcmeCare help?,2,\n"
       "1,2,AcmeCare,False,Mon Oct 02 10:05:00 +0000 2017,@115712 on it ^JK,,1.0\n"
       "2,3,115713,True,Fri Oct 06 10:00:00 +0000 2017,@AcmeCare thanks,,\n"
       "3,4,115714,True,yesterday,@AcmeCare hm,,\n")


def test_import_then_features_as_json(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text(CSV)
    db = str(tmp_path / "cli.duckdb")
    result = runner.invoke(app, ["import", "twcs", str(csv), "--db", db])
    assert result.exit_code == 0, result.output
    assert "read 4, loaded 3, rejected 1" in result.output
    assert "line 5, created_at: unrecognised timestamp: yesterday" in result.output
    result = runner.invoke(app, ["features", "--db", db, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["account"] == "AcmeCare" and rows[0]["mentions"] == 1 and rows[0]["answered"] == 1
    assert rows[0]["first_reply_median_s"] == 300
    for column in ("org", "account", "platform", "posts", "mentions", "answered", "response_rate",
                   "first_reply_median_s", "first_reply_p90_s"):
        assert column in rows[0]
    csv_out = runner.invoke(app, ["features", "--db", db, "--format", "csv", "--as-of", "2017-10-10"])
    assert csv_out.exit_code == 0 and csv_out.stdout.splitlines()[0].startswith("org,platform,account,posts")
    negative = runner.invoke(app, ["features", "--db", db, "--window", "-5"])
    assert negative.exit_code == 2 and "Invalid value for '--window'" in negative.output
    assert "greater than or equal to 0" in negative.output


def test_a_file_whose_replies_lack_their_parents_is_read_as_a_sample_of_posts(tmp_path):
    from pipeline.config import Source
    from pipeline.estimation import org_observation
    from pipeline.jobs import ingest_source
    from pipeline.store import Store

    def thread(n: int, parent: int) -> str:   # a customer's question and the brand's reply to `parent`
        return (f"{2 * n},{2 * n},{1000 + n},True,Mon Oct 02 10:00:00 +0000 2017,@AcmeCare help?,,\n"
                f"{2 * n + 1},{2 * n + 1},AcmeCare,False,Mon Oct 02 10:05:00 +0000 2017,@{1000 + n} on it,,"
                f"{parent}.0\n")

    header = CSV.splitlines(keepends=True)[0]
    csv = tmp_path / "posts.csv"
    csv.write_text(header + "".join(thread(n, 100_000 + n) for n in range(1, 61)))   # no parent in the file
    db = tmp_path / "cli.duckdb"
    result = runner.invoke(app, ["import", "twcs", str(csv), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "only 0 of 60 sampled replies have the post they reply to stored" in result.output, result.output
    with Store(db, read_only=True) as store:
        (as_of,) = store.con.execute("select max(created_at) from posts").fetchone()
        observation = org_observation(store, as_of, 90).iloc[0]
    assert observation["observes_mentions"] == observation["observes_answer_share"] == "none"
    threads = tmp_path / "threads.csv"
    threads.write_text(header + "".join(thread(n, 2 * n) for n in range(1, 61)))
    whole = runner.invoke(app, ["import", "twcs", str(threads), "--db", str(tmp_path / "threads.duckdb")])
    assert whole.exit_code == 0 and "sample of posts" not in whole.output
    # a run's source table says the same
    for path, note in ((csv, "only 0 of 60 sampled replies"), (threads, None)):
        with writer(tmp_path / f"run-{path.stem}.duckdb"):
            pass
        result = ingest_source(str(tmp_path / f"run-{path.stem}.duckdb"), Source(kind="twcs", path=path))
        assert result.status == "ok"
        assert result.message is None if note is None else note in result.message, result.message


def test_errors_exit_1_with_a_message_and_usage_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[org]]\nid = "x"\naccounts = []\ncolour = "red"\n')
    result = runner.invoke(app, ["config-check", str(bad)])
    assert result.exit_code == 1 and "bad.toml:4: colour: unknown key" in result.output
    with writer(tmp_path / "empty.duckdb"):
        pass
    result = runner.invoke(app, ["features", "--db", str(tmp_path / "empty.duckdb")])
    assert result.exit_code == 1 and "no posts are stored yet" in result.output
    result = runner.invoke(app, ["import", "twcs", str(tmp_path / "missing.csv"), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1 and "cannot open" in result.output
    assert list(tmp_path.glob("x.duckdb*")) == []          # no database, key or lock for a missing input
    assert runner.invoke(app, ["features", "--format", "xml", "--db", str(tmp_path / "x.duckdb")]).exit_code in (1, 2)
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2


def test_dictionary_lists_core_features():
    result = runner.invoke(app, ["dictionary"])
    assert result.exit_code == 0
    for name in ("posts_per_day", "active_day_share", "mentions", "response_rate", "first_reply_p90_s"):
        assert f"`{name}`" in result.stdout


def test_run_task_runner_options_are_checked(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("")
    result = runner.invoke(app, ["run", "--config", str(config), "--dask-address", "tcp://10.0.0.5:8786"])
    assert result.exit_code == 2 and "--dask-address needs --task-runner dask" in result.output
    result = runner.invoke(app, ["run", "--config", str(config), "--task-runner", "spark"])
    assert result.exit_code == 2 and "unknown task runner 'spark'" in result.output


def test_help_shows_square_brackets_of_the_docstrings():
    for args in (["--help"], ["sync", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "[[source]]" in result.output, result.output
