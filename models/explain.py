"""Explanations and next-stage advice grounded in the seeds, made concrete with the measured gap.

For an organisation and model: the stage and probabilities; every signal of the dimensions the model
reads, with its value against the value the current and the next stage need (the dimension threshold
translated back through the signal's scale, models/dimensions.py); the rules that held and failed; the
classifier's main contributions (how the next-stage probability moves when one dimension is set to the
training median, i.e. which dimensions push the estimate up or down); and the seed's advice for moving
on, quoted, followed by the measured gaps ("response rate 0.46; the next stage expects >= 0.80").
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from models import dimensions as D
from models.estimate import _full_proba, model_inputs
from models.spec import load_model


def _fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:
        return "n/a"
    if unit == "seconds":
        return f"{value / 3600:.1f} h" if value >= 3600 else f"{value:.0f} s"
    if unit == "share":
        return f"{value:.2f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


def _criteria_for(spec, stage_index: int) -> list[tuple[str, float, str]]:
    """(dimension, threshold, seed quote) the given stage needs (cumulative for ordinal models)."""
    if spec.kind == "quadrant":
        levels = dict(spec.stages[stage_index].levels)
        return [(a.dimension, a.threshold, a.cite.quote) for a in spec.axes if levels[a.name] == "high"]
    return [(c.dimension, c.threshold, c.cite.quote) for s in spec.stages[1:stage_index + 1] for c in s.criteria]


def next_stage_index(spec, current: int) -> int | None:
    if spec.kind == "quadrant":
        following = spec.stages[current].next_stage
        return None if following is None else spec.index_of(following)
    return current + 1 if current + 1 < len(spec.stages) else None


def explain_row(row: dict, estimate: dict, fitted=None, train_dims: pd.DataFrame | None = None) -> dict:
    """Structured explanation for one organisation (dimension row) and one model estimate."""
    spec = load_model(estimate["model"])
    current = estimate["stage_index"]
    if current is None:  # insufficient evidence: advise against the rule reading, clearly labelled
        current = spec.index_of(estimate["explanation"]["rules"]["stage"])
    nxt = next_stage_index(spec, current)
    dims_used = sorted({c.dimension for c in spec.criteria} | {a.dimension for a in spec.axes})
    signals = []
    for dim in dims_used:
        cur_thr = max([t for d, t, _ in _criteria_for(spec, current) if d == dim], default=None)
        nxt_thr = max([t for d, t, _ in _criteria_for(spec, nxt) if d == dim], default=None) if nxt is not None else None
        for s in (x for x in D.SCALES if x.dimension == dim):
            value = row.get(f"sig_{s.signal}")
            signals.append({
                "dimension": dim, "dimension_score": _round(row.get(dim)), "signal": s.signal, "label": s.label,
                "value": _round(value), "score": _round(row.get(f"score_{s.signal}")),
                "current_stage_needs": None if cur_thr is None else f"{'>=' if s.higher_is_better else '<='} "
                                                                    f"{_fmt(s.value_for(cur_thr), s.unit)}",
                "next_stage_needs": None if nxt_thr is None else f"{'>=' if s.higher_is_better else '<='} "
                                                                 f"{_fmt(s.value_for(nxt_thr), s.unit)}",
                "next_threshold_value": None if nxt_thr is None else s.value_for(nxt_thr),
                "higher_is_better": s.higher_is_better, "unit": s.unit,
            })
    gaps = []
    if nxt is not None:
        for dim, thr, quote in _criteria_for(spec, nxt):
            score = row.get(dim)
            if score is not None and score == score and score >= thr:
                continue
            for sig in (x for x in signals if x["dimension"] == dim):
                value, target = sig["value"], sig["next_threshold_value"]
                short = value is None or (value < target if sig["higher_is_better"] else value > target)
                if short:
                    gaps.append(f"{sig['label']} {_fmt(value, sig['unit'])}; the next stage "
                                f"({spec.stages[nxt].name}) expects {'>=' if sig['higher_is_better'] else '<='} "
                                f"{_fmt(target, sig['unit'])} (seed: \"{quote}\")")
    advice = [{"section": a.section, "quote": a.quote} for a in spec.stages[current].advice]
    contributions = _contributions(spec, row, fitted, train_dims, nxt) if fitted is not None else []
    return {"org": estimate["org"], "model": spec.id, "model_name": spec.name, "status": estimate["status"],
            "stage": estimate["stage"], "stage_index": estimate["stage_index"], "confidence": estimate["confidence"],
            "rule_stage": estimate["explanation"]["rules"]["stage"],
            "classifier_stage": estimate["explanation"]["classifier"]["stage"],
            "probabilities": estimate["probabilities"],
            "next_stage": None if nxt is None else spec.stages[nxt].name,
            "signals": [{k: v for k, v in s.items() if k not in ("next_threshold_value", "higher_is_better")}
                        for s in signals],
            "rules_held": [h["criterion"] for h in estimate["explanation"]["rules"]["held"]],
            "rules_failed": [f["criterion"] for f in estimate["explanation"]["rules"]["failed"]],
            "rules_abstained": [f["criterion"] for f in estimate["explanation"]["rules"]["abstained"]],
            "classifier_contributions": contributions,
            "advice": advice, "gaps": gaps,
            "insufficient": estimate["explanation"].get("insufficient", []),
            "seed_file": spec.seed}


def _contributions(spec, row: dict, fitted, train_dims, nxt) -> list[dict]:
    """Occlusion: change in P(stage >= next) when one dimension (and its signals) is set to the training
    median. Positive = this dimension raises the estimate."""
    if train_dims is None or nxt is None:
        return []
    base = pd.DataFrame([row])

    def p_next(frame: pd.DataFrame) -> float:
        if spec.kind == "quadrant":
            levels = dict(spec.stages[nxt].levels)
            p = 1.0
            for axis, model in fitted.axes.items():
                ph = _full_proba(model, model_inputs(spec, frame, axis), 2)[0][0, 1]
                p *= ph if levels[axis] == "high" else 1 - ph
            return p
        proba, _ = _full_proba(fitted.ordinal[spec.id], model_inputs(spec, frame), len(spec.stages))
        return float(proba[0, nxt:].sum())

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
    if exp["status"] != "ok":
        lines.append(f"  status: {exp['status']}: {'; '.join(exp['insufficient'])}")
        lines.append(f"  (rules alone would read {exp['rule_stage']}; not reported as an estimate)")
    else:
        lines.append(f"  stage: {exp['stage']} (index {exp['stage_index']}, confidence {exp['confidence']:.2f}); "
                     f"rules: {exp['rule_stage']}; classifier: {exp['classifier_stage']}")
    lines.append("  probabilities: " + ", ".join(f"{k} {v:.2f}" for k, v in exp["probabilities"].items()))
    lines.append("  signals (value | current stage needs | next stage needs):")
    for s in exp["signals"]:
        lines.append(f"    [{s['dimension']} {s['dimension_score'] if s['dimension_score'] is not None else 'n/a'}] "
                     f"{s['label']}: {_fmt(s['value'], s['unit'])} | {s['current_stage_needs'] or '-'} | "
                     f"{s['next_stage_needs'] or '-'}")
    lines.append("  rules held: " + ("; ".join(exp["rules_held"]) or "none"))
    lines.append("  rules failed: " + ("; ".join(exp["rules_failed"]) or "none"))
    if exp["rules_abstained"]:
        lines.append("  rules without evidence: " + "; ".join(exp["rules_abstained"]))
    if exp["classifier_contributions"]:
        lines.append("  classifier's main contributions to reaching the next stage: " + ", ".join(
            f"{c['dimension']} {c['contribution']:+.2f}" for c in exp["classifier_contributions"]))
    if exp["next_stage"]:
        lines.append(f"  advice for moving to {exp['next_stage']} (quoted from the seed):")
    else:
        lines.append("  advice at the top stage (quoted from the seed):")
    for a in exp["advice"]:
        lines.append(f"    \"{a['quote']}\" [{a['section']}]")
    for gap in exp["gaps"]:
        lines.append(f"    - {gap}")
    return "\n".join(lines)
