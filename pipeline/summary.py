"""The run summary: a typed value the nightly flow returns, stores in `pipeline_runs` and the command
line renders (pipeline/console.py)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime


@dataclass
class SourceResult:
    name: str
    kind: str
    path: str | None
    status: str                 # ok, skipped, failed
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    seconds: float = 0.0
    message: str | None = None


@dataclass
class FeatureResult:
    as_of: datetime
    accounts: int
    organisations: int
    seconds: float
    windows: list[int] = field(default_factory=list)
    cached: list[int] = field(default_factory=list)   # windows whose inputs were unchanged: not rebuilt


@dataclass
class EstimationResult:
    as_of: datetime
    window_days: int
    estimates: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)   # organisation -> why its estimation failed
    note: str | None = None


@dataclass
class Failure:
    step: str                   # ingest, pull, features, estimate
    org: str | None
    cause: str

    def describe(self) -> str:
        return f"{self.step}{f' [{self.org}]' if self.org else ''}: {self.cause}"


@dataclass
class RunSummary:
    run_id: str
    started_at: datetime
    db: str
    config: str
    window_days: int
    sources: list[SourceResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    live: dict | None = None    # pipeline.sync.SyncSummary.as_dict() with each account's org, and crashed
    as_of: datetime | None = None
    features: FeatureResult | None = None
    estimates: EstimationResult | None = None
    unassigned_accounts: list[str] = field(default_factory=list)
    status: str = "ok"          # ok, partial_failure, failed

    def failure_message(self) -> str:
        return f"{len(self.failures)} failure(s): " + "; ".join(f.describe() for f in self.failures)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)
