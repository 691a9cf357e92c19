"""Helpers for connector tests: a fake clock (no real sleeping), credentials, accounts, and
reading the JSON payloads of recorded cassettes (to compare records with what the API sent)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import yaml

from connectors.credentials import Credentials, Secret
from pipeline.config import Account


class FakeClock:
    """Records requested sleeps and advances virtual time instead of sleeping."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def creds(platform: str, **values: str) -> Credentials:
    return Credentials(platform, {k: Secret(v) for k, v in values.items()})


def account(platform: str, handle: str, instance: str | None = None) -> Account:
    return Account(platform=platform, handle=handle, role="support", instance=instance)


def vcr_payloads(cassette: Path) -> list[tuple[str, str, object]]:
    """(method, uri, decoded JSON body) of every interaction of a vcrpy YAML cassette."""
    data = yaml.load(cassette.read_text(encoding="utf-8"), Loader=yaml.Loader)
    found = []
    for interaction in data["interactions"]:
        body = interaction["response"]["body"]["string"]
        if isinstance(body, bytes):
            try:
                body = gzip.decompress(body)
            except OSError:
                pass
            body = body.decode("utf-8")
        found.append((interaction["request"]["method"], interaction["request"]["uri"], json.loads(body)))
    return found


def betamax_payloads(cassette: Path) -> list[tuple[str, str, object]]:
    data = json.loads(cassette.read_text(encoding="utf-8"))
    return [(i["request"]["method"], i["request"]["uri"], json.loads(i["response"]["body"]["string"]))
            for i in data["interactions"]]
