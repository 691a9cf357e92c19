"""Model definitions as data: loads models/<id>.toml (stages, what public activity can show of each,
criteria over signals with the seed sentence each one operationalises, advice). The criterion semantics
are documented at the top of models/smmm.toml and implemented by models/rules.py."""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from models.dimensions import EVIDENCE, SIGNALS

MODEL_IDS = ["smmm", "s3m", "forrester", "altimeter", "smi"]
OPS = {">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}
OBSERVABLE = ("yes", "partly", "no")


@dataclass(frozen=True)
class Citation:
    file: str
    stage: str
    quote: str


@dataclass(frozen=True)
class Criterion:
    """A signal compared with a threshold (or, with `members`, the OR of several such comparisons), the
    evidence it needs and the seed sentence it operationalises."""
    name: str
    stage_index: int
    signal: str | None                        # None for an any_of criterion
    op: str | None
    threshold: float | None
    cite: Citation
    min_evidence: tuple[tuple[str, float], ...] = ()
    members: tuple["Criterion", ...] = ()
    required: bool = True
    fail_excludes: bool = True
    implies_below: bool = False

    @property
    def comparisons(self) -> tuple["Criterion", ...]:
        """The single comparisons this criterion is made of (itself, or its any_of members)."""
        return self.members or (self,)

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(c.signal for c in self.comparisons)


@dataclass(frozen=True)
class Advice:
    section: str
    quote: str


@dataclass(frozen=True)
class Stage:
    index: int
    name: str
    description: str
    criteria: tuple[Criterion, ...]
    advice: tuple[Advice, ...]
    observable: str = "partly"
    observability_note: str = ""
    levels: tuple[tuple[str, str], ...] = ()   # quadrant models: (axis, high|low)
    quote: str | None = None
    next_stage: str | None = None              # quadrant models: the stage the seed advises next


@dataclass(frozen=True)
class Axis:
    """A quadrant model's axis: HIGH when a `high` criterion holds, LOW when a `low` one does (and no
    high one), else unknown."""
    name: str
    high: tuple[Criterion, ...]
    low: tuple[Criterion, ...]
    cite: Citation
    observable: str = "partly"
    observability_note: str = ""


@dataclass(frozen=True)
class Exclusion:
    """A quadrant the evidence rules out: removed from the possible set when its criterion holds."""
    stage_index: int
    criterion: Criterion


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    seed: str
    description: str
    kind: str                      # ordinal | quadrant
    stages: tuple[Stage, ...]
    axes: tuple[Axis, ...] = ()
    exclusions: tuple[Exclusion, ...] = ()
    digest: str = ""

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def index_of(self, stage_name: str) -> int:
        for stage in self.stages:
            if stage.name.lower() == stage_name.strip().lower():
                return stage.index
        raise KeyError(stage_name)

    @property
    def criteria(self) -> list[Criterion]:
        """Every criterion: the stages' (ordinal), the axes' and the exclusions' (quadrant)."""
        return ([c for s in self.stages for c in s.criteria] + [c for a in self.axes for c in a.high + a.low]
                + [e.criterion for e in self.exclusions])

    def describe(self, low: int | None, high: int | None, possible: list[str] | None = None, *,
                 compact: bool = False) -> str:
        """The estimate in words: a stage, an interval ("at least Early Majority; higher stages not
        assessable from these sources" -- "from public activity" when no stage above is observable at
        all) or, for a quadrant model, the quadrants still possible. compact: the short form a table of
        all five models has room for ("≥ Early Majority")."""
        if low is None or high is None:
            return "insufficient evidence"
        names = self.stage_names
        if self.kind == "quadrant":
            possible = possible or names[low:high + 1]
            if len(possible) == 1:
                return possible[0]
            return " / ".join(possible) if compact else "one of " + ", ".join(possible)
        if low == high:
            return names[low]
        if high == len(names) - 1:
            unobservable = all(stage.observable == "no" for stage in self.stages[low + 1:])
            return f"≥ {names[low]}" if compact else (f"at least {names[low]}; higher stages not assessable from "
                                                     + ("public activity" if unobservable else "these sources"))
        return f"{names[low]}–{names[high]}" if compact else f"{names[low]} to {names[high]}"


class ModelSpecError(ValueError):
    pass


def _criterion(raw: dict, where: str, stage_index: int, stage_name: str, seed: str,
               stage: str | None = None, quote: str | None = None) -> Criterion:
    stage, quote = raw.get("stage", raw.get("section", stage)), raw.get("quote", quote)
    if stage is None or quote is None:
        raise ModelSpecError(f"{where}: every criterion needs its seed `stage` and `quote`")
    cite = Citation(seed, stage, quote)
    flags = dict(required=bool(raw.get("required", True)), fail_excludes=bool(raw.get("fail_excludes", True)),
                 implies_below=bool(raw.get("implies_below", False)))
    if "any_of" in raw:
        members = tuple(_criterion(m, f"{where}.any_of[{n}]", stage_index, stage_name, seed, stage, quote)
                        for n, m in enumerate(raw["any_of"]))
        return Criterion(f"{stage_name}: " + " or ".join(m.name.split(": ", 1)[1] for m in members),
                         stage_index, None, None, None, cite, (), members, **flags)
    signal, op = raw.get("signal"), raw.get("op")
    if signal not in SIGNALS:
        raise ModelSpecError(f"{where}.signal: unknown {signal!r} (expected one of: {', '.join(SIGNALS)})")
    if op not in OPS:
        raise ModelSpecError(f"{where}.op: unknown {op!r}")
    evidence = tuple(sorted((k, float(v)) for k, v in raw.get("min_evidence", {}).items()))
    for name, _ in evidence:
        if name not in EVIDENCE:
            raise ModelSpecError(f"{where}.min_evidence: unknown {name!r} (expected one of: {', '.join(EVIDENCE)})")
    threshold = float(raw["threshold"])
    label = f"{signal} {op} {threshold:g}" + "".join(f" ({k} >= {v:g})" for k, v in evidence)
    return Criterion(f"{stage_name}: {label}", stage_index, signal, op, threshold, cite, evidence, **flags)


def _observable(raw: dict, where: str) -> str:
    value = raw.get("observable", "partly")
    if value not in OBSERVABLE:
        raise ModelSpecError(f"{where}.observable: expected one of {', '.join(OBSERVABLE)}, found {value!r}")
    return value


def _parse(model_id: str, text: str) -> ModelSpec:
    raw = tomllib.loads(text)
    where = f"models/{model_id}.toml"
    if raw.get("id") != model_id:
        raise ModelSpecError(f"{where}: id: expected {model_id!r}, found {raw.get('id')!r}")
    seed = raw["seed"]
    kind = raw.get("kind", "ordinal")
    stages = []
    for index, st in enumerate(raw["stages"]):
        at = f"{where}: stages[{index}]"
        criteria = tuple(_criterion(c, f"{at}.criteria[{n}]", index, st["name"], seed)
                         for n, c in enumerate(st.get("criteria", [])))
        observable = _observable(st, at)
        if kind == "ordinal" and index > 0 and (observable == "no") != (not criteria):
            raise ModelSpecError(f"{at}: a stage has criteria exactly when it is observable (yes or partly)")
        stages.append(Stage(index, st["name"], st.get("description", ""), criteria,
                            tuple(Advice(a["section"], a["quote"]) for a in st.get("advice", [])),
                            observable, st.get("observability_note", "").replace("\n", " "),
                            tuple(sorted(st.get("levels", {}).items())), st.get("quote"), st.get("next")))
    names = [s.name for s in stages]
    axes = tuple(Axis(a["name"],
                      tuple(_criterion(c, f"{where}: axes[{i}].high[{n}]", -1, f"{a['name']} high", seed,
                                       a["stage"], a["quote"]) for n, c in enumerate(a.get("high", []))),
                      tuple(_criterion(c, f"{where}: axes[{i}].low[{n}]", -1, f"{a['name']} low", seed,
                                       a["stage"], a["quote"]) for n, c in enumerate(a.get("low", []))),
                      Citation(seed, a["stage"], a["quote"]), _observable(a, f"{where}: axes[{i}]"),
                      a.get("observability_note", "").replace("\n", " "))
                 for i, a in enumerate(raw.get("axes", [])))
    exclusions = []
    for i, ex in enumerate(raw.get("exclusions", [])):
        if ex.get("stage") not in names:
            raise ModelSpecError(f"{where}: exclusions[{i}].stage: unknown {ex.get('stage')!r}")
        index = names.index(ex["stage"])
        exclusions.append(Exclusion(index, _criterion(ex, f"{where}: exclusions[{i}]", index,
                                                      f"not {ex['stage']}", seed)))
    return ModelSpec(model_id, raw["name"], seed, raw.get("description", ""), kind, tuple(stages), axes,
                     tuple(exclusions), hashlib.sha256(text.encode()).hexdigest()[:16])


@lru_cache(maxsize=None)
def load_model(model_id: str) -> ModelSpec:
    if model_id not in MODEL_IDS:
        raise ModelSpecError(f"unknown model {model_id!r} (expected one of: {', '.join(MODEL_IDS)})")
    # the package folder itself (a tests/models folder may shadow "models" as a namespace package)
    text = (Path(__file__).parent / f"{model_id}.toml").read_text(encoding="utf-8")
    return _parse(model_id, text)


def load_models() -> dict[str, ModelSpec]:
    return {m: load_model(m) for m in MODEL_IDS}
