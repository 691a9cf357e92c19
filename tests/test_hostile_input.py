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
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


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
    build_features(store)
    org = features_frame(store, scope="org")
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
    build_features(store)
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
