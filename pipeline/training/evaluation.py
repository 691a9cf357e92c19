"""Held-out evaluation across two generators, so the evaluation cannot confirm itself.

Generator A (synthetic.py) takes its truth from the rules' own thresholds; generator B (narrative.py)
from a latent stage with behaviour written from the seeds' narrative, in three operationalisations.
Per model, the estimates (rules + classifier, `combined`) and the rule stage alone (`rules_only`) are
scored for
- A->A: trained on A, tested on other A organisations;
- A->B: trained on A, tested on B;
- B->A: trained on B, tested on A;
the classifiers read signal scores only (never the rule stage or criterion margins), so on B they
cannot learn the rules back as the answer;
each B direction once per operationalisation, with the spread (min..max) over them. The classifiers are
trained as the store's are: on the training rows as they are and as each kind of real source would show
them (connectors/observation.py). `observed`: A->A once more per kind of real source, the test
organisations as that source would show them: timelines with what they cannot show not observed
(D.as_observed), and for twcs, a sample of conversations, THREAD_FRACTIONS of their threads loaded as a
twcs file (counts then are lower bounds of what the organisation did, the answer rate an upper
bound): how wide the intervals get,
whether they still hold the truth, and whether the confidence and the classifier's stage inside the
interval still mean what they say. `not_worse` says,
per direction and operationalisation, whether the combination is at least as good as the rules alone
(exact and within-one) on the generator the classifier was not trained on.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from connectors.observation import source_observations
from features.runner import build_features
from models import dimensions as D
from models.estimate import estimate
from models.evaluate import metrics, score_against_truth
from models.spec import MODEL_IDS, load_models
from pipeline.estimation import org_frame
from pipeline.store import writer
from pipeline.training import narrative
from pipeline.training.cache import fit_for_sources, training_frame

DIRECTIONS = ("A→A", "A→B", "B→A")
# The test organisations as samples of conversations hold them: these shares of their threads, loaded as twcs
THREAD_FRACTIONS = (0.5, 0.2)


def narrative_frame(seed: int, orgs_per_model: int, window_days: int, operationalisation: str = "O1",
                    prefix: str = "nar") -> pd.DataFrame:
    """Generator B's organisations featurised on the estimation window: dimension rows with
    truth_<model> (NaN for the models whose narrative did not draw the organisation) and the SMI axes."""
    with writer(":memory:", "training") as store:
        _, _, data = narrative.import_narrative(store, seed, orgs_per_model, operationalisation, prefix=prefix)
        build_features(store.con, narrative.END, windows=(window_days,))
        dims = D.compute(org_frame(store, narrative.END, window_days))
    specs = load_models()
    axes = [axis.name for axis in specs["smi"].axes]
    truth = []
    for org in data.orgs:
        row = {"org": org.org.id, **{f"truth_{m}": np.nan for m in MODEL_IDS},
               **{f"truth_smi_{a}": np.nan for a in axes}}
        row[f"truth_{org.model}"] = specs[org.model].index_of(org.truth)
        for axis, level in org.axes.items():
            row[f"truth_smi_{axis}"] = float(level == "high")
        truth.append(row)
    return dims.merge(pd.DataFrame(truth), on="org", how="inner")


def evaluate_generators(orgs: int = 200, orgs_per_model: int = 100, *, window_days: int,
                        seed_a: int = 11, seed_b: int = 21,
                        operationalisations: tuple[str, ...] = narrative.OPERATIONALISATIONS) -> dict:
    """The evaluation table (see the module docstring): {"models": {model: {direction: ...}},
    "a_to_a_detail": models.evaluate.metrics of A->A, "sizes": ...}."""
    train_a = training_frame(seed_a, orgs, window_days, prefix="train")
    test_a = training_frame(seed_a + 1, orgs, window_days, prefix="test")
    trained_on_a = fit_for_sources(train_a)
    a_to_a_rows = estimate(trained_on_a, test_a)
    scores = {"A→A": {"-": score_against_truth(a_to_a_rows, test_a)}, "A→B": {}, "B→A": {}}
    observed = {kinds: score_against_truth(estimate(trained_on_a, D.as_observed(test_a, observes)), test_a)
                for kinds, observes in source_observations(conditions=False).items() if "twcs" not in kinds.split("/")}
    for fraction in THREAD_FRACTIONS:     # a sample of conversations is thinner, not only less visible
        sample = training_frame(seed_a + 1, orgs, window_days, prefix="test", thread_fraction=fraction)
        observed[f"twcs: {fraction:.0%} of the threads"] = score_against_truth(estimate(trained_on_a, sample), sample)
    for operationalisation in operationalisations:
        train_b = narrative_frame(seed_b, orgs_per_model, window_days, operationalisation, prefix="btrain")
        test_b = narrative_frame(seed_b + 1, orgs_per_model, window_days, operationalisation, prefix="btest")
        scores["A→B"][operationalisation] = score_against_truth(estimate(trained_on_a, test_b), test_b)
        trained_on_b = fit_for_sources(train_b)
        scores["B→A"][operationalisation] = score_against_truth(estimate(trained_on_b, test_a), test_a)
    return {"models": {m: {direction: _direction(scores[direction], m) for direction in DIRECTIONS}
                       for m in MODEL_IDS},
            "a_to_a_detail": metrics(a_to_a_rows, test_a),
            "observed": observed,
            "sizes": {"generator_a_orgs": orgs, "generator_b_orgs_per_model": orgs_per_model,
                      "window_days": window_days, "operationalisations": list(operationalisations)}}


def _direction(by_operationalisation: dict[str, dict], model_id: str) -> dict:
    """One model's scores in one direction: per operationalisation, the spread (min, max) of every
    metric over them, and whether the combination is not worse than the rules alone."""
    runs = {o: s[model_id] for o, s in by_operationalisation.items()}
    spread = {}
    for part in ("combined", "rules_only"):
        for metric in next(iter(runs.values()))[part]:
            values = [r[part][metric] for r in runs.values()]
            spread[f"{part}.{metric}"] = [min(values), max(values)]
    # the question only arises on the generator the classifier was not trained on
    not_worse = {o: None if o == "-" else bool(r["combined"]["exact"] >= r["rules_only"]["exact"]
                                               and r["combined"]["within_one"] >= r["rules_only"]["within_one"])
                 for o, r in runs.items()}
    return {"runs": runs, "spread": spread, "not_worse": not_worse}


def table(result: dict) -> pd.DataFrame:
    """One row per model, direction and operationalisation: the numbers `maturity evaluate` prints."""
    rows = []
    for model_id, directions in result["models"].items():
        for direction, d in directions.items():
            for operationalisation, r in d["runs"].items():
                c, rules = r["combined"], r["rules_only"]
                rows.append({"model": model_id, "direction": direction, "op": operationalisation,
                             "exact": c["exact"], "within_one": c["within_one"], "ece": c["ece"],
                             "rules_exact": rules["exact"], "rules_within_one": rules["within_one"],
                             **({"coverage": c["coverage"], "width": c["mean_width"]} if "coverage" in c else {}),
                             "not_worse": d["not_worse"][operationalisation], "n": r["n"],
                             "insufficient": r["insufficient"]})
    return pd.DataFrame(rows)


def observed_table(result: dict) -> pd.DataFrame:
    """Per kind of real source and model: A->A with the test organisations as that source shows them."""
    return pd.DataFrame([{"source": kinds, "model": model_id, **{k: r["combined"].get(k) for k in
                          ("coverage", "mean_width", "ece", "classifier_exact")}, "n": r["n"],
                          "insufficient": r["insufficient"]}
                         for kinds, by_model in result["observed"].items() for model_id, r in by_model.items()])


def spread_table(result: dict) -> pd.DataFrame:
    """Per model and B direction: min..max over the operationalisations of exact and within-one."""
    rows = []
    for model_id, directions in result["models"].items():
        for direction in ("A→B", "B→A"):
            s = directions[direction]["spread"]
            rows.append({"model": model_id, "direction": direction,
                         **{key: f"{lo:.2f}..{hi:.2f}" for key, (lo, hi) in s.items()}})
    return pd.DataFrame(rows)
