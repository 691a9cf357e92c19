"""Killing an import mid-load loses nothing stored before, leaves no half batch, and a re-run completes it."""
import os
import signal
import subprocess
import sys
import textwrap

from connectors.twcs import BATCH_ROWS, import_twcs
from pipeline.store import Store, writer

HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"


def write_big(path, rows, start=1):
    with open(path, "w") as out:
        out.write(HEADER)
        for i in range(start, start + rows):
            if i % 2:
                out.write(f"{i},{100000 + i % 977},True,Mon Oct 02 10:00:00 +0000 2017,@AcmeCare help {i}?,,\n")
            else:
                out.write(f"{i},AcmeCare,False,Mon Oct 02 10:05:00 +0000 2017,@{100000 + i % 977} ok ^JK,,{i - 1}\n")


def test_sigkill_during_import_then_rerun_loses_and_duplicates_nothing(tmp_path):
    db = tmp_path / "crash.duckdb"
    before = tmp_path / "before.csv"
    write_big(before, 1000, start=10_000_000)
    with writer(db) as store:
        import_twcs(store, before)
    big = tmp_path / "big.csv"
    write_big(big, 250_000)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            from connectors.twcs import BATCH_ROWS, import_twcs
            from pipeline.store import Store
            store = Store({str(db)!r})
            import_twcs(store, {str(big)!r}, progress=lambda n: print("batch", n, flush=True))
            print("finished", flush=True)
        """)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert child.stdout.readline().startswith("batch")  # mid-transaction: one batch merged
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with writer(db) as store:
        # batches commit whole: the killed load left complete batches or nothing, never part of one
        assert (store.count("posts") - 1000) % BATCH_ROWS == 0
        statuses = store.con.execute("select status from ingest_runs order by run_id").fetchall()
        assert statuses == [("ok",), ("interrupted",)]
        _, counts = import_twcs(store, big)
        assert counts.loaded == 250_000
        assert store.count("posts") == 251_000
        assert store.con.execute(
            "select count(*) from (select post_id from posts group by platform, post_id having count(*) > 1)"
        ).fetchone() == (0,)


def test_a_full_disk_gives_a_clear_error_and_keeps_what_was_stored(tmp_path):
    """RLIMIT_FSIZE makes writes fail like a full disk would, in a child process."""
    db = tmp_path / "full.duckdb"
    small = tmp_path / "small.csv"
    write_big(small, 100, start=5_000_000)
    with writer(db) as store:
        import_twcs(store, small)
        store.con.execute("checkpoint")
    big = tmp_path / "big.csv"
    write_big(big, 60_000)
    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(f"""
            import resource, signal
            from connectors.twcs import BATCH_ROWS, import_twcs
            from pipeline.store import Store, StoreError
            store = Store({str(db)!r})
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            size = {db.stat().st_size} + 200_000
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
            try:
                import_twcs(store, {str(big)!r})
            except StoreError as exc:
                print("StoreError:", exc)
        """)],
        capture_output=True, text=True, timeout=120)
    assert "StoreError: could not write to database" in child.stdout, child.stdout + child.stderr
    assert "is the disk full?" in child.stdout and "nothing from this load was stored" in child.stdout
    with writer(db) as store:
        assert store.count("posts") == 100


def test_import_memory_is_bounded_by_the_batch_not_the_file(tmp_path, monkeypatch):
    """With DuckDB capped at 128 MB, 300k rows load in 20k-row batches; as one transaction they
    would not fit (the benchmark `python -m benchmarks.import_memory` measures real RSS)."""
    import connectors.twcs as twcs

    monkeypatch.setattr(twcs, "BATCH_ROWS", 20_000)
    big = tmp_path / "big.csv"
    write_big(big, 300_000)
    with writer(tmp_path / "capped.duckdb") as store:
        store.con.execute("set memory_limit = '128MB'")
        _, counts = import_twcs(store, big)
        assert counts.loaded == 300_000 and store.count("posts") == 300_000
