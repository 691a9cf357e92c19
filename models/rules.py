"""The transparent rule stage (Snorkel-style: every criterion is data from models/<id>.toml).

Ordinal models: the rule stage is the highest stage k such that every criterion of stages 1..k holds
(stages are cumulative, so the rule stage is monotone in every dimension). A criterion whose dimension
has no evidence abstains: it neither holds nor fails, and the stage it guards is not reached.
Quadrant model (smi): each axis is high when its dimension reaches the axis threshold; the quadrant
follows from the two axes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.spec import ModelSpec


@dataclass
class RuleResult:
    stage_index: int
    stage: str
    held: list[dict] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    abstained: list[dict] = field(default_factory=list)


def _entry(name, dimension, op, threshold, value, cite) -> dict:
    return {"criterion": name, "dimension": dimension, "op": op, "threshold": threshold,
            "value": None if value is None or value != value else round(float(value), 4),
            "seed": {"file": cite.file, "stage": cite.stage, "quote": cite.quote}}


def apply_rules(spec: ModelSpec, dims: dict) -> RuleResult:
    """Rule stage for one organisation's dimension values (a mapping dimension -> score)."""
    if spec.kind == "quadrant":
        levels, result = {}, RuleResult(0, "")
        for axis in spec.axes:
            value = dims.get(axis.dimension)
            entry = _entry(f"{axis.name} axis high: {axis.dimension} >= {axis.threshold}", axis.dimension,
                           ">=", axis.threshold, value, axis.cite)
            if value is None or value != value:
                levels[axis.name] = False
                result.abstained.append(entry)
            else:
                levels[axis.name] = bool(value >= axis.threshold)
                (result.held if levels[axis.name] else result.failed).append(entry)
        result.stage_index = spec.quadrant_index(levels)
        result.stage = spec.stages[result.stage_index].name
        return result
    result = RuleResult(0, spec.stages[0].name)
    blocked = False
    for stage in spec.stages[1:]:
        stage_ok = True
        for criterion in stage.criteria:
            value = dims.get(criterion.dimension)
            entry = _entry(criterion.name, criterion.dimension, criterion.op, criterion.threshold, value,
                           criterion.cite)
            verdict = criterion.holds(value)
            if verdict is None:
                result.abstained.append(entry)
                stage_ok = False
            elif verdict:
                result.held.append(entry)
            else:
                result.failed.append(entry)
                stage_ok = False
        if stage_ok and not blocked:
            result.stage_index = stage.index
        else:
            blocked = True
    result.stage = spec.stages[result.stage_index].name
    return result


def rule_stages(spec: ModelSpec, dims: pd.DataFrame) -> np.ndarray:
    """Vectorised rule stage indices for a frame of dimension values."""
    return np.array([apply_rules(spec, row).stage_index for row in dims.to_dict("records")], dtype=int)


def rule_matrix(spec: ModelSpec, dims: pd.DataFrame) -> pd.DataFrame:
    """Snorkel-style analysis: per criterion, coverage (has evidence) and the share of orgs it holds for."""
    rows = []
    records = dims.to_dict("records")
    for criterion in spec.criteria:
        verdicts = [criterion.holds(r.get(criterion.dimension)) for r in records]
        known = [v for v in verdicts if v is not None]
        rows.append({"criterion": criterion.name, "coverage": len(known) / max(len(verdicts), 1),
                     "holds": sum(known) / max(len(known), 1)})
    return pd.DataFrame(rows)
