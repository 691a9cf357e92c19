"""The transparent rule reading (Snorkel-style: every criterion is data from models/<id>.toml): for each
organisation the lowest and highest stage the evidence supports, never a stage it cannot show.

Per criterion a verdict: HOLD, FAIL, ABSTAIN (observed, but too little evidence, or a bound that cannot
decide: a sample's lower bound failing `>=`, an overstated share passing it, or showing it below a
threshold only within its sampling error) or UNOBSERVED (the sources cannot show the signal). The full
semantics (required, fail_excludes, implies_below, any_of, min_evidence; supported, excluded and
passable stages; low and high) are documented at the top of models/smmm.toml.

Below its minimum evidence a criterion is decided when the verdict at the minimum is already
determined whatever the missing evidence is (decided_before_minimum; models.dimensions.Growth).

Ordinal models: better signals only turn FAIL into ABSTAIN into HOLD, so low and high are both
non-decreasing in every signal. Quadrant model (smi): each axis is HIGH, LOW or UNKNOWN; the
possible quadrants are those consistent with the axes, minus the exclusions where an exclusion settles
no unknown axis and leaves a quadrant; low / high are the lowest and highest index of that set.

Status: `ok` when low = high (smi: one quadrant), `interval` otherwise, `insufficient_evidence` when no
criterion reached a verdict or every stage is still possible.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from models import dimensions as D
from models.dimensions import EXACT, LOWER_BOUND, UPPER_BOUND
from models.spec import OPS, Criterion, ModelSpec

HOLD, FAIL, ABSTAIN, UNOBSERVED = 0, 1, 2, 3
# An upper bound holds in expectation only: a random part of an organisation's threads can understate
# even their own share. Every verdict it gives that the share is below a threshold (a failure of `>=`,
# a hold of `<`) therefore needs the share's one-sided 95% Wilson upper bound over its volume below
# the threshold (measured on real halves: docs/models.md, "Stability").
UPPER_BOUND_Z = 1.645
VERDICT_NAMES = ("held", "failed", "abstained", "unobserved")
OK, INTERVAL, INSUFFICIENT = "ok", "interval", "insufficient_evidence"
HIGH, LOW, UNKNOWN = 1, 0, -1
LEVEL_NAMES = {HIGH: "high", LOW: "low", UNKNOWN: "unknown"}


def _column(frame: pd.DataFrame, name: str, default) -> np.ndarray:
    return frame[name].to_numpy() if name in frame.columns else np.full(len(frame), default)


def upward(op: str) -> bool:
    """Whether a comparison asks for at least a value (`>=`, `>`) rather than at most."""
    return op in (">=", ">")


def verdicts_valid(kind, op: str) -> tuple:
    """Whether a pass and whether a failure of a comparison `op` can be read from a value observed as
    `kind` (an array of kinds, or one): exact both; a lower bound (at least this much happened) a pass
    of `>=` and a failure of `<=`; an upper bound (at most this much) the other way round."""
    kind = np.asarray(kind)
    exact, lower, upper = kind == EXACT, kind == LOWER_BOUND, kind == UPPER_BOUND
    return exact | (lower if upward(op) else upper), exact | (upper if upward(op) else lower)


def comparison_verdicts(criterion: Criterion, frame: pd.DataFrame) -> np.ndarray:
    """Verdicts of one criterion for every row of a frame from models.dimensions.compute (signal values
    `sig_<name>`, observation kinds `obs_<name>`, evidence volumes)."""
    if criterion.members:
        member = np.stack([comparison_verdicts(m, frame) for m in criterion.members])
        return np.where((member == HOLD).any(0), HOLD,
                        np.where((member == FAIL).all(0), FAIL,
                                 np.where(((member == FAIL) | (member == UNOBSERVED)).all(0), UNOBSERVED,
                                          ABSTAIN)))
    values = _column(frame, f"sig_{criterion.signal}", np.nan).astype(float)
    kind = _column(frame, f"obs_{criterion.signal}", EXACT)
    observed = np.isin(kind, (EXACT, LOWER_BOUND, UPPER_BOUND))
    passes = OPS[criterion.op](np.nan_to_num(values, nan=-np.inf if upward(criterion.op) else np.inf),
                               criterion.threshold)
    enough = ~np.isnan(values)
    for name, need in criterion.min_evidence:
        enough &= _column(frame, name, 0.0).astype(float) >= need
    hold_valid, fail_valid = verdicts_valid(kind, criterion.op)
    fail_valid &= criterion.fail_excludes
    # below the minimum evidence, the verdict the minimum would reach whatever the missing units are
    at_minimum = decided_before_minimum(criterion, frame, values)
    holds = np.where(enough, passes, at_minimum == HOLD)
    fails = np.where(enough, ~passes, at_minimum == FAIL)
    # an upper bound's "below the threshold": a failure of '>=', a hold of '<'
    upper = kind == UPPER_BOUND
    if upper.any():
        unsure = upper & below_within_sampling_error(criterion, frame, values)
        if upward(criterion.op):
            fails &= ~unsure
        else:
            holds &= ~unsure
    verdict = np.where(holds & hold_valid, HOLD, np.where(fails & fail_valid, FAIL, ABSTAIN))
    return np.where(~observed, UNOBSERVED, verdict).astype(np.int8)


def below_within_sampling_error(criterion: Criterion, frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """Per row, whether a share could still reach the comparison's threshold within its sampling error:
    the one-sided Wilson upper bound (UPPER_BOUND_Z) over the volume the share is of reaches it -- over
    the highest completion at the minimum evidence where the volume is below it, the verdict the
    minimum would reach. False for signals that are no share of a volume."""
    growth = D.SCALE_BY_SIGNAL[criterion.signal].growth
    if growth is None or growth.kind != D.SHARE:
        return np.zeros(len(frame), bool)
    share = np.clip(np.nan_to_num(values), 0.0, 1.0)
    n = _column(frame, growth.volume, 0.0).astype(float)
    minimum = growth_minimum(criterion)
    if minimum is not None:
        need = minimum[1]
        highest = D.completion_range(growth, share, n, need)[1]
        share, n = np.where(n < need, highest, share), np.maximum(n, need)
    n = np.maximum(n, 1.0)
    z2 = UPPER_BOUND_Z ** 2
    spread = UPPER_BOUND_Z * np.sqrt(share * (1 - share) / n + z2 / (4 * n * n))
    upper = (share + z2 / (2 * n) + spread) / (1 + z2 / n)
    return upper >= criterion.threshold


def decided_before_minimum(criterion: Criterion, frame: pd.DataFrame, values: np.ndarray) -> np.ndarray:
    """For a single comparison, per row: HOLD (FAIL) where its evidence is below the minimum only in the
    volume the signal grows with (models.dimensions.Growth) and every completion of that volume up to
    the minimum passes (fails) the threshold: the verdict at the minimum is already determined. ABSTAIN
    elsewhere (also where the minimum is met: this reads only what the minimum would decide). Whether
    the verdict is valid for the observation kind is the caller's decision."""
    minimum = growth_minimum(criterion)
    if minimum is None:
        return np.full(len(frame), ABSTAIN, dtype=np.int8)
    growth, need = minimum
    have = _column(frame, growth.volume, 0.0).astype(float)
    candidate = ~np.isnan(values) & (have < need)
    for name, other in criterion.min_evidence:
        if name != growth.volume:
            candidate &= _column(frame, name, 0.0).astype(float) >= other
    lowest, highest = D.completion_range(growth, np.nan_to_num(values), have, need)
    worst, best = (lowest, highest) if upward(criterion.op) else (highest, lowest)
    compare = OPS[criterion.op]
    return np.where(candidate & compare(worst, criterion.threshold), HOLD,
                    np.where(candidate & ~compare(best, criterion.threshold), FAIL, ABSTAIN)).astype(np.int8)


def growth_minimum(criterion: Criterion) -> tuple[D.Growth, float] | None:
    """How a single comparison's signal grows with its evidence and the minimum of that volume the
    criterion asks for; None when it cannot be decided before its minimum."""
    growth = D.SCALE_BY_SIGNAL[criterion.signal].growth
    if growth is None or growth.volume not in dict(criterion.min_evidence):
        return None
    return growth, dict(criterion.min_evidence)[growth.volume]


@dataclass
class RuleFrame:
    """The rule reading of every row of a frame at once: each criterion's verdict, the supported /
    excluded stages, low, high and status; `results` gives every row's reading with its reasons."""
    spec: ModelSpec
    criteria: list[Criterion]
    verdicts: np.ndarray       # (rows, criteria)
    low: np.ndarray            # (rows,)
    high: np.ndarray           # (rows,)
    status: np.ndarray         # (rows,) of OK | INTERVAL | INSUFFICIENT
    possible: np.ndarray       # (rows, stages): stages consistent with the evidence
    axis_levels: dict[str, np.ndarray]   # quadrant models: HIGH | LOW | UNKNOWN per axis

    @cached_property
    def alike(self) -> list[int]:
        """For each row, the first row read alike (the same low, high, status, possible stages, verdicts
        and axis levels): what every reading of the rows reports is built once per distinct one."""
        _, status = np.unique(self.status, return_inverse=True)
        return row_patterns(np.column_stack([self.low, self.high, status.reshape(-1), self.possible, self.verdicts,
                                             *self.axis_levels.values()]))

    def results(self) -> list[dict]:
        """Every row's reading: low / high stage names, the possible stages, every criterion under its
        verdict (criterion_entry: the signals it reads by name, its comparisons and seed sentence; the
        row's values are in its explanation's `signals`, with_criterion_values puts them back) and, for
        quadrant models, the axis levels. Rows with the same reading share one object, and a criterion's
        entry is one object in every reading (readings are never modified in place)."""
        names = self.spec.stage_names
        entries = [criterion_entry(criterion) for criterion in self.criteria]
        first = self.alike
        readings = {}
        for i in set(first):
            verdicts = self.verdicts[i].tolist()
            reading = {"low": names[int(self.low[i])], "high": names[int(self.high[i])],
                       "possible": [name for name, p in zip(names, self.possible[i].tolist()) if p]}
            for code, kind in enumerate(VERDICT_NAMES):
                reading[kind] = [entry for entry, verdict in zip(entries, verdicts) if verdict == code]
            if self.axis_levels:
                reading["axes"] = {axis: LEVEL_NAMES[int(levels[i])] for axis, levels in self.axis_levels.items()}
            readings[i] = reading
        return [readings[i] for i in first]


def row_patterns(matrix: np.ndarray) -> list[int]:
    """For each row of a 2-d array, the index of the first row equal to it bit for bit (so 0.0 and -0.0
    differ): rows alike share readings."""
    n = len(matrix)
    if n == 0:
        return []
    bits = np.ascontiguousarray(matrix)
    bits = bits.view(f"i{bits.itemsize}") if bits.dtype.kind in "fb" else bits
    order = np.lexsort(bits.T[::-1]) if bits.shape[1] else np.arange(n)   # stable: first rows lead
    ordered = bits[order]
    starts = np.ones(n, bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    first = np.empty(n, dtype=np.int64)
    first[order] = order[starts][np.cumsum(starts) - 1]
    return first.tolist()


def criterion_entry(criterion: Criterion) -> dict:
    """A criterion as readings list it under its verdict."""
    return {"criterion": criterion.name, "stage_index": criterion.stage_index,
            "signals": [c.signal for c in criterion.comparisons],
            "comparisons": [{"signal": c.signal, "op": c.op, "threshold": c.threshold,
                             "min_evidence": dict(c.min_evidence)} for c in criterion.comparisons],
            "seed": {"file": criterion.cite.file, "stage": criterion.cite.stage, "quote": criterion.cite.quote}}


def with_criterion_values(reading: dict, signals: dict) -> dict:
    """A copy of a reading (RuleFrame.results, or as stored) with each criterion's `signals` as
    {signal: the row's value} (`signals`: its explanation's values, None where not observed); entries
    that already carry their values are kept as they are. Its other parts (possible stages, axes) are
    the reading's own objects: read them, never modify them."""
    expanded = dict(reading)
    for kind in VERDICT_NAMES:
        if kind in reading:
            expanded[kind] = [{**entry, "signals": {s: signals.get(s) for s in entry["signals"]}}
                              if isinstance(entry["signals"], list) else entry for entry in reading[kind]]
    return expanded


def rule_frame(spec: ModelSpec, frame: pd.DataFrame) -> RuleFrame:
    """The rule reading of every row of `frame` (models.dimensions.compute output) with array operations."""
    frame = frame.reset_index(drop=True)
    criteria = spec.criteria
    n = len(frame)
    verdicts = (np.column_stack([comparison_verdicts(c, frame) for c in criteria]) if criteria
                else np.zeros((n, 0), dtype=np.int8))
    if spec.kind == "quadrant":
        return _quadrant(spec, criteria, verdicts, n)
    return _ordinal(spec, criteria, verdicts, n)


def _ordinal(spec: ModelSpec, criteria: list[Criterion], verdicts: np.ndarray, n: int) -> RuleFrame:
    k_stages = len(spec.stages)
    supported = np.zeros((n, k_stages), bool)
    excluded = np.zeros((n, k_stages), bool)
    passable = np.zeros((n, k_stages), bool)   # not supported only because the sources cannot show it
    implies = np.zeros((n, k_stages), bool)    # an implies_below criterion holds: lower stages presupposed
    supported[:, 0] = True
    for k, stage in enumerate(spec.stages[1:], start=1):
        mine = [j for j, c in enumerate(criteria) if c.stage_index == k]
        if not mine:                            # observable = "no": never supported, never excluded
            passable[:, k] = True
            continue
        v = verdicts[:, mine]
        required = np.array([criteria[j].required for j in mine])
        fails = (v == FAIL).any(1)
        req_hold = (v[:, required] == HOLD).all(1)
        req_hold_or_unobserved = np.isin(v[:, required], (HOLD, UNOBSERVED)).all(1)
        supported[:, k] = req_hold & ~fails
        excluded[:, k] = fails
        passable[:, k] = req_hold_or_unobserved & ~req_hold & ~fails
        for j in mine:
            if criteria[j].implies_below:
                implies[:, k] |= verdicts[:, j] == HOLD
    # A stage supported by an implies_below criterion can be jumped to over lower stages that merely lack
    # evidence, never over an excluded one: jump_to[:, j] = the highest such stage above j (else -1).
    reachable = supported & implies & ~np.cumsum(excluded, axis=1).astype(bool)
    jump_to = np.full((n, k_stages), -1)
    for j in range(k_stages - 2, -1, -1):
        jump_to[:, j] = np.where(jump_to[:, j + 1] >= 0, jump_to[:, j + 1],
                                 np.where(reachable[:, j + 1], j + 1, -1))
    low = np.zeros(n, int)
    stopped = np.zeros(n, bool)
    for j in range(1, k_stages):
        walking = ~stopped & (j > low)
        low = np.where(walking & supported[:, j], j, low)
        blocked = walking & ~supported[:, j] & ~(passable[:, j] & ~excluded[:, j])
        target = jump_to[:, j]
        low = np.where(blocked & (target > j), target, low)
        stopped |= blocked & (target <= j)
    high = low.copy()
    open_ = np.ones(n, bool)
    for k in range(1, k_stages):
        above = k > low
        open_ &= ~(above & excluded[:, k])
        high = np.where(above & open_, k, high)
    said = ((verdicts == HOLD) | (verdicts == FAIL)).any(1) & ~((low == 0) & (high == k_stages - 1))
    status = np.where(~said, INSUFFICIENT, np.where(low == high, OK, INTERVAL))
    stages = np.arange(k_stages)
    possible = (stages >= low[:, None]) & (stages <= high[:, None])
    return RuleFrame(spec, criteria, verdicts, low, high, status, possible, {})


def _quadrant(spec: ModelSpec, criteria: list[Criterion], verdicts: np.ndarray, n: int) -> RuleFrame:
    position = {id(c): j for j, c in enumerate(criteria)}
    holds = lambda c: verdicts[:, position[id(c)]] == HOLD  # noqa: E731
    levels = {}
    for axis in spec.axes:
        high = np.zeros(n, bool)
        low = np.zeros(n, bool)
        for c in axis.high:
            high |= holds(c)
        for c in axis.low:
            low |= holds(c)
        levels[axis.name] = np.where(high, HIGH, np.where(low, LOW, UNKNOWN))
    possible = np.ones((n, len(spec.stages)), bool)
    for stage in spec.stages:
        for axis, level in stage.levels:
            want = HIGH if level == "high" else LOW
            possible[:, stage.index] &= (levels[axis] == UNKNOWN) | (levels[axis] == want)
    # The seed defines the quadrants by their axes: an exclusion narrows what the axes leave open, but
    # it is no evidence on an axis, so it never settles an unknown axis (not Observers with investment
    # low is no sign of high innovation) and never removes the quadrant both axes' levels name.
    for exclusion in spec.exclusions:
        narrowed = possible.copy()
        narrowed[:, exclusion.stage_index] &= ~holds(exclusion.criterion)
        applies = narrowed.any(1)
        for axis in spec.axes:
            both_open = np.ones(n, bool)
            for level in ("high", "low"):
                stages = [s.index for s in spec.stages if (axis.name, level) in s.levels]
                both_open &= narrowed[:, stages].any(1)
            applies &= (levels[axis.name] != UNKNOWN) | both_open
        possible = np.where(applies[:, None], narrowed, possible)
    index = np.arange(len(spec.stages))
    low = np.where(possible, index, len(index)).min(1)
    high = np.where(possible, index, -1).max(1)
    size = possible.sum(1)
    status = np.where(size >= len(index), INSUFFICIENT, np.where(size == 1, OK, INTERVAL))
    return RuleFrame(spec, criteria, verdicts, low, high, status, possible, levels)


def full_observation_truth(spec: ModelSpec, frame: pd.DataFrame) -> np.ndarray:
    """A single stage per row for data whose every signal is observed (synthetic training data): the
    low end for ordinal models; for a quadrant model each axis HIGH when a high criterion holds, else
    LOW."""
    rules = rule_frame(spec, frame)
    if spec.kind != "quadrant":
        return rules.low
    return quadrant_indices(spec, {a: v == HIGH for a, v in rules.axis_levels.items()})


def quadrant_indices(spec: ModelSpec, high: dict[str, np.ndarray]) -> np.ndarray:
    """The quadrant of each row given, per axis, whether it is high."""
    n = len(next(iter(high.values())))
    indices = np.full(n, -1)
    for stage in spec.stages:
        match = np.ones(n, dtype=bool)
        for axis, level in stage.levels:
            match &= high[axis] == (level == "high")
        indices[match & (indices < 0)] = stage.index
    return indices


__all__ = ["HOLD", "FAIL", "ABSTAIN", "UNOBSERVED", "OK", "INTERVAL", "INSUFFICIENT", "HIGH", "LOW", "UNKNOWN",
           "RuleFrame", "rule_frame", "upward", "verdicts_valid", "comparison_verdicts", "below_within_sampling_error",
           "decided_before_minimum", "growth_minimum", "criterion_entry", "with_criterion_values",
           "full_observation_truth", "quadrant_indices", "row_patterns"]
