"""Scheduled deployment of the nightly flow (`maturity serve`)."""
from __future__ import annotations

from pathlib import Path

from prefect.schedules import Cron

from pipeline.flows import nightly

DEFAULT_CRON = "0 2 * * *"
DEPLOYMENT_NAME = "nightly"


def nightly_deployment(config_path: str | Path, db_path: str | Path, *, cron: str = DEFAULT_CRON,
                       timezone: str = "UTC", name: str = DEPLOYMENT_NAME):
    """The nightly flow as a Prefect deployment on a cron schedule in the given time zone."""
    return nightly.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters={"config_path": str(Path(config_path).resolve()), "db_path": str(Path(db_path).resolve())},
        description="Ingest configured sources, build features, estimate maturity stages.",
        tags=["maturity", "nightly"],
    )
