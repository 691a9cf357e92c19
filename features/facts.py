"""Conversation facts: the per-post derivations every feature build reads, kept in DuckDB and
maintained incrementally as posts are loaded (tables in pipeline/migrations/011_conversation_facts.sql).

  fact_thread_posts  every post with its thread root and depth, and the account a customer-to-customer
                     reply is addressed to
  fact_mentions      every inbound mention: the assigned account and rule, when the assignment can be
                     known, the rule-3 account to fall back to before that, the first-reply latency,
                     when the account first replied with private-channel wording, the thread root
  fact_org_posts     every post by an organisation account with its thread root, its text flags and,
                     for a reply that continues a back-and-forth, the account of the post two steps up
They also carry what builds read about a post's whole thread (a thread post its newest post's time,
a mention its distinct customers, an organisation post its depth): a refresh derives whole threads, so
these stay consistent with the posts.

A fact depends on its post, its parent, grandparent and direct replies, and on which accounts are
organisation accounts -- never on as_of: a build filters facts by time (features/sql/00_staging.sql).
`refresh_facts` derives again only the threads that posts loaded (or changed, or deleted) since the
last refresh touch, and those touching accounts added since; a thread is closed under the reply links,
so that covers every fact those posts can change (a new reply answering an old mention, a customer post
that can now be assigned, an orphan reply whose parent arrives). Organisation, role and time zone of an
account are joined at build time, so assigning accounts to organisations needs no refresh.

Facts take reply links as stored: a post's thread root and depth, and the parent and grandparent a
fact reads, come from all stored posts. A build for a past as_of therefore sees exactly what a store
holding only the posts up to as_of would, as long as no reply is older than its parent (platforms
record them in order); for a reply stored with an earlier time than its parent, the link counts
before the parent's own time.

As for the feature runner, every function runs on a DuckDB connection it is given, carrying the
project schema and the `pseudonym(handle)` macro; the caller owns the transaction.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from features.text import install_text_macros, macros_sql

REPLY_LIMIT_S = 72 * 3600   # a reply later than this after the mention does not answer it
# A refresh rebuilds instead when more than this share of the stored posts are new: finding the threads
# they touch would take passes over all the facts only to derive nearly all of them again (a first load).
REBUILD_SHARE = 0.5
FACT_TABLES = ("fact_thread_posts", "fact_mentions", "fact_org_posts")
# The facts of a derivation are inserted in passes of at most this many target posts, each pass the
# targets of one hash partition (every lookup still reads all of fact_ctx): at a 1200 MB memory
# limit one pass over 10.1M posts ran out of memory in the mentions' joins.
POSTS_PER_PASS = 3_000_000


def facts_code(con: duckdb.DuckDBPyConnection) -> str:
    """The derivation the stored facts were made with: this module, the text macros, the reply limit
    and the pseudonym key (through a keyed sample: mentions match accounts by pseudonym)."""
    # this file itself, not looked up by package name: a tests/features folder on sys.path can make
    # "features" resolve to a namespace package there
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(macros_sql().encode() + f"|{REPLY_LIMIT_S}|".encode())
    h.update(con.execute("select pseudonym('facts-code-sample')").fetchone()[0].encode())
    return h.hexdigest()


# fact_posts: the stored posts a derivation reads (all, or those in the table `keys` names: a refresh's
# targets and the posts their facts read, parents, grandparents and replies), each with an integer row
# key, rid: its posts rowid, stable within the transaction.
# fact_ctx: what the rules join on, one narrow row per post read (wider rows made the 10M-post
# derivation spill to disk at the default memory limit): its parent's rid (NULL when the parent is not
# among the posts read: for a target, not stored), so that the reply links are resolved once, by one
# join on the post ids, and every join after it is on integers; written by an org account; and, for an
# org post, the private-channel wording a reply's answer test reads. What only the stored rows need
# (platform, text flags, counts) is read from fact_posts when they are inserted.
def _read_posts(con: duckdb.DuckDBPyConnection, is_target: str, keys: str | None = None) -> None:
    among = "" if keys is None else f"semi join {keys} k on k.platform = q.platform and k.post_id = q.post_id"
    con.execute(f"create or replace temp view fact_posts as select q.rowid as rid, q.* from posts q {among}")
    con.execute(f"""
create or replace temp table fact_ctx as
select p.rid, par.rid as parent_rid, p.post_id, p.author_key, p.created_at,
       a.handle_key is not null as by_org,
       case when a.handle_key is not null then private_channel(p.text) end as private_channel,
       {is_target} as is_target
from fact_posts p
left join (select rid, platform, post_id from fact_posts) par
  on par.platform = p.platform and par.post_id = p.in_reply_to
left join accounts a on a.platform = p.platform and a.handle_key = p.author_key
""")


# Threads: a root is a target whose parent is not stored (or that replies to nothing); its descendants
# follow the reply links among the targets (a refresh's targets are whole threads). Depth is capped
# at 1,000 so a reply cycle in bad data cannot loop forever; posts of a cycle get no root.
_DERIVE_THREADS = """
create or replace temp table fact_walk as
with recursive
replies as (select rid, parent_rid from fact_ctx where is_target and parent_rid is not null),
walk(rid, root_rid, root_id, depth) as (
    select rid, rid, post_id, 1
    from fact_ctx
    where is_target and parent_rid is null
    union all
    select r.rid, w.root_rid, w.root_id, w.depth + 1
    from walk w
    join replies r on r.parent_rid = w.rid
    where w.depth < 1000
)
select * from walk;

-- what the facts of a thread carry about the whole thread (migration 014); its customers counted from
-- the distinct (thread, author) pairs (at 1M posts 0.4 s against 0.7 s for count(distinct) per thread)
create or replace temp table fact_thread_stats as
with
thread_posts as (select w.root_rid, w.depth, c.author_key, c.by_org, c.created_at from fact_walk w join fact_ctx c using (rid)),
customers as (
    select root_rid, count(*) as customers
    from (select distinct root_rid, author_key from thread_posts where not by_org)
    group by root_rid
)
select t.root_rid, max(t.depth) as depth, coalesce(any_value(c.customers), 0) as customers, max(t.created_at) as last_at
from thread_posts t
left join customers c using (root_rid)
group by t.root_rid;
"""


def _in_pass(rid: str) -> str:
    """The rows of this pass's targets (pass getvariable('fact_part') of getvariable('fact_parts'): _derive)."""
    return f"hash({rid}) % getvariable('fact_parts') = getvariable('fact_part')"


def _of_pass(table: str) -> str:
    """The rows of `table` (keyed by rid) of this pass's targets: a lookup by target builds only those."""
    return f"(select * from {table} where {_in_pass('rid')})"


_DERIVE_THREAD_POSTS = f"""
insert into fact_thread_posts
with
targets as (select * from fact_ctx where is_target and {_in_pass('rid')}),
c2c_candidates as (
    -- a customer replying to another customer's post
    select c.rid, par.parent_rid as grand_rid, par.rid as parent_rid
    from targets c
    join fact_ctx par on par.rid = c.parent_rid
    where not c.by_org and not par.by_org and par.author_key <> c.author_key
),
via_parent as (
    -- addressed to the account whose post that customer post replies to
    select c.rid, g.author_key as account
    from c2c_candidates c
    join fact_ctx g on g.rid = c.grand_rid and g.by_org
),
via_text as (
    -- else to the first organisation account that customer post @-mentions
    select c.rid, f.account
    from c2c_candidates c
    join fact_first_mentioned f on f.rid = c.parent_rid
),
c2c as (
    select c.rid, coalesce(vp.account, vt.account) as account
    from c2c_candidates c
    left join via_parent vp using (rid)
    left join via_text vt using (rid)
)
select q.platform, q.post_id, q.in_reply_to, q.created_at, q.author_key, t.by_org, w.root_id, w.depth,
       c.account as c2c_account, ts.last_at as thread_last_at
from targets t
join {_of_pass('fact_posts')} q using (rid)
left join {_of_pass('fact_walk')} w using (rid)
left join c2c c using (rid)
left join fact_thread_stats ts using (root_rid);
"""

# The first organisation account a customer post's text @-mentions (case-insensitive): rule 3 of a
# mention's assignment, and where a customer's reply to another customer's post is addressed.
_FIRST_MENTIONED = """
create or replace temp table fact_first_mentioned as
with mentioned as (
    select p.rid, p.platform, unnest(p.mentions) as mention_key, unnest(range(1, len(p.mentions) + 1)) as position
    from fact_posts p
    anti join accounts a on a.platform = p.platform and a.handle_key = p.author_key
    where len(p.mentions) > 0
)
select m.rid, arg_min(oa.handle_key, m.position) as account
from mentioned m
join fact_acc oa on oa.platform = m.platform and oa.mention_key = m.mention_key
group by m.rid;
"""

_DERIVE_MENTIONS = f"""
insert into fact_mentions
with
customer_posts as (select * from fact_ctx where is_target and not by_org and {_in_pass('rid')}),
via_parent as (
    -- rule 1: the customer replies to a post by org account A
    select c.rid, parent.author_key as account, parent.created_at as known_at
    from customer_posts c
    join fact_ctx parent on parent.rid = c.parent_rid and parent.by_org
),
org_replies as (
    -- per (customer post, org account replying to it): its first reply, and its earliest reply within
    -- [0, reply_limit_s]; one join serves rule 2 and the answered test
    select c.rid, r.author_key as account,
           min((r.created_at, r.post_id)) as first_key,
           min(r.created_at) as first_at,
           min(epoch(r.created_at) - epoch(c.created_at)) filter (
               where epoch(r.created_at) - epoch(c.created_at) between 0 and getvariable('reply_limit_s'))
               as first_reply_s,
           min(r.created_at) filter (where r.private_channel) as private_reply_at
    from customer_posts c
    join fact_ctx r on r.parent_rid = c.rid and r.by_org
    group by c.rid, r.author_key
),
via_reply as (
    -- rule 2: org account A replies to it; with several, the account that replied first
    select rid, arg_min(account, first_key) as account, min(first_at) as known_at
    from org_replies
    group by rid
),
via_text as (
    -- rule 3: the text @-mentions A (case-insensitive); the first org account mentioned wins
    select f.rid, f.account
    from customer_posts c
    join {_of_pass('fact_first_mentioned')} f using (rid)
),
assigned as (
    select c.rid, w.root_id, w.root_rid, c.created_at, c.author_key as customer,
           coalesce(vp.account, vr.account, vt.account) as account,
           case when vp.account is not null then 1 when vr.account is not null then 2 else 3 end
               as assignment_rule,
           case when vp.account is not null then vp.known_at when vr.account is not null then vr.known_at
                else c.created_at end as assigned_at,
           vt.account as text_account
    from customer_posts c
    left join via_parent vp using (rid)
    left join via_reply vr using (rid)
    left join via_text vt using (rid)
    left join {_of_pass('fact_walk')} w using (rid)
    where coalesce(vp.account, vr.account, vt.account) is not null
)
-- answered: a post by the assigned account replies directly within [0, reply_limit_s]
select q.platform, q.post_id, a.root_id, a.created_at,
       coalesce(q.dropped_text_is_question, is_question(q.text)) as is_question, a.customer, a.account,
       a.assignment_rule, a.assigned_at, a.text_account,
       o.first_reply_s, o.private_reply_at, ts.customers as thread_customers
from assigned a
join {_of_pass('fact_posts')} q using (rid)
left join org_replies o on o.rid = a.rid and o.account = a.account
left join fact_thread_stats ts using (root_rid);
"""

_DERIVE_ORG_POSTS = f"""
insert into fact_org_posts
select q.platform, q.post_id, w.root_id, q.author_key, q.created_at, q.in_reply_to,
       p.private_channel, has_link(q.text), q.has_media, len(hashtags(q.text)) > 0, signature(q.text),
       q.like_count, q.repost_count, q.reply_count,
       g.author_key as grand_account, ts.depth as thread_depth
from fact_ctx p
join {_of_pass('fact_posts')} q using (rid)
-- a reply to a customer post that itself replies to an organisation post
left join fact_ctx c on c.rid = p.parent_rid and not c.by_org
left join fact_ctx g on g.rid = c.parent_rid and g.by_org
left join {_of_pass('fact_walk')} w on w.rid = p.rid
left join fact_thread_stats ts on ts.root_rid = w.root_rid
where p.is_target and p.by_org and {_in_pass('p.rid')};
"""

# The posts an incremental refresh starts from: loaded (new or changed) since the last one, deleted
# since, or written by or @-mentioning an account that became (or stopped being) an org account.
_SEEDS = """
create or replace temp table fact_changed_accounts as
(select platform, handle_key from accounts except select platform, handle_key from fact_accounts)
union
(select platform, handle_key from fact_accounts except select platform, handle_key from accounts);

create or replace temp table fact_seeds as
select platform, post_id, in_reply_to from posts where loaded_at > coalesce(getvariable('facts_loaded_through'), timestamp '-infinity')
union
select p.platform, p.post_id, p.in_reply_to
from posts p
join (select platform, handle_key as author_key from fact_changed_accounts
      union all
      select platform, pseudonym(handle_key) from fact_changed_accounts) c using (platform, author_key)
union
select m.platform, m.post_id, m.in_reply_to
from (select platform, post_id, in_reply_to, unnest(mentions) as mention_key from posts
      where platform in (select platform from fact_changed_accounts)) m
join (select platform, pseudonym(handle_key) as mention_key from fact_changed_accounts) c
  using (platform, mention_key);
"""

_DELETED_SEEDS = """
insert into fact_seeds
select f.platform, f.post_id, f.in_reply_to
from fact_thread_posts f
anti join posts p on p.platform = f.platform and p.post_id = f.post_id;
"""

# Whole threads: every thread a seed was in, is in now, or joins (an orphan reply whose parent is a
# seed), plus the seeds' near neighbours for posts in reply cycles, which belong to no thread.
_TARGETS = """
create or replace temp table fact_roots as
select f.platform, f.root_id
from fact_thread_posts f semi join fact_seeds s on s.platform = f.platform and s.post_id = f.post_id
where f.root_id is not null
union
select f.platform, f.root_id
from fact_thread_posts f join fact_seeds s on s.platform = f.platform and s.in_reply_to = f.post_id
where f.root_id is not null
union
select f.platform, f.root_id
from fact_thread_posts f join fact_seeds s on s.platform = f.platform and f.in_reply_to = s.post_id
where f.root_id is not null;

create or replace temp table fact_targets as
with
children as (
    select f.platform, f.post_id
    from fact_thread_posts f semi join fact_seeds s on s.platform = f.platform and s.post_id = f.in_reply_to
)
select platform, post_id from fact_seeds
union
select f.platform, f.post_id
from fact_thread_posts f semi join fact_roots r on r.platform = f.platform and r.root_id = f.root_id
union
select platform, post_id from children
union
select f.platform, f.post_id
from fact_thread_posts f semi join children c on c.platform = f.platform and c.post_id = f.in_reply_to
union
select platform, in_reply_to from fact_seeds where in_reply_to is not null
union
select f.platform, f.in_reply_to
from fact_thread_posts f semi join fact_seeds s on s.platform = f.platform and s.post_id = f.post_id
where f.in_reply_to is not null;

create or replace temp table fact_ctx_keys as
with
target_posts as (
    select p.platform, p.post_id, p.in_reply_to
    from posts p semi join fact_targets t on t.platform = p.platform and t.post_id = p.post_id
),
parents as (
    select p.platform, p.post_id, p.in_reply_to
    from posts p semi join target_posts t on t.platform = p.platform and t.in_reply_to = p.post_id
)
select platform, post_id from target_posts
union select platform, post_id from parents
union select platform, in_reply_to from parents where in_reply_to is not null
union
select p.platform, p.post_id
from posts p semi join fact_targets t on t.platform = p.platform and t.post_id = p.in_reply_to;
"""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _install(con: duckdb.DuckDBPyConnection) -> None:
    install_text_macros(con)
    con.execute("set variable reply_limit_s = ?::double", [REPLY_LIMIT_S])
    con.execute("create or replace temp table fact_acc as "
                "select platform, handle_key, pseudonym(handle_key) as mention_key from accounts")


def _derive(con: duckdb.DuckDBPyConnection) -> int:
    """Facts for the fact_ctx rows flagged is_target, whose old facts are already gone: the threads and
    first mentions of all of them, then their facts in passes of at most POSTS_PER_PASS targets.
    Returns the number of targets."""
    con.execute(_FIRST_MENTIONED)
    con.execute(_DERIVE_THREADS)
    (targets,) = con.execute("select count(*) from fact_ctx where is_target").fetchone()
    parts = max(1, -(-targets // POSTS_PER_PASS))
    con.execute("set variable fact_parts = ?::ubigint", [parts])
    for part in range(parts):
        con.execute("set variable fact_part = ?::ubigint", [part])
        for sql in (_DERIVE_THREAD_POSTS, _DERIVE_MENTIONS, _DERIVE_ORG_POSTS):
            con.execute(sql)
    return targets


def drop_temporary(con: duckdb.DuckDBPyConnection, pattern: str) -> None:
    """Drops the connection's temporary tables and views whose names match `pattern` (a regular
    expression): the work tables a derivation or a build leaves."""
    for kind, name in con.execute(
            "select 'view', view_name from duckdb_views() where temporary and regexp_matches(view_name, ?) "
            "union all "
            "select 'table', table_name from duckdb_tables() where temporary and regexp_matches(table_name, ?)",
            [pattern, pattern]).fetchall():
        con.execute(f"drop {kind} if exists {name}")


# The derivation's work tables: its temporary fact_* tables (the stored facts are not temporary).
_WORK_TABLES = r"^fact_"


def _record(con: duckdb.DuckDBPyConnection, code: str) -> None:
    con.execute("delete from fact_accounts")
    con.execute("insert into fact_accounts select platform, handle_key from accounts")
    con.execute("delete from fact_state")
    con.execute("insert into fact_state select ?, max(loaded_at), ? from posts", [code, _utcnow()])


def rebuild_facts(con: duckdb.DuckDBPyConnection) -> int:
    """Derive every fact from all stored posts (a changed derivation, or a first refresh); returns the
    posts derived."""
    _install(con)
    for table in FACT_TABLES:
        con.execute(f"delete from {table}")
    _read_posts(con, "true")
    derived = _derive(con)
    drop_temporary(con, _WORK_TABLES)
    _record(con, facts_code(con))
    return derived


def refresh_facts(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the facts up to date with the stored posts and accounts, deriving again only the threads
    touched since the last refresh; returns the posts derived (0: nothing had changed)."""
    code = facts_code(con)
    state = con.execute("select facts_code, loaded_through from fact_state").fetchone()
    if state is None or state[0] != code:
        return rebuild_facts(con)
    (posts, new) = con.execute("select count(*), count(*) filter (where loaded_at > coalesce(?::timestamp, "
                               "timestamp '-infinity')) from posts", [state[1]]).fetchone()
    if new > posts * REBUILD_SHARE:
        return rebuild_facts(con)
    _install(con)
    con.execute("set variable facts_loaded_through = ?::timestamp", [state[1]])
    con.execute(_SEEDS)
    (facts,) = con.execute("select count(*) from fact_thread_posts").fetchone()
    (unseen,) = con.execute("select count(*) from fact_seeds s anti join fact_thread_posts f "
                            "on f.platform = s.platform and f.post_id = s.post_id").fetchone()
    if facts + unseen != posts:   # only a deletion makes the counts differ: find the deleted posts
        con.execute(_DELETED_SEEDS)
    (seeds,) = con.execute("select count(*) from fact_seeds").fetchone()
    (changed_accounts,) = con.execute("select count(*) from fact_changed_accounts").fetchone()
    if not seeds and not changed_accounts:
        drop_temporary(con, _WORK_TABLES)
        return 0
    derived = 0
    if seeds:
        con.execute(_TARGETS)
        for table in FACT_TABLES:
            con.execute(f"delete from {table} t using fact_targets k "
                        "where t.platform = k.platform and t.post_id = k.post_id")
        _read_posts(con, "exists (select 1 from fact_targets t "
                         "where t.platform = p.platform and t.post_id = p.post_id)", keys="fact_ctx_keys")
        derived = _derive(con)
    drop_temporary(con, _WORK_TABLES)
    _record(con, code)
    return derived
