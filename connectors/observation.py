"""What each kind of source can show about an organisation: the observation model, as data.

A source kind is the `kind` an ingest run records (ingest_runs.kind: twcs, sp500, facebook_pages, x,
mastodon, bluesky, reddit, synthetic), or the kind its posts are read as (read_as: a twcs file whose
replies too rarely have their parent stored is twcs_posts, a sample of posts). For each *need* (a kind
of evidence a signal rests on) the source declares how it observes it:

- `exact`: the value is what the organisation did in the period.
- `lower_bound`: the source is a sample, so a count or an "exists" can only be a lower bound: a pass on
  `>=` is valid, a failure on `>=` proves nothing.
- `upper_bound`: the source is a sample that overstates the value: a failure on `>=` is valid, a pass
  on `>=` proves nothing (a sample of the threads an organisation posted in holds its unanswered
  mentions only inside those threads, so the share it answered is at most what it shows). A bound in
  expectation: a random part of those threads can understate even their own rate, so a failure needs
  the share below the threshold beyond its sampling error (models.rules.UPPER_BOUND_Z).
- `none`: the source cannot show it at all; a signal resting on it is *not observed* (missing), never 0.

A need a kind does not list is `none`. The signals declare what they need (models/dimensions.py,
Scale.needs); the pipeline combines the kinds that contributed an organisation's posts (observe()).
"""
from __future__ import annotations

EXACT, LOWER_BOUND, UPPER_BOUND, NONE = "exact", "lower_bound", "upper_bound", "none"

NEEDS = {
    "own_posts": "the organisation's own posts exist and can be counted",
    "timeline": "a complete timeline of the organisation's own posts (cadence, proactive posting)",
    "mentions": "inbound mentions and the organisation's direct replies to them (latency, answered counts)",
    "answer_share": "every inbound mention, answered or not: the share the organisation answered",
    "reply_text": "the text of the organisation's replies (agent signatures, private-channel wording)",
    "reply_volume": "every reply of the organisation in the period (distinct agents, hours covered)",
    "threads": "whole conversation threads (back-and-forth, customers answering each other)",
    "media": "whether a post carries media (photo, video)",
    "engagement": "likes, reposts and reply counts of posts",
    "structure": "which of the organisation's accounts and platforms are active",
    "care_account": "whether a support-role account of the organisation is active",
}

# A live timeline connector reads each configured account's own posts from its first synced post on,
# plus the mentions/replies addressed to it. Which accounts and platforms an organisation has beyond
# the configured ones no source can show, so structure is a lower bound everywhere but synthetic data.
_LIVE_TIMELINE = {
    "own_posts": EXACT, "timeline": EXACT, "mentions": EXACT, "answer_share": EXACT, "reply_text": EXACT,
    "reply_volume": EXACT,
    "threads": EXACT, "media": EXACT, "engagement": EXACT, "structure": LOWER_BOUND, "care_account": EXACT,
}

OBSERVES: dict[str, dict[str, str]] = {
    # Customer Support on Twitter: a sample of conversation threads (every thread holds a brand post), not
    # brand timelines: 61% of the 5k prefix's brand posts fall on one day. No media field; the sample is
    # reactive by construction, so cadence and proactive posting are not observed; counts of posts,
    # agents, hours and accounts are lower bounds of what the organisation did. Every conversation in it
    # holds a brand reply (all 1,312 threads of the 5k prefix), so the mentions a brand never answered
    # appear only inside threads it posted in: its answer share is an upper bound (on synthetic
    # organisations the median answer rate is 0.53 over all mentions, 1.00 over a 50% sample of their
    # threads).
    "twcs": {"own_posts": LOWER_BOUND, "mentions": EXACT, "answer_share": UPPER_BOUND, "reply_text": EXACT,
             "reply_volume": LOWER_BOUND, "threads": EXACT, "structure": LOWER_BOUND,
             "care_account": LOWER_BOUND},
    # A twcs file too few of whose replies have the post they reply to (read_as): a random sample of
    # posts, not of conversations (the 5k random sample: 0.1% of its replies have their parent, against
    # 99.8% in the 5k prefix). A mention's answer is rarely in it, so neither answering nor its speed is
    # shown (Amazon's 228 mentions there: none answered); the replies it holds are a random part of the
    # organisation's (reply text as in twcs), and nothing shows the sampling rate, so no cadence.
    "twcs_posts": {"own_posts": LOWER_BOUND, "reply_text": EXACT, "reply_volume": LOWER_BOUND,
                   "structure": LOWER_BOUND, "care_account": LOWER_BOUND},
    # S&P 500 tweet ids: each company account's timeline (Jan-Sep 2020) as ids only: post times, no text,
    # no in_reply_to, no mentions.
    "sp500": {"own_posts": EXACT, "timeline": EXACT, "structure": LOWER_BOUND, "care_account": LOWER_BOUND},
    # Facebook page exports: the page's own posts with media type and engagement counts; comments are
    # counts only (no replies, no mentions).
    "facebook_pages": {"own_posts": EXACT, "timeline": EXACT, "media": EXACT, "engagement": EXACT,
                       "structure": LOWER_BOUND, "care_account": LOWER_BOUND},
    "x": _LIVE_TIMELINE,
    "mastodon": _LIVE_TIMELINE,
    "bluesky": _LIVE_TIMELINE,
    "reddit": _LIVE_TIMELINE,
    # The synthetic generator writes every post of every organisation: everything is observed.
    "synthetic": {need: EXACT for need in NEEDS},
}


# How far in time a kind's evidence reaches. "collection": a file shows the period from its oldest to its
# newest post; "reads": a live connector shows an account over the period its timeline was read to the
# end (the timeline_reads table), with or without posts -- what makes a silent account evidence of
# absence; "unbounded": the source holds everything there is (the synthetic generator writes every post).
COVERAGE = {"twcs": "collection", "twcs_posts": "collection", "sp500": "collection", "facebook_pages": "collection",
            "x": "reads", "mastodon": "reads", "bluesky": "reads", "reddit": "reads", "synthetic": "unbounded"}

# Needs that count what the organisation did in the period: exact only where the source covers the
# whole window, at most a lower bound where the window reaches beyond it (a 2020 timeline file says
# nothing of 2021: silence there is not dormancy).
PERIOD_NEEDS = ("own_posts", "timeline", "reply_volume")


# A kind whose files are samples of conversations, and the kind a file of it is read as when fewer than
# THREADS_INTACT_SHARE of its replies have their parent stored (a sample of posts: its threads are
# broken). The kinds this separates lie far apart (99.8% against 0.1% on the real files); below
# MIN_REPLIES replies a file is too small to tell (a hand-made export missing a few parents).
BROKEN_THREADS = {"twcs": "twcs_posts"}
THREADS_INTACT_SHARE = 0.9
MIN_REPLIES = 50

# Needs a kind's posts enter without showing them: a sample of posts adds its mentions to the share
# answered and its replies to the threads while hiding their answers and parents, so beside another
# source of the same organisation those shares are diluted, not observed.
DILUTES = {"twcs_posts": ("answer_share", "threads")}


def read_as(kind: str, replies: int, parents_stored: int) -> str:
    """The kind a file's posts are observed as, given how many of its replies have the post they reply
    to stored (`parents_stored` of `replies`): BROKEN_THREADS when too few do."""
    broken = BROKEN_THREADS.get(kind)
    if broken is None or replies < MIN_REPLIES or parents_stored >= THREADS_INTACT_SHARE * replies:
        return kind
    return broken


def covers(covered_from, covered_through, window_start, as_of) -> bool:
    """Whether the period [covered_from, covered_through] (covered_from None: without a start) holds the
    window (window_start, as_of] (window_start None: all data up to as_of)."""
    return covered_through >= as_of and (window_start is None or covered_from is None
                                         or covered_from <= window_start)


def combined(kinds) -> str:
    """How several sources together observe one need they each observe as `kinds`: exactly when one
    does; else the one bound they show (a lower bound from one sample and an upper bound from another
    bound it in neither direction: none); none when none shows it."""
    kinds = set(kinds)
    if EXACT in kinds:
        return EXACT
    bounds = kinds & {LOWER_BOUND, UPPER_BOUND}
    return bounds.pop() if len(bounds) == 1 else NONE


def observe(kinds, partial=(), support_account_configured: bool = True) -> dict[str, str]:
    """How the union of sources of these kinds observes each need (combined: a complete timeline from
    one source makes cadence exact even when another source is only a sample; a need another kind
    DILUTES is not observed). Kinds in `partial` cover only part of the window: their period needs are
    at most lower bounds. Without a support account configured, the absence of an active care account
    is exact: the configuration lists the organisation's accounts, and none has the role."""
    shown: dict[str, list[str]] = {need: [] for need in NEEDS}
    for kind in kinds:
        for need, how in OBSERVES.get(kind, {}).items():
            if kind in partial and need in PERIOD_NEEDS and how == EXACT:
                how = LOWER_BOUND
            shown[need].append(how)
    result = {need: combined(hows) for need, hows in shown.items()}
    for kind in kinds:
        for need in DILUTES.get(kind, ()):
            result[need] = NONE
    if not support_account_configured and result["care_account"] == LOWER_BOUND:
        result["care_account"] = EXACT
    return result


def source_observations(conditions: bool = True) -> dict[str, dict[str, str]]:
    """Every distinct way a kind of real source observes the needs (the synthetic generator, which shows
    everything, left out), named by the kinds that observe so: what the classifiers are trained to read
    (models.estimate.fit_models). With `conditions`, also as each kind shows an organisation when it
    covers only part of the window or no support account is configured; without, only the kinds' own
    ways (what the evaluation shows its test organisations as)."""
    variants = ((False, True), (True, True), (False, False), (True, False)) if conditions else ((False, True),)
    kinds_by_way: dict[tuple, tuple[list[str], str]] = {}
    for kind in sorted(OBSERVES):
        if kind == "synthetic":
            continue
        for partial, support in variants:
            way = tuple(observe([kind], [kind] if partial else (), support_account_configured=support).items())
            condition = (", part of the window" if partial else "") + ("" if support else ", no support account")
            kinds = kinds_by_way.setdefault(way, ([], condition))[0]
            if kind not in kinds:
                kinds.append(kind)
    return {"/".join(kinds) + condition: dict(way) for way, (kinds, condition) in kinds_by_way.items()}
