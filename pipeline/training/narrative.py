"""Generator B: synthetic organisations whose truth is a latent stage, with behaviour written from each
seed's narrative -- an evaluation truth that the rules cannot confirm by construction.

Generator A (synthetic.py) derives its truth by applying the model files' own thresholds to realised
behaviour, so a classifier that learns the rules back scores well whether or not the rules mean what the
seeds say. Here, per model, a separate population of organisations draws a latent stage uniformly; the
behaviour of each stage is what the seed's narrative describes for it (see NARRATIVE: "individuals, no
monitoring" -> few mentions answered, slowly; "webcare team" -> signed replies, a care account, long
reply hours), and every behaviour the seed does not discuss for that model is drawn from a BACKGROUND
distribution (twcs-like, independent of the stage), so a reading that leans on it is penalised. Nothing
here reads models/*.toml, models.rules or models.dimensions (a test checks the imports): the truth
is the seed's stage name, and the caller maps names to stage indices.

Three operationalisations of the same narrative give the spread the evaluation reports:
- O1 the baseline tables below;
- O2 every stage-specific location (a Beta mean, a latency median, a Gamma scale, a count's rate, a
  probability) moved by x0.8 or x1.2, one seeded draw per (model, stage, behaviour);
- O3 the seed behaviour carried by another seed-faithful signal (O3_OVERRIDES): SMMM's "set procedure"
  by signed replies and team size instead of the answer rate; S3M's "structured webcare" by reply-hour
  coverage and private-channel routing; Forrester's "consistent approach" by a low week-to-week
  variance of the answer rate instead of its level; Altimeter's "presence" by campaign (hashtag) posts
  rather than post volume; SMI innovation by platforms only.

Posts, mentions and replies are `Post` records loaded through `store.load_posts` (the one ingestion
path, as import_synthetic does); the feature library computes every signal.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from connectors.records import Post
from pipeline.config import Account, Organisation
from connectors.sink import LoadCounts
from pipeline.store import Store
from pipeline.training.loading import load_generated

HISTORY_DAYS = 90
END = datetime(2024, 6, 30)
REPLY_LIMIT_S = 72 * 3600           # what a reply later than this is: not an answer (the features' rule)
OPERATIONALISATIONS = ("O1", "O2", "O3")
PLATFORMS = ["twitter", "facebook", "reddit", "mastodon", "bluesky"]
DEPARTMENT_ROLES = ["marketing", "news", "careers", "product", "regional", "community"]
AGENTS = [f"{first}{last}" for first in "ABCDEFGHJKLMNPRST" for last in "ABCDEFGHJK"]
MENTIONS_MEAN, MENTIONS_SIZE = 60.0, 1.5   # twcs-like negative binomial: many small, a few large orgs


@dataclass(frozen=True)
class Draw:
    """One behaviour's distribution over organisations. kind: beta (a = mean, b = concentration),
    lognormal (a = median, b = sigma), gamma (a = shape, b = scale), count (b + Poisson(a)),
    binomial (base + Binomial(n, a)), bernoulli (a = probability), const (a). `location` is what O2
    scales."""
    kind: str
    a: float
    b: float = 0.0
    n: int = 0

    def sample(self, rng: np.random.Generator) -> float:
        if self.kind == "beta":
            mean = float(np.clip(self.a, 0.01, 0.99))
            return float(rng.beta(mean * self.b, (1 - mean) * self.b))
        if self.kind == "lognormal":
            return float(rng.lognormal(np.log(self.a), self.b))
        if self.kind == "gamma":
            return float(rng.gamma(self.a, self.b))
        if self.kind == "count":
            return float(self.b + rng.poisson(self.a))
        if self.kind == "binomial":
            return float(self.b + rng.binomial(self.n, float(np.clip(self.a, 0, 1))))
        if self.kind == "bernoulli":
            return float(rng.random() < self.a)
        if self.kind == "const":
            return float(self.a)
        raise ValueError(self.kind)

    def scaled(self, factor: float) -> "Draw":
        """The same distribution with its location multiplied by factor (O2)."""
        if self.kind == "gamma":
            return replace(self, b=self.b * factor)
        if self.kind in ("beta", "bernoulli", "binomial"):
            return replace(self, a=min(self.a * factor, 0.99))
        return replace(self, a=self.a * factor)


beta = lambda mean, concentration=8.0: Draw("beta", mean, concentration)  # noqa: E731
lognormal = lambda median_s, sigma: Draw("lognormal", median_s, sigma)  # noqa: E731
gamma = lambda shape, scale: Draw("gamma", shape, scale)  # noqa: E731
count = lambda rate, base=0: Draw("count", rate, base)  # noqa: E731
binomial = lambda base, n, p: Draw("binomial", p, base, n)  # noqa: E731
bernoulli = lambda p: Draw("bernoulli", p)  # noqa: E731
const = lambda value: Draw("const", value)  # noqa: E731

# Behaviours (one value per organisation):
#   account      an official account posts at all (else the configured account stays silent)
#   posts_per_day proactive posts per day on the main account (department accounts post 30% of it)
#   hashtag      share of proactive posts that are campaign posts (#hashtag)
#   answer_rate  share of mentions answered within 72 h; answer_volatility: week-to-week variance of it
#   latency      median first reply (s); latency_sigma: log-normal spread of one organisation's replies
#   signed       share of replies signed by an agent; team: distinct agents
#   hours        hours of the day replies are posted in
#   private      share of replies moving the customer to a private channel (DM)
#   redirect     share of replies sending the customer off social (phone, e-mail)
#   departments  department accounts; care: a support account answers the mentions
#   platforms    platforms with an official account
#   c2c          customer-to-customer replies per mention; multi_turn: answered mentions followed up
# Background, measured on the twcs prefix-5k file (per brand: 75% of inbound tweets answered, median
# first reply 724 s, 55% signed, 23% moving to DM, 14% customer-to-customer replies, 1% proactive).
BACKGROUND: dict[str, Draw] = {
    "account": const(1), "posts_per_day": gamma(2.0, 0.3), "hashtag": beta(0.2, 5),
    "answer_rate": beta(0.75, 6), "answer_volatility": beta(0.3, 4),
    "latency": lognormal(900, 1.2), "latency_sigma": const(1.15),
    "signed": beta(0.55, 3), "team": count(3, 1), "hours": binomial(6, 14, 0.5),
    "private": beta(0.23, 5), "redirect": beta(0.05, 10), "departments": count(0.3), "care": bernoulli(0.3),
    "platforms": binomial(1, 3, 0.1), "c2c": beta(0.14, 8), "multi_turn": beta(0.15, 8),
}

# O1: per model, per stage (in the seed's order), the behaviours the seed's narrative describes.
NARRATIVE: dict[str, list[tuple[str, dict[str, Draw]]]] = {
    # 000: individuals without company involvement, no consistent monitoring -> a pilot with defined
    # platforms and a calendar, no set response procedure -> a set procedure, available, conversation,
    # several departments -> inter-departmental enactment on multiple platforms, collaborative campaigns
    "smmm": [
        ("Introductory", {"answer_rate": beta(0.14, 7), "latency": lognormal(72000, 1.2),
                          "posts_per_day": gamma(1, 0.1), "signed": const(0), "departments": const(0),
                          "platforms": const(1)}),
        ("Planning and Pilot", {"answer_rate": beta(0.43, 7), "latency": lognormal(28800, 1.2),
                                "posts_per_day": gamma(2, 0.4), "signed": beta(0.2, 5),
                                "departments": count(0.5)}),
        ("Customer Oriented", {"answer_rate": beta(0.8, 10), "latency": lognormal(5400, 1.0),
                               "posts_per_day": gamma(3, 0.5), "signed": beta(0.67, 6), "team": count(4, 1),
                               "departments": count(1.5), "platforms": binomial(1, 3, 0.4)}),
        ("Integrated", {"answer_rate": beta(0.86, 10.5), "latency": lognormal(2400, 0.9),
                        "posts_per_day": gamma(4, 0.6), "team": count(8, 1), "departments": count(2, 2),
                        "platforms": binomial(1, 3, 0.7), "c2c": beta(0.17, 12)}),
    ],
    # 001: employees on their own -> an organisational account, independent departments, responses
    # unstructured and dependent on employees -> a webcare team with monitoring tools and a policy ->
    # a collaborative network, co-creation (publicly almost the same as Functional, by design)
    "s3m": [
        ("Ad Hoc", {"account": bernoulli(0.3), "posts_per_day": gamma(1, 0.05), "answer_rate": beta(0.11, 9)}),
        ("Experimental", {"answer_rate": beta(0.4, 5), "answer_volatility": beta(0.8, 4),
                          "latency": lognormal(21600, 1.2), "latency_sigma": const(1.6),
                          "signed": beta(0.15, 2), "departments": count(1), "care": const(0)}),
        ("Functional", {"answer_rate": beta(0.8, 10), "latency": lognormal(3600, 0.8),
                        "latency_sigma": const(0.8), "signed": beta(0.75, 8), "team": count(6, 1),
                        "care": bernoulli(0.8), "hours": binomial(14, 10, 0.7)}),
        ("Transformation", {"answer_rate": beta(0.8, 10), "latency": lognormal(3600, 0.8),
                            "latency_sigma": const(0.8), "signed": beta(0.75, 8), "team": count(6, 1),
                            "care": bernoulli(0.8), "hours": binomial(14, 10, 0.7), "c2c": beta(0.27, 11),
                            "platforms": binomial(1, 3, 0.6)}),
    ],
    # 002: not using social media -> testing, uncoordinated initiatives, distributed chaos -> resources
    # and governance for a consistent, centralised approach -> optimising processes, metrics, integration
    # with other marketing -> all relevant employees trained and empowered
    "forrester": [
        ("Laggards", {"account": bernoulli(0.15), "posts_per_day": gamma(1, 0.02), "answer_rate": beta(0.05, 10)}),
        ("Late Majority", {"answer_rate": beta(0.4, 5), "latency": lognormal(36000, 1.2),
                           "latency_sigma": const(1.8), "departments": count(1.5), "care": const(0)}),
        ("Early Majority", {"care": bernoulli(0.9), "answer_rate": beta(0.67, 9), "latency": lognormal(7200, 0.9),
                            "latency_sigma": const(0.9)}),
        ("Early Adopters", {"care": bernoulli(0.9), "answer_rate": beta(0.8, 10), "latency": lognormal(3600, 0.8),
                            "latency_sigma": const(0.8), "signed": beta(0.75, 8), "posts_per_day": gamma(4, 0.5),
                            "hashtag": beta(0.3, 10)}),
        ("Innovators", {"care": bernoulli(0.9), "answer_rate": beta(0.8, 10), "latency": lognormal(3600, 0.8),
                        "latency_sigma": const(0.8), "signed": beta(0.75, 8), "posts_per_day": gamma(4, 0.5),
                        "hashtag": beta(0.3, 10), "departments": count(3, 2), "team": count(12, 1)}),
    ],
    # 003: listening, initial presence, little activity -> content, campaigns, calendars -> dialogue,
    # customers connect -> teams and processes formed -> shared KPIs, ROI (internal) -> unified
    # customer view, social commerce
    "altimeter": [
        ("Planning", {"posts_per_day": gamma(1, 0.05), "answer_rate": beta(0.17, 6)}),
        ("Presence", {"posts_per_day": gamma(3, 0.5), "answer_rate": beta(0.33, 6)}),
        ("Engagement", {"posts_per_day": gamma(3, 0.5), "answer_rate": beta(0.7, 10), "multi_turn": beta(0.33, 9),
                        "c2c": beta(0.14, 14)}),
        ("Formalised", {"posts_per_day": gamma(3, 0.5), "answer_rate": beta(0.7, 10), "multi_turn": beta(0.33, 9),
                        "care": bernoulli(0.9), "team": count(6, 1), "hours": binomial(14, 10, 0.7)}),
        ("Strategic", {"posts_per_day": gamma(3, 0.5), "answer_rate": beta(0.86, 10.5), "multi_turn": beta(0.33, 9),
                       "care": bernoulli(0.9), "team": count(6, 1), "hours": binomial(14, 10, 0.7)}),
        ("Converged", {"posts_per_day": gamma(3, 0.5), "answer_rate": beta(0.86, 10.5), "multi_turn": beta(0.33, 9),
                       "care": bernoulli(0.9), "team": count(6, 1), "hours": binomial(14, 10, 0.7),
                       "platforms": binomial(1, 3, 0.6)}),
    ],
}

# 004 is a 2 x 2 matrix: each axis has its own narrative; the quadrant names follow the seed.
SMI_AXES: dict[str, dict[str, dict[str, Draw]]] = {
    # "employees dedicated to social, time invested"
    "investment": {"high": {"team": count(8, 1), "hours": binomial(16, 8, 0.8), "answer_rate": beta(0.8, 10)},
                   "low": {"team": count(1, 1), "hours": binomial(4, 8, 0.4), "answer_rate": beta(0.43, 7)}},
    # "early adoption of new social apps and networks", "resolve client queries from inside a social channel"
    "innovation": {"high": {"platforms": binomial(2, 2, 0.5), "private": beta(0.62, 8), "redirect": const(0)},
                   "low": {"platforms": const(1), "private": beta(0.05, 8), "redirect": beta(0.6, 8)}},
}
SMI_QUADRANTS = {("low", "low"): "Observers", ("high", "low"): "Conservative",
                 ("low", "high"): "Contenders", ("high", "high"): "#SocialFirst"}

# O3: the same narrative carried by another signal; the replaced behaviour falls back to BACKGROUND.
O3_OVERRIDES: dict[str, dict[str, dict[str, Draw | None]]] = {
    "smmm": {"Introductory": {"answer_rate": None, "latency": None, "team": const(1)},
             "Planning and Pilot": {"answer_rate": None, "latency": None, "team": count(1, 1), "signed": beta(0.15, 5)},
             "Customer Oriented": {"answer_rate": None, "latency": None, "team": count(5, 1), "signed": beta(0.7, 8)},
             "Integrated": {"answer_rate": None, "latency": None, "team": count(9, 1), "signed": beta(0.8, 8)}},
    "s3m": {"Experimental": {"answer_rate": None, "signed": None, "hours": binomial(4, 8, 0.4),
                             "private": beta(0.08, 8)},
            "Functional": {"answer_rate": None, "signed": None, "care": None, "private": beta(0.45, 8)},
            "Transformation": {"answer_rate": None, "signed": None, "care": None, "private": beta(0.45, 8)}},
    "forrester": {"Late Majority": {"answer_rate": None, "answer_volatility": beta(0.85, 6)},
                  "Early Majority": {"answer_rate": None, "answer_volatility": beta(0.08, 10)},
                  "Early Adopters": {"answer_rate": None, "answer_volatility": beta(0.08, 10)},
                  "Innovators": {"answer_rate": None, "answer_volatility": beta(0.08, 10)}},
    "altimeter": {"Planning": {"posts_per_day": None, "hashtag": beta(0.02, 20)},
                  **{stage: {"posts_per_day": None, "hashtag": beta(0.6, 8)}
                     for stage in ("Presence", "Engagement", "Formalised", "Strategic", "Converged")}},
    "smi": {"innovation:high": {"private": None, "redirect": None},
            "innovation:low": {"private": None, "redirect": None}},
}


def stage_names(model_id: str) -> list[str]:
    """The model's stages in the seed's order (SMI: the quadrants)."""
    if model_id == "smi":
        return list(SMI_QUADRANTS.values())
    return [name for name, _ in NARRATIVE[model_id]]


def _o2_factor(seed: int, model_id: str, stage: str, behaviour: str) -> float:
    key = [seed, sum(map(ord, model_id)), sum(map(ord, stage)) * 31 + len(stage), sum(map(ord, behaviour))]
    return 0.8 if np.random.default_rng(key).random() < 0.5 else 1.2


def stage_behaviour(model_id: str, stage: str, operationalisation: str, seed: int) -> dict[str, Draw]:
    """The distributions an organisation of this model and stage is drawn from (BACKGROUND where the
    narrative is silent). SMI stages are 'axis:level' pairs joined by ','."""
    if operationalisation not in OPERATIONALISATIONS:
        raise ValueError(f"operationalisation must be one of {OPERATIONALISATIONS}")
    if model_id == "smi":
        parts = [part.split(":") for part in stage.split(",")]
        specific = {}
        for axis, level in parts:
            specific.update(SMI_AXES[axis][level])
        overrides = {}
        for axis, level in parts:
            overrides.update(O3_OVERRIDES["smi"].get(f"{axis}:{level}", {}))
    else:
        specific = dict(dict(NARRATIVE[model_id])[stage])
        overrides = O3_OVERRIDES.get(model_id, {}).get(stage, {})
    if operationalisation == "O2":
        specific = {name: draw.scaled(_o2_factor(seed, model_id, stage, name)) for name, draw in specific.items()}
    if operationalisation == "O3":
        for name, draw in overrides.items():
            if draw is None:
                specific.pop(name, None)
            else:
                specific[name] = draw
    return {**BACKGROUND, **specific}


@dataclass
class NarrativeOrg:
    org: Organisation
    model: str                         # the model whose narrative drew this organisation
    truth: str                         # its latent stage (a seed stage name)
    axes: dict[str, str]               # smi: level per axis; empty otherwise
    behaviour: dict[str, float]


@dataclass
class NarrativeData:
    seed: int
    operationalisation: str
    orgs: list[NarrativeOrg]
    posts: list[Post]

    @property
    def organisations(self) -> list[Organisation]:
        return [o.org for o in self.orgs]


def _org_posts(rng: np.random.Generator, org_id: str, b: dict[str, float]) -> tuple[Organisation, list[Post]]:
    platforms = PLATFORMS[:int(np.clip(round(b["platforms"]), 1, len(PLATFORMS)))]
    accounts = [Account(p, f"{org_id}_{p[:2]}", "brand") for p in platforms]
    departments = [Account("twitter", f"{org_id}_{DEPARTMENT_ROLES[i % len(DEPARTMENT_ROLES)][:4]}{i}",
                           DEPARTMENT_ROLES[i % len(DEPARTMENT_ROLES)]) for i in range(int(b["departments"]))]
    care = Account("twitter", f"{org_id}_care", "support") if b["care"] >= 0.5 else None
    configured = accounts + departments + ([care] if care else [])
    org = Organisation(org_id, org_id, "synthetic", "UTC", datetime(2000, 1, 1, 9).time(),
                       datetime(2000, 1, 1, 17).time(), tuple(configured))
    active = b["account"] >= 0.5
    start = END - timedelta(days=HISTORY_DAYS)
    hour_start = int(rng.integers(0, 24))
    covered = [(hour_start + h) % 24 for h in range(int(np.clip(b["hours"], 1, 24)))]
    agents = AGENTS[:int(np.clip(b["team"], 1, len(AGENTS)))]
    posts: list[Post] = []
    seq = iter(range(1, 10 ** 9))

    def new_id() -> str:
        return f"{org_id}-{next(seq)}"

    def during_reply_hours(moment: datetime) -> datetime:
        # replies wait for the next hour the team covers
        for _ in range(25):
            if moment.hour in covered:
                return moment
            moment = moment.replace(minute=int(rng.integers(0, 30))) + timedelta(hours=1)
        return moment

    def reply_text(customer: str) -> str:
        text = f"@{customer} Sorry to hear that, we are looking into it."
        draw = rng.random()
        if draw < b["private"]:
            text += " Please DM us your details."
        elif draw < b["private"] + b["redirect"]:
            text += " Please call our helpline or e-mail the support address."
        if rng.random() < b["signed"]:
            text += f" ^{agents[int(rng.integers(0, len(agents)))]}"
        return text

    if active:
        for account in configured:
            rate = b["posts_per_day"] * (1.0 if account.role == "brand" else 0.3)
            for _ in range(int(rng.poisson(rate * HISTORY_DAYS))):
                moment = start + timedelta(seconds=int(rng.integers(0, HISTORY_DAYS * 86400)))
                text = ("Our new campaign is live #spring" if rng.random() < b["hashtag"]
                        else "News and tips from us this week https://example.org/n")
                posts.append(Post(account.platform, new_id(), account.handle, True, moment, text=text,
                                  has_media=bool(rng.random() < 0.2)))
    mentions = int(rng.poisson(rng.gamma(MENTIONS_SIZE, MENTIONS_MEAN / MENTIONS_SIZE)))
    # the answer rate of each week: concentrated around the organisation's rate when it is consistent
    concentration = 2.0 + 60.0 * (1.0 - b["answer_volatility"])
    rate = float(np.clip(b["answer_rate"], 0.01, 0.99))
    weekly = rng.beta(rate * concentration, (1 - rate) * concentration, size=HISTORY_DAYS // 7 + 1)
    addressed = accounts + departments
    weights = np.array([6.0 if a.role == "brand" and a.platform == "twitter" else 1.0 for a in addressed])
    for _ in range(mentions):
        account = addressed[int(rng.choice(len(addressed), p=weights / weights.sum()))]
        offset = int(rng.integers(0, (HISTORY_DAYS - 4) * 86400))
        moment = start + timedelta(seconds=offset)
        customer = str(100000 + int(rng.integers(0, 900000)))
        question = " Why is this happening?" if rng.random() < 0.235 else ""
        mention = Post(account.platform, new_id(), customer, False, moment,
                       text=f"@{account.handle} my order has a problem{question}")
        posts.append(mention)
        if rng.random() < b["c2c"]:
            posts.append(Post(account.platform, new_id(), str(100000 + int(rng.integers(0, 900000))), False,
                              moment + timedelta(seconds=int(rng.integers(60, 7200))), in_reply_to=mention.post_id,
                              text=f"@{customer} same here, try restarting it"))
        if not active or rng.random() >= weekly[offset // (7 * 86400)]:
            continue
        replier = care if care is not None and account.platform == "twitter" else account
        latency = float(rng.lognormal(np.log(b["latency"]), b["latency_sigma"]))
        reply_at = during_reply_hours(moment + timedelta(seconds=latency))
        reply = Post(replier.platform, new_id(), replier.handle, True, reply_at, in_reply_to=mention.post_id,
                     text=reply_text(customer))
        posts.append(reply)
        if rng.random() < b["multi_turn"]:
            back = Post(account.platform, new_id(), customer, False,
                        reply_at + timedelta(seconds=int(rng.integers(60, 3600))), in_reply_to=reply.post_id,
                        text=f"@{replier.handle} thanks, still not working")
            posts.append(back)
            posts.append(Post(replier.platform, new_id(), replier.handle, True,
                              during_reply_hours(back.created_at + timedelta(seconds=latency)),
                              in_reply_to=back.post_id, text=reply_text(customer)))
    return org, [p for p in posts if p.created_at <= END]


def generate(seed: int, orgs_per_model: int, operationalisation: str = "O1", *, prefix: str = "nar",
             models: tuple[str, ...] = ("smmm", "s3m", "forrester", "altimeter", "smi")) -> NarrativeData:
    """Per model, `orgs_per_model` organisations with a uniformly drawn latent stage (SMI: each axis
    high or low with probability 1/2). Deterministic for its arguments."""
    data = NarrativeData(seed, operationalisation, [], [])
    for m, model_id in enumerate(models):
        for i in range(orgs_per_model):
            rng = np.random.default_rng([seed, m, i, OPERATIONALISATIONS.index(operationalisation)])
            if model_id == "smi":
                axes = {axis: ("high" if rng.random() < 0.5 else "low") for axis in SMI_AXES}
                stage = ",".join(f"{axis}:{level}" for axis, level in axes.items())
                truth = SMI_QUADRANTS[(axes["investment"], axes["innovation"])]
            else:
                axes = {}
                truth = stage = stage_names(model_id)[int(rng.integers(0, len(NARRATIVE[model_id])))]
            draws = stage_behaviour(model_id, stage, operationalisation, seed)
            behaviour = {name: draw.sample(rng) for name, draw in draws.items()}
            org, posts = _org_posts(rng, f"{prefix}{seed}{operationalisation.lower()}_{model_id}_{i:03d}", behaviour)
            data.orgs.append(NarrativeOrg(org, model_id, truth, axes, behaviour))
            data.posts.extend(posts)
    return data


def import_narrative(store: Store, seed: int, orgs_per_model: int, operationalisation: str = "O1", *,
                     prefix: str = "nar") -> tuple[int, LoadCounts, NarrativeData]:
    """Generate and load through the normal load path. Returns (run_id, counts, data)."""
    data = generate(seed, orgs_per_model, operationalisation, prefix=prefix)
    source = f"narrative:seed={seed}:orgs={orgs_per_model}:{operationalisation}"
    run_id, counts = load_generated(store, data.organisations, data.posts, source)
    return run_id, counts, data
