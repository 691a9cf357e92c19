"""The analyst's Python API: open a store, get pandas DataFrames.

    from pipeline.api import open_store

    with open_store("data/maturity.duckdb") as mi:         # read-only by default
        mi.organisations(group="airlines")                   # org, name, sector, timezone
        mi.features(group="airlines")                        # wide org-scope features
        mi.estimates(group="airlines")                       # latest stage per org x model
        mi.history(orgs=["delta"])                           # every stored as_of
        mi.explain("delta", "smmm")                          # signals vs what this/next stage needs
        mi.percentile_ranks("airlines")                      # each signal's rank within the group
        mi.what_if("delta", {"response_rate": 0.9})          # which stage a changed signal would give

Every method returns a pandas DataFrame (except `explanation`, a dict, and `groups`, a list). Filters are
`group` (a sector from the organisation config) and/or `orgs` (organisation ids); with neither, every
configured organisation. Values reach SQL as parameters, never by string interpolation. The CLI
(`maturity report`), pipeline/report.py and the notebooks in notebooks/ use this module.

Definitions match the feature library: latency distributions and mention volumes come from the same
staging SQL (features/sql/00_staging.sql) the features are computed with, so the median of
`latency_distribution` is the stored `first_reply_median_s`.
"""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Iterable

import pandas as pd
from threadpoolctl import threadpool_limits

from features.runner import (FeatureError, build_staging, default_as_of, feature_catalog, features_frame,
                             latest_as_of)
from models import dimensions as D
from models.estimate import FittedModels, estimate
from models.explain import explain_row
from models.rules import with_criterion_values
from models.spec import MODEL_IDS
from pipeline.config import DEFAULT_WINDOW_DAYS
from pipeline.estimation import (describe_estimate, in_model_order, latest_estimate_key, org_dimensions, org_frame,
                                 resolve_as_of)
from pipeline.orgs import all_org_ids, unknown_organisations, unknown_organisations_error
from pipeline.store import Store, default_db_path
from pipeline.training.cache import ModelCache, load_or_train

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class NoEstimatesError(LookupError):
    """No maturity estimates are stored yet."""

    def __init__(self, message: str = "no estimates yet — run `maturity estimate` (or `maturity run`)"):
        super().__init__(message)


def open_store(path: str | Path | None = None, *, write: bool = False) -> "Analyst":
    """Open a maturity database for analysis. `path`: the DuckDB file (default: $MATURITY_DB, else
    data/maturity.duckdb). Read-only unless `write=True`, so it can be used while nothing else writes."""
    return Analyst(Store(path if path is not None else default_db_path(), read_only=not write))


class Analyst:
    """Analysis entry point over one open `Store`. Use as a context manager or call `close()`."""

    def __init__(self, store: Store):
        self.store = store

    # -- lifecycle ---------------------------------------------------------------------------------
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Analyst":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def path(self) -> Path:
        return self.store.path

    # -- organisations -----------------------------------------------------------------------------
    def groups(self) -> list[str]:
        """Competitor groups (sectors) of the configured organisations."""
        return [g for (g,) in self.store.con.execute(
            "select distinct sector from organisations where sector is not null order by 1").fetchall()]

    def organisations(self, group: str | None = None, orgs: Iterable[str] | None = None) -> pd.DataFrame:
        """Organisations: org, name, sector, timezone, business_start, business_end, accounts, provisional
        (True: no config yet, each discovered account stands as its own organisation; pipeline/orgs.py)."""
        frame = self.store.df(
            "select o.org_id as org, o.name, o.sector, o.timezone, o.business_start, o.business_end, "
            "(select count(*) from accounts a where a.org_id = o.org_id) as accounts, "
            "coalesce(o.provisional, false) as provisional "
            "from organisations o where (?::varchar is null or o.sector = ?) "
            "and (?::varchar[] is null or list_contains(?::varchar[], o.org_id)) order by o.org_id",
            [group, group, _list(orgs), _list(orgs)])
        return frame

    def org_ids(self, group: str | None = None, orgs: Iterable[str] | None = None) -> list[str]:
        """Organisation ids selected by `group` and/or `orgs`; raises ValueError when an id of `orgs` is
        no organisation or none match."""
        named = _list(orgs)
        error = named and unknown_organisations_error(self.store, named)
        if error:
            raise ValueError(error)
        ids = list(self.organisations(group, orgs)["org"])
        if not ids:
            known = ", ".join(self.groups()) or "none configured"
            raise ValueError(f"no configured organisation matches group={group!r} orgs={_list(orgs)!r} "
                             f"(groups: {known})")
        return ids

    def resolve_org(self, name: str) -> tuple[str, str | None]:
        """The organisation `name` means: its id, matched exactly, else ignoring case, else the one
        organisation with an account of that handle (ignoring case and a leading @); with a note saying
        which organisation a handle belongs to (None for an id). Raises LookupError naming the known ids."""
        known = all_org_ids(self.store)
        if name in known:
            return name, None
        alike = [o for o in known if o.lower() == name.lower()]
        if len(alike) == 1:
            return alike[0], None
        handle = name.removeprefix("@")
        owners = [o for (o,) in self.store.con.execute(
            "select distinct org_id from accounts where org_id is not null and lower(handle) = lower(?) order by 1",
            [handle]).fetchall()]
        if len(owners) == 1:
            return owners[0], f"{handle} is an account of {owners[0]}"
        if owners:
            raise LookupError(f"{handle} is an account of several organisations: {', '.join(owners)}; "
                              "give the organisation id")
        raise LookupError(unknown_organisations([name], known))

    # -- features ----------------------------------------------------------------------------------
    def feature_catalog(self) -> pd.DataFrame:
        """Every feature with its unit, definition and group (the feature dictionary)."""
        return pd.DataFrame([vars(f) for f in feature_catalog()])

    def as_of(self, window_days: int = 0) -> datetime | None:
        """Latest as_of with stored features for the window (None when nothing is built)."""
        return latest_as_of(self.store.con, window_days)

    def features(self, group: str | None = None, orgs: Iterable[str] | None = None, *, scope: str = "org",
                 window_days: int = 0, as_of: datetime | None = None) -> pd.DataFrame:
        """Stored features, wide: one row per organisation (scope='org') or account (scope='account')."""
        frame = features_frame(self.store.con, as_of, window_days, scope)
        ids = self.org_ids(group, orgs)
        frame = frame[frame["org"].isin(ids)].reset_index(drop=True)
        if scope == "org":
            frame = frame.drop(columns=["platform", "account"])
        return frame

    def estimation_window(self) -> int:
        """The window the latest estimates were computed on, else the default estimation window."""
        latest = latest_estimate_key(self.store)
        return int(latest[1]) if latest else DEFAULT_WINDOW_DAYS

    def signals(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                as_of: datetime | None = None, window_days: int | None = None) -> pd.DataFrame:
        """The maturity models' inputs per organisation: every signal value (`sig_<name>`), its 0..1 score
        (`score_<name>`), the seven dimensions and completeness (models/dimensions.py). Window: the
        latest estimates' (see `estimation_window`); as_of: the latest built for that window."""
        window_days = self.estimation_window() if window_days is None else window_days
        dims = org_dimensions(self.store, resolve_as_of(self.store, as_of, window_days), window_days)
        return dims[dims["org"].isin(self.org_ids(group, orgs))].reset_index(drop=True)

    def responsiveness(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                       window_days: int = 0, as_of: datetime | None = None) -> pd.DataFrame:
        """Per organisation: posts, inbound mentions, answered, response_rate, first-reply median/p90 (s)."""
        frame = self.features(group, orgs, window_days=window_days, as_of=as_of)
        cols = [c for c in ("posts", "mentions", "answered", "response_rate", "first_reply_median_s",
                            "first_reply_p90_s") if c in frame.columns]
        return frame[["org", *cols]]

    def judged_orgs(self, group: str | None = None, orgs: Iterable[str] | None = None) -> set[str]:
        """Organisations at least one model could say something of (a point or an interval) in the
        latest estimates; every selected organisation when none are stored yet."""
        try:
            est = self.estimates(group, orgs)
        except NoEstimatesError:
            return set(self.org_ids(group, orgs))
        return set(est.loc[est["status"] != "insufficient_evidence", "org"])

    def percentile_ranks(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                         as_of: datetime | None = None, window_days: int | None = None,
                         evidence_gate: bool = False) -> pd.DataFrame:
        """Each signal's percentile rank within the selected organisations, long format: org, signal,
        label, unit, value, percentile (0..100, 100 = best in the group; for latency lower is better),
        rank (1 = best), n (organisations ranked), observed (exact | lower_bound | upper_bound | none: a
        bound is ranked as its value, the report marks it), not_ranked (why a row has no rank: "not observed" when
        no selected organisation has a value, "insufficient evidence" for an organisation below the
        estimation's evidence gate (no model could say anything of it: every stored estimate is
        insufficient evidence) when `evidence_gate=True`, "same value for every organisation" when
        there is nothing to rank; else ''). Organisations without a value
        get NaN."""
        dims = self.signals(group, orgs, as_of=as_of, window_days=window_days)
        judged = self.judged_orgs(group, orgs) if evidence_gate else set(dims["org"])
        gated = ~dims["org"].isin(judged)
        rows = []
        for scale in D.SCALES:
            values = dims[f"sig_{scale.signal}"].astype(float)
            oriented = (values if scale.higher_is_better else -values).where(~gated)
            pct = oriented.rank(method="average", pct=True) * 100
            rank = oriented.rank(method="min", ascending=False)
            n = int(oriented.notna().sum())
            observed = bool(values.notna().any())
            spread = oriented.nunique() > 1
            if not spread:                        # one value for everyone: nothing to rank
                pct, rank, n = pct * float("nan"), rank * float("nan"), 0
            kinds = dims[f"obs_{scale.signal}"]
            for org, value, p, r, g, kind in zip(dims["org"], values, pct, rank, gated, kinds):
                why = ("not observed" if not observed else "insufficient evidence" if g
                       else "" if spread else "same value for every organisation")
                rows.append({"org": org, "signal": scale.signal, "label": scale.label, "unit": scale.unit,
                             "dimension": scale.dimension, "value": value, "percentile": p, "rank": r, "n": n,
                             "observed": kind, "not_ranked": why})
        return pd.DataFrame(rows)

    # -- raw distributions -------------------------------------------------------------------------
    def daily_posts(self, group: str | None = None, orgs: Iterable[str] | None = None) -> pd.DataFrame:
        """Every stored post per source and UTC day (the data's period and how it is spread): source,
        platform, day, posts (all posts of the source), org_posts (by the selected organisations'
        accounts)."""
        ids = self.org_ids(group, orgs)
        return self.store.df(
            """
            with own as (
                select a.platform, a.handle_key from accounts a where list_contains(?::varchar[], a.org_id)
            )
            select p.source, p.platform, p.created_at::date as day, count(*) as posts,
                   count(*) filter (where exists (select 1 from own o where o.platform = p.platform
                                                  and o.handle_key = p.author_key)) as org_posts
            from posts p group by all order by source, platform, day
            """, [ids])

    def _staging(self, as_of: datetime | None, window_days: int) -> datetime:
        """Builds the feature library's staging temp tables (stg_org_posts, stg_mentions, ...) for as_of."""
        as_of = as_of or latest_as_of(self.store.con, window_days) or default_as_of(self.store.con)
        build_staging(self.store.con, as_of, window_days)
        return as_of

    def latency_distribution(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                             window_days: int = 0, as_of: datetime | None = None) -> pd.DataFrame:
        """One row per inbound mention (same definition as the `mentions` feature): org, platform, account
        (handle), created_at, answered, first_reply_s (NaN when not answered within 72 h)."""
        ids = self.org_ids(group, orgs)
        self._staging(as_of, window_days)
        return self.store.df(
            "select m.org_id as org, m.platform, coalesce(a.handle, m.account) as account, m.created_at, "
            "m.answered, m.first_reply_s from stg_mentions m "
            "left join accounts a on a.platform = m.platform and a.handle_key = m.account "
            "where list_contains(?::varchar[], m.org_id) order by m.org_id, m.created_at", [ids])

    def posting_heatmap(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                        window_days: int = 0, as_of: datetime | None = None, local_time: bool = True
                        ) -> pd.DataFrame:
        """Posts by the organisations' accounts per weekday x hour: org, weekday (0 = Monday), weekday_name,
        hour, posts. In each organisation's configured time zone unless local_time=False (UTC)."""
        ids = self.org_ids(group, orgs)
        as_of = self._staging(as_of, window_days)
        window_start = None if not window_days else pd.Timestamp(as_of) - pd.Timedelta(days=window_days)
        frame = self.store.df(
            """
            with own as (
                select o.org_id, case when ? then (p.created_at at time zone 'UTC') at time zone o.timezone
                                      else p.created_at end as t
                from stg_org_posts p
                join accounts a on a.platform = p.platform and a.handle_key = p.account
                join organisations o on o.org_id = a.org_id
                where list_contains(?::varchar[], o.org_id)
                  and p.created_at >= coalesce(?::timestamp, timestamp '-infinity')
            )
            select org_id as org, isodow(t) - 1 as weekday, hour(t) as hour, count(*) as posts
            from own group by all order by org, weekday, hour
            """, [local_time, ids, window_start])
        frame["weekday_name"] = frame["weekday"].map(dict(enumerate(WEEKDAYS)))
        return frame[["org", "weekday", "weekday_name", "hour", "posts"]]

    def coverage(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                 window_days: int = 0, as_of: datetime | None = None) -> pd.DataFrame:
        """Department and platform coverage: org, platform, role, accounts (configured), active_accounts
        (with at least one post in the period), posts."""
        ids = self.org_ids(group, orgs)
        as_of = self._staging(as_of, window_days)
        window_start = None if not window_days else pd.Timestamp(as_of) - pd.Timedelta(days=window_days)
        return self.store.df(
            """
            with own as (
                select a.org_id, a.platform, coalesce(a.role, 'other') as role, a.handle_key, p.post_id
                from accounts a
                left join stg_org_posts p on p.platform = a.platform and p.account = a.handle_key
                     and p.created_at >= coalesce(?::timestamp, timestamp '-infinity')
                where list_contains(?::varchar[], a.org_id)
            )
            select org_id as org, platform, role, count(distinct handle_key) as accounts,
                   count(distinct handle_key) filter (where post_id is not null) as active_accounts,
                   count(post_id) as posts
            from own group by all order by org, platform, role
            """, [window_start, ids])

    # -- estimates ---------------------------------------------------------------------------------
    def estimate_dates(self) -> list[datetime]:
        """Every as_of with stored estimates, oldest first."""
        return [d for (d,) in self.store.con.execute(
            "select distinct as_of from estimates order by 1").fetchall()]

    def _estimates(self, ids: list[str], as_of: datetime | None, window_days: int | None,
                   all_dates: bool) -> pd.DataFrame:
        latest = latest_estimate_key(self.store)
        if not all_dates and latest is not None:
            as_of = as_of or latest[0]
            window_days = latest[1] if window_days is None else window_days
        frame = self.store.df(
            "select run_id, as_of, window_days, e.org_id as org, model, stage, stage_index, confidence, status, "
            "stage_low_index, stage_high_index, stages_possible, rule_stage, classifier_stage, probabilities, "
            "explanation, computed_at, coalesce(o.provisional, false) as provisional from estimates e "
            "left join organisations o on o.org_id = e.org_id "
            "where list_contains(?::varchar[], e.org_id) and (? or (as_of = ? and window_days = ?))",
            [ids, all_dates, as_of, window_days])
        frame = in_model_order(frame).sort_values(["as_of", "window_days"], kind="stable").reset_index(drop=True)
        for column in ("probabilities", "explanation"):
            frame[column] = [json.loads(v) if isinstance(v, str) else v for v in frame[column]]
        return frame

    def estimates(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                  as_of: datetime | None = None, window_days: int | None = None,
                  models: Iterable[str] | None = None, detail: bool = False) -> pd.DataFrame:
        """The latest (or the given as_of's and window's) estimates: one row per organisation x model with
        as_of, window_days, stage, stage_index (the point, or the lowest stage of an interval), confidence,
        status (ok = a point | interval | insufficient_evidence), stage_low_index, stage_high_index,
        stages_possible ('|'-separated), `estimate` (the estimate in words, e.g. "at least Early Majority;
        higher stages not assessable from these sources"), rule_stage, classifier_stage, provisional (see
        `organisations`). detail=True adds the parsed `probabilities` and `explanation` dicts. Raises
        NoEstimatesError when none are stored."""
        frame = self._estimates(self.org_ids(group, orgs), as_of, window_days, all_dates=False)
        if models is not None:
            frame = frame[frame["model"].isin(list(models))].reset_index(drop=True)
        if frame.empty:
            raise NoEstimatesError()
        frame["estimate"] = [describe_estimate(*r) for r in frame[
            ["model", "status", "stage_low_index", "stage_high_index", "stages_possible"]].itertuples(index=False)]
        if not detail:
            return frame.drop(columns=["probabilities", "explanation"])
        frame["explanation"] = [_explanation_with_values(e) for e in frame["explanation"]]
        return frame

    def stage_matrix(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                     as_of: datetime | None = None) -> pd.DataFrame:
        """Organisation x model: the estimate in words and its confidence per model (`<model>`,
        `<model>_confidence`): a stage, an interval ("at least Early Majority; higher stages not
        assessable from these sources"), the SMI quadrants still possible, or 'insufficient evidence'."""
        frame = self.estimates(group, orgs, as_of=as_of)
        frame["cell"] = frame["estimate"]
        stages = frame.pivot(index="org", columns="model", values="cell")
        conf = frame.pivot(index="org", columns="model", values="confidence")
        models = [m for m in MODEL_IDS if m in stages.columns]
        out = pd.DataFrame({"org": stages.index})
        for m in models:
            out[m] = stages[m].to_numpy()
            out[f"{m}_confidence"] = conf[m].to_numpy()
        return out.reset_index(drop=True)

    def history(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                models: Iterable[str] | None = None) -> pd.DataFrame:
        """Every stored estimate over past runs: as_of, window_days, org, model, stage, stage_index,
        confidence, status, run_id (oldest first). Raises NoEstimatesError when none are stored."""
        frame = self._estimates(self.org_ids(group, orgs), None, None, all_dates=True)
        if models is not None:
            frame = frame[frame["model"].isin(list(models))]
        if frame.empty:
            raise NoEstimatesError()
        return frame[["as_of", "window_days", "org", "model", "stage", "stage_index", "confidence", "status",
                      "run_id"]].reset_index(drop=True)

    def smi_quadrant(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
                     as_of: datetime | None = None) -> pd.DataFrame:
        """SMI axes per organisation: org, investment and innovation (0..1 dimension scores), each axis's
        level as the evidence reads it (`investment_level`, `innovation_level`: high | low | unknown),
        p_investment_high / p_innovation_high (the axis classifiers), the quadrants still possible
        (`possible`, a list; one quadrant = a point), stage (the lowest-index one), estimate (in words),
        status."""
        frame = self.estimates(group, orgs, as_of=as_of, models=["smi"], detail=True)
        rows = []
        for r in frame.itertuples(index=False):
            dims = r.explanation.get("dimensions", {})
            axes = r.explanation.get("axes", {})
            levels = r.explanation.get("rules", {}).get("axes", {})
            possible = r.stages_possible.split("|") if isinstance(r.stages_possible, str) else (
                r.explanation.get("rules", {}).get("possible", []))
            rows.append({"org": r.org, "investment": dims.get("investment"), "innovation": dims.get("innovation"),
                         "investment_level": levels.get("investment", "unknown"),
                         "innovation_level": levels.get("innovation", "unknown"),
                         "p_investment_high": axes.get("investment"), "p_innovation_high": axes.get("innovation"),
                         "possible": possible, "stage": r.stage, "estimate": r.estimate, "status": r.status,
                         "as_of": r.as_of})
        return pd.DataFrame(rows).astype({"investment": float, "innovation": float})

    # -- explanations ------------------------------------------------------------------------------
    def _dimension_rows(self, as_of: datetime, window_days: int) -> dict[str, dict]:
        return {r["org"]: r for r in org_dimensions(self.store, as_of, window_days).to_dict("records")}

    def explanation(self, org: str, model: str, *, as_of: datetime | None = None,
                    window_days: int | None = None, with_contributions: bool = False) -> dict:
        """Why `org` has its stored stage under `model`: stage, probabilities, every signal against what
        the current and the next stage need, rules held/failed, the seed's advice (quoted) and the
        measured gaps (models/explain.py), for the estimate's as_of and window. with_contributions adds
        the classifier's main contributions (needs the fitted models cached beside the database)."""
        return self.explanations(org, [model], as_of=as_of, window_days=window_days,
                                 with_contributions=with_contributions)[0]

    def explanations(self, org: str, models: Iterable[str] | None = None, *, as_of: datetime | None = None,
                     window_days: int | None = None, with_contributions: bool = False) -> list[dict]:
        """`explanation` for each of `models` (default: all, in the models' order), reading the
        organisation's signals once for them all."""
        models = list(models) if models is not None else MODEL_IDS
        found = self.estimates(orgs=[org], as_of=as_of, window_days=window_days, models=models, detail=True)
        by_model = {r["model"]: r for r in found.to_dict("records")}
        missing = [m for m in models if m not in by_model]
        if missing:
            raise NoEstimatesError(f"no estimate of {org!r} under {', '.join(missing)}")
        e = by_model[models[0]]   # one as_of and window for all: the estimates of one run
        row = self._dimension_rows(e["as_of"], e["window_days"]).get(org)
        if row is None:
            raise ValueError(f"no features for organisation {org!r} at {e['as_of']} ({e['window_days']} days)")
        fitted = train_dims = None
        if with_contributions:
            cache = ModelCache.beside(self.store.path)
            fitted, train_dims = cache.newest_fit(e["window_days"]), cache.newest_training_set(e["window_days"])
        out = []
        for model in models:
            explanation = explain_row(row, by_model[model], fitted, train_dims)
            explanation.update(as_of=e["as_of"], window_days=int(e["window_days"]))
            out.append(explanation)
        return out

    def explain(self, org: str, model: str | None = None, *, as_of: datetime | None = None) -> pd.DataFrame:
        """The explanation as a table: one row per model and signal with dimension, dimension_score,
        signal, label, value, score, current_stage_needs, next_stage_needs, and the stage columns."""
        rows = []
        models = [model] if model else MODEL_IDS
        for m, exp in zip(models, self.explanations(org, models, as_of=as_of)):
            for s in exp["signals"]:
                rows.append({"org": org, "model": m, "stage": exp["stage"], "status": exp["status"],
                             "next_stage": exp["next_stage"], "as_of": exp["as_of"],
                             "window_days": exp["window_days"], **s})
        return pd.DataFrame(rows)

    def advice(self, group: str | None = None, orgs: Iterable[str] | None = None, *,
               as_of: datetime | None = None, models: Iterable[str] | None = None) -> pd.DataFrame:
        """Next-stage advice per organisation and model: org, model, stage, status, next_stage, advice
        (the seed's recommendation, quoted, with its section) and gaps (measured signal vs what the next
        stage expects, one per line)."""
        est = self.estimates(group, orgs, as_of=as_of, models=models, detail=True)
        rows = []
        dim_rows: dict = {}
        for e in est.to_dict("records"):
            key = (e["as_of"], e["window_days"])
            if key not in dim_rows:
                dim_rows[key] = self._dimension_rows(*key)
            row = dim_rows[key].get(e["org"])
            if row is None:
                continue
            exp = explain_row(row, e)
            rows.append({"org": e["org"], "model": e["model"], "stage": e["stage"], "estimate": e["estimate"],
                         "status": e["status"],
                         "rule_stage": exp["rule_stage"], "next_stage": exp["next_stage"],
                         "advice": "\n".join(f"\"{a['quote']}\" [{a['section']}]" for a in exp["advice"]),
                         "gaps": "\n".join(exp["gaps"]),
                         "insufficient": "; ".join(exp["insufficient"])})
        return pd.DataFrame(rows)

    # -- what-if -----------------------------------------------------------------------------------
    def fitted_models(self, *, window_days: int | None = None, seed: int | None = None,
                      orgs: int | None = None) -> FittedModels:
        """The fitted stage classifiers for this database and window: the newest fit for the current
        model code cached beside the database (the one `maturity estimate` last used), else trained
        now (the default training set takes minutes) — pass seed/orgs to choose a training set."""
        window_days = self.estimation_window() if window_days is None else window_days
        if seed is None and orgs is None:
            cached = ModelCache.beside(self.store.path).newest_fit(window_days)
            if cached is not None:
                return cached
        kwargs = {k: v for k, v in (("seed", seed), ("orgs", orgs)) if v is not None}
        return load_or_train(self.store, self.signals(window_days=window_days), window_days, **kwargs)

    def what_if(self, org: str, changes: dict[str, float], *, as_of: datetime | None = None,
                fitted=None) -> pd.DataFrame:
        """Re-estimate `org` with some signals changed, e.g. {"response_rate": 0.9,
        "first_reply_median_s": 600}. Keys: model signals (models.dimensions.SIGNALS) or stored org
        features (e.g. "posts", "mentions"). Returns one row per model: stored_stage (the estimates table
        at that as_of, if any), stage_before / confidence_before (the same fitted models on the measured
        signals), stage_after / confidence_after, status_after, rule_stage_after; estimate_before /
        estimate_after, the estimate in words ("≥ X", "X–Y", "X / Y", "insufficient evidence": a stage
        alone is an interval's lowest); changed (the stage, interval or status moved). Both confidences
        are the classifier's probability of the stage: a stored confidence also resamples the
        organisation's conversations (pipeline/confidence.py), which changed signals do not have.
        A changed signal a sample shows only as a bound is read as exact (the behaviour asked about);
        one the sources cannot show stays not observed.
        `fitted`: models from `fitted_models()` (loaded when omitted). The window is the latest estimates'."""
        window_days = self.estimation_window()
        used_as_of = resolve_as_of(self.store, as_of, window_days)
        features = org_frame(self.store, used_as_of, window_days)
        row = features[features["org"] == org]
        if row.empty:
            raise ValueError(f"unknown organisation {org!r} (no features at {used_as_of})")
        changed = row.copy()
        allowed = set(D.SIGNALS) | set(features.columns) - {"org"}
        for name, value in changes.items():
            if name not in allowed:
                raise ValueError(f"unknown signal {name!r}; use one of: {', '.join(D.SIGNALS)}")
            if name == "c2c_share":
                changed["customer_to_customer_replies"] = float(value) * changed["mentions"].astype(float)
            else:  # a signal read from a feature of another name (official_posts = posts) changes that feature
                scale = D.SCALE_BY_SIGNAL.get(name)
                changed[scale.feature if scale is not None and scale.feature else name] = float(value)
        if "first_reply_median_s" in changes and float(changed["answered"].fillna(0).iloc[0]) == 0:
            # a latency only counts when something was answered (models/dimensions.signal_values)
            changed["answered"] = 1.0
        changed_dims = D.compute(changed)
        # the changed value is the behaviour asked about, not a sample's bound of it; what the sources
        # cannot show at all stays not observed
        for scale in D.SCALES:
            column = f"obs_{scale.signal}"
            if ({scale.signal, scale.feature} & set(changes)) and changed_dims[column].iloc[0] in D.BOUNDS:
                changed_dims[column] = D.EXACT
        # one OpenMP thread: on a handful of rows (and a shared machine) far faster than many
        with threadpool_limits(limits=1):
            fitted = fitted or self.fitted_models(window_days=window_days)
            before = {e["model"]: e for e in estimate(fitted, D.compute(row))}
            after = {e["model"]: e for e in estimate(fitted, changed_dims)}
        try:
            stored = self.estimates(orgs=[org], as_of=used_as_of, window_days=window_days).set_index("model")["stage"].to_dict()
        except NoEstimatesError:
            stored = {}
        described = lambda e: describe_estimate(e["model"], e["status"], e["stage_low_index"],  # noqa: E731
                                                e["stage_high_index"], e["stages_possible"], compact=True)
        rows = []
        for model, b in before.items():
            a = after[model]
            rows.append({"org": org, "model": model, "stored_stage": stored.get(model),
                         "stage_before": b["stage"], "confidence_before": b["confidence"],
                         "stage_after": a["stage"], "confidence_after": a["confidence"], "status_after": a["status"],
                         "rule_stage_after": a["rule_stage"], "estimate_before": described(b),
                         "estimate_after": described(a), "changed": described(a) != described(b)})
        return pd.DataFrame(rows)


def _explanation_with_values(explanation):
    """A stored explanation with each criterion's values beside it (stored once, in its `signals`)."""
    if not isinstance(explanation, dict) or "rules" not in explanation:
        return explanation
    return {**explanation, "rules": with_criterion_values(explanation["rules"], explanation.get("signals", {}))}


def _list(values: Iterable[str] | None) -> list[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return [values]
    return list(values)


__all__ = ["open_store", "Analyst", "NoEstimatesError", "FeatureError", "WEEKDAYS"]
