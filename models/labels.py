"""Analyst labels validated against the model files (the pipeline stores them in the `labels` table,
never overwritten by synthetic data or retraining; the latest label per organisation and model counts)."""
from __future__ import annotations

import csv
from pathlib import Path

from models.spec import ModelSpecError, load_model


class LabelError(ValueError):
    pass


def validate(org: str, model: str, stage: str, where: str = "") -> tuple[str, str, str]:
    prefix = f"{where}: " if where else ""
    if not org or not org.strip():
        raise LabelError(f"{prefix}org: must not be empty")
    try:
        spec = load_model(model.strip())
    except ModelSpecError as exc:
        raise LabelError(f"{prefix}model: {exc}") from None
    try:
        index = spec.index_of(stage)
    except KeyError:
        raise LabelError(f"{prefix}stage: {stage!r} is not a stage of {spec.id} "
                         f"(expected one of: {', '.join(spec.stage_names)})") from None
    return org.strip(), spec.id, spec.stages[index].name


def read_labels_csv(path: Path) -> list[tuple[str, str, str]]:
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise LabelError(f"{path}: cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("org", "model", "stage") if c not in (reader.fieldnames or [])]
        if missing:
            raise LabelError(f"{path}:1: missing column(s): {', '.join(missing)}")
        return [validate(r["org"], r["model"], r["stage"], f"{path}:{reader.line_num}") for r in reader]
