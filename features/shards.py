"""Feature builds sharded by organisation: the conversation facts split into shards by a hash of the
organisation, each shard built on its own DuckDB connection (another process or machine), the rows
stored by the one writer. The result equals the build over the whole store (features.runner).

A shard is one folder of Parquet files with what the build reads for the organisations hashed to it
(`md5(org_id) mod shards`; accounts without an organisation form the organisation '', which hashes
like any other, so their account-scope rows have a home shard too):

  accounts           the shard's accounts, with `mention_key` (their pseudonym), so a shard build needs
                     no pseudonym key: the key never leaves the store's machine
  organisations      the shard's organisations (time zones and business hours)
  fact_mentions      mentions whose assigned account is in the shard, and those whose text @-mentions
                     one of its accounts: a build for an as_of before the assignment was known falls
                     back to that account (00_staging.sql). A mention can be in two shards; each
                     build counts it only where its account at as_of is (the join with the accounts).
  fact_org_posts     posts by the shard's accounts
  fact_thread_posts  every post of every thread one of those mentions or posts is in (a build counts
                     again the depth and customers of a thread still growing after as_of, over the
                     whole thread, whoever takes part), and the customer-to-customer replies
                     addressed to the shard's accounts

Those are all the rows a feature of the shard's accounts and organisations reads. Nothing else in the
build reads across organisations: every feature is an aggregate per account or per organisation, with
no percentile, rank or comparison over organisations or sectors (those come later, in models/, from
the stored features), and the one cross-account join -- the account two steps up a reply chain
(grand_account, 30_mention_handling.sql) -- only asks whether it is the replying account or one of its
organisation's, which a shard answers the same way. tests/features/test_shards.py checks the identity.

Shards are not kept: a build exports them from current facts, the workers read them, the writer
stores their rows and deletes them (pipeline/jobs.py).
"""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from features.facts import refresh_facts
from features.runner import FeatureError, compute_feature_rows, transaction

# What a shard holds, in the order they are derived (a thread belongs to the shard of its mentions
# and organisation posts)
SHARD_TABLES = ("accounts", "organisations", "fact_mentions", "fact_org_posts", "fact_thread_posts")

_ASSIGN_SHARDS = """
create or replace temp table shard_accounts as
select a.*, pseudonym(a.handle_key) as mention_key,
       (md5_number(coalesce(a.org_id, '')) % getvariable('shard_count'))::integer as shard
from accounts a;

create or replace temp table shard_organisations as
select o.*, (md5_number(o.org_id) % getvariable('shard_count'))::integer as shard
from organisations o;

create or replace temp table shard_fact_mentions as
select m.*, s.shard from fact_mentions m
join shard_accounts s on s.platform = m.platform and s.handle_key = m.account
union
select m.*, s.shard from fact_mentions m
join shard_accounts s on s.platform = m.platform and s.handle_key = m.text_account;

create or replace temp table shard_fact_org_posts as
select p.*, s.shard from fact_org_posts p
join shard_accounts s on s.platform = p.platform and s.handle_key = p.account;

create or replace temp table shard_fact_thread_posts as
with roots as (
    select distinct platform, root_id, shard from shard_fact_mentions where root_id is not null
    union
    select distinct platform, root_id, shard from shard_fact_org_posts where root_id is not null
)
select t.*, r.shard from fact_thread_posts t
join roots r on r.platform = t.platform and r.root_id = t.root_id
union
select t.*, s.shard from fact_thread_posts t
join shard_accounts s on s.platform = t.platform and s.handle_key = t.c2c_account;
"""


def shard_folders(folder: str | Path, shards: int) -> list[Path]:
    return [Path(folder) / f"shard-{index:03d}" for index in range(shards)]


def export_shards(con: duckdb.DuckDBPyConnection, folder: str | Path, shards: int) -> list[Path]:
    """Brings the facts up to date and writes them to `shards` shard folders under `folder` (which must
    not exist yet); returns the folders. Same connection contract as features.runner."""
    if shards < 1:
        raise FeatureError(f"the shard count must be at least 1, found {shards}")
    folders = shard_folders(folder, shards)
    try:
        Path(folder).mkdir(parents=True)
    except FileExistsError:
        raise FeatureError(f"shard folder {folder} already exists; a build exports into a new one") from None
    try:
        with transaction(con):
            refresh_facts(con)
        con.execute("set variable shard_count = ?::integer", [shards])
        con.execute(_ASSIGN_SHARDS)
        for index, shard in enumerate(folders):
            shard.mkdir()
            for table in SHARD_TABLES:
                con.sql(f"select * exclude (shard) from shard_{table} where shard = ?",
                        params=[index]).write_parquet(str(shard / f"{table}.parquet"))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)   # no half-written shards for a worker to read
        raise
    finally:
        for table in SHARD_TABLES:
            con.execute(f"drop table if exists shard_{table}")
    return folders


def build_shard(con: duckdb.DuckDBPyConnection, shard: str | Path, as_of: datetime,
                windows: tuple[int, ...]) -> pa.Table:
    """The feature rows (features.runner.ROW_COLUMNS) of one shard's accounts and organisations for
    as_of and each window. `con` is an empty DuckDB connection (e.g. `duckdb.connect()`), which this
    fills with the shard's tables; it reads the shard folder and writes nothing else."""
    shard = Path(shard)
    con.execute("set TimeZone = 'UTC'")   # as the store's connection: local times are derived from UTC
    for table in SHARD_TABLES:
        path = shard / f"{table}.parquet"
        if not path.exists():
            raise FeatureError(f"shard {shard} has no {path.name}; export the shards again")
        con.execute(f"create or replace table {table} as select * from read_parquet(?)", [str(path)])
    # the pseudonyms the build asks for are the shard accounts' own, exported beside them
    con.execute("create or replace temp macro pseudonym(of_handle) as "
                "(select any_value(mention_key) from accounts k where k.handle_key = of_handle)")
    return compute_feature_rows(con, as_of, windows)
