"""Maturity signals and dimensions: computed once from organisation features, shared by all five models.

A *signal* is one organisation feature (or a ratio of two) of the feature library, given as a frame with
one row per organisation (the pipeline reads it from the store for an as_of and estimation window).
Each signal declares what it *needs* (connectors/observation.py: own posts, a timeline, mentions, reply
text, ...) and has a documented scale that maps its value onto a 0..1 score (0 = the least mature
behaviour the scale distinguishes, 1 = the most mature), anchored on published figures (docs/models.md).

Observation. The frame may carry, per organisation, how its sources observe each need (columns
`observes_<need>`: exact | lower_bound | upper_bound | none; the pipeline derives them from the sources
that contributed the organisation's posts). A signal is observed as the weakest of its needs: `none`
makes it *not observed*, NaN, never 0 (twcs has no media field, so its media share is not observed
rather than 0%); `lower_bound` marks a count from a sample (models/rules.py lets it pass `>=` but never
fail it), `upper_bound` a value a sample overstates (it can fail `>=`, never pass it). Frames without
those columns are fully observed (synthetic data, hand-made frames).

A *dimension* is the mean of the scores of its observed signals (for the report's bars; the classifier
reads the means of the exactly observed ones, classifier_inputs); the stage criteria read raw signal
values (models/rules.py). Every scale is monotone,
so an organisation at least as good on every signal never scores lower on any dimension.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

DIMENSIONS = ["presence", "responsiveness", "dialogue", "coordination", "integration", "investment",
              "innovation"]

DIMENSION_DOC = {
    "presence": "Visible, regular activity: how much the organisation posts, in how many weeks, on its own initiative.",
    "responsiveness": "Answering mentions: share answered and how fast (median and 90th percentile).",
    "dialogue": "Conversation rather than broadcast: back-and-forth threads, customers talking to each other.",
    "coordination": "Governance and procedure: a structured response process (replies signed by a "
                    "webcare team, a set route to private channels, an active care account).",
    "integration": "Cross-department use: department accounts and distinct roles active.",
    "investment": "Resources dedicated to social care: agents answering and hours of the day covered.",
    "innovation": "Adoption of channels and formats: platforms used and answered on, proactive posting, rich media.",
}

EXACT, LOWER_BOUND, UPPER_BOUND, NOT_OBSERVED = "exact", "lower_bound", "upper_bound", "none"
BOUNDS = (LOWER_BOUND, UPPER_BOUND)
SHARE, DISTINCT = "share", "distinct"


@dataclass(frozen=True)
class Growth:
    """How far a signal can move while its evidence volume (EVIDENCE) grows, exactly by its feature
    definition: SHARE — the signal is a share of `volume` (each further unit adds 0 or 1 to the
    numerator); DISTINCT — a count of distinct values over the units of `volume` (each further unit adds
    at most one, up to `most`). models/rules.py uses it to decide a criterion before its minimum
    evidence when every completion gives the same verdict."""
    kind: str
    volume: str
    most: float = math.inf


@dataclass(frozen=True)
class Scale:
    """Maps a signal value to 0..1. kind: lin (linear), log (log10). `lo` scores 0 and `hi` scores 1;
    lo > hi means lower values are better (latency). `needs`: the evidence the signal rests on
    (connectors/observation.py NEEDS); `feature`: the organisation feature it reads when that is not
    the signal's own name."""
    signal: str
    dimension: str
    kind: str
    lo: float
    hi: float
    unit: str
    label: str
    needs: tuple[str, ...]
    feature: str | None = None
    growth: Growth | None = None

    def _f(self, value: float) -> float:
        if self.kind == "lin":
            return value
        if self.kind == "log":
            return math.log10(max(value, 1e-9))
        raise ValueError(self.kind)

    def _finv(self, value: float) -> float:
        return value if self.kind == "lin" else 10 ** value

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


# Anchors (sources in docs/models.md, "Anchored scales"): an answer rate of 1 in 8 scores 0 (Sprout
# Social Index 2015-16: 7 in 8 messages needing a reply went unanswered within 72 h), 0.90 scores 1;
# the Twitter-wide average of ~40% and Socialbakers' "Socially Devoted" bar of 65% lie between. A first
# reply of 72 h (the judging limit, Sprout's window) scores 0 and 1 h (Conversocial 2016, North American
# airlines' average) scores 1; Sprout's ~10 h brand average scores 0.46 and the ~4 h customers expect
# 0.68. Scales without a published figure are marked so in docs/models.md.
SCALES: list[Scale] = [
    Scale("official_posts", "presence", "log", 1.0, 270.0, "posts", "official posts in the window",
          ("own_posts",), feature="posts"),
    Scale("posts_per_day_robust", "presence", "log", 1 / 14, 5.0, "posts/day",
          "posts per day over the robust observed span", ("timeline",)),
    Scale("active_week_share", "presence", "lin", 0.25, 1.0, "share", "share of weeks with a post",
          ("timeline",)),
    Scale("proactive_posts", "presence", "log", 1.0, 270.0, "posts", "proactive posts (not replies)",
          ("timeline",)),
    Scale("response_rate", "responsiveness", "lin", 0.125, 0.90, "share", "response rate",
          ("mentions", "answer_share"), growth=Growth(SHARE, "mentions")),
    Scale("first_reply_median_s", "responsiveness", "log", 259200.0, 3600.0, "seconds",
          "median first-reply time", ("mentions",)),
    Scale("first_reply_p90_s", "responsiveness", "log", 259200.0, 3600.0, "seconds",
          "90th percentile first-reply time", ("mentions",)),
    Scale("c2c_share", "dialogue", "lin", 0.0, 0.30, "replies/mention",
          "customer-to-customer replies per mention", ("threads",)),
    Scale("multi_turn_share", "dialogue", "lin", 0.0, 0.40, "share",
          "share of replies continuing a back-and-forth", ("threads",)),
    Scale("private_channel_share", "coordination", "lin", 0.0, 0.50, "share",
          "share of replies routing to a private channel", ("reply_text",), growth=Growth(SHARE, "replies")),
    Scale("signed_reply_share", "coordination", "lin", 0.0, 1.0, "share",
          "share of replies signed by an agent (a structured webcare team)", ("reply_text",),
          growth=Growth(SHARE, "replies")),
    Scale("care_account_active", "coordination", "lin", 0.0, 1.0, "flag", "an active support-role account",
          ("care_account",)),
    Scale("department_accounts", "integration", "lin", 0.0, 4.0, "accounts", "active department accounts",
          ("structure",)),
    Scale("roles_covered", "integration", "lin", 1.0, 5.0, "roles", "distinct account roles active",
          ("structure",)),
    Scale("estimated_team_size", "investment", "log", 1.0, 20.0, "agents",
          "agents answering (signatures signing at least 2 replies)", ("reply_text", "reply_volume")),
    Scale("reply_hours_covered", "investment", "lin", 4.0, 24.0, "hours", "hours of the day with replies",
          ("reply_volume",), growth=Growth(DISTINCT, "replies", most=24.0)),
    Scale("platforms", "innovation", "lin", 1.0, 4.0, "platforms", "platforms used", ("structure",)),
    Scale("platforms_engaged", "innovation", "lin", 1.0, 4.0, "platforms",
          "platforms with at least 10 answered mentions", ("mentions", "structure")),
    Scale("proactive_share", "innovation", "lin", 0.0, 0.50, "share", "share of posts that are proactive",
          ("timeline",), growth=Growth(SHARE, "posts")),
    Scale("media_share", "innovation", "lin", 0.0, 0.40, "share", "share of posts with media", ("media",)),
]
SCALE_BY_SIGNAL = {s.signal: s for s in SCALES}
SIGNALS = [s.signal for s in SCALES]
NEEDS = sorted({need for s in SCALES for need in s.needs})

# Evidence volumes the criteria's `min_evidence` refers to (organisation features of the same names).
EVIDENCE = ["posts", "mentions", "answered", "replies"]


def completion_range(growth: Growth, values: np.ndarray, have: np.ndarray,
                     need: float) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest value a signal (`values`, over `have` units of its growth volume) can
    take once that volume reaches `need` units, whatever the further units are."""
    have = np.asarray(have, dtype=float)
    further = np.maximum(need - have, 0.0)
    if growth.kind == SHARE:
        # the numerator is a count of units; rounding only absorbs the float error of share x volume
        count = np.round(values * have, 6)
        total = have + further
        return count / total, (count + further) / total
    if growth.kind == DISTINCT:
        return values, np.minimum(values + further, growth.most)
    raise ValueError(growth.kind)


def weakest(kinds) -> str:
    """How a signal is observed given how each of its needs is: the weakest; a lower bound on one need
    and an upper bound on another bound the value in no direction, so not observed."""
    mask = 0
    for kind in kinds:
        mask |= _BIT[kind]
    return _FROM_BITS[mask]


# A kind as a bit, so the weakest of several needs is their bitwise or (vectorised in observation_kinds).
_BIT = {EXACT: 0, LOWER_BOUND: 1, UPPER_BOUND: 2, NOT_OBSERVED: 4}
_FROM_BITS = np.array([EXACT, LOWER_BOUND, UPPER_BOUND] + [NOT_OBSERVED] * 5, dtype=object)


def observation_kinds(features: pd.DataFrame) -> pd.DataFrame:
    """Per organisation and signal: exact | lower_bound | upper_bound | none (the weakest of the
    signal's needs as the `observes_<need>` columns state; exact where the frame has no such column;
    an unknown kind is none)."""
    n = len(features)
    bits = {need: (features[f"observes_{need}"].map(_BIT).fillna(_BIT[NOT_OBSERVED]).to_numpy(dtype=np.int64)
                   if f"observes_{need}" in features.columns else np.zeros(n, dtype=np.int64))
            for need in NEEDS}
    return pd.DataFrame({scale.signal: _FROM_BITS[np.bitwise_or.reduce([bits[need] for need in scale.needs])]
                         for scale in SCALES}, index=features.index)


def signal_values(features: pd.DataFrame) -> pd.DataFrame:
    """Signal values per organisation: NaN where the feature is absent, has no evidence, or the sources
    cannot show what the signal needs (not observed)."""
    out = pd.DataFrame(index=features.index)
    col = lambda name: features[name].astype(float) if name in features.columns else pd.Series(np.nan, index=features.index)  # noqa: E731
    mentions = col("mentions")
    answered = col("answered")
    for scale in SCALES:
        if scale.signal == "c2c_share":
            out["c2c_share"] = col("customer_to_customer_replies") / mentions.where(mentions > 0)
        else:
            out[scale.signal] = col(scale.feature or scale.signal)
    # Mentions with none answered: latency is unobserved because nothing was answered, which is the
    # slowest possible behaviour, not missing evidence.
    unanswered = (mentions > 0) & (answered.fillna(0) == 0)
    for latency in ("first_reply_median_s", "first_reply_p90_s"):
        out.loc[unanswered, latency] = SCALE_BY_SIGNAL[latency].lo
    kinds = observation_kinds(features)
    return out.where(kinds != NOT_OBSERVED)


def signal_scores(signals: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({s.signal: signals[s.signal].map(s.score) for s in SCALES}, index=signals.index)


def dimension_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Each dimension: the mean of its members' scores that have a value (NaN when none has)."""
    means = _dimension_means(scores.reindex(columns=SIGNALS).to_numpy(dtype=float))
    return pd.DataFrame(np.column_stack(means), index=scores.index, columns=DIMENSIONS)


def _dimension_means(scores: np.ndarray) -> list[np.ndarray]:
    """Per dimension, the mean of the known scores of its members (columns of `scores` in SIGNALS order)."""
    known = ~np.isnan(scores)
    means = []
    for members in _DIMENSION_MEMBERS:
        count = known[:, members].sum(axis=1)
        total = np.where(known[:, members], scores[:, members], 0.0).sum(axis=1)
        means.append(np.where(count > 0, total / np.maximum(count, 1), np.nan))
    return means


def compute(features: pd.DataFrame) -> pd.DataFrame:
    """One row per organisation: org, every signal value (`sig_<name>`), how it is observed
    (`obs_<name>`: exact | lower_bound | upper_bound | none), its score (`score_<name>`), every dimension
    (`<dimension>`), completeness (share of the signals the sources can show that have a value) and the
    evidence volumes (EVIDENCE)."""
    features = features.reset_index(drop=True)
    signals = signal_values(features)
    kinds = observation_kinds(features)
    scores = signal_scores(signals)
    dims = dimension_scores(scores)
    out = pd.DataFrame({"org": features["org"] if "org" in features.columns else features.index.astype(str)})
    out = pd.concat([out, signals.add_prefix("sig_"), kinds.add_prefix("obs_"), scores.add_prefix("score_"),
                     dims], axis=1)
    out["completeness"] = _completeness(scores, kinds)
    for volume in EVIDENCE:
        out[volume] = features[volume].fillna(0).astype(float) if volume in features.columns else 0.0
    return out


def _completeness(scores: pd.DataFrame, kinds: pd.DataFrame) -> pd.Series:
    """Share of the signals the sources can show that have a value (0 where they can show none)."""
    observable = (kinds != NOT_OBSERVED).sum(axis=1)
    return (scores.notna().sum(axis=1) / observable.where(observable > 0)).fillna(0.0)


def classifier_inputs(dims: pd.DataFrame) -> np.ndarray:
    """The matrix the classifiers read: dimension scores then signal scores, all oriented so higher is
    more mature (so monotone constraints apply to every column). Only exactly observed signals are
    values here: a signal not observed is NaN, and so is one observed only as a bound (a sample's
    count or overstated share: the rules use it as a minimum or a maximum, a classifier would read it
    as the value); the dimension columns are the means of the exactly observed scores. No rule stage
    and no criterion margins: an evaluation against a truth other than the rules' must not see the
    rules' reading through the inputs."""
    scores = dims.reindex(columns=[f"score_{s}" for s in SIGNALS]).to_numpy(dtype=float)
    kinds = dims.reindex(columns=[f"obs_{s}" for s in SIGNALS])
    exact = (kinds.isna() | kinds.isin([EXACT])).to_numpy()   # a frame without obs_ columns is fully observed
    scores = np.where(exact, scores, np.nan)
    return np.column_stack(_dimension_means(scores) + [scores])


def as_observed(dims: pd.DataFrame, observes: dict[str, str]) -> pd.DataFrame:
    """The rows of `dims` (as compute() returns them) as sources observing each need as `observes` says
    (need -> exact | lower_bound | upper_bound | none; a need it leaves out is none) would show them: a
    signal is observed as the weaker of how the rows already observe it and how those sources would;
    signals they cannot show are not observed. Bounds keep their value, so this shows observation, not a
    sample's thinning or bias."""
    out = dims.copy()
    for scale in SCALES:
        shown = weakest(observes.get(need, NOT_OBSERVED) for need in scale.needs)
        column = f"obs_{scale.signal}"
        current = out[column].map(_BIT).to_numpy() if column in out.columns else np.zeros(len(out), np.int64)
        out[column] = _FROM_BITS[current | _BIT[shown]]
        hidden = out[column] == NOT_OBSERVED
        out.loc[hidden, [f"sig_{scale.signal}", f"score_{scale.signal}"]] = np.nan
    scores = out[[f"score_{s}" for s in SIGNALS]].set_axis(SIGNALS, axis=1)
    out[DIMENSIONS] = dimension_scores(scores)
    out["completeness"] = _completeness(scores, out[[f"obs_{s}" for s in SIGNALS]].set_axis(SIGNALS, axis=1))
    return out


INPUT_NAMES = DIMENSIONS + [f"score_{s}" for s in SIGNALS]
_DIMENSION_MEMBERS = [[i for i, s in enumerate(SCALES) if s.dimension == dim] for dim in DIMENSIONS]
