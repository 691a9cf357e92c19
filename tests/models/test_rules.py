"""Rule verdicts, intervals and SMI sets on hand-made organisations, and explanations that follow the
reported stage (issue 13: stages defined by an absence need evidence of it; advice never names a
signal the sources cannot show; its thresholds are the next stage's)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from connectors.observation import OBSERVES, observe, read_as
from models import dimensions as D
from models.explain import explain_row, render_text, stage_criteria
from models.rules import ABSTAIN, FAIL, HOLD, UNOBSERVED, comparison_verdicts, rule_frame, with_criterion_values
from models.spec import load_model, load_models

TWCS = observe(["twcs"])
SP500 = observe(["sp500"])


def _org(observation: dict | None = None, **features) -> pd.DataFrame:
    row = {"org": "o", "posts": 120.0, "mentions": 100.0, "answered": 90.0, "replies": 110.0,
           "response_rate": 0.9, "first_reply_median_s": 600.0, "first_reply_p90_s": 5000.0,
           "signed_reply_share": 0.8, "private_channel_share": 0.3, "estimated_team_size": 8.0,
           "reply_hours_covered": 20.0, "department_accounts": 0.0, "platforms": 1.0, "platforms_engaged": 1.0,
           "care_account_active": 1.0, "proactive_share": 0.3, "proactive_posts": 30.0,
           "active_week_share": 0.9, "posts_per_day_robust": 1.5}
    row.update(features)
    row.update({f"observes_{need}": how for need, how in (observation or {}).items()})
    return D.compute(pd.DataFrame([row]))


def _reading(model: str, frame: pd.DataFrame):
    rules = rule_frame(load_model(model), frame)
    return int(rules.low[0]), int(rules.high[0]), str(rules.status[0]), rules


def test_a_lower_bound_can_pass_but_never_fail_greater_or_equal():
    spec = load_model("smmm")
    integrated = [c for c in spec.criteria if c.signal == "department_accounts"][0]
    sample = _org(TWCS, department_accounts=0.0)
    assert comparison_verdicts(integrated, sample)[0] == ABSTAIN
    assert comparison_verdicts(integrated, _org(TWCS, department_accounts=3.0))[0] == HOLD
    assert comparison_verdicts(integrated, _org(None, department_accounts=0.0))[0] == FAIL
    cadence = [c for c in load_model("altimeter").criteria if c.members][0]
    # any_of: the cadence member is unobserved in twcs, the official-posts member (a lower bound) holds
    assert comparison_verdicts(cadence, sample)[0] == HOLD
    assert comparison_verdicts(cadence, _org(TWCS, posts=5.0))[0] == ABSTAIN
    proactive = [c for c in load_model("forrester").criteria if c.signal == "proactive_share"][0]
    assert comparison_verdicts(proactive, sample)[0] == UNOBSERVED


def test_an_official_account_answering_its_mentions_is_above_every_bottom_stage():
    """AlaskaAir in twcs: 96% answered, 104 s median. Not 'doesn't monitor', 'ad hoc', 'not using any
    social media', 'planning' or Observers."""
    frame = _org(TWCS)
    for model_id, spec in load_models().items():
        low, high, status, rules = _reading(model_id, frame)
        if spec.kind == "quadrant":
            assert not rules.possible[0, spec.index_of("Observers")]
        else:
            assert low > 0 and status in ("ok", "interval"), model_id
    # what a sample cannot show stays open above: "at least ...", never a confident top stage. A sample
    # of the threads it posted in shows its answer rate only as an upper bound: the stages resting on
    # answering most mentions are possible, not shown
    assert _reading("forrester", frame)[:3] == (1, 4, "interval")
    assert load_model("forrester").describe(1, 4) == ("at least Late Majority; higher stages not assessable "
                                                      "from these sources")
    assert _reading("s3m", frame)[:2] == (1, 3)
    # its live timeline, where every mention is seen, shows the rate (and proactive posting): at least
    # Early Adopters, Functional
    live = _org(observe(["x"]))
    assert _reading("forrester", live)[:3] == (3, 4, "interval") and _reading("s3m", live)[:2] == (2, 3)


def test_an_upper_bound_can_fail_but_never_pass_greater_or_equal():
    rate = [c for c in load_model("smmm").criteria if c.signal == "response_rate" and c.stage_index == 2][0]
    assert comparison_verdicts(rate, _org(TWCS, response_rate=0.9))[0] == ABSTAIN
    assert comparison_verdicts(rate, _org(TWCS, response_rate=0.3))[0] == FAIL
    assert comparison_verdicts(rate, _org(observe(["x"]), response_rate=0.9))[0] == HOLD
    low_investment = load_model("smi").axes[0].low[0]      # response_rate < 0.40: an upper bound below it holds
    assert comparison_verdicts(low_investment, _org(TWCS, response_rate=0.3))[0] == HOLD
    assert comparison_verdicts(low_investment, _org(TWCS, response_rate=0.5))[0] == ABSTAIN


def test_the_bottom_stage_needs_evidence_of_the_absence():
    # answering 1 of 60 mentions: evidence of "doesn't consistently monitor" -> a point at the bottom
    silent = _org(TWCS, mentions=60.0, answered=1.0, response_rate=1 / 60, first_reply_median_s=90000.0)
    assert _reading("smmm", silent)[:3] == (0, 0, "ok")
    # 2 of 40 in a sample of its own threads could still be 1 in 8 within the sample's error: no point
    unsure = _org(TWCS, mentions=40.0, answered=2.0, response_rate=0.05, first_reply_median_s=90000.0)
    assert _reading("smmm", unsure)[:3] == (1, 1, "ok")
    # few official posts in a sample are no evidence of 'not using any social media'
    quiet = _org(TWCS, posts=0.0, mentions=4.0, answered=0.0, response_rate=0.0, replies=0.0)
    for model_id in ("s3m", "forrester", "altimeter"):
        low, high, status, _ = _reading(model_id, quiet)
        assert status == "insufficient_evidence" or high > 0, model_id
    # on a complete timeline, no official post at all is that evidence
    absent = _org(SP500, posts=0.0)
    assert _reading("forrester", absent)[:3] == (0, 0, "ok")


def test_cadence_only_data_never_gives_a_point_resting_on_unobserved_signals():
    frame = _org(SP500, posts=150.0)
    for model_id, spec in load_models().items():
        low, high, status, rules = _reading(model_id, frame)
        assert status != "ok", (model_id, low, high)


def test_smi_reports_the_quadrants_still_possible():
    low, high, status, rules = _reading("smi", _org(TWCS))
    assert status == "interval"
    names = [n for n, p in zip(load_model("smi").stage_names, rules.possible[0]) if p]
    assert names == ["Conservative", "#SocialFirst"]     # investment high, innovation unknown
    assert load_model("smi").describe(low, high, names) == "one of Conservative, #SocialFirst"
    full = _reading("smi", _org(None, platforms_engaged=1.0))
    assert full[2] == "ok" and load_model("smi").stage_names[full[0]] == "Conservative"


def test_observers_is_ruled_out_by_answering_customer_queries_but_never_settles_an_axis():
    spec = load_model("smi")
    names = lambda rules: [n for n, p in zip(spec.stage_names, rules.possible[0]) if p]  # noqa: E731
    # a sample of its own threads: the rate is only a maximum; >= 10 queries answered on a platform show
    # the ability to manage them, and both axes stay open
    small_team = dict(estimated_team_size=1.0, reply_hours_covered=6.0, replies=25.0, answered=20.0)
    low, high, status, rules = _reading("smi", _org(TWCS, **small_team))
    assert names(rules) == ["Conservative", "Contenders", "#SocialFirst"] and status == "interval"
    # no platform with 10 answered: nothing rules Observers out
    fewer = _org(TWCS, **{**small_team, "answered": 6.0, "platforms_engaged": 0.0})
    assert "Observers" in names(_reading("smi", fewer)[3])
    # investment low (an exact answer rate under 40%), innovation unknown: ruling Observers out would
    # claim high innovation, so both quadrants stay
    live = _org(observe(["x"]), **small_team, response_rate=0.2)
    assert names(_reading("smi", live)[3]) == ["Observers", "Contenders"]
    # both axes low on full observation (one platform): the quadrant they name stays
    low, high, status, rules = _reading("smi", _org(None, **small_team, response_rate=0.2, platforms_engaged=1.0))
    assert (spec.stage_names[low], status) == ("Observers", "ok")


def test_an_upper_bound_fails_only_beyond_its_sampling_error():
    rate = [c for c in load_model("smmm").criteria if c.signal == "response_rate" and c.stage_index == 2][0]
    verdict = lambda mentions, share, observation=TWCS: comparison_verdicts(  # noqa: E731
        rate, _org(observation, mentions=mentions, answered=mentions * share, response_rate=share))[0]
    # 0.60 of 20 mentions misses 0.65, but a sample's share could reach it: abstain; exact: fail
    assert verdict(20.0, 0.6) == ABSTAIN and verdict(20.0, 0.6, observe(["x"])) == FAIL
    # 0.40 of 20, or 0.55 of 100: below 0.65 beyond the sampling error
    assert verdict(20.0, 0.4) == FAIL and verdict(100.0, 0.55) == FAIL
    # the explanation reads it as the rules do: not a gap to close, not assessable
    exp = _explained("smmm", _org(TWCS, mentions=20.0, answered=12.0, response_rate=0.6))
    assert exp["next_stage"] == "Customer Oriented"
    assert "response_rate" not in {g["signal"] for g in exp["gap_criteria"]}
    assert any("response rate at most 0.60 is short of >= 0.65 only within the sampling error" in item
               for item in exp["not_assessable"])


def test_an_upper_bound_below_its_minimum_evidence_can_only_fail():
    rate = [c for c in load_model("smmm").criteria if c.signal == "response_rate" and c.stage_index == 2][0]
    # 7 of 7 answered, minimum 10: at least 0.70 at 10 whatever the rest, but a maximum cannot pass
    assert comparison_verdicts(rate, _org(TWCS, mentions=7.0, answered=7.0, response_rate=1.0))[0] == ABSTAIN
    assert comparison_verdicts(rate, _org(observe(["x"]), mentions=7.0, answered=7.0, response_rate=1.0))[0] == HOLD
    # 0 of 8: at most 0.20 at 10 whatever the rest, below 0.65 beyond the sampling error: a maximum fails
    assert comparison_verdicts(rate, _org(TWCS, mentions=8.0, answered=0.0, response_rate=0.0))[0] == FAIL
    # 0 of 5: up to 0.50 at 10, which a sample could show while its threads answer 0.65
    assert comparison_verdicts(rate, _org(TWCS, mentions=5.0, answered=0.0, response_rate=0.0))[0] == ABSTAIN


def test_every_source_kind_declares_known_needs_and_kinds():
    needs = set(D.NEEDS)
    for kind, observes in OBSERVES.items():
        assert set(observes) <= needs | {"engagement"}, kind
        assert set(observes.values()) <= {"exact", "lower_bound", "upper_bound", "none"}, kind
    assert OBSERVES["twcs"].get("media", "none") == "none" and OBSERVES["twcs"].get("timeline", "none") == "none"
    assert OBSERVES["twcs"]["answer_share"] == "upper_bound" and observe(["twcs", "x"])["answer_share"] == "exact"
    # the weakest of a signal's needs; bounds in both directions bound it in none
    assert D.weakest([D.EXACT, D.UPPER_BOUND]) == D.UPPER_BOUND and D.weakest([D.EXACT]) == D.EXACT
    assert D.weakest([D.LOWER_BOUND, D.UPPER_BOUND]) == D.weakest([D.NOT_OBSERVED, D.EXACT]) == D.NOT_OBSERVED
    assert observe(["twcs", "x"])["timeline"] == "exact"
    # a twcs file most of whose replies lack their parent is a sample of posts: it shows no answering
    assert read_as("twcs", 2000, 4) == "twcs_posts" and read_as("twcs", 2000, 1996) == "twcs"
    assert read_as("twcs", 2000, 1799) == "twcs_posts" and read_as("twcs", 2000, 1800) == "twcs"
    # a handful of replies cannot tell a sample of posts from a thread sample missing a few parents
    assert read_as("twcs", 49, 0) == "twcs" and read_as("twcs", 50, 0) == "twcs_posts"
    assert read_as("sp500", 2000, 0) == "sp500"
    assert observe(["twcs_posts"])["mentions"] == observe(["twcs_posts"])["answer_share"] == "none"
    # beside a thread sample its mentions dilute the share answered and its replies the threads
    both = observe(["twcs", "twcs_posts"])
    assert both["answer_share"] == both["threads"] == "none" and both["mentions"] == "exact"
    assert observe(["x", "twcs_posts"])["answer_share"] == "none"


def _estimate_record(spec, rules, frame) -> dict:
    """The fields explain_row reads of a stored estimate, from a rule reading."""
    low, high = int(rules.low[0]), int(rules.high[0])
    signals = {s: (None if pd.isna(frame[f"sig_{s}"].iloc[0]) else float(frame[f"sig_{s}"].iloc[0]))
               for s in D.SIGNALS}
    result = with_criterion_values(rules.results()[0], signals)
    return {"org": "o", "model": spec.id, "status": str(rules.status[0]), "stage": spec.stages[low].name,
            "stage_index": low, "stage_low_index": low, "stage_high_index": high, "confidence": 1.0,
            "rule_stage": spec.stages[low].name, "probabilities": {},
            "explanation": {"rules": result, "classifier": {"stage": spec.stages[low].name},
                            "interval": {"text": spec.describe(low, high, result["possible"]), "reasons": [],
                                         "possible": result["possible"]}}}


CASES = {
    "twcs answering": (TWCS, {}),
    "twcs slow": (TWCS, {"first_reply_median_s": 40000.0, "first_reply_p90_s": 200000.0}),
    "twcs silent": (TWCS, {"mentions": 40.0, "answered": 2.0, "response_rate": 0.05}),
    "timeline": (None, {"response_rate": 0.55, "signed_reply_share": 0.1, "private_channel_share": 0.0}),
    "sp500": (SP500, {}),
}


@pytest.mark.parametrize("model_id", ["smmm", "s3m", "forrester", "altimeter", "smi"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_explanation_follows_the_reported_stage(model_id, case):
    observation, changes = CASES[case]
    spec = load_model(model_id)
    frame = _org(observation, **changes)
    rules = rule_frame(spec, frame)
    if rules.status[0] == "insufficient_evidence":
        pytest.skip("nothing to explain")
    record = _estimate_record(spec, rules, frame)
    exp = explain_row(frame.iloc[0].to_dict(), record)
    current = record["stage_index"]
    # the current stage's criteria hold for the reported stage (or the interval says why not)
    for c in exp["current_stage_criteria"]:
        if c["required"] and not (spec.kind == "quadrant" and record["status"] == "interval"):
            assert c["verdict"] == "held", (case, c)
    # advice thresholds are the next stage's, and never name a signal the sources cannot show
    next_criteria = stage_criteria(spec, None if exp["next_stage"] is None else spec.index_of(exp["next_stage"]))
    allowed = {(m.signal, m.threshold) for c in next_criteria for m in c.comparisons}
    for gap in exp["gap_criteria"]:
        assert (gap["signal"], gap["threshold"]) in allowed, (case, gap)
        assert frame[f"obs_{gap['signal']}"].iloc[0] != D.NOT_OBSERVED, (case, gap)
    assert exp["stage"] == spec.stages[current].name
    if spec.kind != "quadrant":
        assert exp["next_stage"] == (spec.stages[current + 1].name if current + 1 < len(spec.stages) else None)
    unobserved = {s for s in D.SIGNALS if frame[f"obs_{s}"].iloc[0] == D.NOT_OBSERVED}
    labels = {D.SCALE_BY_SIGNAL[s].label for s in unobserved}
    assert not any(gap.startswith(label) for gap in exp["gaps"] for label in labels), case


def _explained(model_id: str, frame: pd.DataFrame) -> dict:
    spec = load_model(model_id)
    return explain_row(frame.iloc[0].to_dict(), _estimate_record(spec, rule_frame(spec, frame), frame))


def test_advice_on_a_criterion_already_met_asks_for_evidence_not_for_change():
    # 3 of 3 mentions answered in minutes: meets Forrester Early Majority's thresholds, on too little evidence
    answered_fast = dict(mentions=3.0, answered=3.0, response_rate=1.0, first_reply_median_s=120.0,
                         first_reply_p90_s=236.0)
    exp = _explained("forrester", _org(observe(["x"]), **answered_fast))
    assert exp["next_stage"] == "Early Majority"
    assert {g["signal"] for g in exp["gap_criteria"]} & {"response_rate", "first_reply_p90_s"} == set()
    needed = " ".join(exp["evidence_needed"])
    assert "3 of the 10 mentions" in needed and "3 of the 8 answered" in needed
    # in a sample of its own threads the rate is only a maximum: not assessable, not a matter of evidence
    sampled = _explained("forrester", _org(TWCS, **answered_fast))
    assert "3 of the 10 mentions" not in " ".join(sampled["evidence_needed"])
    assert any("response rate is shown only as a maximum" in item and "at most 1.00" in item
               for item in sampled["not_assessable"])


def test_advice_never_asks_a_sample_minimum_for_more_than_it_can_show():
    # 6 official posts in a conversation sample: at least 6; Presence's ">= 10" cannot be shown
    exp = _explained("altimeter", _org(TWCS, posts=6.0, answered=62.0, response_rate=0.62))
    assert exp["next_stage"] == "Presence"
    assert "official_posts" not in {g["signal"] for g in exp["gap_criteria"]}
    assert any("official posts" in item and "only as a minimum" in item for item in exp["not_assessable"])


def test_smi_advice_names_only_the_axes_still_to_raise():
    # investment high (team of 8), innovation unknown (one platform engaged): Conservative or #SocialFirst
    exp = _explained("smi", _org(TWCS, reply_hours_covered=11.0))
    assert exp["stage"] == "Conservative" and exp["next_stage"] == "#SocialFirst"
    investment = {c.signal for a in load_model("smi").axes if a.name == "investment" for c in a.high for c in c.comparisons}
    named = {g["signal"] for g in exp["gap_criteria"]} | {s for s in investment
                                                           for item in exp["not_assessable"] + exp["evidence_needed"]
                                                           if f"{s} " in item}
    assert not named & investment, named
    assert any("platforms" in item for item in exp["not_assessable"] + exp["gaps"])


def test_an_estimate_without_any_verdict_shows_no_stage_probabilities():
    # one mention answered in two minutes: no criterion reaches a verdict; the classifier alone is no stage
    spec, frame = load_model("smmm"), _org(TWCS, posts=1.0, mentions=1.0, answered=1.0, replies=1.0, response_rate=1.0)
    rules = rule_frame(spec, frame)
    assert rules.status[0] == "insufficient_evidence"
    record = {**_estimate_record(spec, rules, frame), "stage": None, "stage_index": None,
              "probabilities": {"Introductory": 0.92, "Integrated": 0.08}}
    text = render_text(explain_row(frame.iloc[0].to_dict(), record))
    assert "insufficient evidence" in text and "probabilities" not in text and "0.92" not in text


def test_rule_walk_is_monotone_in_every_signal():
    rng = np.random.default_rng(11)
    base = pd.concat([_org(TWCS if i % 2 else None, response_rate=rng.random(), first_reply_median_s=10 ** rng.uniform(2, 5.5),
                           first_reply_p90_s=10 ** rng.uniform(3, 5.8), signed_reply_share=rng.random(),
                           private_channel_share=rng.random() * 0.5, estimated_team_size=float(rng.integers(1, 9)),
                           department_accounts=float(rng.integers(0, 4)), platforms=float(rng.integers(1, 3)),
                           posts=float(rng.integers(0, 60)), proactive_share=rng.random() * 0.4)
                      for i in range(120)], ignore_index=True)
    better = base.copy()
    for scale in D.SCALES:
        column = f"sig_{scale.signal}"
        better[column] = base[column] * (1.3 if scale.higher_is_better else 1 / 1.3)
    for spec in load_models().values():
        if spec.kind == "quadrant":
            continue
        a, b = rule_frame(spec, base), rule_frame(spec, better)
        assert (b.low >= a.low).all() and (b.high >= a.high).all(), spec.id


def _criterion(model: str, signal: str, op: str):
    return next(c for spec in [load_model(model)] for criterion in spec.criteria
                for c in criterion.comparisons if c.signal == signal and c.op == op and c.min_evidence)


def _completions(criterion, row: dict) -> list[dict]:
    """Every way the criterion's growth volume can be completed to its minimum (a share: any number
    of the further units favourable; a distinct count: any number of new values, up to its cap)."""
    growth = D.SCALE_BY_SIGNAL[criterion.signal].growth
    need = dict(criterion.min_evidence)[growth.volume]
    have = row[growth.volume]
    out = []
    for added in range(int(need - have) + 1):
        completed = dict(row, **{growth.volume: float(need)})
        if criterion.signal == "response_rate":
            completed["answered"] = row["answered"] + added
            completed["response_rate"] = completed["answered"] / need
        elif growth.kind == D.SHARE:
            completed[criterion.signal] = (row[criterion.signal] * have + added) / need
        else:
            completed[criterion.signal] = min(row[criterion.signal] + added, growth.most)
        out.append(completed)
    return out


@pytest.mark.parametrize("model, signal, op, observation", [
    ("forrester", "response_rate", ">=", None), ("smi", "response_rate", "<", None),
    # a sample of the organisation's own threads: an upper bound, read within its sampling error
    ("forrester", "response_rate", ">=", TWCS), ("smi", "response_rate", "<", TWCS),
    ("s3m", "signed_reply_share", ">=", None), ("forrester", "private_channel_share", ">=", None),
    ("s3m", "reply_hours_covered", ">=", None)])
def test_below_its_minimum_a_criterion_decides_exactly_when_every_completion_agrees(model, signal, op, observation):
    criterion = _criterion(model, signal, op)
    growth = D.SCALE_BY_SIGNAL[signal].growth
    need = int(dict(criterion.min_evidence)[growth.volume])
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(60):
        have = int(rng.integers(1, need))
        value = (int(rng.integers(0, have + 1)) / have if growth.kind == D.SHARE
                 else float(rng.integers(1, min(have, 24) + 1)))
        rows.append({**_ORG, growth.volume: float(have), signal: value,
                     **({"answered": value * have} if signal == "response_rate" else {}),
                     **{f"observes_{name}": how for name, how in (observation or {}).items()}})
    early = comparison_verdicts(criterion, D.compute(pd.DataFrame(rows)))
    completions = [_completions(criterion, row) for row in rows]
    at_minimum = comparison_verdicts(criterion, D.compute(pd.DataFrame([c for cs in completions for c in cs])))
    offsets = np.cumsum([0] + [len(cs) for cs in completions])
    for i, row in enumerate(rows):
        verdicts = set(at_minimum[offsets[i]:offsets[i + 1]].tolist())
        expected = verdicts.pop() if len(verdicts) == 1 else ABSTAIN
        assert early[i] == expected, (row, early[i], verdicts)
    assert (early != ABSTAIN).any() and (early == ABSTAIN).any()


_ORG = {"org": "o", "posts": 120.0, "mentions": 100.0, "answered": 90.0, "replies": 110.0, "response_rate": 0.9,
        "signed_reply_share": 0.8, "private_channel_share": 0.3, "reply_hours_covered": 20.0}


def test_a_verdict_below_the_minimum_is_explained_with_the_bound_that_decided_it():
    spec = load_model("forrester")
    frame = _org(observe(["x"]), mentions=7.0, answered=7.0, response_rate=1.0, first_reply_p90_s=3000.0)
    rules = rule_frame(spec, frame)
    record = _estimate_record(spec, rules, frame)
    exp = explain_row(frame.iloc[0].to_dict(), record)
    rate = next(c for c in spec.criteria if c.signal == "response_rate")
    assert exp["decided_before_minimum"][rate.name] == [
        "response rate 1.00 over 7 mentions, held before its minimum of 10: at least 0.70 at 10 whatever "
        "the other 3 are (>= 0.50)"]
    failing = _org(observe(["x"]), mentions=6.0, answered=0.0, response_rate=0.0)
    record = _estimate_record(spec, rule_frame(spec, failing), failing)
    reasons = explain_row(failing.iloc[0].to_dict(), record)["decided_before_minimum"][rate.name]
    assert reasons == ["response rate 0.00 over 6 mentions, failed before its minimum of 10: at most 0.40 at 10 "
                       "whatever the other 4 are (>= 0.50)"]
