"""Organisation inputs of the models read from the store, and the estimates table.

The estimation window is never guessed here: every function takes it from its caller (the
`[settings] window_days` of the config or a command's `--window`, default DEFAULT_WINDOW_DAYS).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from connectors.observation import BROKEN_THREADS, COVERAGE, covers, observe, read_as
from features.runner import FeatureError, features_frame, latest_as_of
from models import dimensions as D
from models.estimate import estimate
from models.labels import LabelError, validate as validate_label
from models.spec import MODEL_IDS, load_model
from pipeline.confidence import with_data_confidence
from pipeline.orgs import unknown_organisations_error
from pipeline.store import utcnow

ESTIMATE_COLUMNS = ["org", "model", "stage", "stage_index", "confidence", "status", "stage_low_index",
                    "stage_high_index", "stages_possible", "rule_stage", "classifier_stage", "as_of", "window_days",
                    "provisional"]


def resolve_as_of(store, as_of: datetime | None, window_days: int) -> datetime:
    """as_of, or the latest one with features built for the window."""
    as_of = as_of or latest_as_of(store.con, window_days)
    if as_of is None:
        raise FeatureError(f"no features are stored for a {window_days}-day window; run "
                           f"`maturity features --window {window_days}` or `maturity run` first")
    return as_of


def org_frame(store, as_of: datetime, window_days: int) -> pd.DataFrame:
    """Organisation features at as_of for the estimation window, one row per organisation, with how its
    sources observe each need (`observes_<need>`, see org_observation)."""
    features = (features_frame(store.con, as_of, window_days, scope="org")
                .drop(columns=["platform", "account"]).reset_index(drop=True))
    return features.merge(org_observation(store, as_of, window_days), on="org", how="left").fillna(
        {f"observes_{need}": "none" for need in D.NEEDS})


# How many replies of a run its thread integrity is read from: a fixed sample (the lowest hashes of their
# post ids; DuckDB's hash, so fixed for a DuckDB version), so reading it costs one scan, not a join of
# every reply to its parent (at 10M posts 0.7 s against 5.5 s).
INTEGRITY_SAMPLE = 2000


@dataclass(frozen=True)
class ThreadIntegrity:
    """Of a run of a conversation-sample kind (BROKEN_THREADS): the replies sampled and how many of
    them have the post they reply to stored, and the kind its posts are read as accordingly."""
    kind: str
    sampled: int
    parents_stored: int

    @property
    def read_as(self) -> str:
        return read_as(self.kind, self.sampled, self.parents_stored)


def thread_integrity(store) -> dict[int, ThreadIntegrity]:
    """Per ingest run of a kind whose files are conversation samples, its ThreadIntegrity."""
    runs = store.con.execute(
        "with sample as ("
        "  select p.ingest_run_id as run_id, any_value(run.kind) as kind,"
        "    min_by({'platform': p.platform, 'parent': p.in_reply_to}, hash(p.post_id), ?) as sampled"
        "  from posts p join ingest_runs run on run.run_id = p.ingest_run_id"
        "  where p.in_reply_to is not null and list_contains(?::varchar[], run.kind) group by p.ingest_run_id), "
        "reply as (select run_id, kind, unnest(sampled, recursive := true) from sample) "
        "select reply.run_id, any_value(reply.kind), count(*), count(parent.post_id) "
        "from reply left join posts parent on parent.platform = reply.platform and parent.post_id = reply.parent "
        "group by reply.run_id",
        [INTEGRITY_SAMPLE, list(BROKEN_THREADS)]).fetchall()
    return {run_id: ThreadIntegrity(kind, sampled, parents) for run_id, kind, sampled, parents in runs}


def sample_of_posts_note(store, run_id: int) -> str | None:
    """What an import tells the user when its file is read as a sample of posts (None otherwise)."""
    integrity = thread_integrity(store).get(run_id)
    if integrity is None or integrity.read_as == integrity.kind:
        return None
    return (f"only {integrity.parents_stored} of {integrity.sampled} sampled replies have the post they reply to "
            "stored: a sample of posts, not of conversations, so answering, reply times and threads are not "
            "observed from it")


def runs_read_as(store) -> dict[int, str]:
    """The ingest runs whose posts are read as another kind than the one they recorded
    (connectors.observation.read_as: a conversation sample too few of whose replies have their parent
    stored), run_id -> that kind."""
    return {run_id: integrity.read_as for run_id, integrity in thread_integrity(store).items()
            if integrity.read_as != integrity.kind}


def org_observation(store, as_of: datetime, window_days: int) -> pd.DataFrame:
    """Per organisation, how its sources observe each need over the window ending at as_of
    (connectors/observation.py): the kinds that contributed its accounts' posts up to as_of (a post's
    kind is its ingest run's, or the kind runs_read_as reads the run as), the runs read as a sample of
    posts that hold mentions of its accounts (they dilute its shares: DILUTES), and the live kinds that
    read its timelines; a kind whose coverage (COVERAGE: a file's collection period, the accounts'
    timeline reads) does not hold the whole window shows its period needs as lower bounds. Without a
    configured support-role account, "no active care account" is what the configuration says, so a
    sample's lower bound of care_account becomes exact."""
    window_start = as_of - timedelta(days=window_days) if window_days else None
    read_as_kind = runs_read_as(store)
    posts = store.df(
        "with runs_read_as as (select unnest(?::bigint[]) as run_id, unnest(?::varchar[]) as kind), "
        "post_kinds as (select p.platform, p.post_id, p.author_key, p.created_at, p.ingest_run_id, "
        "  coalesce(m.kind, r.kind, split_part(p.source, ':', 1)) as kind "
        "  from posts p left join ingest_runs r on r.run_id = p.ingest_run_id "
        "  left join runs_read_as m on m.run_id = p.ingest_run_id), "
        "kinds as (select k.created_at, a.org_id, k.kind from post_kinds k "
        "  left join accounts a on a.platform = k.platform and a.handle_key = k.author_key "
        # a run read as a sample of posts dilutes an organisation's shares with its mentions of it, also
        # where it holds none of the organisation's own posts
        "  union all select k.created_at, a.org_id, k.kind from post_kinds k "
        "  semi join runs_read_as m on m.run_id = k.ingest_run_id "
        "  join fact_mentions f on f.platform = k.platform and f.post_id = k.post_id "
        "  join accounts a on a.platform = f.platform and a.handle_key = f.account) "
        "select kind, org_id as org, min(created_at) as covered_from, max(created_at) as covered_through, "
        "  bool_or(created_at <= ?) as contributed, grouping(org_id) = 1 as whole_kind "
        "from kinds group by grouping sets ((kind), (kind, org_id))",
        [list(read_as_kind), list(read_as_kind.values()), as_of])
    collections = posts[posts["whole_kind"]].set_index("kind")
    contributed = posts[~posts["whole_kind"] & posts["org"].notna() & posts["contributed"]]
    reads = store.con.execute(
        "with org_accounts as (select org_id, platform, handle_key, count(*) over (partition by org_id, platform) "
        "  as on_platform from accounts where org_id is not null) "
        "select a.org_id, t.source, t.read_from, t.read_through, a.on_platform "
        "from timeline_reads t join org_accounts a on a.platform = t.platform and a.handle_key = t.handle_key "
        "where t.read_from is null or t.read_from <= ?", [as_of]).fetchall()
    # a live kind covers the window when every account of the organisation on its platform was read over it
    covering: dict[tuple[str, str], int] = {}
    for org, kind, read_from, read_through, on_platform in reads:
        covering[org, kind] = covering.get((org, kind), 0) + covers(read_from, read_through, window_start, as_of)
    read_covered = {(org, kind): covering[org, kind] == on_platform for org, kind, _, _, on_platform in reads}
    by_org: dict[str, set[str]] = {}
    for org, kind in [*zip(contributed["org"], contributed["kind"]), *read_covered]:
        by_org.setdefault(org, set()).add(kind)

    def partial(org: str, kind: str) -> bool:
        how = COVERAGE.get(kind, "collection")
        if how == "unbounded":
            return False
        if how == "reads":
            return not read_covered.get((org, kind), False)
        row = collections.loc[kind]
        return not covers(row["covered_from"], row["covered_through"], window_start, as_of)

    care = {org for (org,) in store.con.execute(
        "select distinct org_id from accounts where org_id is not null and lower(role) = 'support'").fetchall()}
    rows = []
    for org, kinds in sorted(by_org.items()):
        observed = observe(kinds, {kind for kind in kinds if partial(org, kind)},
                           support_account_configured=org in care)
        rows.append({"org": org, **{f"observes_{need}": observed.get(need, "none") for need in D.NEEDS}})
    return pd.DataFrame(rows, columns=["org", *[f"observes_{need}" for need in D.NEEDS]])


def org_dimensions(store, as_of: datetime, window_days: int) -> pd.DataFrame:
    """The models' inputs (models.dimensions.compute) for every organisation at as_of."""
    return D.compute(org_frame(store, as_of, window_days))


def replace_estimates(store, as_of: datetime, window_days: int, run_id: str, rows: list[dict]) -> None:
    """Store `rows` as the estimates of (as_of, window), replacing earlier ones in one transaction."""
    now = utcnow()
    with store.transaction() as con:
        con.execute("delete from estimates where as_of = ? and window_days = ?", [as_of, window_days])
        if rows:
            con.executemany(
                "insert into estimates (run_id, as_of, window_days, org_id, model, stage, stage_index, "
                "stage_low_index, stage_high_index, stages_possible, confidence, status, rule_stage, classifier_stage, "
                "probabilities, explanation, computed_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, as_of, window_days, r["org"], r["model"], r["stage"], r["stage_index"],
                  r["stage_low_index"], r["stage_high_index"], r["stages_possible"], r["confidence"], r["status"], r["rule_stage"],
                  r["classifier_stage"], json.dumps(r["probabilities"]), json.dumps(r["explanation"]), now)
                 for r in rows])


def estimate_store(store, fitted, as_of: datetime | None, window_days: int, *,
                   run_id: str | None = None) -> tuple[list[dict], datetime]:
    """(Re)compute and store the estimates of every organisation with features at (as_of, window), with
    their confidence from the data (pipeline/confidence.py). Returns (estimates, as_of)."""
    as_of = resolve_as_of(store, as_of, window_days)
    features = org_frame(store, as_of, window_days)
    dims = D.compute(features)
    rows = with_data_confidence(store.con, fitted, features, dims, estimate(fitted, dims), as_of, window_days)
    replace_estimates(store, as_of, window_days, run_id or uuid.uuid4().hex, rows)
    return rows, as_of


def latest_estimate_key(store) -> tuple[datetime, int] | None:
    """(as_of, window) of the latest estimates: the newest as_of, and of its windows the one computed last
    (a backfill of past dates computes older as_ofs after the current one)."""
    return store.con.execute("select as_of, window_days from estimates order by as_of desc, computed_at desc "
                             "limit 1").fetchone()


def describe_estimate(model: str, status: str, low, high, stages_possible: str | None, *,
                      compact: bool = False) -> str:
    """An estimate in words, as tables and the report show it: a stage, "at least X; higher stages not
    assessable from these sources" (or "from public activity"), "X to Y", "one of ..." (SMI) or
    "insufficient evidence"; compact: "≥ X", "X–Y", "X / Y" (models.spec.ModelSpec.describe)."""
    if status == "insufficient_evidence" or low is None or low != low:
        return "insufficient evidence"
    possible = stages_possible.split("|") if isinstance(stages_possible, str) and stages_possible else None
    return load_model(model).describe(int(low), int(high), possible, compact=compact)


def in_model_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Estimates sorted by organisation, then in the models' published order."""
    order = {m: i for i, m in enumerate(MODEL_IDS)}
    return (frame.assign(_model_order=frame["model"].map(order)).sort_values(["org", "_model_order"])
            .drop(columns="_model_order").reset_index(drop=True))


def stored_estimates(store, as_of: datetime | None = None, window_days: int | None = None) -> pd.DataFrame:
    """The estimates of (as_of, window), by default the latest (latest_estimate_key): one row per organisation x
    model, in model order; `provisional` marks organisations that stand in for a config not written yet
    (pipeline/orgs.py)."""
    if as_of is None or window_days is None:
        latest = latest_estimate_key(store)
        if latest is None:
            return pd.DataFrame(columns=ESTIMATE_COLUMNS)
        as_of = as_of or latest[0]
        window_days = latest[1] if window_days is None else window_days
    frame = store.df("select e.org_id as org, model, stage, stage_index, confidence, status, stage_low_index, "
                     "stage_high_index, stages_possible, rule_stage, classifier_stage, as_of, window_days, "
                     "coalesce(o.provisional, false) as provisional "
                     "from estimates e left join organisations o on o.org_id = e.org_id "
                     "where as_of = ? and window_days = ?", [as_of, window_days])
    return in_model_order(frame)


def orgs_without_posts(store) -> set[str]:
    """Configured organisations none of whose accounts has a post stored."""
    return {org for (org,) in store.con.execute(
        "select o.org_id from organisations o where not exists (select 1 from accounts a join posts p "
        "on p.platform = a.platform and p.author_key = a.handle_key where a.org_id = o.org_id)").fetchall()}


def add_labels(store, labels: list[tuple[str, str, str]], source: str) -> int:
    """Store analyst labels (org, model, stage), each validated against the model files and the stored
    organisations."""
    checked = [validate_label(*label) for label in labels]
    error = unknown_organisations_error(store, [org for org, _, _ in checked])
    if error:
        raise LabelError(error)
    now = utcnow()
    with store.transaction() as con:
        con.executemany("insert into labels values (?, ?, ?, ?, ?)", [(o, m, s, source, now) for o, m, s in checked])
    return len(checked)
