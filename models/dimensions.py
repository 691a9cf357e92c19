"""Maturity dimensions: computed once from organisation features, shared by all five models.

A *signal* is one feature (or a ratio of two) read from `features.runner.features_frame(scope="org")`.
Each signal has a documented scale that maps its value onto a 0..1 score (0 = the least mature behaviour
the scale distinguishes, 1 = the most mature). A *dimension* is the mean of the scores of its available
signals. The five models (models/*.toml) differ only in how they map dimensions to stages.

Missing features degrade gracefully: a signal whose feature is absent (not yet in the feature library, or
no evidence such as no answered mentions) is skipped; the dimension rests on the remaining signals, and
`completeness` (share of signals available) falls. A dimension with no available signal is NaN.

Every scale is monotone, so an organisation at least as good on every signal never scores lower on any
dimension (the property the stage estimates rely on for monotonicity).

Some signals announced for the feature library may not exist yet in a given checkout; for those the
`fallback_signals` SQL below computes the same quantity from stored posts and accounts. A feature from
the library always wins over the fallback.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

DIMENSIONS = ["presence", "responsiveness", "dialogue", "coordination", "integration", "investment",
              "innovation"]

DIMENSION_DOC = {
    "presence": "Visible, regular activity: how much and on how many days the organisation posts.",
    "responsiveness": "Answering mentions: share answered and how fast.",
    "dialogue": "Conversation rather than broadcast: back-and-forth threads, customers talking to each other.",
    "coordination": "Governance and procedure: a structured response process (replies signed by a "
                    "webcare team, a set route to private channels).",
    "integration": "Cross-department use: department accounts and distinct roles active.",
    "investment": "Resources dedicated to social care: distinct agents and hours of the day covered.",
    "innovation": "Adoption of channels and formats: platforms used, proactive posting, rich media.",
}


@dataclass(frozen=True)
class Scale:
    """Maps a signal value to 0..1. kind: lin (linear), log (log10), rate (a day share converted to the
    equivalent daily Poisson rate -ln(1 - share), then log10). `lo` scores 0 and `hi` scores 1; lo > hi
    means lower values are better (latency)."""
    signal: str
    dimension: str
    kind: str
    lo: float
    hi: float
    unit: str
    label: str

    def _f(self, value: float) -> float:
        if self.kind == "lin":
            return value
        if self.kind == "log":
            return math.log10(max(value, 1e-9))
        if self.kind == "rate":
            return math.log10(max(-math.log(max(1.0 - value, 1e-9)), 1e-9))
        raise ValueError(self.kind)

    def _finv(self, value: float) -> float:
        if self.kind == "lin":
            return value
        if self.kind == "log":
            return 10 ** value
        return 1.0 - math.exp(-(10 ** value))

    def score(self, value: float) -> float:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return float("nan")
        a, b = self._f(self.lo), self._f(self.hi)
        return float(min(1.0, max(0.0, (self._f(float(value)) - a) / (b - a))))

    def value_for(self, score: float) -> float:
        """The signal value that scores `score` (inverse of score on the 0..1 range)."""
        a, b = self._f(self.lo), self._f(self.hi)
        return self._finv(a + min(1.0, max(0.0, score)) * (b - a))

    @property
    def higher_is_better(self) -> bool:
        return self.hi > self.lo


# Anchors: the low end is the least active behaviour we distinguish, the high end what the most mature
# twcs brands show (real prefix-5k file: per-brand median first reply 106 s .. 163,581 s, overall
# median 724 s; 75% of inbound tweets answered; 55% of brand replies signed by an agent; 23% ask to move
# to DM). See connectors/synthetic.py for the full set of measured constants.
SCALES: list[Scale] = [
    Scale("posts_per_day", "presence", "log", 0.2, 20.0, "posts/day", "posts per day"),
    Scale("active_day_share", "presence", "rate", 0.18, 0.99, "share", "share of days with a post"),
    Scale("response_rate", "responsiveness", "lin", 0.10, 0.95, "share", "response rate"),
    Scale("first_reply_median_s", "responsiveness", "log", 86400.0, 120.0, "seconds",
          "median first-reply time"),
    Scale("c2c_share", "dialogue", "lin", 0.0, 0.30, "replies/mention",
          "customer-to-customer replies per mention"),
    Scale("multi_turn_share", "dialogue", "lin", 0.0, 0.40, "share",
          "share of replies continuing a back-and-forth"),
    Scale("private_channel_share", "coordination", "lin", 0.0, 0.40, "share",
          "share of replies routing to a private channel"),
    Scale("signed_reply_share", "coordination", "lin", 0.10, 1.0, "share",
          "share of replies signed by an agent (a structured webcare team)"),
    Scale("department_accounts", "integration", "lin", 0.0, 4.0, "accounts", "active department accounts"),
    Scale("roles_covered", "integration", "lin", 1.0, 5.0, "roles", "distinct account roles active"),
    Scale("agent_signatures", "investment", "lin", 1.0, 10.0, "agents", "distinct agent signatures"),
    Scale("reply_hours_covered", "investment", "lin", 4.0, 24.0, "hours", "hours of the day with replies"),
    Scale("platforms", "innovation", "lin", 1.0, 4.0, "platforms", "platforms used"),
    Scale("proactive_share", "innovation", "lin", 0.0, 0.50, "share", "share of posts that are proactive"),
    Scale("media_share", "innovation", "lin", 0.0, 0.40, "share", "share of posts with media"),
]
SCALE_BY_SIGNAL = {s.signal: s for s in SCALES}
SIGNALS = [s.signal for s in SCALES]

# Raw features the signals read (derived signals are ratios of these).
FALLBACK_FEATURES = ["signed_reply_share", "customer_to_customer_replies", "multi_turn_share", "private_channel_share",
                     "department_accounts", "roles_covered", "agent_signatures", "reply_hours_covered",
                     "platforms", "proactive_share", "media_share"]

# Minimum evidence before any stage is reported (see models/estimate.py).
MIN_OBSERVATIONS = 40          # org posts + inbound mentions in the window
MIN_COMPLETENESS = 0.6

_FALLBACK_SQL = """
with
acc as (
    select platform, handle_key, org_id, coalesce(role, 'other') as role, pseudonym(handle_key) as mention_key
    from accounts where org_id is not null
),
p as (
    select p.platform, p.post_id, p.author_key, p.created_at, p.in_reply_to, p.mentions,
           private_channel(p.text) as private_channel, p.has_media, signature(p.text) as signature,
           a.org_id, a.role
    from posts p
    left join acc a on a.platform = p.platform and a.handle_key = p.author_key
    where p.created_at <= $as_of and p.created_at >= coalesce($window_start, timestamp '-infinity')
),
org_posts as (select * from p where org_id is not null),
parents as (
    select c.post_id as child_id, c.platform, par.org_id as parent_org, par.author_key as parent_author,
           par.in_reply_to as parent_reply_to, par.mentions as parent_mentions
    from p c join p par on par.platform = c.platform and par.post_id = c.in_reply_to
),
multi as (
    -- org replies whose parent is a customer post that itself replies to the same organisation
    select o.org_id, count(*) as n
    from org_posts o
    join parents pr on pr.child_id = o.post_id and pr.platform = o.platform and pr.parent_org is null
    join p grand on grand.platform = o.platform and grand.post_id = pr.parent_reply_to
                and grand.org_id = o.org_id
    group by o.org_id
),
c2c as (
    -- customer replies to another customer's post that was addressed to the organisation
    select coalesce(gp.org_id, ma.org_id) as org_id, count(distinct c.post_id) as n
    from p c
    join parents pr on pr.child_id = c.post_id and pr.platform = c.platform and pr.parent_org is null
                   and pr.parent_author <> c.author_key
    left join p gp on gp.platform = c.platform and gp.post_id = pr.parent_reply_to and gp.org_id is not null
    left join acc ma on ma.platform = c.platform and list_contains(pr.parent_mentions, ma.mention_key)
    where c.org_id is null and coalesce(gp.org_id, ma.org_id) is not null
    group by 1
),
base as (
    select org_id,
           count(distinct platform)::double as platforms,
           count(distinct author_key) filter (where role not in ('brand', 'other'))::double
               as department_accounts,
           count(distinct role)::double as roles_covered,
           count(distinct signature)::double as agent_signatures,
           count(distinct hour(created_at)) filter (where in_reply_to is not null)::double
               as reply_hours_covered,
           avg(case when in_reply_to is null then 1 else 0 end) as proactive_share,
           avg(case when has_media then 1 else 0 end) as media_share,
           avg(case when private_channel then 1 else 0 end) filter (where in_reply_to is not null)
               as private_channel_share,
           avg(case when signature is not null then 1 else 0 end) filter (where in_reply_to is not null)
               as signed_reply_share,
           count(*) filter (where in_reply_to is not null) as replies
    from org_posts group by org_id
)
select b.org_id as org, b.signed_reply_share, b.platforms, b.department_accounts, b.roles_covered, b.agent_signatures,
       b.reply_hours_covered, b.proactive_share, b.media_share, b.private_channel_share,
       coalesce(m.n, 0) / nullif(b.replies, 0)::double as multi_turn_share,
       coalesce(c.n, 0)::double as customer_to_customer_replies
from base b left join multi m using (org_id) left join c2c c using (org_id)
"""


def fallback_signals(store, as_of: datetime, window_days: int) -> pd.DataFrame:
    """Org-level values for FALLBACK_FEATURES computed from stored posts (one row per organisation)."""
    window_start = None if not window_days else as_of - timedelta(days=window_days)
    return store.con.execute(_FALLBACK_SQL, {"as_of": as_of, "window_start": window_start}).df()


def org_frame(store, as_of: datetime | None = None, window_days: int | None = None) -> tuple[pd.DataFrame, datetime, int]:
    """Organisation features for estimation: the 90-day window when stored, else all data (window 0).
    Announced features that the library does not provide yet are filled from `fallback_signals`."""
    from features.runner import features_frame, latest_as_of

    if window_days is None:
        window_days = 90 if latest_as_of(store.con, 90) is not None else 0
    if as_of is None:
        as_of = latest_as_of(store.con, window_days)
    frame = features_frame(store.con, as_of, window_days, scope="org").drop(columns=["platform", "account"])
    missing = [f for f in FALLBACK_FEATURES if f not in frame.columns]
    if missing:
        extra = fallback_signals(store, as_of, window_days)
        frame = frame.merge(extra[["org", *missing]], on="org", how="left")
    return frame.reset_index(drop=True), as_of, window_days


def signal_values(features: pd.DataFrame) -> pd.DataFrame:
    """Signal values per organisation (NaN where the feature is absent or has no evidence)."""
    out = pd.DataFrame(index=features.index)
    col = lambda name: features[name].astype(float) if name in features.columns else pd.Series(np.nan, index=features.index)  # noqa: E731
    mentions = col("mentions")
    answered = col("answered")
    for scale in SCALES:
        if scale.signal == "c2c_share":
            out["c2c_share"] = col("customer_to_customer_replies") / mentions.where(mentions > 0)
        else:
            out[scale.signal] = col(scale.signal)
    # Mentions with none answered: latency is unobserved because nothing was answered, which is the
    # slowest possible behaviour, not missing evidence.
    unanswered = (mentions > 0) & (answered.fillna(0) == 0)
    out.loc[unanswered, "first_reply_median_s"] = SCALE_BY_SIGNAL["first_reply_median_s"].lo
    return out


def signal_scores(signals: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({s.signal: signals[s.signal].map(s.score) for s in SCALES}, index=signals.index)


def dimension_scores(scores: pd.DataFrame) -> pd.DataFrame:
    dims = pd.DataFrame(index=scores.index)
    for dim in DIMENSIONS:
        members = [s.signal for s in SCALES if s.dimension == dim]
        dims[dim] = scores[members].mean(axis=1, skipna=True)
    return dims


def compute(features: pd.DataFrame) -> pd.DataFrame:
    """One row per organisation: org, every signal value (`sig_<name>`), its score (`score_<name>`), every
    dimension (`<dimension>`), completeness (share of signals available) and the evidence volumes."""
    features = features.reset_index(drop=True)
    signals = signal_values(features)
    scores = signal_scores(signals)
    dims = dimension_scores(scores)
    out = pd.DataFrame({"org": features["org"] if "org" in features.columns else features.index.astype(str)})
    out = pd.concat([out, signals.add_prefix("sig_"), scores.add_prefix("score_"), dims], axis=1)
    out["completeness"] = scores.notna().mean(axis=1)
    for volume in ("posts", "mentions"):
        out[volume] = features[volume].fillna(0).astype(float) if volume in features.columns else 0.0
    return out


def classifier_inputs(dims: pd.DataFrame) -> np.ndarray:
    """The matrix the classifiers read: dimension scores then signal scores, all oriented so higher is
    more mature (so monotone constraints apply to every column)."""
    columns = DIMENSIONS + [f"score_{s}" for s in SIGNALS]
    return dims.reindex(columns=columns).to_numpy(dtype=float)


INPUT_NAMES = DIMENSIONS + [f"score_{s}" for s in SIGNALS]
