"""Model definitions as data: loads models/<id>.toml (stages, criteria, seed citations, advice)."""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models.dimensions import DIMENSIONS

MODEL_IDS = ["smmm", "s3m", "forrester", "altimeter", "smi"]
OPS = {">=": lambda v, t: v >= t, ">": lambda v, t: v > t, "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}


@dataclass(frozen=True)
class Citation:
    file: str
    stage: str
    quote: str


@dataclass(frozen=True)
class Criterion:
    """One observable criterion: a dimension compared with a threshold, and the seed sentence it encodes."""
    name: str
    stage_index: int
    dimension: str
    op: str
    threshold: float
    cite: Citation

    def holds(self, value: float) -> bool | None:
        if value is None or value != value:  # NaN: no evidence, the criterion abstains
            return None
        return bool(OPS[self.op](value, self.threshold))


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
    levels: tuple[tuple[str, str], ...] = ()   # quadrant models: (axis, high|low)
    quote: str | None = None
    next_stage: str | None = None              # quadrant models: the stage the seed advises next


@dataclass(frozen=True)
class Axis:
    name: str
    dimension: str
    threshold: float
    cite: Citation


@dataclass(frozen=True)
class ModelSpec:
    id: str
    name: str
    seed: str
    description: str
    kind: str                      # ordinal | quadrant
    stages: tuple[Stage, ...]
    axes: tuple[Axis, ...] = ()
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
        return [c for s in self.stages for c in s.criteria]

    def quadrant_index(self, levels: dict[str, bool]) -> int:
        for stage in self.stages:
            if all(levels[axis] == (level == "high") for axis, level in stage.levels):
                return stage.index
        raise ValueError(levels)

    def quadrant_indices(self, levels: dict[str, np.ndarray]) -> np.ndarray:
        """quadrant_index for many organisations at once: `levels` maps each axis to a boolean array."""
        n = len(next(iter(levels.values())))
        indices = np.full(n, -1)
        for stage in reversed(self.stages):  # the first matching stage wins, as in quadrant_index
            match = np.ones(n, dtype=bool)
            for axis, level in stage.levels:
                match &= levels[axis] == (level == "high")
            indices[match] = stage.index
        if (indices < 0).any():
            raise ValueError({axis: bool(v[indices.argmin()]) for axis, v in levels.items()})
        return indices


class ModelSpecError(ValueError):
    pass


def _parse(model_id: str, text: str) -> ModelSpec:
    raw = tomllib.loads(text)
    where = f"models/{model_id}.toml"
    if raw.get("id") != model_id:
        raise ModelSpecError(f"{where}: id: expected {model_id!r}, found {raw.get('id')!r}")
    seed = raw["seed"]
    stages = []
    for index, st in enumerate(raw["stages"]):
        criteria = []
        for n, c in enumerate(st.get("criteria", [])):
            if c["dimension"] not in DIMENSIONS:
                raise ModelSpecError(f"{where}: stages[{index}].criteria[{n}].dimension: unknown {c['dimension']!r}")
            if c["op"] not in OPS:
                raise ModelSpecError(f"{where}: stages[{index}].criteria[{n}].op: unknown {c['op']!r}")
            criteria.append(Criterion(f"{st['name']}: {c['dimension']} {c['op']} {c['threshold']}", index,
                                      c["dimension"], c["op"], float(c["threshold"]),
                                      Citation(seed, c["stage"], c["quote"])))
        stages.append(Stage(index, st["name"], st.get("description", ""), tuple(criteria),
                            tuple(Advice(a["section"], a["quote"]) for a in st.get("advice", [])),
                            tuple(sorted(st.get("levels", {}).items())), st.get("quote"), st.get("next")))
    axes = tuple(Axis(a["name"], a["dimension"], float(a["threshold"]), Citation(seed, a["stage"], a["quote"]))
                 for a in raw.get("axes", []))
    return ModelSpec(model_id, raw["name"], seed, raw.get("description", ""), raw.get("kind", "ordinal"),
                     tuple(stages), axes, hashlib.sha256(text.encode()).hexdigest()[:16])


@lru_cache(maxsize=None)
def load_model(model_id: str) -> ModelSpec:
    if model_id not in MODEL_IDS:
        raise ModelSpecError(f"unknown model {model_id!r} (expected one of: {', '.join(MODEL_IDS)})")
    # the package folder itself (a tests/models folder may shadow "models" as a namespace package)
    text = (Path(__file__).parent / f"{model_id}.toml").read_text(encoding="utf-8")
    return _parse(model_id, text)


def load_models() -> dict[str, ModelSpec]:
    return {m: load_model(m) for m in MODEL_IDS}
