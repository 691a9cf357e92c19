"""Synthetic organisations with known maturity stages: the training and evaluation data.

`generate(seed, orgs)` draws, per organisation, a latent level (0..1) on each maturity dimension of
models/dimensions.py. Behaviour parameters are drawn from the latent levels *with noise* (and rounded to
whole accounts, agents, platforms); the true stage under each of the five models follows from the
realised behaviour (its signal values, `realised_signals`) through the model's own criteria
(models/rules.py) under full observation: synthetic data shows everything (connectors/observation.py),
so the truth of an ordinal model is the low end of the rules' reading and an SMI axis is high when a
high criterion holds. The posts are then sampled from that behaviour, so what the features measure
scatters around the truth and organisations near a stage boundary overlap with the adjacent stage:
accounts and department accounts, platforms, posting cadence, response rate and log-normal reply
latency, agent signatures, hours of the day covered, proactive vs reactive posting, private-channel
routing, multi-turn threads, media, customer-to-customer replies.
The output is raw `Post` records plus the organisation/account config; `import_synthetic` loads them
through `store.load_posts` (the one ingestion path); features are never written directly.

Calibration to the real twcs data (computed from the 5k-prefix file of the shared data set,
twcs_prefix5k__monalisapatra26: 5,001 tweets, 2,222 by brands):
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from connectors.records import Post
from models.dimensions import DIMENSIONS, SCALE_BY_SIGNAL, SCALES
from models.rules import full_observation_truth
from models.spec import load_models
from pipeline.config import Account, Organisation
from connectors.sink import LoadCounts
from pipeline.store import Store
from pipeline.training.loading import load_generated

# --- measured on the twcs prefix-5k file (see module docstring) -------------------------------------
TWCS_REPLY_LATENCY_QUANTILES_S = {0.10: 144, 0.25: 306, 0.50: 724, 0.75: 3328, 0.90: 23130}
TWCS_BRAND_MEDIAN_LATENCY_RANGE_S = (106, 163_581)   # fastest / slowest brand median (>= 15 replies)
TWCS_WITHIN_BRAND_LATENCY_SIGMA = 1.15               # AmazonHelp: median 533 s, p90 2,317 s (log-normal)
TWCS_INBOUND_ANSWERED_SHARE = 0.75                    # 2,083 of 2,778 inbound tweets got a brand reply
TWCS_SIGNED_REPLY_SHARE = 0.55                        # 1,233 of 2,222 brand tweets end with ^AB / -Name
TWCS_PRIVATE_CHANNEL_SHARE = 0.23                     # 520 of 2,222 brand tweets mention DM / private message
TWCS_LINK_SHARE = 0.27                                # 607 of 2,222 brand tweets carry a link
TWCS_PROACTIVE_SHARE = 0.01                           # 21 of 2,222 brand tweets are not replies
TWCS_CUSTOMER_REPLY_TO_CUSTOMER_SHARE = 0.14          # 395 of 2,778 inbound tweets reply to inbound tweets
TWCS_INBOUND_QUESTION_SHARE = 0.235                   # inbound tweets containing '?'
# The scales of models/dimensions.py are anchored on published figures (latency medians from 72 h down
# to 1 h, response rates 0.125..0.90), so the latent levels span those ranges rather than the twcs one.

HISTORY_DAYS = 90
END = datetime(2024, 6, 30)
REPLY_LIMIT_S = 72 * 3600
PLATFORM_ORDER = ["twitter", "facebook", "reddit", "mastodon", "bluesky"]
DEPARTMENT_ROLES = ["support", "marketing", "news", "careers", "product", "regional", "community"]
AGENT_NAMES = ["Ann", "Ben", "Cara", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lea", "Mo", "Nia"]


@dataclass(frozen=True)
class Behaviour:
    """Perturbations for a shifted test set (robustness): all 1.0/0.0 = the training distribution."""
    latency_sigma_add: float = 0.0      # extra log-normal sigma on reply latency
    mention_factor: float = 1.0         # scales inbound mention volume
    noise_factor: float = 1.0           # scales the behaviour noise around latent levels



@dataclass
class SyntheticOrg:
    org: Organisation
    latent: dict[str, float]              # realised dimension levels (see realised_levels)
    truth: dict[str, str]                 # model id -> true stage name
    truth_index: dict[str, int]
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class SyntheticData:
    seed: int
    orgs: list[SyntheticOrg]
    posts: list[Post]

    @property
    def organisations(self) -> list[Organisation]:
        return [o.org for o in self.orgs]


def realised_signals(params: dict, accounts: tuple[Account, ...]) -> dict[str, float]:
    """The signal values (and evidence volumes) of the behaviour an organisation was generated with: its
    own posts and first replies as generated (office-hour waits included), the rest from its behaviour
    parameters. What the features see of it is then limited by the window and the judging rules."""
    posts_per_day = params["posts_per_day"]
    # answered and latency as the organisation's replies realised them: a reply waits for the hours the
    # team covers, and one after reply_limit_s does not answer (as the responsiveness features judge it)
    latencies = np.array([s for s in params["first_replies_s"] if s <= REPLY_LIMIT_S])
    answered = float(len(latencies))
    reply_weights = {}
    for account in accounts:
        weight = 6.0 if account.role in ("support", "brand") else 1.0
        reply_weights[account.platform] = reply_weights.get(account.platform, 0.0) + weight
    total_weight = sum(reply_weights.values())
    follow_ratio = params["multi_turn"] / (1 - params["multi_turn"])
    return {
        "official_posts": float(params["own_posts"]),
        "posts_per_day_robust": posts_per_day,
        "active_week_share": float(1 - np.exp(-7 * posts_per_day)),
        "proactive_posts": float(params["own_proactive_posts"]),
        "response_rate": answered / max(params["mentions"], 1),
        "first_reply_median_s": float(np.quantile(latencies, 0.5)) if len(latencies) else REPLY_LIMIT_S,
        "first_reply_p90_s": float(np.quantile(latencies, 0.9)) if len(latencies) else REPLY_LIMIT_S,
        "c2c_share": params["c2c"], "multi_turn_share": params["multi_turn"],
        "private_channel_share": params["private"], "signed_reply_share": params["signed"],
        "care_account_active": float(any(a.role == "support" for a in accounts)),
        "department_accounts": params["department_accounts"],
        "roles_covered": min(params["roles"], params["department_accounts"] + 1),
        "estimated_team_size": max(params["agents"], 1), "reply_hours_covered": params["hours"],
        "platforms": params["platforms"],
        "platforms_engaged": float(sum(answered * w / total_weight >= 10 for w in reply_weights.values())),
        "proactive_share": params["proactive"], "media_share": params["media"],
        "posts": float(params["own_posts"]), "mentions": params["mentions"], "answered": answered,
        "replies": answered * (1 + follow_ratio),
    }


def realised_levels(signals: dict[str, float]) -> dict[str, float]:
    """Dimension levels of realised signal values (the mean score of each dimension's signals)."""
    return {dim: float(np.mean([s.score(signals[s.signal]) for s in SCALES if s.dimension == dim]))
            for dim in DIMENSIONS}


def latent_truth(signals: list[dict[str, float]]) -> tuple[list[dict[str, str]], list[dict[str, int]]]:
    """The true stage of every organisation (realised signal values, one dict each) under every model."""
    frame = pd.DataFrame(signals)
    evidence = ["posts", "mentions", "answered", "replies"]
    frame = pd.concat([frame[evidence], frame.drop(columns=evidence).add_prefix("sig_")], axis=1)
    names = [{} for _ in signals]
    indices = [{} for _ in signals]
    for model_id, spec in load_models().items():
        for i, index in enumerate(full_observation_truth(spec, frame).tolist()):
            names[i][model_id], indices[i][model_id] = spec.stages[index].name, int(index)
    return names, indices


def _draw_latent(rng: np.random.Generator) -> dict[str, float]:
    # One overall maturity drives the core dimensions (organisations mature as a whole, with spread);
    # investment and innovation vary more independently so every SMI quadrant is populated, and so does
    # integration, so that organisations answering well from a single account (SMMM Customer Oriented,
    # below Integrated) exist.
    m = rng.uniform(0.0, 1.0)
    latent = {d: float(np.clip(m + rng.normal(0, 0.12), 0, 1)) for d in DIMENSIONS}
    for independent in ("investment", "innovation", "integration"):
        latent[independent] = float(np.clip(m + rng.normal(0, 0.25), 0, 1))
    return latent


def _target(rng, signal: str, level: float, noise: float) -> float:
    """A behaviour parameter: the signal value for the latent level plus noise in score space."""
    return SCALE_BY_SIGNAL[signal].value_for(float(np.clip(level + rng.normal(0, noise), 0, 1)))


def _org_posts(rng: np.random.Generator, org_id: str, latent: dict, behaviour: Behaviour,
               noise: float) -> tuple[Organisation, list[Post], dict]:
    lv = latent
    posts_per_day = _target(rng, "posts_per_day_robust", lv["presence"], noise)
    response_rate = _target(rng, "response_rate", lv["responsiveness"], noise)
    latency_median = _target(rng, "first_reply_median_s", lv["responsiveness"], noise)
    c2c = _target(rng, "c2c_share", lv["dialogue"], noise)
    multi_turn = min(_target(rng, "multi_turn_share", lv["dialogue"], noise), 0.6)
    private = _target(rng, "private_channel_share", lv["coordination"], noise)
    signed = _target(rng, "signed_reply_share", lv["coordination"], noise)
    sigma = TWCS_WITHIN_BRAND_LATENCY_SIGMA + behaviour.latency_sigma_add
    n_dept = int(round(_target(rng, "department_accounts", lv["integration"], noise)))
    n_roles = int(round(_target(rng, "roles_covered", lv["integration"], noise)))
    n_agents = int(round(_target(rng, "estimated_team_size", lv["investment"], noise)))
    hours = int(round(_target(rng, "reply_hours_covered", lv["investment"], noise)))
    n_platforms = int(round(_target(rng, "platforms", lv["innovation"], noise)))
    proactive = _target(rng, "proactive_share", lv["innovation"], noise)
    media = _target(rng, "media_share", lv["innovation"], noise)

    platforms = PLATFORM_ORDER[:max(1, min(n_platforms, len(PLATFORM_ORDER)))]
    accounts = [Account(p, f"{org_id}_{p[:2]}", "brand") for p in platforms]
    # department roles: n_roles distinct roles in total (brand included) over n_dept accounts
    dept_roles = list(rng.permutation(DEPARTMENT_ROLES))[:max(0, min(n_dept, n_roles - 1))]
    for i in range(n_dept):
        role = dept_roles[i % len(dept_roles)] if dept_roles else "support"
        accounts.append(Account("twitter", f"{org_id}_{role[:4]}{i}", role))
    org = Organisation(org_id, org_id.replace("_", " ").title(), "synthetic", "UTC",
                       datetime(2000, 1, 1, 9).time(), datetime(2000, 1, 1, 17).time(), tuple(accounts))

    start = END - timedelta(days=HISTORY_DAYS)
    total_posts = posts_per_day * HISTORY_DAYS
    n_proactive = rng.poisson(total_posts * proactive)
    n_replies_target = max(total_posts - n_proactive, 0)
    follow_ratio = multi_turn / (1 - multi_turn)          # follow-up replies per first reply
    first_replies = n_replies_target / (1 + follow_ratio)
    n_mentions = rng.poisson(max(first_replies / max(response_rate, 0.05), 3) * behaviour.mention_factor)
    hour_start = int(rng.integers(0, 24))
    covered = {(hour_start + h) % 24 for h in range(max(1, min(hours, 24)))}
    agents = AGENT_NAMES[:max(n_agents, 1)]
    reply_accounts = [a for a in accounts if a.role in ("support", "brand")] or accounts
    posts: list[Post] = []
    first_replies_s: list[float] = []   # the first-reply times the organisation actually had (office hours included)
    seq = [0]

    def pid() -> str:
        seq[0] += 1
        return f"{org_id}-{seq[0]}"

    def in_hours(moment: datetime) -> datetime:
        for _ in range(25):
            if moment.hour in covered:
                return moment
            moment = moment.replace(minute=int(rng.integers(0, 30)), second=int(rng.integers(0, 60))) \
                + timedelta(hours=1)
        return moment

    def org_text(base: str, is_reply: bool) -> tuple[str, bool]:
        text = base
        if is_reply and rng.random() < private:
            text += " Please DM us your account details so we can look into this."
        if rng.random() < (signed if is_reply else 0.5):
            text += f" ^{rng.choice(agents)}"
        return text, bool(rng.random() < media)

    # proactive posts spread over active days (cadence), on every account
    active_days = max(1, int(round(HISTORY_DAYS * (1 - np.exp(-max(posts_per_day, 1e-3))))))
    days = np.sort(rng.choice(HISTORY_DAYS, size=min(active_days, HISTORY_DAYS), replace=False))
    for i in range(n_proactive):
        account = accounts[i % len(accounts)]
        moment = start + timedelta(days=int(rng.choice(days)), seconds=int(rng.integers(0, 86400)))
        text, has_media = org_text("News and tips from us this week #update https://example.org/n", False)
        posts.append(Post(account.platform, pid(), account.handle, True, moment, text=text, has_media=has_media))

    customers = [str(100000 + int(x)) for x in rng.integers(0, 900000, size=max(n_mentions, 1))]
    main_weights = np.array([6.0 if a in reply_accounts else 1.0 for a in accounts])
    main_weights /= main_weights.sum()
    for i in range(n_mentions):
        account = accounts[int(rng.choice(len(accounts), p=main_weights))]
        moment = start + timedelta(seconds=int(rng.integers(0, (HISTORY_DAYS - 4) * 86400)))
        customer = customers[i]
        question = " Why is this happening?" if rng.random() < TWCS_INBOUND_QUESTION_SHARE else ""
        mention = Post(account.platform, pid(), customer, False, moment,
                       text=f"@{account.handle} my order has a problem{question}")
        posts.append(mention)
        if rng.random() < c2c:
            other = str(100000 + int(rng.integers(0, 900000)))
            posts.append(Post(account.platform, pid(), other, False,
                              moment + timedelta(seconds=int(rng.integers(60, 7200))),
                              in_reply_to=mention.post_id, text=f"@{customer} same here, try restarting it"))
        if rng.random() >= response_rate:
            continue
        latency = float(rng.lognormal(np.log(latency_median), max(sigma, 0.05)))
        reply_at = in_hours(moment + timedelta(seconds=latency))
        first_replies_s.append((reply_at - moment).total_seconds())
        text, has_media = org_text(f"@{customer} Sorry to hear that, we are on it.", True)
        reply = Post(account.platform, pid(), account.handle, True, reply_at, in_reply_to=mention.post_id,
                     text=text, has_media=has_media)
        posts.append(reply)
        if rng.random() < follow_ratio:
            back = Post(account.platform, pid(), customer, False,
                        reply_at + timedelta(seconds=int(rng.integers(60, 3600))), in_reply_to=reply.post_id,
                        text=f"@{account.handle} thanks, still not working")
            posts.append(back)
            text, has_media = org_text(f"@{customer} Thanks, we have escalated it.", True)
            posts.append(Post(account.platform, pid(), account.handle, True,
                              in_hours(back.created_at + timedelta(seconds=latency)), in_reply_to=back.post_id,
                              text=text, has_media=has_media))
    posts = [p for p in posts if p.created_at <= END]
    own = [p for p in posts if p.is_org_author]
    params = {"posts_per_day": posts_per_day, "response_rate": response_rate, "latency_median_s": latency_median,
              "latency_sigma": sigma, "signed": signed, "c2c": c2c, "multi_turn": multi_turn, "private": private,
              "department_accounts": n_dept, "roles": n_roles, "agents": n_agents, "hours": hours,
              "platforms": len(platforms), "proactive": proactive, "media": media, "mentions": n_mentions,
              "first_replies_s": first_replies_s, "own_posts": len(own),
              "own_proactive_posts": sum(p.in_reply_to is None for p in own)}
    return org, posts, params


def generate(seed: int = 7, orgs: int = 40, *, behaviour: Behaviour = Behaviour(), prefix: str = "syn",
             noise: float = 0.025) -> SyntheticData:
    """Deterministic for (seed, orgs, behaviour): the same arguments give the same posts and labels."""
    rng = np.random.default_rng(seed)
    result = SyntheticData(seed, [], [])
    generated = []
    for i in range(orgs):
        org_rng = np.random.default_rng([seed, i])
        latent = _draw_latent(org_rng)
        org_id = f"{prefix}{seed}_{i:03d}"
        generated.append(_org_posts(org_rng, org_id, latent, behaviour, noise * behaviour.noise_factor))
    # The true stage follows the behaviour the organisation actually has (its realised accounts,
    # response rate, team, ...); what the features see of it is a sample.
    realised = [realised_signals(params, org.accounts) for org, _, params in generated]
    names, indices = latent_truth(realised) if generated else ([], [])
    for (org, posts, params), signals, name, index in zip(generated, realised, names, indices):
        result.orgs.append(SyntheticOrg(org, realised_levels(signals), name, index, params))
        result.posts.extend(posts)
    del rng
    return result


def thread_sample(posts: list[Post], fraction: float, seed: int) -> list[Post]:
    """The posts of a random `fraction` of the conversation threads that hold a post of an organisation
    (a thread: a post and every reply under it): what a sample of conversations, as the twcs file is,
    holds of the organisations' activity -- its threads hold a brand post each, so a mention nobody
    answered is in it only inside a thread the organisation posted in."""
    parent = {post.post_id: post.in_reply_to for post in posts}
    roots: dict[str, str] = {}

    def root(post_id: str) -> str:
        chain: list[str] = []
        while post_id not in roots and parent.get(post_id) in parent and post_id not in chain:
            chain.append(post_id)
            post_id = parent[post_id]
        found = roots.get(post_id, post_id)
        for member in chain + [post_id]:
            roots[member] = found
        return found

    of_post = [root(post.post_id) for post in posts]
    with_organisation = sorted({thread for post, thread in zip(posts, of_post) if post.is_org_author})
    draws = np.random.default_rng(seed).random(len(with_organisation))
    kept = {thread for thread, draw in zip(with_organisation, draws) if draw < fraction}
    return [post for post, thread in zip(posts, of_post) if thread in kept]


def import_synthetic(store: Store, seed: int = 7, orgs: int = 40, *, source: str | None = None,
                     behaviour: Behaviour = Behaviour(), prefix: str = "syn",
                     thread_fraction: float | None = None) -> tuple[int, LoadCounts, SyntheticData]:
    """Generate and load synthetic organisations through the normal load path. Returns (run_id, counts,
    data). With `thread_fraction`, only that share of the conversation threads is loaded, as a twcs file
    (a sample of conversations) would hold them: the store observes them as it observes twcs."""
    data = generate(seed, orgs, behaviour=behaviour, prefix=prefix)
    source = source or f"synthetic:seed={seed}:orgs={orgs}"
    if thread_fraction is None:
        run_id, counts = load_generated(store, data.organisations, data.posts, source)
    else:
        run_id, counts = load_generated(store, data.organisations, thread_sample(data.posts, thread_fraction, seed),
                                        f"{source}:threads={thread_fraction}", kind="twcs")
    return run_id, counts, data


__all__ = ["generate", "import_synthetic", "thread_sample", "Behaviour", "SyntheticData", "replace"]
