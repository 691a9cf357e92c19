"""Secrets sentinel scan: the whole pipeline, run through the `maturity` CLI in subprocesses with a
distinctive sentinel in every credential variable, leaves no trace of any of them anywhere.

Every live platform in the config points at a loopback server (tests/secret_echo_api.py) that
refuses the credentials (401 / OAuth error) and quotes back what the client sent — Authorization
header, User-Agent, form and JSON bodies — so each platform's error path carries the credential.
`maturity sync` reads the credentials from the environment, `maturity run` (the Prefect flow) from
a `.env` file in its working directory. Then `maturity report` writes HTML, CSV and Parquet.

Scanned for each sentinel, raw, percent-encoded and base64 (plus Reddit's basic-auth form):
stdout/stderr of every command (library loggers at DEBUG, Prefect at DEBUG with the client
libraries as extra loggers, so their records also go to the Prefect API), every file the run
wrote (DuckDB file and WAL, Prefect's home with its API database and logs, report, exports), and
the decoded contents of the DuckDB tables and the Parquet files (both compress strings).
The pseudonym key is one of the sentinels; the last test follows a customer id through an import.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pyarrow.parquet as pq
import pytest

from connectors.credentials import CREDENTIAL_VARS
from secret_echo_api import SecretEchoAPI

TESTS = Path(__file__).resolve().parent
# The Mastodon instance is a server address, not a secret: it must be the fake API's for the
# token to be sent at all.
NOT_SECRET = {"MATURITY_MASTODON_INSTANCE"}
SENTINELS = {name: f"SNTL{i:02d}_{name.removeprefix('MATURITY_')}/+=%&?" for i, name in
             enumerate(sorted(n for platform in CREDENTIAL_VARS.values() for n in platform if n not in NOT_SECRET))}
SENTINELS["MATURITY_BLUESKY_HANDLE"] = "sntl-bluesky-handle.example"   # a handle-shaped login
SENTINELS["MATURITY_PSEUDONYM_KEY"] = "SNTL_PSEUDONYM_KEY_x9"
LIBRARY_LOGGERS = ["maturity", "tweepy", "praw", "prawcore", "mastodon", "atproto", "atproto_client",
                   "httpx", "urllib3", "requests"]
# Starts the real CLI after pointing the platforms' fixed hosts at the fake API; library loggers
# print at DEBUG (tweepy logs request headers there). The tests folder goes last on sys.path so
# tests/connectors cannot shadow the connectors package.
BOOT = f"""
import logging, os, sys
sys.path.append({str(TESTS)!r})
import secret_echo_api
secret_echo_api.redirect_platform_hosts(os.environ["SECRET_ECHO_API"])
logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
for name in {LIBRARY_LOGGERS!r}:
    logging.getLogger(name).setLevel(logging.DEBUG)
from pipeline.cli import main
sys.argv[0] = "maturity"
main()
"""
TWCS = ("tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
        "1,115712,True,Mon Oct 02 10:00:00 +0000 2017,@AcmeCare my order is late?,2,\n"
        "2,AcmeCare,False,Mon Oct 02 10:05:00 +0000 2017,@115712 Sorry! DM us ^JK,,1\n"
        "3,115713,True,Mon Oct 02 11:00:00 +0000 2017,@GlobexHelp hello?,4,\n"
        "4,GlobexHelp,False,Mon Oct 02 11:30:00 +0000 2017,@115713 hi there,,3\n")


def sentinel_forms() -> dict[str, str]:
    """Every form a sentinel could take in output -> the variable it comes from."""
    forms = {}
    for name, value in SENTINELS.items():
        for form in (value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()):
            forms[form] = name
    reddit_basic = f"{SENTINELS['MATURITY_REDDIT_CLIENT_ID']}:{SENTINELS['MATURITY_REDDIT_CLIENT_SECRET']}"
    forms[base64.b64encode(reddit_basic.encode()).decode()] = "Reddit basic auth (client id:secret)"
    return forms


def leaks(text: str, where: str) -> list[str]:
    return [f"{where}: {name} ({form!r})" for form, name in sentinel_forms().items() if form in text]


def write_config(folder: Path, api_url: str) -> Path:
    config = folder / "pipeline.toml"
    config.write_text(f'''
[[source]]
kind = "twcs"
path = "twcs.csv"
[[source]]
kind = "x"
[[source]]
kind = "reddit"
[[source]]
kind = "mastodon"
[[source]]
kind = "bluesky"

[[org]]
id = "acme"
sector = "retail"
accounts = [
  {{ platform = "twitter", handle = "AcmeCare", role = "support" }},
  {{ platform = "reddit", handle = "u/acme_care" }},
  {{ platform = "mastodon", handle = "brand", instance = "{api_url}" }},
  {{ platform = "bluesky", handle = "acme.bsky.social" }},
]

[[org]]
id = "globex"
sector = "retail"
accounts = [{{ platform = "twitter", handle = "GlobexHelp", role = "support" }}]
''', encoding="utf-8")
    return config


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, model_cache):
    """Runs sync, run, and the three report formats once; returns the folder, every command's
    output and what the fake API received in each phase."""
    folder = tmp_path_factory.mktemp("sentinel-run")
    (folder / "twcs.csv").write_text(TWCS, encoding="utf-8")
    with SecretEchoAPI() as api:
        write_config(folder, api.url)
        credentials = {**{k: v for k, v in SENTINELS.items() if k != "MATURITY_PSEUDONYM_KEY"},
                       "MATURITY_MASTODON_INSTANCE": api.url}
        base_env = {k: v for k, v in os.environ.items() if not k.startswith(("MATURITY_", "PREFECT_"))}
        base_env.update({
            "SECRET_ECHO_API": api.url, "MATURITY_PSEUDONYM_KEY": SENTINELS["MATURITY_PSEUDONYM_KEY"],
            "MATURITY_DB": str(folder / "pipeline.duckdb"), "MATURITY_MODEL_CACHE": str(model_cache),
            "MATURITY_TRAIN_ORGS": "80", "PREFECT_HOME": str(folder / "prefect-home"),
            "PREFECT_LOGGING_LEVEL": "DEBUG", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # the run's ephemeral Prefect API starts in ~10 s on a quiet machine, far slower on a busy one
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            # client libraries' records also go to the Prefect API (stored in PREFECT_HOME)
            "PREFECT_LOGGING_EXTRA_LOGGERS": "maturity,tweepy,praw,prawcore,mastodon,atproto,urllib3",
        })
        outputs: dict[str, str] = {}
        received: dict[str, str] = {}

        def cli(phase: str, *args: str, env: dict, expect: set[int]) -> None:
            done = subprocess.run([sys.executable, "-c", BOOT, *args], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=240)
            outputs[phase] = f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
            earlier = "".join(f"\n--- {name}: {text[-2000:]}" for name, text in outputs.items() if name != phase)
            assert done.returncode in expect, f"{phase}: {done.stdout}\n{done.stderr[-3000:]}{earlier}"

        cli("sync", "sync", "--config", "pipeline.toml", env={**base_env, **credentials}, expect={1})
        received["sync"], api.requests[:] = "\n".join(api.requests), []
        (folder / ".env").write_text("".join(f"{k}={v!r}\n" for k, v in credentials.items()), encoding="utf-8")
        cli("run", "run", "--config", "pipeline.toml", env=base_env, expect={0, 1})
        received["run"] = "\n".join(api.requests)
        cli("report-html", "report", "--group", "retail", "--out", "report.html", env=base_env, expect={0})
        cli("report-csv", "report", "--format", "csv", "--out", "csv", env=base_env, expect={0})
        cli("report-parquet", "report", "--format", "parquet", "--out", "parquet", env=base_env, expect={0})
    yield folder, outputs, received


def test_the_connectors_really_sent_every_credential(pipeline_run):
    """Otherwise the scan proves nothing: env (sync) and .env (run) both reached every client."""
    _, outputs, received = pipeline_run
    for phase in ("sync", "run"):
        sent = received[phase]
        basic = base64.b64encode(f"{SENTINELS['MATURITY_REDDIT_CLIENT_ID']}:"
                                 f"{SENTINELS['MATURITY_REDDIT_CLIENT_SECRET']}".encode()).decode()
        assert f"Bearer {SENTINELS['MATURITY_X_BEARER_TOKEN']}" in sent, f"{phase}: {outputs[phase][-2000:]}"
        assert f"Basic {basic}" in sent and quote_plus(SENTINELS["MATURITY_REDDIT_PASSWORD"]) in sent
        assert quote_plus(SENTINELS["MATURITY_REDDIT_USERNAME"]) in sent
        assert SENTINELS["MATURITY_REDDIT_USER_AGENT"] in sent
        assert f"Bearer {SENTINELS['MATURITY_MASTODON_ACCESS_TOKEN']}" in sent
        assert SENTINELS["MATURITY_BLUESKY_HANDLE"] in sent
        assert SENTINELS["MATURITY_BLUESKY_PASSWORD"] in sent
    sync = outputs["sync"]
    for platform in ("twitter", "reddit", "mastodon", "bluesky"):
        assert f"{platform} account" in sync and "credentials rejected (401)" in sync
    assert "2 posts synced (failed)" in sync          # Mastodon's statuses loaded before the 401


def test_no_sentinel_in_command_output_or_logs(pipeline_run):
    _, outputs, _ = pipeline_run
    found = [hit for phase, text in outputs.items() for hit in leaks(text, phase)]
    assert not found, found


def test_no_sentinel_in_any_file_the_pipeline_wrote(pipeline_run):
    folder, _, _ = pipeline_run
    written = [p for p in folder.rglob("*") if p.is_file() and p.name != ".env"]
    assert any(p.name == "pipeline.duckdb" for p in written) and any(p.suffix == ".parquet" for p in written)
    assert any("prefect-home" in p.parts for p in written)          # the Prefect API database and logs
    found = [hit for path in written
             for hit in leaks(path.read_bytes().decode("latin-1"), str(path.relative_to(folder)))]
    assert not found, found


def test_no_sentinel_in_decoded_database_tables_or_parquet(pipeline_run):
    """DuckDB and Parquet compress strings, so a byte scan alone could miss a stored value."""
    folder, _, _ = pipeline_run
    con = duckdb.connect(str(folder / "pipeline.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from information_schema.tables").fetchall()]
        assert {"posts", "ingest_runs", "pipeline_runs", "sync_state"} <= set(tables)
        dumped = {t: con.execute(f'select * from "{t}"').df().to_csv() for t in tables}   # names from the catalog
        assert "credentials rejected (401)" in dumped["ingest_runs"]   # the error texts were stored
    finally:
        con.close()
    for path in folder.glob("parquet/*.parquet"):
        dumped[str(path)] = pq.read_table(path).to_pandas().to_csv()
    found = [hit for where, text in dumped.items() for hit in leaks(text, where)]
    assert not found, found


def test_customers_stay_pseudonymous_through_the_twcs_import(store, tmp_path):
    """The README's example end to end: the customer's id is replaced in the author column and
    inside the brand's reply ("@115712 Sorry …") by the same keyed hash, the customer's own text is
    not stored, and the raw id appears nowhere in the posts table."""
    from connectors.twcs import import_twcs

    path = tmp_path / "twcs.csv"
    path.write_text(TWCS, encoding="utf-8")
    import_twcs(store, path)
    customer = store.pseudonym("115712")
    rows = dict(store.con.execute("select post_id, author from posts").fetchall())
    assert rows["1"] == customer
    assert store.con.execute("select text from posts where post_id = '2'").fetchone() == (f"@{customer} Sorry! DM us ^JK",)
    assert store.con.execute("select text from posts where not is_org_author and text is not null").fetchall() == []
    assert "115712" not in store.df("select * from posts").to_csv()
