"""Builds the feature groups (one SQL file each, in file-name order) and stores them long-format.

Each group file documents its features in `-- feature: name | unit | definition` header lines; the
runner checks those lines against the columns the SQL returns, so the dictionary cannot drift from
the code. A column `<feature>__n` carries the evidence count behind `<feature>`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import pandas as pd

from pipeline.store import Store, utcnow

REPLY_LIMIT_S = 72 * 3600
KEY_COLUMNS = ["scope", "org_id", "platform", "account"]
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class FeatureError(RuntimeError):
    pass


@dataclass(frozen=True)
class FeatureDef:
    name: str
    unit: str
    definition: str
    group: str


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    filename: str
    sql: str
    features: tuple[FeatureDef, ...]

    @property
    def is_staging(self) -> bool:
        return not self.features


def feature_groups() -> list[FeatureGroup]:
    groups = []
    files = sorted((e for e in resources.files("features.sql").iterdir() if e.name.endswith(".sql")),
                   key=lambda e: e.name)
    for entry in files:
        sql = entry.read_text(encoding="utf-8")
        group = re.search(r"^--\s*group:\s*(\w+)", sql, re.M)
        if not group:
            raise FeatureError(f"features/sql/{entry.name}: missing '-- group: name' header")
        defs = []
        for match in re.finditer(r"^--\s*feature:\s*(\w+)\s*\|\s*([^|]+?)\s*\|\s*(.+)$", sql, re.M):
            defs.append(FeatureDef(match.group(1), match.group(2), match.group(3).strip(), group.group(1)))
        groups.append(FeatureGroup(group.group(1), entry.name, sql, tuple(defs)))
    return groups


def feature_catalog() -> list[FeatureDef]:
    return [f for g in feature_groups() for f in g.features]


def default_as_of(store: Store) -> datetime:
    (latest,) = store.con.execute("select max(created_at) from posts").fetchone()
    if latest is None:
        raise FeatureError("no posts are stored yet; import or sync data first")
    return latest


def build_features(store: Store, as_of: datetime | None = None,
                   windows: tuple[int, ...] = (0,)) -> datetime:
    """Compute every feature group for as_of and each window (days; 0 = all data); returns as_of."""
    as_of = as_of or default_as_of(store)
    groups = feature_groups()
    con = store.con
    with store.transaction():
        for window_days in windows:
            con.execute("set variable as_of = ?::timestamp", [as_of])
            con.execute("set variable window_start = ?::timestamp",
                        [None if not window_days else pd.Timestamp(as_of) - pd.Timedelta(days=window_days)])
            con.execute("set variable reply_limit_s = ?::double", [REPLY_LIMIT_S])
            selects = []
            for group in groups:
                if group.is_staging:
                    con.execute(group.sql)
                    continue
                table = f"feat_{group.name}"
                con.execute(f"create or replace temp table {table} as {group.sql}")
                selects.extend(_long_selects(con, group, table))
            con.execute("delete from features where as_of = ? and window_days = ?", [as_of, window_days])
            con.execute(
                "insert into features select ?::timestamp, ?::integer, scope, org_id, platform, account, "
                f"feature, value, evidence, ?::timestamp from ({' union all '.join(selects)})",
                [as_of, window_days, utcnow()])
    return as_of


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
            f"select scope, org_id, platform, account, '{feature.name}' as feature, "
            f'"{feature.name}"::double as value, {evidence}::bigint as evidence from {table}')
    return selects


def latest_as_of(store: Store, window_days: int = 0) -> datetime | None:
    (as_of,) = store.con.execute(
        "select max(as_of) from features where window_days = ?", [window_days]).fetchone()
    return as_of


def features_frame(store: Store, as_of: datetime | None = None, window_days: int = 0,
                   scope: str = "account") -> pd.DataFrame:
    """Stored features as one wide row per account (or organisation), columns in catalog order."""
    as_of = as_of or latest_as_of(store, window_days)
    if as_of is None:
        raise FeatureError("no features are stored yet; run `maturity features` or `maturity run` first")
    long = store.df(
        "select org_id, platform, account, feature, value from features "
        "where as_of = ? and window_days = ? and scope = ?", [as_of, window_days, scope])
    if long.empty:
        raise FeatureError(f"no {scope} features stored for as_of {as_of} and window {window_days} days")
    wide = long.pivot_table(index=["org_id", "platform", "account"], columns="feature", values="value",
                            aggfunc="first", dropna=False).reset_index()
    handles = store.df("select platform, handle_key as account, handle from accounts")
    wide = wide.merge(handles, on=["platform", "account"], how="left")
    wide["account"] = wide["handle"].fillna(wide["account"])
    order = [f.name for f in feature_catalog() if f.name in wide.columns]
    wide = wide[["org_id", "platform", "account", *order]].rename(columns={"org_id": "org"})
    wide.columns.name = None
    return wide.sort_values(["org", "platform", "account"], ignore_index=True)


def dictionary_markdown() -> str:
    lines = ["# Feature dictionary", "",
             "Generated from the `-- feature:` lines of `features/sql/*.sql` by `maturity dictionary`; "
             "do not edit by hand.", "",
             "Every feature is computed per account and per organisation (scope), for an `as_of` time and a "
             "window (`0` = all data up to as_of), and stored in the `features` table with the evidence "
             "count it rests on.", ""]
    for group in feature_groups():
        if group.is_staging:
            continue
        lines += [f"## {group.name}", "", f"Source: `features/sql/{group.filename}`", "",
                  "| feature | unit | definition |", "| --- | --- | --- |"]
        lines += [f"| `{f.name}` | {f.unit} | {f.definition} |" for f in group.features]
        lines.append("")
    return "\n".join(lines)
