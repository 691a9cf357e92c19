"""Builds the feature groups (one SQL file each, in file-name order) and stores them long-format.

Each group file documents its features in `-- feature: name | unit | definition` header lines; the
runner checks those lines against the columns the SQL returns, so the dictionary cannot drift from
the code. A column `<feature>__n` carries the evidence count behind `<feature>`.

Every function here runs on a DuckDB connection it is given. The connection must carry the project
schema (posts, accounts, organisations, the conversation facts, features, feature_builds) and the
`pseudonym(handle)` macro, as pipeline.store.Store installs them; a build installs the text macros
(features/text.py) itself. A build owns its transaction on that connection: it begins and commits it,
so the caller must not have one open, and a build that fails stores nothing. A build first brings the
conversation facts up to date (features/facts.py: only what changed since they were last refreshed),
then aggregates them: its staging filters facts by as_of and window.

The same build in two halves, for a build sharded by organisation (features/shards.py):
`compute_feature_rows` aggregates the facts on a connection that holds only accounts, organisations
and the facts tables (a shard's), refreshing and storing nothing; `store_feature_rows` stores the rows
of every shard on the store's connection as build_features stores its own.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Iterator

import duckdb
import pandas as pd
import pyarrow as pa

from features.facts import REPLY_LIMIT_S, drop_temporary, refresh_facts
from features.text import install_text_macros

KEY_COLUMNS = ["scope", "org_id", "platform", "account"]
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class FeatureError(RuntimeError):
    pass


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing on con: any error, including a failed commit, rolls back everything."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        _rollback_quietly(con)
        raise
    try:
        con.execute("commit")
    except duckdb.Error as exc:
        _rollback_quietly(con)
        raise FeatureError(f"could not store the features: {exc}; nothing from this build was stored") from None


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("rollback")
    except duckdb.Error:
        pass  # already rolled back (or the connection was invalidated by the failure)


DEFAULT_WINDOWS = "0 (all data), 30, 90 (any)"


@dataclass(frozen=True)
class FeatureDef:
    name: str
    unit: str
    definition: str
    group: str
    windows: str = DEFAULT_WINDOWS


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    filename: str
    sql: str
    features: tuple[FeatureDef, ...]

    @property
    def is_staging(self) -> bool:
        return not self.features

    @property
    def table(self) -> str:
        """Temp table the file builds: its file name without the order number (10_cadence -> cadence);
        a group may span several files (10_cadence.sql and 15_cadence_signals.sql are both cadence)."""
        return re.sub(r"^\d+_", "", self.filename.removesuffix(".sql"))


def feature_groups() -> list[FeatureGroup]:
    groups = []
    files = sorted((e for e in resources.files("features.sql").iterdir() if e.name.endswith(".sql")),
                   key=lambda e: e.name)
    for entry in files:
        sql = entry.read_text(encoding="utf-8")
        group = re.search(r"^--\s*group:\s*(\w+)", sql, re.M)
        if not group:
            raise FeatureError(f"features/sql/{entry.name}: missing '-- group: name' header")
        windows = re.search(r"^--\s*windows:\s*(.+)$", sql, re.M)
        defs = []
        for match in re.finditer(r"^--\s*feature:\s*(\w+)\s*\|\s*([^|]+?)\s*\|\s*(.+)$", sql, re.M):
            defs.append(FeatureDef(match.group(1), match.group(2), match.group(3).strip(), group.group(1),
                                   windows.group(1).strip() if windows else DEFAULT_WINDOWS))
        groups.append(FeatureGroup(group.group(1), entry.name, sql, tuple(defs)))
    return groups


def feature_catalog() -> list[FeatureDef]:
    return [f for g in feature_groups() for f in g.features]


def default_as_of(con: duckdb.DuckDBPyConnection) -> datetime:
    (latest,) = con.execute("select max(created_at) from posts").fetchone()
    if latest is None:
        raise FeatureError("no posts are stored yet; import or sync data first")
    return latest


TREND_INPUTS = ("cadence", "responsiveness")   # groups the trend group compares with the previous window
MIN_EVIDENCE = 5                               # observations a feature needs to count as supported


def _set_period(con, as_of: datetime, window_days: int) -> None:
    con.execute("set variable as_of = ?::timestamp", [as_of])
    con.execute("set variable window_days = ?::integer", [window_days])
    con.execute("set variable window_start = ?::timestamp",
                [None if not window_days else pd.Timestamp(as_of) - pd.Timedelta(days=window_days)])
    con.execute("set variable reply_limit_s = ?::double", [REPLY_LIMIT_S])
    con.execute("set variable min_evidence = ?::integer", [MIN_EVIDENCE])


def _select_groups(groups: list[FeatureGroup], only: tuple[str, ...] | None) -> list[FeatureGroup]:
    """All files, or the named ones (by table name, e.g. ("cadence", "responsiveness") = the core) plus
    the staging files they read (00_staging always)."""
    if only is None:
        return groups
    unknown = set(only) - {g.table for g in groups if not g.is_staging}
    if unknown:
        raise FeatureError(f"unknown feature file(s): {', '.join(sorted(unknown))}")
    chosen = [g for g in groups if g.table in only]
    uncommented = {g.filename: _without_comments(g.sql) for g in groups}
    staged = {m.group(0) for g in chosen for m in re.finditer(r"\bstg_\w+", uncommented[g.filename])}
    return [g for g in groups if g in chosen or (g.is_staging and (
        g.filename.startswith("00_")
        or any(re.search(rf"(?:table|view) {t}\b", uncommented[g.filename]) for t in staged)))]


def _without_comments(sql: str) -> str:
    """The statements of a file: a table its comments name is not one it reads or builds."""
    return re.sub(r"--[^\n]*", "", sql)


PER_WINDOW = "-- per window"


def _staging_parts(group: FeatureGroup) -> tuple[str, str]:
    """A staging file's per-as_of part and its per-window part (after a '-- per window' line)."""
    head, marker, tail = group.sql.partition(PER_WINDOW)
    return (head, marker + tail) if marker else (group.sql, "")


def _build_prev(con, groups: list[FeatureGroup], as_of: datetime, window_days: int) -> None:
    """The trend inputs for the previous window (as_of - window, same length): prev_<table>_<window>."""
    _set_period(con, pd.Timestamp(as_of) - pd.Timedelta(days=window_days), window_days)
    for group in groups:
        if group.is_staging and group.filename.startswith("00_"):  # the trend inputs read the core staging
            con.execute(group.sql)
    for group in groups:
        if group.table in TREND_INPUTS:
            con.execute(f"create or replace temp table prev_{group.table}_{window_days} as {group.sql}")


def _build_window(con, groups: list[FeatureGroup], as_of: datetime, window_days: int) -> list[str]:
    """Runs the per-window staging and every group for one window into temp tables feat_<table>
    (the per-as_of staging must have run); returns the long-format selects over them."""
    _set_period(con, as_of, window_days)
    selects: list[str] = []
    for group in groups:
        if group.is_staging:
            per_window = _staging_parts(group)[1]
            if per_window:
                con.execute(per_window)
            continue
        if group.name == "trend":
            for name in TREND_INPUTS:  # window 0 has no previous window: empty inputs, NULL trends
                source = f"prev_{name}_{window_days}" if window_days else f"feat_{name} where false"
                con.execute(f"create or replace temp view prev_{name} as select * from {source}")
        if group.name == "completeness":
            # a view: reading the wide tables again is cheaper than copying their long rows
            con.execute(f"create or replace temp view feat_all as {' union all '.join(selects)}")
        table = f"feat_{group.table}"
        con.execute(f"create or replace temp table {table} as {group.sql}")
        selects.extend(_long_selects(con, group, table))
    return selects


def build_features(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None,
                   windows: tuple[int, ...] = (0,), orgs: list[str] | None = None,
                   only: tuple[str, ...] | None = None) -> datetime:
    """Compute every feature group for as_of and each window (days; 0 = all data); returns as_of.

    Results replace what was stored for the same (as_of, window), so history is kept per as_of.
    With `orgs`, only those organisations (and their accounts) are replaced: the incremental path
    after new posts touched a few organisations (see `affected_orgs`). With `only` (feature file
    names without their number, e.g. ("cadence", "responsiveness")), just those files are built."""
    as_of = as_of or default_as_of(con)
    groups = _select_groups(feature_groups(), only)
    produced = [f.name for g in groups for f in g.features]
    # restricted builds filter on a temp table (a semi join), not list_contains over a long list per row
    only_orgs = "" if orgs is None else " and org_id in (select org_id from build_orgs)"
    with transaction(con):    # a build that fails rolls its temp tables back with everything else
        refresh_facts(con)
        install_text_macros(con)
        if orgs is not None:
            con.execute("create or replace temp table build_orgs as select unnest(?::varchar[]) as org_id",
                        [list(orgs)])
        for window_days, rows_sql in _computed_windows(con, groups, as_of, windows):
            _replace_window(con, as_of, window_days, produced, rows_sql, [], only_orgs)
    drop_temporary(con, _WORK_TABLES)
    return as_of


# The temp tables and views a build leaves (staging rows, each group's and previous window's results):
# they hold every staged row, and what runs next on the connection (estimation, a facts rebuild at 10M
# posts) needs the memory limit to itself, so a build drops them when it ends.
_WORK_TABLES = r"^(stg|feat|prev)_|^build_orgs$"


def _computed_windows(con, groups: list[FeatureGroup], as_of: datetime,
                      windows: tuple[int, ...]) -> Iterator[tuple[int, str]]:
    """Runs the groups on con's facts for each window; yields (window, the long-format select over that
    window's temp tables), which holds until the next window is computed."""
    if any(g.name == "trend" for g in groups):
        for window_days in sorted({w for w in windows if w}):
            _build_prev(con, groups, as_of, window_days)
    _run_as_of_staging(con, groups, as_of)
    for window_days in windows:
        yield window_days, " union all ".join(_build_window(con, groups, as_of, window_days))


def _run_as_of_staging(con, groups: list[FeatureGroup], as_of: datetime) -> None:
    """The staging that depends on as_of only (each staging file's part before '-- per window'): run
    once for every window."""
    _set_period(con, as_of, 0)
    for group in groups:
        if group.is_staging:
            con.execute(_staging_parts(group)[0])


def _replace_window(con, as_of: datetime, window_days: int, produced: list[str], rows_sql: str,
                    rows_params: list, only_orgs: str = "") -> None:
    """Stores one window's long rows (scope, org_id, platform, account, feature, value, evidence) in
    place of what was stored for (as_of, window): the features this build produces (for its
    organisations) are deleted and inserted again, in the caller's transaction."""
    con.execute(
        "delete from features where as_of = ? and window_days = ? "
        f"and list_contains(?::varchar[], feature){only_orgs}",
        [as_of, window_days, produced])
    con.execute(
        "insert into features select ?::timestamp, ?::integer, scope, org_id, platform, "
        f"account, feature, value, evidence, ?::timestamp from ({rows_sql}) where true{only_orgs}",
        [as_of, window_days, utcnow(), *rows_params])
    # this build cannot vouch for its inputs: the fingerprint features/cache.py recorded is void
    con.execute("delete from feature_builds where as_of = ? and window_days = ?", [as_of, window_days])


ROW_COLUMNS = ["window_days", "scope", "org_id", "platform", "account", "feature", "value", "evidence"]


def compute_feature_rows(con: duckdb.DuckDBPyConnection, as_of: datetime,
                         windows: tuple[int, ...]) -> pa.Table:
    """Every feature of every window for as_of as long rows (ROW_COLUMNS), computed from the facts on
    con as they are (no refresh) and stored nowhere: for a build of part of the store elsewhere
    (features/shards.py), whose rows `store_feature_rows` stores."""
    install_text_macros(con)
    tables = [con.execute(f"select ?::integer as window_days, scope, org_id, platform, account, feature, "
                          f"value, evidence from ({rows_sql})", [window_days]).to_arrow_table()
              for window_days, rows_sql in _computed_windows(con, feature_groups(), as_of, windows)]
    drop_temporary(con, _WORK_TABLES)
    return pa.concat_tables(tables)


def store_feature_rows(con: duckdb.DuckDBPyConnection, as_of: datetime, windows: tuple[int, ...],
                       rows: list[pa.Table]) -> None:
    """Stores the rows of `compute_feature_rows` calls (together, every account and organisation) for
    as_of in place of every feature stored for its windows, in one transaction, as build_features
    stores what it computes."""
    produced = [f.name for f in feature_catalog()]
    con.register("computed_feature_rows", pa.concat_tables(rows))
    try:
        with transaction(con):
            for window_days in windows:
                _replace_window(con, as_of, window_days, produced,
                                "select * from computed_feature_rows where window_days = ?", [window_days])
    finally:
        con.unregister("computed_feature_rows")


def build_staging(con: duckdb.DuckDBPyConnection, as_of: datetime, window_days: int) -> None:
    """The staging temp tables for (as_of, window) on `con` -- the per-row inputs every feature group
    reads (stg_mentions, stg_org_posts, stg_mention_signals, ...) -- without computing or storing features:
    for callers that resample those rows (the estimates' thread bootstrap). Reads the conversation
    facts as last refreshed (by the load or a feature build); it writes nothing, so it runs on a
    read-only connection too."""
    install_text_macros(con)
    groups = [g for g in feature_groups() if g.is_staging]
    _run_as_of_staging(con, groups, as_of)
    _build_window(con, groups, as_of, window_days)   # staging groups only: their per-window part


def affected_orgs(con: duckdb.DuckDBPyConnection, loaded_after: datetime) -> list[str]:
    """Organisations whose features posts loaded after `loaded_after` can change: they wrote one of
    them, or one of them replies to or @-mentions one of their accounts."""
    rows = con.execute(
        """
        with new_posts as (select * from posts where loaded_at > ?),
        acc as (select platform, handle_key, org_id, pseudonym(handle_key) as mention_key
                from accounts where org_id is not null),
        touched as (
            select a.org_id from new_posts n join acc a on a.platform = n.platform and a.handle_key = n.author_key
            union
            select a.org_id from new_posts n
            join posts parent on parent.platform = n.platform and parent.post_id = n.in_reply_to
            join acc a on a.platform = parent.platform and a.handle_key = parent.author_key
            union
            select a.org_id from (select platform, unnest(mentions) as mention_key from new_posts) m
            join acc a on a.platform = m.platform and a.mention_key = m.mention_key
        )
        select distinct org_id from touched order by 1
        """, [loaded_after]).fetchall()
    return [r[0] for r in rows]


def as_of_dates(start: datetime, end: datetime, every: timedelta) -> list[datetime]:
    """start, start + every, ... up to end (included): the as_of dates of a backfill."""
    if every <= timedelta(0):
        raise FeatureError("the backfill step must be positive")
    if end < start:
        raise FeatureError(f"backfill end {end:%Y-%m-%d} is before its start {start:%Y-%m-%d}")
    moments, moment = [], start
    while moment <= end:
        moments.append(moment)
        moment += every
    return moments


def backfill_features(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, every: timedelta = timedelta(days=7),
                      windows: tuple[int, ...] = (0, 30, 90)) -> list[datetime]:
    """Features for every as_of from start to end (included) in steps of `every`, from stored posts.
    Each as_of is stored under its own key; re-running replaces, never duplicates."""
    moments = as_of_dates(start, end, every)
    for moment in moments:
        build_features(con, moment, windows=windows)
    return moments


def _long_selects(con, group: FeatureGroup, table: str) -> list[str]:
    columns = [row[0] for row in con.execute(f"describe {table}").fetchall()]
    produced = {c for c in columns if c not in KEY_COLUMNS and not c.endswith("__n")}
    documented = {f.name for f in group.features}
    if produced != documented:
        raise FeatureError(
            f"features/sql/{group.filename}: columns and '-- feature:' lines differ "
            f"(undocumented: {sorted(produced - documented)}, missing: {sorted(documented - produced)})")
    selects = []
    for feature in group.features:
        assert _IDENTIFIER.match(feature.name), feature.name
        evidence = f'"{feature.name}__n"' if f"{feature.name}__n" in columns else "null"
        selects.append(
            f"select scope, org_id, platform, account, '{group.name}' as grp, '{feature.name}' as feature, "
            f'"{feature.name}"::double as value, {evidence}::bigint as evidence from {table}')
    return selects


def latest_as_of(con: duckdb.DuckDBPyConnection, window_days: int = 0) -> datetime | None:
    (as_of,) = con.execute(
        "select max(as_of) from features where window_days = ?", [window_days]).fetchone()
    return as_of


def features_frame(con: duckdb.DuckDBPyConnection, as_of: datetime | None = None, window_days: int = 0,
                   scope: str = "account") -> pd.DataFrame:
    """Stored features as one wide row per account (or organisation), columns in catalog order."""
    as_of = as_of or latest_as_of(con, window_days)
    if as_of is None:
        raise FeatureError("no features are stored yet; run `maturity features` or `maturity run` first")
    long = con.execute(
        "select org_id, platform, account, feature, value from features "
        "where as_of = ? and window_days = ? and scope = ?", [as_of, window_days, scope]).df()
    if long.empty:
        raise FeatureError(f"no {scope} features stored for as_of {as_of} and window {window_days} days")
    # pivot, not pivot_table(dropna=False): the latter invents rows for every org x platform x account
    # combination once an organisation spans two platforms
    wide = long.pivot(index=["org_id", "platform", "account"], columns="feature", values="value").reset_index()
    handles = con.execute("select platform, handle_key as account, handle from accounts").df()
    wide = wide.merge(handles, on=["platform", "account"], how="left")
    wide["account"] = wide["handle"].fillna(wide["account"])
    order = [f.name for f in feature_catalog() if f.name in wide.columns]
    wide = wide[["org_id", "platform", "account", *order]].rename(columns={"org_id": "org"})
    wide.columns.name = None
    return wide.sort_values(["org", "platform", "account"], ignore_index=True)


def dictionary_markdown() -> str:
    lines = ["# Feature dictionary", "",
             "Generated from the `-- feature:` lines of `features/sql/*.sql` by "
             "`maturity dictionary --out docs/features.md`; do not edit by hand "
             "(tests/features/test_dictionary.py fails when it is out of date).", "",
             "Every feature is computed per account and per organisation (scope), for an `as_of` time and a "
             "trailing window in days (`0` = all data up to as_of; `build_features(..., windows=(0, 30, 90))` "
             "builds several in one call, any length works), and stored in the `features` table keyed by (as_of, window) with the evidence "
             "count it rests on (`evidence`: the number of observations behind the value). A period is "
             "[as_of - window, as_of]. Times are stored in UTC; 'local time' is the organisation's "
             "`timezone` from the organisations table. What a feature reads from a post's text (question "
             "mark, private-channel wording, links, hashtags, signatures) is derived from the stored text by "
             "the macros in `features/text.py` into the conversation facts (`features/facts.py`: one row per "
             "post, mention and organisation post, kept current as posts load; a changed macro derives them "
             "again), which a build filters by as_of and window.", "",
             f"{len(feature_catalog())} features in {len({g.name for g in feature_groups() if not g.is_staging})} groups.", ""]
    by_group: dict[str, list[FeatureGroup]] = {}
    for group in feature_groups():
        if not group.is_staging:
            by_group.setdefault(group.name, []).append(group)
    for name, files in by_group.items():
        sources = ", ".join(f"`features/sql/{g.filename}`" for g in files)
        lines += [f"## {name}", "", f"Source: {sources}", "",
                  "| feature | group | unit | window (days) | definition |", "| --- | --- | --- | --- | --- |"]
        lines += [f"| `{f.name}` | {f.group} | {f.unit} | {f.windows} | {f.definition} |"
                  for g in files for f in g.features]
        lines.append("")
    return "\n".join(lines)
