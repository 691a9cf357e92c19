import random
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from connectors.records import Post, posts_to_batch
from pipeline.store import Store, StoreError, writer
from datetime import datetime


def _post(pid, author="acme", org=True, text="hello", reply=None, at=datetime(2024, 1, 1, 12)):
    return Post("twitter", pid, author, org, at, in_reply_to=reply, text=text)


def test_migrations_are_versioned_and_applied_once(tmp_path):
    path = tmp_path / "m.duckdb"
    with writer(path) as store:
        versions = [v for (v,) in store.con.execute("select version from schema_migrations order by 1").fetchall()]
        assert versions[:2] == [1, 2]
        assert store.migrate() == []
    with writer(path) as again:
        assert again.migrate() == []


def test_media_stored_as_false_for_sources_that_do_not_report_it_becomes_not_reported(tmp_path):
    from connectors.twcs import import_twcs

    csv = tmp_path / "t.csv"
    csv.write_text("tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
                   "1,acme,False,Tue Oct 31 22:10:47 +0000 2017,hi,,\n")
    with writer(tmp_path / "m.duckdb") as store:
        import_twcs(store, csv)
        with store.transaction():
            store.load_posts(posts_to_batch([Post("mastodon", "9", "acme", True, datetime(2024, 1, 1),
                                                  has_media=False)]), source="live", run_id=None)
        store.refresh_facts()
        assert store.con.execute("select has_media from posts where post_id = '1'").fetchall() == [(None,)]
        with store.transaction() as con:   # as loads stored a twcs post before migration 015
            con.execute("update posts set has_media = false")
            con.execute("update fact_org_posts set has_media = false")
            con.execute("delete from schema_migrations where version = 15")
        assert store.migrate() == [15]
        media = "select platform, has_media from {} order by platform"
        assert store.con.execute(media.format("posts")).fetchall() == [("mastodon", False), ("twitter", None)]
        assert store.con.execute(media.format("fact_org_posts")).fetchall() == [("mastodon", False), ("twitter", None)]


def test_load_merges_on_platform_and_post_id(store):
    with store.transaction():
        store.load_posts(posts_to_batch([_post("1"), _post("2")]), source="t", run_id=None)
    with store.transaction():
        store.load_posts(posts_to_batch([_post("2", text="edited"), _post("3")]), source="t", run_id=None)
    assert store.count("posts") == 3
    assert store.con.execute("select text from posts where post_id = '2'").fetchone() == ("edited",)


def test_a_key_is_never_stored_twice_across_batches_and_platforms(store):
    rng = random.Random(7)
    last = {}
    for load in range(12):
        posts = [Post(rng.choice(["twitter", "mastodon"]), str(rng.randrange(40)), "acme", True,
                      datetime(2024, 1, 1, 12), text=f"load {load} copy {copy}")
                 for copy in range(rng.randrange(1, 30))]
        with store.transaction():
            store.load_posts(posts_to_batch(posts), source="t", run_id=None)
        last.update({(p.platform, p.post_id): p.text for p in posts})   # the batch's last row of a key wins
    stored = store.con.execute("select platform, post_id, text from posts").fetchall()
    assert len(stored) == len(last)
    assert {(platform, post_id): text for platform, post_id, text in stored} == last


def test_posts_keep_every_row_when_their_index_is_dropped(tmp_path):
    with writer(tmp_path / "m.duckdb") as store:
        with store.transaction():
            store.load_posts(posts_to_batch([_post("1"), _post("2", text="b"), _post("3", reply="1")]),
                             source="t", run_id=None)
        before = store.con.execute("select * from posts order by post_id").fetchall()
        with store.transaction() as con:   # run migration 016 again over stored posts
            con.execute("delete from schema_migrations where version = 16")
        assert store.migrate() == [16]
        assert store.con.execute("select * from posts order by post_id").fetchall() == before
        constraints = store.con.execute("select constraint_type from duckdb_constraints() "
                                        "where table_name = 'posts'").fetchall()
        assert ("PRIMARY KEY",) not in constraints


def test_duplicates_inside_one_batch_keep_the_last(store):
    with store.transaction():
        store.load_posts(posts_to_batch([_post("1", text="a"), _post("1", text="b")]), source="t", run_id=None)
    assert store.con.execute("select text from posts").fetchall() == [("b",)]


def test_derived_fields_and_customer_text_dropped_by_default(store):
    customer = _post("9", author="115712", org=False, text="@acme why is my bill wrong? #fail")
    reply = _post("10", text="@115712 Sorry! Please DM us your account number. ^JK https://t.co/x", reply="9")
    with store.transaction():
        store.load_posts(posts_to_batch([customer, reply]), source="t", run_id=None)
    # text derivations are features/text.py's macros over the stored text; the customer's text is
    # dropped, so only the question flag the features need from it is kept
    rows = store.df("select post_id, author, text, mentions, dropped_text_is_question, private_channel(text) "
                    "as private_channel, has_link(text) as has_link, signature(text) as signature "
                    "from posts order by post_id").set_index("post_id")
    assert pd.isna(rows.loc["9", "text"])
    assert list(rows.loc["9", "mentions"]) == [store.pseudonym("acme")]
    assert rows.loc["9", "dropped_text_is_question"] and pd.isna(rows.loc["10", "dropped_text_is_question"])
    assert rows.loc["10", "private_channel"] and rows.loc["10", "has_link"]
    assert rows.loc["10", "signature"] == "JK"
    # org authors become (unassigned) accounts
    assert store.con.execute("select handle, org_id from accounts").fetchall() == [("acme", None)]


def test_customers_are_pseudonymised_with_one_keyed_hash(store):
    customer = _post("9", author="Customer_Jo", org=False, text="@acme @OtherShop help")
    reply = _post("10", text="@customer_jo Sorry, @Customer_Jo! ^JK", reply="9")
    with store.transaction():
        store.load_posts(posts_to_batch([customer, reply]), source="t", run_id=None)
    jo = store.pseudonym("customer_jo")
    assert jo.startswith("u") and len(jo) == 17 and jo == store.pseudonym("Customer_Jo")
    rows = store.df("select post_id, author, author_key, is_org_author, text, mentions from posts "
                    "order by post_id").set_index("post_id")
    assert (rows.loc["9", "author"], rows.loc["9", "author_key"]) == (jo, jo)
    assert list(rows.loc["9", "mentions"]) == [store.pseudonym("acme"), store.pseudonym("othershop")]
    assert rows.loc["10", "text"] == f"@{jo} Sorry, @{jo}! ^JK"
    assert list(rows.loc["10", "mentions"]) == [jo, jo]
    dump = store.df("select * from posts").to_csv()
    assert "customer_jo" not in dump.lower() and "othershop" not in dump.lower()


@pytest.mark.parametrize("platform, customer, org_text, masked_text", [
    # handles are masked whole, as each platform writes them, with the author column's pseudonym
    ("bluesky", "jane.smith.dev", "Thanks @jane.smith.dev. We fixed it", "Thanks @{p}. We fixed it"),
    ("mastodon", "carol@mastodon.social", "@carol@mastodon.social sorry about that", "@{p} sorry about that"),
    ("reddit", "jane_doe", "Thanks u/jane_doe, and /u/jane_doe too; menu/item stays",
     "Thanks u/{p}, and /u/{p} too; menu/item stays"),
    ("twitter", "jane", "@jane.Thanks", "@{p}.Thanks"),          # X handles stop at the full stop
])
def test_customer_handles_in_org_text_are_masked_per_platform(store, platform, customer, org_text, masked_text):
    posts = [Post(platform, "c1", customer, False, datetime(2024, 1, 1, 12), text="help"),
             Post(platform, "o1", "brand", True, datetime(2024, 1, 1, 13), in_reply_to="c1", text=org_text)]
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="t", run_id=None)
    rows = store.df("select post_id, author, text, mentions from posts").set_index("post_id")
    hashed = store.pseudonym(customer)
    assert rows.loc["c1", "author"] == hashed
    assert rows.loc["o1", "text"] == masked_text.format(p=hashed)
    if platform != "reddit":                        # u/name is masked, not a mention
        assert list(rows.loc["o1", "mentions"]) == [hashed]
    assert customer.split("@")[0] not in store.df("select * from posts").to_csv()


def test_mastodon_mention_links_name_the_account_as_the_author_column_does(store):
    from connectors.credentials import Credentials
    from connectors.mastodon import MastodonConnector
    from connectors.accounts import Account

    brand = Account(platform="mastodon", handle="brand", role="support", instance="social.example")
    connector = MastodonConnector(Credentials("mastodon", {}), [brand])
    status = {"id": "7", "created_at": datetime(2024, 1, 1, 12), "in_reply_to_id": None,
              "account": {"acct": "carol@other.example"}, "media_attachments": [],
              "content": '<p><span class="h-card"><a href="https://social.example/@brand" class="u-url mention">'
                         '@<span>brand</span></a></span> is my order lost?</p>'}
    post = connector.to_post(status, "https://social.example")
    assert post.text == "@brand is my order lost?" and post.author == "carol@other.example"
    reply = dict(status, id="8", account={"acct": "brand"}, in_reply_to_id="7",
                 content='<p><a href="https://other.example/@carol" class="u-url mention">@<span>carol</span></a>'
                         ' not lost, on its way</p>')
    answer = connector.to_post(reply, "https://social.example")
    assert answer.text == "@carol@other.example not lost, on its way" and answer.is_org_author
    with store.transaction():
        store.load_posts(posts_to_batch([post, answer]), source="t", run_id=None)
    rows = store.df("select post_id, author, text, mentions from posts").set_index("post_id")
    carol = store.pseudonym("carol@other.example")
    assert rows.loc["7", "author"] == carol and list(rows.loc["7", "mentions"]) == [store.pseudonym("brand")]
    assert rows.loc["8", "text"] == f"@{carol} not lost, on its way"


def test_reddit_user_accounts_configured_as_u_name_own_their_posts(store, tmp_path):
    from pipeline.config import apply_config, load_config

    cfg = tmp_path / "orgs.toml"
    cfg.write_text('[[org]]\nid = "acme"\naccounts = [{ platform = "reddit", handle = "u/AcmeHelp" }]\n')
    apply_config(store, load_config(cfg))
    with store.transaction():
        store.load_posts(posts_to_batch([Post("reddit", "t1_a", "AcmeHelp", False, datetime(2024, 1, 1),
                                              text="hi")]), source="t", run_id=None)
    assert store.con.execute("select author, is_org_author from posts").fetchone() == ("AcmeHelp", True)
    assert store.con.execute("select handle_key, org_id from accounts").fetchall() == [("acmehelp", "acme")]


def test_the_pseudonym_key_lives_outside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("MATURITY_PSEUDONYM_KEY", raising=False)
    path = tmp_path / "p.duckdb"
    with writer(path) as first:
        masked = first.pseudonym("someone")
    key_file = tmp_path / "p.duckdb.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key_file.read_text().encode() not in path.read_bytes()
    with writer(path) as again:
        assert again.pseudonym("someone") == masked  # stable for the database
    monkeypatch.setenv("MATURITY_PSEUDONYM_KEY", "from-the-environment")
    with writer(path) as keyed:
        assert keyed.pseudonym("someone") != masked


def test_an_account_configured_later_is_unmasked(store, tmp_path):
    from pipeline.config import apply_config, load_config

    with store.transaction():
        store.load_posts(posts_to_batch([
            _post("2", author="ShopCare", org=False, text="we are a shop too")]), source="t", run_id=None)
    assert store.con.execute("select author from posts where post_id = '2'").fetchone()[0].startswith("u")
    cfg = tmp_path / "orgs.toml"
    cfg.write_text('[[org]]\nid = "shop"\naccounts = [{ platform = "twitter", handle = "ShopCare" }]\n')
    apply_config(store, load_config(cfg))
    assert store.con.execute("select author, is_org_author from posts where post_id = '2'").fetchone() == (
        "ShopCare", True)


def test_keep_customer_text_option(tmp_path):
    with writer(tmp_path / "k.duckdb", keep_customer_text=True) as store:
        with store.transaction():
            store.load_posts(posts_to_batch([_post("9", author="115712", org=False, text="hi?")]),
                             source="t", run_id=None)
        assert store.con.execute("select text from posts").fetchone() == ("hi?",)


def test_failed_transaction_keeps_what_was_stored(store):
    with store.transaction():
        store.load_posts(posts_to_batch([_post("1")]), source="t", run_id=None)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.load_posts(posts_to_batch([_post("2")]), source="t", run_id=None)
            raise RuntimeError("boom")
    assert [r[0] for r in store.con.execute("select post_id from posts").fetchall()] == ["1"]


def test_second_writer_fails_fast_with_a_clear_message(tmp_path):
    path = tmp_path / "locked.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pipeline.store import Store
            s = Store({str(path)!r})
            print("ready", flush=True)
            sys.stdin.readline()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="in use by another maturity process"):
            Store(path)
    finally:
        holder.communicate("\n", timeout=30)
    with writer(path) as reopened:  # the first holder was unaffected and released the file
        assert reopened.count("posts") == 0


def test_read_only_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "nope.duckdb", read_only=True)


def test_not_a_database_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("this is not a database")
    with pytest.raises(StoreError, match="cannot open database"):
        Store(bogus)


def test_a_run_holds_the_database_between_its_own_store_openings(tmp_path):
    from pipeline.locking import exclusive_run

    path = tmp_path / "run.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from pipeline.locking import exclusive_run
            from pipeline.store import Store, writer
            with exclusive_run({str(path)!r}, "nightly run abc"):
                Store({str(path)!r}).close()   # the holder itself can open and close the store
                print("ready", flush=True)
                sys.stdin.readline()
                with writer({str(path)!r}) as store:
                    print(store.count("posts"), flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match=r"in use by nightly run abc \(process \d+"):
            Store(path)
        with pytest.raises(StoreError, match="in use by nightly run abc"):
            with exclusive_run(path, "second run"):
                pass
    finally:
        out, _ = holder.communicate("\n", timeout=30)
    assert holder.returncode == 0 and out.strip() == "0"  # the first run was unaffected
    with exclusive_run(path, "after"):
        Store(path).close()


def test_a_default_memory_limit_sized_to_the_machine_spills_beside_the_database(tmp_path, monkeypatch):
    """Without MATURITY_DUCKDB_MEMORY_LIMIT the buffer pool is capped (DuckDB alone takes 80% of RAM)."""
    import duckdb

    from pipeline.store import DEFAULT_MEMORY_CAP_MB, default_memory_limit

    monkeypatch.delenv("MATURITY_DUCKDB_MEMORY_LIMIT", raising=False)
    with writer(tmp_path / "default.duckdb") as store:
        limit, temp = store.con.execute(
            "select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()
    assert int(default_memory_limit().removesuffix("MB")) <= DEFAULT_MEMORY_CAP_MB
    with duckdb.connect(config={"memory_limit": default_memory_limit()}) as reference:
        assert limit == reference.execute("select current_setting('memory_limit')").fetchone()[0]
    assert temp == str(tmp_path / "default.duckdb.tmp")


def test_duckdb_memory_limit_and_threads_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MATURITY_DUCKDB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("MATURITY_DUCKDB_THREADS", "1")
    with writer(tmp_path / "limited.duckdb") as store:
        limit, threads = store.con.execute(
            "select current_setting('memory_limit'), current_setting('threads')").fetchone()
    assert (limit, threads) == ("488.2 MiB", 1)          # 512 MB as DuckDB prints it: the variable wins
