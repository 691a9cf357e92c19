"""Hostile names and values are stored and reported verbatim: nothing reaches SQL as text."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connectors.twcs import InputFileError, import_twcs
from features.runner import build_features, features_frame
from pipeline.cli import app
from pipeline.config import ConfigError, apply_config, load_config

HOSTILE = [
    "Robert'); drop table posts; --",
    'quote " and \\ backslash',
    "/* comment */ union select 1",
    "emoji 🤖 ünïcödé ١٢٣ 中文",
    "tab\tand\nnewline",
]


def toml_string(value: str) -> str:
    # a JSON string is a valid TOML basic string, once DEL (raw in JSON, not in TOML) is escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_org_names_and_ids_round_trip(store, tmp_path, name):
    config = tmp_path / "orgs.toml"
    config.write_text(
        f"[[org]]\nid = {toml_string(name)}\nname = {toml_string(name)}\nsector = {toml_string(name)}\n"
        f'accounts = [{{ platform = "twitter", handle = "Acme", role = "support" }}]\n', encoding="utf-8")
    apply_config(store, load_config(config))
    csv = tmp_path / "t.csv"
    csv.write_text("tweet_id,author_id,inbound,created_at,text\n"
                   "1,42,True,2017-10-01T00:00:00Z,@Acme hi\n2,Acme,False,2017-10-05T00:00:00Z,yo\n")
    import_twcs(store, csv)
    build_features(store.con)
    org = features_frame(store.con, scope="org")
    assert list(org.org) == [name]
    assert store.con.execute("select name, sector from organisations").fetchone() == (name, name)
    assert store.count("posts") == 2


@pytest.mark.parametrize("author", HOSTILE[:4])
def test_hostile_authors_and_text_in_data(store, tmp_path, author):
    path = tmp_path / "t.jsonl"
    rows = [{"tweet_id": 1, "author_id": author, "inbound": False, "created_at": "2017-10-01T00:00:00Z",
             "text": author + " '; delete from posts; --"},
            {"tweet_id": 2, "author_id": "7", "inbound": True, "created_at": "2017-09-01T00:00:00Z",
             "text": "hi", "in_response_to_tweet_id": "1"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    import_twcs(store, path)
    build_features(store.con)
    assert store.con.execute("select author, text from posts where post_id = '1'").fetchone() == (
        author, author + " '; delete from posts; --")
    result = CliRunner().invoke(app, ["features", "--db", str(store.path), "--format", "json"])
    assert author in [row["account"] for row in json.loads(result.stdout)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000))
def test_importer_fuzz_random_bytes_gives_clear_errors_and_no_partial_commit(store, tmp_path, data):
    before = store.count("posts")
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"tweet_id,author_id,inbound,created_at,text\n" + data)
    try:
        _, counts = import_twcs(store, path)
    except InputFileError as exc:
        assert str(path) in str(exc)
        assert store.count("posts") == before
    else:
        assert counts.read == counts.loaded + counts.rejected
        assert store.count("posts") <= before + counts.loaded


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=400))
def test_config_fuzz_only_config_errors(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "fuzz.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)


def test_deep_json_and_huge_fields_are_rejected_or_loaded_never_crash(store, tmp_path):
    path = tmp_path / "deep.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    huge_text = "x" * 5_000_000
    good = json.dumps({"tweet_id": 5, "author_id": "Acme", "inbound": False,
                       "created_at": "2017-10-01T00:00:00Z", "text": huge_text})
    nested = json.dumps({"tweet_id": {"a": [1, {"b": 2}]}, "author_id": "Acme", "inbound": False,
                         "created_at": "2017-10-01T00:00:00Z"})
    path.write_text(deep + "\n" + good + "\n" + nested + "\n")
    _, counts = import_twcs(store, path)
    assert (counts.read, counts.loaded, counts.rejected) == (3, 1, 2)
    reasons = [r for (r,) in store.con.execute("select reason from rejected_rows order by line").fetchall()]
    assert reasons[0].startswith("malformed JSON") and reasons[1].startswith("not an integer id: {")
    assert store.con.execute("select length(text) from posts").fetchone() == (5_000_000,)


# Values that break naive SQL, HTML, console markup, matplotlib mathtext or terminals.
HOSTILE_CLI = [
    "Robert'); drop table posts; --",
    "/* c */ \" ; -- <script>alert('x')</script> & co",
    "[/] [bold red]markup[/bold red]",
    "$\\frac{1}{$ price",
    "ünïcödé 🤖 ١٢٣ 中文 \u202eevil",
    "ctrl \x01\x1b[31m red \x7f",
]


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_hostile_values_through_the_cli_store_and_report_verbatim(tmp_path):
    """Organisation ids, names, sector, handles and a file name go through `maturity import`,
    `features`, `estimate` and `report` (html, csv, parquet): stored exactly, HTML-escaped in the
    report, exact in the exports, shown as data (never markup) on the console."""
    import csv
    import html

    import pandas as pd

    from pipeline.store import Store

    sector = HOSTILE_CLI[1]
    orgs = "".join(
        f"[[org]]\nid = {toml_string(value)}\nname = {toml_string(value)}\nsector = {toml_string(sector)}\n"
        f"accounts = [{{ platform = \"twitter\", handle = {toml_string('Care ' + value)}, role = \"support\" }}]\n"
        for value in HOSTILE_CLI)
    config = tmp_path / "orgs.toml"
    config.write_text(orgs, encoding="utf-8")
    data = tmp_path / "it's; -- data.csv"
    with open(data, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["tweet_id", "author_id", "inbound", "created_at", "text", "in_response_to_tweet_id"])
        for i, value in enumerate(HOSTILE_CLI):
            writer.writerow([10 * i + 1, str(1000 + i), "True", "2017-10-01T10:00:00Z", f"help {value}?", ""])
            writer.writerow([10 * i + 2, "Care " + value, "False", "2017-10-01T10:30:00Z", value, 10 * i + 1])
    db = str(tmp_path / "h.duckdb")
    runner = CliRunner()

    def cli(*args: str):
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    cli("import", "twcs", str(data), "--config", str(config))
    listed = {row["org"] for row in json.loads(cli("features", "--format", "json", "--scope", "org").stdout)}
    assert listed == set(HOSTILE_CLI)
    cli("estimate", "--quiet")
    table = cli("estimates", "--format", "table").stdout
    assert "[/] [bold red]markup[/bold red]" in table                  # shown as data, not markup
    assert "ctrl \\x01\\x1b[31m red \\x7f" in table and "\x1b" not in table   # cannot drive the terminal
    cli("report", "--group", sector, "--out", str(tmp_path / "r.html"), "--quiet")
    cli("report", "--group", sector, "--format", "csv", "--out", str(tmp_path / "csv"), "--quiet")
    cli("report", "--group", sector, "--format", "parquet", "--out", str(tmp_path / "pq"), "--quiet")

    with Store(db, read_only=True) as store:
        assert {r[0] for r in store.con.execute("select name from organisations").fetchall()} == set(HOSTILE_CLI)
        assert {r[0] for r in store.con.execute("select handle from accounts").fetchall()} == \
            {"Care " + v for v in HOSTILE_CLI}
        assert store.con.execute("select source from ingest_runs").fetchone() == (f"twcs:{data.name}",)
        org_text = {r[0] for r in store.con.execute("select text from posts where is_org_author").fetchall()}
        assert org_text == set(HOSTILE_CLI)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    for value in HOSTILE_CLI:
        assert html.escape(value) in page, value
    assert "<script>alert('x')" not in page
    for exported in (pd.read_csv(tmp_path / "csv" / "stage_matrix.csv", dtype=str, keep_default_na=False),
                     pd.read_parquet(tmp_path / "pq" / "stage_matrix.parquet")):
        assert set(exported["org"]) == set(HOSTILE_CLI)
