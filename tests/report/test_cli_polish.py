"""CLI conventions: --help on every command, exit codes 0 ok / 1 failure / 2 usage, --quiet prints nothing."""
from __future__ import annotations

import typer
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            found.extend(_commands(command, (*prefix, name)))
    return found


def test_every_command_has_help():
    commands = _commands(typer.main.get_command(app))
    assert {("report",), ("features",), ("import", "twcs"), ("estimate",), ("run",)} <= set(commands)
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path


def test_usage_errors_exit_2_and_failures_exit_1(tmp_path):
    assert runner.invoke(app, []).exit_code == 2                       # no command: help, usage error
    assert runner.invoke(app, ["no-such-command"]).exit_code == 2
    assert runner.invoke(app, ["features", "--scope", "galaxy"]).exit_code == 2
    assert runner.invoke(app, ["report"]).exit_code == 2               # --out is required
    missing = tmp_path / "missing.duckdb"
    result = runner.invoke(app, ["estimates", "--db", str(missing)])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(app, ["import", "twcs", str(tmp_path / "nope.csv"), "--db", str(tmp_path / "x.duckdb")])
    assert result.exit_code == 1


def test_quiet_features_build_without_output(tmp_path):
    csv = tmp_path / "tiny.csv"
    csv.write_text("tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
                   "1,115712,True,Tue Oct 31 22:10:47 +0000 2017,@Acme help?,2,\n"
                   "2,Acme,False,Tue Oct 31 22:20:47 +0000 2017,@115712 on it,,1\n", encoding="utf-8")
    db = str(tmp_path / "q.duckdb")
    result = runner.invoke(app, ["import", "twcs", str(csv), "--db", db, "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    result = runner.invoke(app, ["features", "--db", db, "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    result = runner.invoke(app, ["features", "--db", db, "--format", "csv"])
    assert result.exit_code == 0 and result.output.startswith("org,platform,account,posts")
    assert "acme" in result.output.lower()
