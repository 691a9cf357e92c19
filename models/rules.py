"""The transparent rule stage (Snorkel-style: every criterion is data from models/<id>.toml).

Ordinal models: the rule stage is the highest stage k such that every criterion of stages 1..k holds
(stages are cumulative, so the rule stage is monotone in every dimension). A criterion whose dimension
has no evidence abstains: it neither holds nor fails, and the stage it guards is not reached.
Quadrant model (smi): each axis is high when its dimension reaches the axis threshold; the quadrant
follows from the two axes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from models.spec import OPS, ModelSpec


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


HELD, FAILED, ABSTAINED = 0, 1, 2


class _Check(NamedTuple):
    """One comparison apply_rules reports (an ordinal criterion or a quadrant axis), flat for fast unpacking."""
    name: str
    dimension: str
    op: str
    threshold: float
    seed_file: str
    seed_stage: str
    seed_quote: str


def _checks(spec: ModelSpec) -> list[_Check]:
    """The comparisons in the order apply_rules reports them."""
    if spec.kind == "quadrant":
        return [_Check(f"{a.name} axis high: {a.dimension} >= {a.threshold}", a.dimension, ">=", a.threshold,
                       a.cite.file, a.cite.stage, a.cite.quote) for a in spec.axes]
    return [_Check(c.name, c.dimension, c.op, c.threshold, c.cite.file, c.cite.stage, c.cite.quote)
            for stage in spec.stages[1:] for c in stage.criteria]


@dataclass
class RuleFrame:
    """apply_rules for every row of a frame at once: the rule stage indices and each check's verdict
    (HELD, FAILED or ABSTAINED per row and check); `result(i, ...)` gives row i's RuleResult."""
    spec: ModelSpec
    checks: list[_Check]
    verdicts: np.ndarray       # (rows, checks)
    stage_index: np.ndarray    # (rows,)

    def result(self, i: int, reported_values: dict) -> RuleResult:
        """Row i as apply_rules reports it; `reported_values`: that row's dimension values already rounded
        as entries report them (None without evidence), so a caller reporting several models rounds once."""
        stage_index = int(self.stage_index[i])
        result = RuleResult(stage_index, self.spec.stages[stage_index].name)
        lists = (result.held, result.failed, result.abstained)
        for (name, dimension, op, threshold, seed_file, seed_stage, seed_quote), verdict in zip(
                self.checks, self.verdicts[i].tolist()):
            lists[verdict].append({"criterion": name, "dimension": dimension, "op": op, "threshold": threshold,
                                   "value": reported_values[dimension],
                                   "seed": {"file": seed_file, "stage": seed_stage, "quote": seed_quote}})
        return result


def rule_frame(spec: ModelSpec, dims: pd.DataFrame) -> RuleFrame:
    """apply_rules over every row of `dims` with array operations (same stages, same verdicts)."""
    checks = _checks(spec)
    n = len(dims)
    verdicts = np.empty((n, len(checks)), dtype=np.int8)
    for j, check in enumerate(checks):
        values = dims[check.dimension].to_numpy(float) if check.dimension in dims.columns else np.full(n, np.nan)
        verdicts[:, j] = np.where(np.isnan(values), ABSTAINED,
                                  np.where(OPS[check.op](values, check.threshold), HELD, FAILED))
    held = verdicts == HELD
    if spec.kind == "quadrant":
        stage_index = spec.quadrant_indices({a.name: held[:, j] for j, a in enumerate(spec.axes)})
    else:
        # cumulative stages: the rule stage is the number of leading stages all of whose criteria hold
        stage_ok, j = [], 0
        for stage in spec.stages[1:]:
            stage_ok.append(held[:, j:j + len(stage.criteria)].all(axis=1))
            j += len(stage.criteria)
        stage_index = np.cumprod(np.column_stack(stage_ok), axis=1).sum(axis=1)
    return RuleFrame(spec, checks, verdicts, stage_index.astype(int))


def rule_stages(spec: ModelSpec, dims: pd.DataFrame) -> np.ndarray:
    """Rule stage indices for a frame of dimension values."""
    return rule_frame(spec, dims).stage_index
