"""Explanations and next-stage advice grounded in the seeds, following the REPORTED stage.

For an organisation and model: the reported stage (a point, or the low end of an interval, with the
interval in words and why it cannot be narrowed); the criteria of the reported stage with their
verdicts (they hold: the rules only report a stage whose required criteria hold); for every verdict
reached below its minimum evidence, the bound that decided it whatever the missing evidence is; every
signal the model reads, with its value (or "not observed" when the sources cannot show it) against
what the reported and the next stage need; the seed's advice for moving on from the reported stage,
quoted, followed by the measured gaps to the NEXT stage's criteria (for a quadrant, the criteria of
the axes it needs high that are not high yet). A comparison the sources cannot show -- a signal not
observed, or one a sample shows only as a minimum (maximum) against a threshold it cannot show -- is
listed as not assessable, never as advice; one whose value already meets it on too little evidence
as needing more evidence, not as a gap. Optionally the
classifier's main contributions (occlusion: how its probability of reaching the next stage moves when
one dimension is set to the training median).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from models import dimensions as D
from models.estimate import classifier_proba
from models.rules import (FAIL, HOLD, below_within_sampling_error, comparison_verdicts, growth_minimum, upward,
                          verdicts_valid)
from models.spec import OPS, Criterion, ModelSpec, load_model

NOT_OBSERVED_TEXT = "not observed"
BOUND_WORDS = {D.LOWER_BOUND: ("at least", "a minimum"), D.UPPER_BOUND: ("at most", "a maximum")}


def bounded(text: str, kind: str) -> str:
    """A value in words as its observation shows it: "at least 12" for a sample's lower bound, "at most
    0.96" for a share a sample overstates, the value itself when exact."""
    return f"{BOUND_WORDS[kind][0]} {text}" if kind in BOUND_WORDS else text


def _fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "n/a"
    if unit == "seconds":
        return f"{value / 3600:.1f} h" if value >= 3600 else f"{value:.0f} s"
    if unit == "share":
        return f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def _need(c: Criterion) -> str:
    scale = D.SCALE_BY_SIGNAL[c.signal]
    return f"{c.op} {_fmt(c.threshold, scale.unit)}"


def stage_criteria(spec: ModelSpec, stage_index: int | None) -> list[Criterion]:
    """The criteria that make up a stage: its own (ordinal), or the high criteria of the axes it needs
    high (quadrant)."""
    if stage_index is None:
        return []
    if spec.kind == "quadrant":
        levels = dict(spec.stages[stage_index].levels)
        return [c for a in spec.axes if levels[a.name] == "high" for c in a.high]
    return list(spec.stages[stage_index].criteria)


def next_stage_index(spec: ModelSpec, current: int | None) -> int | None:
    if current is None:
        return None
    if spec.kind == "quadrant":
        following = spec.stages[current].next_stage
        return None if following is None else spec.index_of(following)
    return current + 1 if current + 1 < len(spec.stages) else None


VERDICT_WORD = {HOLD: "held", FAIL: "failed"}


def early_verdict_reasons(spec: ModelSpec, row: dict) -> dict[str, list[str]]:
    """Per criterion name, its comparisons that reached a verdict below their minimum evidence
    (models.rules.decided_before_minimum: every completion up to the minimum gives that verdict), in
    words: the signal now, and the bound it keeps at the minimum whatever the missing evidence is."""
    frame = pd.DataFrame([row])
    out: dict[str, list[str]] = {}
    for criterion in spec.criteria:
        for c in criterion.comparisons:
            minimum = growth_minimum(c)
            if minimum is None:
                continue
            (growth, need), have = minimum, float(row.get(minimum[0].volume) or 0.0)
            verdict = comparison_verdicts(c, frame)[0]
            if have >= need or verdict not in (HOLD, FAIL):
                continue
            scale, value = D.SCALE_BY_SIGNAL[c.signal], float(row[f"sig_{c.signal}"])
            lowest, highest = (float(x[0]) for x in
                               D.completion_range(growth, np.array([value]), np.array([have]), need))
            # the completion closest to the other verdict: the least for a '>=' that held
            bound = (f"at least {_fmt(lowest, scale.unit)}" if (verdict == HOLD) == upward(c.op)
                     else f"at most {_fmt(highest, scale.unit)}")
            out.setdefault(criterion.name, []).append(
                f"{scale.label} {_fmt(value, scale.unit)} over {have:.0f} {growth.volume}, "
                f"{VERDICT_WORD[verdict]} before its minimum of {need:.0f}: {bound} at {need:.0f} whatever "
                f"the other {need - have:.0f} are ({_need(c)})")
    return out


def _verdicts(rules: dict) -> dict[str, str]:
    return {e["criterion"]: kind for kind in ("held", "failed", "abstained", "unobserved") for e in rules.get(kind, [])}


def explain_row(row: dict, estimate: dict, fitted=None, train_dims: pd.DataFrame | None = None) -> dict:
    """Structured explanation for one organisation (dimension row) and one stored estimate."""
    spec = load_model(estimate["model"])
    rules = estimate["explanation"]["rules"]
    verdict = _verdicts(rules)
    interval = estimate["explanation"].get("interval", {})
    current = estimate["stage_index"]
    nxt = next_stage_index(spec, current)
    current_criteria, next_criteria = stage_criteria(spec, current), stage_criteria(spec, nxt)
    observed = lambda signal: row.get(f"obs_{signal}", D.EXACT) != D.NOT_OBSERVED  # noqa: E731
    used = sorted({s for c in spec.criteria for s in c.signals})
    signals = []
    for signal in used:
        scale = D.SCALE_BY_SIGNAL[signal]
        cur = [_need(m) for c in current_criteria for m in c.comparisons if m.signal == signal]
        nx = [_need(m) for c in next_criteria for m in c.comparisons if m.signal == signal]
        signals.append({"dimension": scale.dimension, "dimension_score": _round(row.get(scale.dimension)),
                        "signal": signal, "label": scale.label, "unit": scale.unit,
                        "observed": row.get(f"obs_{signal}", D.EXACT),
                        "value": _round(row.get(f"sig_{signal}")) if observed(signal) else None,
                        "score": _round(row.get(f"score_{signal}")),
                        "current_stage_needs": "; ".join(cur) or None, "next_stage_needs": "; ".join(nx) or None})
    gaps, gap_criteria, not_assessable, evidence_needed = [], [], [], []
    for criterion in _criteria_to_reach(spec, nxt, rules):
        reached = verdict.get(criterion.name)
        # an exclusion-only criterion matters to the next stage only when it fails (it excludes the stage)
        if reached == "held" or (not criterion.required and reached != "failed"):
            continue
        for c in criterion.comparisons:
            reading = _reading_towards(c, row)
            scale, value = D.SCALE_BY_SIGNAL[c.signal], row.get(f"sig_{c.signal}")
            if reading == "unobserved":
                not_assessable.append(f"{criterion.name}: {scale.label} is {NOT_OBSERVED_TEXT} in these sources")
            elif reading == "bound only":
                kind = row.get(f"obs_{c.signal}")
                not_assessable.append(f"{criterion.name}: {scale.label} is shown only as {BOUND_WORDS[kind][1]} "
                                      f"in these sources ({bounded(_fmt(value, scale.unit), kind)}), which "
                                      f"cannot show {_need(c)}")
            elif reading == "within sampling error":
                not_assessable.append(f"{criterion.name}: {scale.label} "
                                      f"{bounded(_fmt(value, scale.unit), row.get(f'obs_{c.signal}'))} is short "
                                      f"of {_need(c)} only within the sampling error of these sources")
            elif reading == "met on too little evidence":
                evidence_needed.append(f"{criterion.name}: {scale.label} {_fmt(value, scale.unit)} meets "
                                       f"{_need(c)}, but over {_evidence_text(c, row)}")
            elif reading == "short":
                gap_criteria.append({"criterion": criterion.name, "signal": c.signal, "op": c.op,
                                     "threshold": c.threshold, "value": _round(value),
                                     "stage": spec.stages[nxt].name})
                shown = bounded(_fmt(value, scale.unit), row.get(f"obs_{c.signal}"))
                thin = f" (over {_evidence_text(c, row)})" if _evidence_short(c, row) else ""
                gaps.append(f"{scale.label} {shown}{thin}; the next stage ({spec.stages[nxt].name}) "
                            f"expects {_need(c)} (seed: \"{criterion.cite.quote}\")")
    early = early_verdict_reasons(spec, row)
    current_holds = [{"criterion": c.name, "verdict": verdict.get(c.name, "abstained"), "required": c.required,
                      "before_minimum": early.get(c.name, [])}
                     for c in current_criteria]
    contributions = _contributions(spec, row, fitted, train_dims, nxt) if fitted is not None else []
    return {"org": estimate["org"], "model": spec.id, "model_name": spec.name, "status": estimate["status"],
            "stage": estimate["stage"], "stage_index": current, "confidence": estimate["confidence"],
            "stage_low_index": estimate.get("stage_low_index"), "stage_high_index": estimate.get("stage_high_index"),
            "interval": interval.get("text"), "interval_reasons": interval.get("reasons", []),
            "possible_stages": interval.get("possible", []),
            "rule_stage": estimate.get("rule_stage"),
            "classifier_stage": estimate["explanation"]["classifier"]["stage"],
            "probabilities": estimate["probabilities"],
            "next_stage": None if nxt is None else spec.stages[nxt].name,
            "current_stage_criteria": current_holds,
            "signals": signals,
            "rules_held": [e["criterion"] for e in rules.get("held", [])],
            "rules_failed": [e["criterion"] for e in rules.get("failed", [])],
            "rules_abstained": [e["criterion"] for e in rules.get("abstained", [])],
            "rules_unobserved": [e["criterion"] for e in rules.get("unobserved", [])],
            "decided_before_minimum": early,
            "classifier_contributions": contributions,
            "advice": [] if current is None else [{"section": a.section, "quote": a.quote}
                                                  for a in spec.stages[current].advice],
            "gaps": gaps, "gap_criteria": gap_criteria, "not_assessable": not_assessable,
            "evidence_needed": evidence_needed,
            "insufficient": estimate["explanation"].get("insufficient", []),
            "seed_file": spec.seed}


def _criteria_to_reach(spec: ModelSpec, nxt: int | None, rules: dict) -> list[Criterion]:
    """The criteria the next stage needs: its own (ordinal); for a quadrant, the high criteria of the
    axes it needs high that are not high yet (any one of them makes an axis high)."""
    if spec.kind != "quadrant" or nxt is None:
        return stage_criteria(spec, nxt)
    levels, reached = dict(spec.stages[nxt].levels), rules.get("axes", {})
    return [c for a in spec.axes if levels[a.name] == "high" and reached.get(a.name) != "high" for c in a.high]


def _reading_towards(c: Criterion, row: dict) -> str:
    """What the sources show of one comparison of a criterion not yet held: "unobserved"; "bound only"
    (a sample's lower bound that falls short of `>=`, an upper bound that meets it: neither shows the
    threshold); "within sampling error" (an upper bound short of `>=` by less than its sampling error,
    models.rules.below_within_sampling_error); "met on too little evidence" (the value
    meets it, the evidence is below its minimum); "met" (it holds: another comparison decides); else
    "short" (the value falls short of it: a gap to close)."""
    kind = row.get(f"obs_{c.signal}", D.EXACT)
    if kind == D.NOT_OBSERVED:
        return "unobserved"
    value = row.get(f"sig_{c.signal}")
    meets = value is not None and value == value and bool(OPS[c.op](float(value), c.threshold))
    pass_valid, fail_valid = verdicts_valid(kind, c.op)
    if not (pass_valid if meets else fail_valid):
        return "bound only"
    if kind == D.UPPER_BOUND and not meets and below_within_sampling_error(
            c, pd.DataFrame([row]), np.array([float(value)]))[0]:
        return "within sampling error"
    if meets:
        return "met on too little evidence" if _evidence_short(c, row) else "met"
    return "short"


def _evidence_short(c: Criterion, row: dict) -> list[tuple[str, float, float]]:
    """(volume, have, need) of each minimum evidence the comparison does not reach."""
    return [(name, float(row.get(name) or 0.0), need) for name, need in c.min_evidence
            if float(row.get(name) or 0.0) < need]


def _evidence_text(c: Criterion, row: dict) -> str:
    return ", ".join(f"{have:.0f} of the {need:.0f} {name} it needs" for name, have, need in _evidence_short(c, row))


def _contributions(spec: ModelSpec, row: dict, fitted, train_dims, nxt) -> list[dict]:
    """Occlusion: change in the classifier's P(stage >= next) (quadrant: P(next)) when one dimension (and
    its signals' scores) is set to the training median. Positive = this dimension raises the estimate."""
    if train_dims is None or nxt is None:
        return []
    base = pd.DataFrame([row])

    def p_next(frame: pd.DataFrame) -> float:
        proba = classifier_proba(spec, fitted, frame)
        return float(proba[0, nxt] if spec.kind == "quadrant" else proba[0, nxt:].sum())

    reference = p_next(base)
    out = []
    for dim in D.DIMENSIONS:
        changed = base.copy()
        changed[dim] = float(np.nanmedian(train_dims[dim]))
        for s in (x for x in D.SCALES if x.dimension == dim):
            changed[f"score_{s.signal}"] = float(np.nanmedian(train_dims[f"score_{s.signal}"]))
        out.append({"dimension": dim, "contribution": round(reference - p_next(changed), 4)})
    return sorted(out, key=lambda x: -abs(x["contribution"]))[:4]


def _round(value):
    if value is None:
        return None
    value = float(value)
    return None if value != value else round(value, 4)


def render_text(exp: dict) -> str:
    lines = [f"{exp['org']} — {exp['model_name']} ({exp['model']}, seed {exp['seed_file']})"]
    if exp["status"] == "insufficient_evidence":
        lines.append(f"  status: insufficient evidence: {'; '.join(exp['insufficient'])}")
    elif exp["status"] == "interval":
        lines.append(f"  stage: {exp['interval']} (confidence {exp['confidence']:.2f}; "
                     f"most likely inside: {exp['classifier_stage']})")
        for reason in exp["interval_reasons"]:
            lines.append(f"    - {reason}")
    else:
        lines.append(f"  stage: {exp['stage']} (index {exp['stage_index']}, confidence {exp['confidence']:.2f})")
    if exp["current_stage_criteria"]:
        lines.append(f"  criteria of {exp['stage']}: " + "; ".join(
            f"{c['criterion']} — {c['verdict']}" for c in exp["current_stage_criteria"]))
    if exp["status"] != "insufficient_evidence":   # without a verdict the classifier alone is no stage
        lines.append("  probabilities: " + ", ".join(f"{k} {v:.2f}" for k, v in exp["probabilities"].items()))
    lines.append("  signals (value | current stage needs | next stage needs):")
    for s in exp["signals"]:
        value = NOT_OBSERVED_TEXT if s["observed"] == D.NOT_OBSERVED else _fmt(s["value"], s["unit"])
        value = bounded(value, s["observed"])
        lines.append(f"    [{s['dimension']}] {s['label']}: {value} | {s['current_stage_needs'] or '-'} | "
                     f"{s['next_stage_needs'] or '-'}")
    lines.append("  rules held: " + ("; ".join(exp["rules_held"]) or "none"))
    lines.append("  rules failed: " + ("; ".join(exp["rules_failed"]) or "none"))
    if exp["rules_abstained"]:
        lines.append("  rules without enough evidence: " + "; ".join(exp["rules_abstained"]))
    if exp["rules_unobserved"]:
        lines.append("  rules not observable in these sources: " + "; ".join(exp["rules_unobserved"]))
    for name, reasons in exp["decided_before_minimum"].items():
        for reason in reasons:
            lines.append(f"  decided before its minimum evidence: {name}: {reason}")
    if exp["classifier_contributions"]:
        lines.append("  classifier's main contributions to reaching the next stage: " + ", ".join(
            f"{c['dimension']} {c['contribution']:+.2f}" for c in exp["classifier_contributions"]))
    if exp["stage_index"] is None:
        return "\n".join(lines)
    if exp["next_stage"]:
        lines.append(f"  advice for moving to {exp['next_stage']} (quoted from the seed):")
    else:
        lines.append("  advice at the top stage (quoted from the seed):")
    for a in exp["advice"]:
        lines.append(f"    \"{a['quote']}\" [{a['section']}]")
    for gap in exp["gaps"]:
        lines.append(f"    - {gap}")
    for item in exp["not_assessable"]:
        lines.append(f"    - not assessable: {item}")
    for item in exp["evidence_needed"]:
        lines.append(f"    - needs more evidence: {item}")
    return "\n".join(lines)
