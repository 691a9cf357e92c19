"""Feature builds cached by their inputs.

A build of (as_of, window) is skipped when its input fingerprint matches the one recorded in
`feature_builds` when those features were stored. The fingerprint covers everything a build reads:
the feature code (features/sql/*.sql, the text macros and the runner), the DuckDB version, as_of
and the window, the configured organisations and accounts, the pseudonym key (through a keyed
sample) and every stored post up to as_of. Any other build of the same (as_of, window) voids the record (features/runner.py),
and the record lives in the database itself, so a replaced or deleted database starts cold.

The key is one per (as_of, window), not per organisation: a build runs its SQL over all posts
anyway (restricted builds only filter what they store), and one organisation's posts can change
another's features (a mention is assigned to the first organisation account it names; thread
features follow reply chains across authors), so per-organisation keys would save little and
could serve stale features.

A build sharded by organisation (features/shards.py) stores the same rows as the single one, so it is
planned and recorded the same way: `plan_build` before the shards are exported, `record_builds` after
the writer stored their rows. The shard count is no part of the fingerprint, and a window is current
or stale as a whole: every shard of a stale window is built again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from features import runner, text

# Every column a feature can read; hashing them all means any change to a stored post is seen.
_POST_COLUMNS = ("platform, post_id, author, author_key, is_org_author, created_at, in_reply_to, "
                 "conversation_id, text, mentions, dropped_text_is_question, has_media, like_count, "
                 "repost_count, reply_count")


@dataclass
class CachedBuild:
    as_of: datetime
    built: list[int] = field(default_factory=list)    # windows (days) computed now
    cached: list[int] = field(default_factory=list)   # windows whose stored features were reused
    fingerprints: dict[int, str] = field(default_factory=dict)   # per window, of the inputs read


def code_digest() -> str:
    """The feature SQL the runner executes (file names and text, the text macros), the runner itself, the
    derivation of the conversation facts it aggregates and the sharded build (features/shards.py), which
    stores the same rows, so either build's features answer for the same fingerprint."""
    h = hashlib.sha256()
    for group in runner.feature_groups():
        h.update(group.filename.encode() + b"\0" + group.sql.encode() + b"\0")
    h.update(text.macros_sql().encode() + b"\0")
    for module in ("runner.py", "facts.py", "shards.py"):   # beside this file (see facts.facts_code)
        h.update(Path(__file__).with_name(module).read_bytes())
    return h.hexdigest()


def _rows_digest(con, columns: str, table: str, where: str = "", params: list | None = None) -> list[str]:
    # order-independent: count, xor and sum of row hashes (rows are unique by their primary keys)
    row = con.execute(f"select count(*), coalesce(bit_xor(h), 0), coalesce(sum(h >> 16), 0) "
                      f"from (select hash({columns}) as h from {table} {where})", params or []).fetchone()
    return [str(v) for v in row]


def inputs_digest(con: duckdb.DuckDBPyConnection, as_of: datetime) -> str:
    """What every window of a build at as_of reads, hashed (window and code are added per window)."""
    parts = {
        "duckdb": duckdb.__version__,
        "as_of": pd.Timestamp(as_of).isoformat(),
        "pseudonyms": con.execute("select pseudonym('feature-cache-sample')").fetchone()[0],
        "posts": _rows_digest(con, _POST_COLUMNS, "posts", "where created_at <= ?", [as_of]),
        "accounts": _rows_digest(con, "platform, handle_key, handle, org_id, role, configured", "accounts"),
        "organisations": _rows_digest(con, "org_id, name, sector, timezone, business_start, business_end",
                                      "organisations"),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def fingerprint(inputs: str, code: str, window_days: int) -> str:
    return hashlib.sha256(f"{inputs}|{code}|{window_days}".encode()).hexdigest()


def _is_current(con: duckdb.DuckDBPyConnection, as_of: datetime, window_days: int, expected: str) -> bool:
    """The recorded fingerprint matches and every feature row that build stored is still there."""
    recorded = con.execute(
        "select fingerprint, feature_rows from feature_builds where as_of = ? and window_days = ?",
        [as_of, window_days]).fetchone()
    if recorded is None or recorded[0] != expected:
        return False
    (rows,) = con.execute("select count(*) from features where as_of = ? and window_days = ?",
                          [as_of, window_days]).fetchone()
    return rows == recorded[1]


def plan_build(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None,
               windows: tuple[int, ...] = (0,), rebuild: bool = False) -> CachedBuild:
    """Which windows of as_of must be built (their inputs changed since their features were stored, or
    all of them with `rebuild`) and which are current, with the fingerprints to record once the built
    ones are stored."""
    as_of = as_of or runner.default_as_of(con)
    inputs, code = inputs_digest(con, as_of), code_digest()
    plan = CachedBuild(as_of, fingerprints={w: fingerprint(inputs, code, w) for w in windows})
    for window_days in windows:
        current = not rebuild and _is_current(con, as_of, window_days, plan.fingerprints[window_days])
        (plan.cached if current else plan.built).append(window_days)
    return plan


def record_builds(con: duckdb.DuckDBPyConnection, plan: CachedBuild) -> None:
    """Records the fingerprints of the windows the plan built, once their features are stored (a crash
    in between only costs a rebuild next time)."""
    with runner.transaction(con):
        for window_days in plan.built:
            con.execute(
                "insert or replace into feature_builds select ?, ?, ?, count(*), ? "
                "from features where as_of = ? and window_days = ?",
                [plan.as_of, window_days, plan.fingerprints[window_days], runner.utcnow(), plan.as_of, window_days])


def cached_build(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None,
                 windows: tuple[int, ...] = (0,)) -> CachedBuild:
    """build_features for the windows whose inputs changed since their features were stored
    (same connection contract as features.runner)."""
    plan = plan_build(con, as_of, windows)
    if plan.built:
        runner.build_features(con, plan.as_of, windows=tuple(plan.built))
        record_builds(con, plan)
    return plan
