"""The embedded DuckDB store: opening, migrations, and the one loading path every source uses.

Opening a `Store` only connects. A write run goes through `writer()`: it holds the run lock
(pipeline/locking.py), brings the schema up to date and closes the ingest runs a killed process left
'running' -- once per run, so the nightly flow's tasks, which reopen the store, never touch the runs
another task of the same flow has under way."""
from __future__ import annotations

import functools
import os
import re
import secrets
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb
import pyarrow as pa

from connectors.records import POST_BATCH_SCHEMA
from connectors.sink import LoadCounts
from features.facts import refresh_facts
from features.text import install_text_macros
from pipeline.errors import StoreError
from pipeline.locking import ensure_not_held_elsewhere, exclusive_run

DEFAULT_DB = Path("data/maturity.duckdb")
# The checkout this code runs from (a clone, or an editable install of one): the default database is
# its data/maturity.duckdb whatever the working directory, so a notebook (whose kernel starts in
# notebooks/) reads what `make run` wrote. A plain installed package has no checkout: then the default
# is relative to the working directory.
_CHECKOUT = Path(__file__).resolve().parents[1]


# DuckDB's own default lets the buffer pool grow to 80% of RAM. The store caps it at a quarter of
# the machine's memory and at most DEFAULT_MEMORY_CAP_MB: measured at 10M posts, a 1.5 GB pool peaked
# at 2.3 GB RSS and a 1.2 GB one at 1.85-2.1 GB (Python, pyarrow and the models add up to ~0.9 GB), so
# 1 GB keeps every step under 2 GB.
DEFAULT_MEMORY_SHARE = 0.25
DEFAULT_MEMORY_CAP_MB = 1000


def default_memory_limit() -> str:
    """A quarter of physical memory, capped at DEFAULT_MEMORY_CAP_MB, as a DuckDB size string."""
    try:
        total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError, AttributeError):   # no sysconf (Windows): take the cap
        total_mb = 4 * DEFAULT_MEMORY_CAP_MB
    return f"{max(256, min(int(total_mb * DEFAULT_MEMORY_SHARE), DEFAULT_MEMORY_CAP_MB))}MB"


def temp_directory(db_path: Path) -> Path:
    """Where DuckDB spills what exceeds its memory limit: `<db>.tmp` beside the database."""
    return db_path.with_name(db_path.name + ".tmp")


# DuckDB checkpoints when the write-ahead log passes 16 MB, and a commit of 100k rows or more skips the
# log and checkpoints at once: so every batch of an import checkpointed. A checkpoint writes out the
# primary key's index nodes the batch changed, and new keys land all over the index, so each one cost
# a pass over an index that grows with the table (import time quadratic in the file). The log takes
# CHECKPOINT_WAL_SIZE of batches between checkpoints instead (what is not checkpointed stays in DuckDB's
# memory: 1 GB of log spilled at 3M posts), and Store.finish_run checkpoints once at the end of a run.
CHECKPOINT_WAL_SIZE = "256MB"
CHECKPOINT_SKIP_WAL_ROWS = str(2**62)


def duckdb_config(db_path: Path | None = None) -> dict[str, str]:
    """DuckDB settings: memory_limit is default_memory_limit() unless MATURITY_DUCKDB_MEMORY_LIMIT
    (e.g. "8GB" on a larger machine) says otherwise, with spills going to temp_directory(db_path);
    MATURITY_DUCKDB_THREADS sets the worker threads; checkpoints as CHECKPOINT_WAL_SIZE says."""
    config = {"memory_limit": os.environ.get("MATURITY_DUCKDB_MEMORY_LIMIT") or default_memory_limit(),
              "checkpoint_threshold": CHECKPOINT_WAL_SIZE,
              "auto_checkpoint_skip_wal_threshold": CHECKPOINT_SKIP_WAL_ROWS}
    if db_path is not None and str(db_path) != ":memory:":
        config["temp_directory"] = str(temp_directory(db_path))
    if os.environ.get("MATURITY_DUCKDB_THREADS"):
        config["threads"] = os.environ["MATURITY_DUCKDB_THREADS"]
    return config


def default_db_path() -> Path:
    """$MATURITY_DB, else data/maturity.duckdb of the checkout (see _CHECKOUT)."""
    if os.environ.get("MATURITY_DB"):
        return Path(os.environ["MATURITY_DB"])
    return _CHECKOUT / DEFAULT_DB if (_CHECKOUT / "pyproject.toml").is_file() else DEFAULT_DB


def pseudonym_key(db_path: Path) -> str:
    """$MATURITY_PSEUDONYM_KEY, else a key generated once per database and kept beside it
    (`<db>.key`, owner-only), never inside it. In-memory stores get a fresh key."""
    if os.environ.get("MATURITY_PSEUDONYM_KEY"):
        return os.environ["MATURITY_PSEUDONYM_KEY"]
    if str(db_path) == ":memory:":
        return secrets.token_hex(32)
    key_file = Path(db_path).with_name(Path(db_path).name + ".key")
    try:
        return key_file.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = secrets.token_hex(32)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key)
        return key


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("pipeline.migrations").iterdir():
        match = re.match(r"(\d+)_(.+)\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


# Handle names as the platforms write them after an @ (X's and twcs's are \w+): Bluesky handles are
# domain names (a trailing full stop ends the sentence, not the handle); Mastodon's may name the server.
BLUESKY_NAME = r"[\w-]+(?:\.[\w-]+)*"
MASTODON_NAME = r"\w+(?:@[\w-]+(?:\.[\w-]+)+)?"
REDDIT_NAME = r"[\w-]+"

# Privacy, applied once for every source: authors who are not organisation accounts are stored as keyed
# pseudonyms; every @handle in the mention lists and in stored text is too (features match org accounts
# by their pseudonym); customer text is dropped unless the store keeps raw text. What the features read
# from text is derived at build time by features/text.py's macros, except from dropped text: there the
# load keeps the flags the features need, computed with the same macros. Duplicates inside one batch
# keep the last row. The batch is pseudonymised into a temp table the size of the batch, one platform
# at a time: each platform's handle pattern is then a constant (a case over the platform, per row,
# took a fifth of the time).
_PSEUDONYMISE = """
insert into incoming by name
with
platform_batch as (select * from post_batch where platform = getvariable('load_platform')),
batch as (__BATCH__),
known_org as (
    select platform, handle_key from accounts
    union
    select platform, lower(author) from post_batch where is_org_author
),
by_org as (
    select b.*, (b.is_org_author or k.handle_key is not null) as by_org
    from batch b
    left join known_org k on k.platform = b.platform and k.handle_key = lower(b.author)
),
loaded as (
    select *, case when not by_org then pseudonym(author) end as author_pseudonym from by_org
),
pseudonymised as (
    select
        l.platform,
        l.post_id,
        coalesce(l.author_pseudonym, l.author) as author,
        coalesce(l.author_pseudonym, lower(l.author)) as author_key,
        l.by_org as is_org_author,
        l.created_at,
        nullif(l.in_reply_to, '') as in_reply_to,
        nullif(l.conversation_id, '') as conversation_id,
        case
            when l.by_org then mask_handles(l.text, l.platform)
            when getvariable('keep_customer_text') then l.text
        end as text,
        list_transform(regexp_extract_all(coalesce(l.text, ''), '(?:^|[^\\w@])@(__MENTION__)', 1),
                       handle -> pseudonym(handle)) as mentions,
        case when not l.by_org and not getvariable('keep_customer_text') then is_question(l.text) end
            as dropped_text_is_question,
        l.has_media,
        l.like_count,
        l.repost_count,
        l.reply_count,
        getvariable('load_source') as source,
        getvariable('load_run_id') as ingest_run_id,
        getvariable('load_time') as loaded_at
    from loaded l
)
select * from pseudonymised
"""

# Deduplicating carries every column through a window, so only a batch with a repeated key pays for it.
_REPEATED_KEYS = "select count(*) from (select 1 from post_batch group by platform, post_id having count(*) > 1)"
_LAST_OF_EACH_KEY = """
    select * exclude (batch_ord, dup) from (
        select *, row_number() over (partition by post_id order by batch_ord desc) as dup
        from (select *, row_number() over () as batch_ord from platform_batch))
    where dup = 1"""
# How a handle after @ is written, by platform (X's, twcs's and Reddit's are \w+).
_MENTION_NAMES = {"bluesky": BLUESKY_NAME, "mastodon": MASTODON_NAME}

# Keys of the batch already stored: a scan of the key columns only (posts has no index: migration 016).
# Those rows are updated where their content changed, the others inserted; with the batch's repeated
# keys reduced to their last row, a key is never stored twice.
_FIND_STORED = """
create or replace temp table incoming_stored as
select platform, post_id from incoming semi join posts using (platform, post_id)
"""

# Unsorted: with no index to serve, a sort by key only costs (the 10M import's inserts: 55 s sorted,
# 33 s not).
_INSERT_NEW = """
insert into posts by name
select * from incoming anti join incoming_stored using (platform, post_id)
"""

_MERGE_STORED = """
update posts set
__UPDATES__
from incoming loaded
where posts.platform = loaded.platform and posts.post_id = loaded.post_id
-- unchanged rows are left alone: re-imports stay cheap, and list columns update slowly in DuckDB
  and (__CHANGED__)
"""


def _is_write_failure(exc: Exception) -> bool:
    message = str(exc)
    return any(sign in message for sign in ("No space left", "File too large", "Could not write"))


_CONTENT_COLUMNS = ["author", "author_key", "is_org_author", "created_at", "in_reply_to", "conversation_id",
                    "text", "mentions", "dropped_text_is_question", "has_media", "like_count", "repost_count",
                    "reply_count"]


@functools.cache
def _pseudonymise_sql(platform: str, repeated_keys: bool) -> str:
    """The pseudonymising insert for one platform's posts of a batch (code-made SQL: the platform
    only picks a pattern)."""
    return (_PSEUDONYMISE.replace("__MENTION__", _MENTION_NAMES.get(platform, r"\w+"))
            .replace("__BATCH__", _LAST_OF_EACH_KEY if repeated_keys else "select * from platform_batch"))
_MERGE_STORED = _MERGE_STORED.replace(
    "__UPDATES__", ",\n".join(f"    {c} = loaded.{c}" for c in _CONTENT_COLUMNS + ["source", "ingest_run_id", "loaded_at"])
).replace("__CHANGED__", "\n   or ".join(f"posts.{c} is distinct from loaded.{c}" for c in _CONTENT_COLUMNS))


class Store:
    """One open DuckDB database with the project's schema applied."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False,
                 keep_customer_text: bool = False):
        self.path = Path(path) if path is not None else default_db_path()
        self.read_only = read_only
        self.keep_customer_text = keep_customer_text
        if str(self.path) != ":memory:":
            if read_only and not self.path.exists():
                raise StoreError(f"database {self.path} does not exist; import data first (`maturity import "
                                 "twcs FILE` or `maturity run`), or pass --db with the database you meant")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not read_only:
                ensure_not_held_elsewhere(self.path)
        self.con = self._connect()
        self._install_pseudonymiser()
        install_text_macros(self.con)
        if read_only:
            self._require_current_schema()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            con = duckdb.connect(str(self.path), read_only=self.read_only, config=duckdb_config(self.path))
            con.execute("set TimeZone = 'UTC'")
            try:
                con.execute("set enable_progress_bar = false")  # the CLI draws its own progress
            except duckdb.InvalidInputException:
                pass  # inside Jupyter without ipywidgets DuckDB refuses the setting (and draws no bar)
            return con
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" in message.lower():
                holder = re.search(r"PID (\d+)", message)
                who = f" (held by process {holder.group(1)})" if holder else ""
                raise StoreError(
                    f"database {self.path} is in use by another maturity process{who}; "
                    "wait for it to finish or use --db to choose another file") from None
            raise StoreError(f"cannot open database {self.path}: {message}") from None
        except duckdb.Error as exc:
            raise StoreError(f"cannot open database {self.path}: {exc}") from None

    def _install_pseudonymiser(self) -> None:
        # Keyed hash (secret-prefix SHA-256): stable per database, unlinkable without the key, which
        # never enters the database file.
        self.con.execute("set variable pseudonym_key = ?", [pseudonym_key(self.path)])
        self.con.execute("create or replace temp macro pseudonym(handle) as "
                         "'u' || left(sha256(getvariable('pseudonym_key') || lower(handle)), 16)")
        # Rebuilds text with every handle matched by `whole` (its name captured by `named`) replaced
        # by lead || its pseudonym (split + zip: no per-row regex).
        self.con.execute(r"""
            create or replace temp macro mask_matches(t, whole, named, lead) as array_to_string(list_transform(
                list_zip(regexp_split_to_array(t, whole),
                         list_transform(regexp_extract_all(t, named, 1), h -> lead || pseudonym(h))),
                part -> coalesce(part[1], '') || coalesce(part[2], '')), '')""")
        # Handles as each platform writes them, masked whole so the pseudonym is the author column's:
        # X @name; Bluesky @domain.handle; Mastodon @name or @name@server; Reddit @name and u/name.
        self.con.execute(rf"""
            create or replace temp macro mask_handles(t, platform) as case platform
                when 'bluesky' then mask_matches(t, '@{BLUESKY_NAME}', '@({BLUESKY_NAME})', '@')
                when 'mastodon' then mask_matches(t, '@{MASTODON_NAME}', '@({MASTODON_NAME})', '@')
                when 'reddit' then mask_matches(mask_matches(t, '@\w+', '@(\w+)', '@'),
                                                '\bu/{REDDIT_NAME}', '\bu/({REDDIT_NAME})', 'u/')
                else mask_matches(t, '@\w+', '@(\w+)', '@') end""")

    def pseudonym(self, handle: str) -> str:
        return self.con.execute("select pseudonym(?)", [handle]).fetchone()[0]

    def unmask_org_handles(self, platform_handles: list[tuple[str, str]]) -> None:
        """Accounts that became organisation accounts after their posts were loaded as a customer's:
        give those posts back their plain author."""
        if not platform_handles:
            return
        self.con.execute("create or replace temp table unmask (platform varchar, handle_key varchar, "
                         "handle varchar, masked varchar)")
        self.con.executemany("insert into unmask select ?, lower(?), ?, pseudonym(?)",
                             [(p, h, h, h) for p, h in platform_handles])
        self.con.execute(
            "update posts set author = u.handle, author_key = u.handle_key, is_org_author = true "
            "from unmask u where posts.platform = u.platform and posts.author_key = u.masked")
        self.con.execute("drop table unmask")

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def migrate(self) -> list[int]:
        """Apply pending versioned migrations, each in its own transaction."""
        self.con.execute(
            "create table if not exists schema_migrations "
            "(version integer primary key, name varchar, applied_at timestamp)")
        done = {v for (v,) in self.con.execute("select version from schema_migrations").fetchall()}
        applied = []
        for version, name, sql in _migrations():
            if version in done:
                continue
            with self.transaction():
                self.con.execute(sql)
                self.con.execute("insert into schema_migrations values (?, ?, ?)",
                                 [version, name, utcnow()])
            applied.append(version)
        return applied

    def _require_current_schema(self) -> None:
        latest = max(version for version, _, _ in _migrations())
        try:
            (version,) = self.con.execute("select max(version) from schema_migrations").fetchone()
        except duckdb.CatalogException:
            version = None
        if version is None or version < latest:
            raise StoreError(f"database {self.path} has schema version {version or 0}, this version of "
                             f"maturity reads {latest}: run any write command (e.g. `maturity estimate`) "
                             "to upgrade it")

    def close_interrupted_runs(self) -> None:
        # Only one writer can hold the file, so a run still 'running' now was killed mid-load;
        # its rows were rolled back with its transaction.
        self.con.execute(
            "update ingest_runs set status = 'interrupted', finished_at = ?, "
            "message = 'the process ended before the load committed; nothing from it was stored' "
            "where status = 'running'", [utcnow()])

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: on any error, including a failed write at commit, nothing is stored."""
        self.con.execute("begin transaction")
        try:
            yield self.con
        except duckdb.Error as exc:
            self._rollback_quietly()
            raise (self._write_error(exc) if _is_write_failure(exc) else exc) from None
        except BaseException:
            self._rollback_quietly()
            raise
        try:
            self.con.execute("commit")
        except duckdb.Error as exc:
            self._rollback_quietly()
            raise self._write_error(exc) from None

    def _rollback_quietly(self) -> None:
        try:
            self.con.execute("rollback")
        except duckdb.Error:
            pass  # already rolled back (or the connection was invalidated by the failure)

    def _write_error(self, exc: duckdb.Error) -> StoreError:
        reason = str(exc).split("Error: ", 1)[-1]
        hint = " (is the disk full?)" if _is_write_failure(exc) else ""
        return StoreError(f"could not write to database {self.path}{hint}: {reason}; "
                          "nothing from this load was stored")

    # -- ingest runs -----------------------------------------------------------------------
    def start_run(self, source: str, kind: str) -> int:
        (run_id,) = self.con.execute(
            "insert into ingest_runs (run_id, source, kind, started_at, status) "
            "values (nextval('ingest_run_ids'), ?, ?, ?, 'running') returning run_id",
            [source, kind, utcnow()]).fetchone()
        return run_id

    def finish_run(self, run_id: int, counts: LoadCounts, status: str = "ok",
                   message: str | None = None) -> None:
        self.con.execute(
            "update ingest_runs set finished_at = ?, status = ?, rows_read = ?, rows_loaded = ?, "
            "rows_rejected = ?, message = ? where run_id = ?",
            [utcnow(), status, counts.read, counts.loaded, counts.rejected, message, run_id])
        self.con.execute("checkpoint")   # the run's batches, kept in the log (CHECKPOINT_WAL_SIZE)

    def fail_run(self, run_id: int, counts: LoadCounts, message: str) -> None:
        """Best effort: after a fatal write error the database refuses all work until reopened;
        the run then stays 'running' and is marked interrupted by the next writer."""
        try:
            self.finish_run(run_id, counts, status="failed", message=message)
        except duckdb.Error:
            pass

    # -- loading ---------------------------------------------------------------------------
    def load_posts(self, batch: pa.Table, *, source: str, run_id: int | None) -> int:
        """Merge a batch of normalised posts on (platform, post_id). Caller owns the transaction."""
        if batch.num_rows == 0:
            return 0
        batch = batch.select(POST_BATCH_SCHEMA.names).cast(POST_BATCH_SCHEMA)
        self.con.execute("set variable keep_customer_text = ?", [self.keep_customer_text])
        self.con.execute("set variable load_source = ?", [source])
        self.con.execute("set variable load_run_id = ?", [run_id])
        self.con.execute("set variable load_time = ?", [utcnow()])
        self.con.register("post_batch", batch)
        try:
            repeated = bool(self.con.execute(_REPEATED_KEYS).fetchone()[0])
            self.con.execute("create or replace temp table incoming as select * from posts limit 0")
            for (platform,) in self.con.execute("select distinct platform from post_batch").fetchall():
                self.con.execute("set variable load_platform = ?", [platform])
                self.con.execute(_pseudonymise_sql(platform, repeated))
        finally:
            self.con.unregister("post_batch")
        self.con.execute(_FIND_STORED)
        if self.con.execute("select count(*) from incoming_stored").fetchone()[0]:
            self.con.execute(_MERGE_STORED)
        self.con.execute(_INSERT_NEW)
        self.con.execute("drop table incoming; drop table incoming_stored")
        self.register_org_authors(batch)
        return batch.num_rows

    def refresh_facts(self) -> int:
        """Bring the conversation facts (features/facts.py) up to date in one transaction: called once at
        the end of a load run, not per batch -- a refresh costs a pass over the fact tables, and live
        syncs commit page by page. Facts track what they cover (posts.loaded_at, the accounts), so a
        run that ends before this leaves nothing wrong: the next refresh, or feature build, catches up."""
        with self.transaction() as con:
            return refresh_facts(con)

    def register_org_authors(self, batch: pa.Table) -> None:
        """Org authors seen in data become accounts (unassigned unless the config claims them)."""
        self.con.register("author_batch", batch.select(["platform", "author", "is_org_author"]))
        try:
            added = self.con.execute(
                """
                insert into accounts (platform, handle_key, handle, configured)
                select platform, lower(author), any_value(author), false
                from author_batch where is_org_author group by platform, lower(author)
                on conflict do nothing
                returning platform, handle
                """).fetchall()
        finally:
            self.con.unregister("author_batch")
        self.unmask_org_handles(added)

    def reject(self, run_id: int | None, source: str, rows: list[tuple[int | None, str | None, str, str | None]]) -> None:
        """Record rejected input rows: (line, field, reason, raw excerpt)."""
        if rows:
            self.con.executemany(
                "insert into rejected_rows values (?, ?, ?, ?, ?, ?)",
                [(run_id, source, line, field, reason, (raw or "")[:500]) for line, field, reason, raw in rows])

    # -- sync state ------------------------------------------------------------------------
    def get_cursor(self, source: str, account: str, cursor_name: str) -> str | None:
        row = self.con.execute(
            "select cursor_value from sync_state where source = ? and account = ? and cursor_name = ?",
            [source, account, cursor_name]).fetchone()
        return row[0] if row else None

    def set_cursor(self, source: str, account: str, cursor_name: str, value: str | None) -> None:
        self.con.execute(
            "insert into sync_state values (?, ?, ?, ?, ?) on conflict do update set "
            "cursor_value = excluded.cursor_value, updated_at = excluded.updated_at",
            [source, account, cursor_name, value, utcnow()])

    def record_timeline_read(self, source: str, platform: str, handle_key: str, read_from: datetime | None,
                             read_through: datetime, run_id: int | None, continues: bool) -> None:
        """An account's timeline read to its end over [read_from, read_through] (read_from None: from the
        start of what the platform serves). `continues`: an incremental read from the saved cursors,
        which picks up where the stored period ends. A read that meets the stored period extends it;
        one that leaves a gap replaces it (the evidence is the one unbroken period)."""
        stored = self.con.execute(
            "select read_from, read_through from timeline_reads where source = ? and platform = ? "
            "and handle_key = ?", [source, platform, handle_key]).fetchone()
        if stored is not None and (continues or read_from is None or read_from <= stored[1]):
            if continues:
                start = stored[0]
            else:
                start = None if read_from is None or stored[0] is None else min(read_from, stored[0])
            read_through = max(read_through, stored[1])
        else:
            start = read_from
        self.con.execute(
            "insert or replace into timeline_reads values (?, ?, ?, ?, ?, ?)",
            [source, platform, handle_key, start, read_through, run_id])

    # -- queries ---------------------------------------------------------------------------
    def df(self, sql: str, params: list | dict | None = None):
        return self.con.execute(sql, params or []).df()

    def count(self, table: str) -> int:
        if table not in {"posts", "accounts", "organisations", "rejected_rows", "ingest_runs",
                         "features", "estimates", "sync_state"}:
            raise ValueError(f"unknown table {table!r}")
        return self.con.execute(f"select count(*) from {table}").fetchone()[0]


@contextmanager
def writer(path: str | Path | None = None, what: str = "maturity", *,
           keep_customer_text: bool = False, create: bool = True) -> Iterator[Store]:
    """One write run: the run lock for its whole duration, then the store with its schema migrated,
    interrupted ingest runs closed (only the lock holder can have left them 'running') and the
    conversation facts brought up to date (a no-op when they are).
    create=False: a database that does not exist is an error, and nothing is created (commands that
    work on stored data, where a new empty file would only hide a mistyped --db)."""
    path = Path(path) if path is not None else default_db_path()
    if not create and str(path) != ":memory:" and not path.exists():
        raise StoreError(f"database {path} does not exist; import data first (`maturity import twcs FILE` "
                         "or `maturity run`), or pass --db with the database you meant")
    with exclusive_run(path, what), Store(path, keep_customer_text=keep_customer_text) as store:
        store.migrate()
        store.close_interrupted_runs()
        store.refresh_facts()   # a store the schema upgrade just gave facts tables to, or a killed load
        yield store
