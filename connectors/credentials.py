"""Connector credentials: environment variables, then a `.env` file, then Prefect Secret blocks.

Values are wrapped in `Secret`, whose str/repr never show the value; `redact()` and
`RedactingFilter` keep them out of messages and library log records. Nothing here is ever written
to the database.
"""
from __future__ import annotations

import base64
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping
from urllib.parse import quote, quote_plus

log = logging.getLogger(__name__)

# Per platform: variable names, and which of them must be present for the platform to run at all.
CREDENTIAL_VARS: dict[str, dict[str, bool]] = {
    "x": {"MATURITY_X_BEARER_TOKEN": True},
    "reddit": {"MATURITY_REDDIT_CLIENT_ID": True, "MATURITY_REDDIT_CLIENT_SECRET": True,
               "MATURITY_REDDIT_USER_AGENT": False, "MATURITY_REDDIT_USERNAME": False,
               "MATURITY_REDDIT_PASSWORD": False},
    # Mastodon and Bluesky read public data without credentials; a token / login adds notifications.
    "mastodon": {"MATURITY_MASTODON_ACCESS_TOKEN": False, "MATURITY_MASTODON_INSTANCE": False},
    "bluesky": {"MATURITY_BLUESKY_HANDLE": False, "MATURITY_BLUESKY_PASSWORD": False},
}
# Credentials a client sends as HTTP basic auth, base64("id:secret") (praw's app login): a server
# that echoes the Authorization header would otherwise hand back a form redaction does not know.
BASIC_AUTH_PAIRS: dict[str, tuple[str, str]] = {
    "reddit": ("MATURITY_REDDIT_CLIENT_ID", "MATURITY_REDDIT_CLIENT_SECRET"),
}


class Secret:
    """A credential value that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Credentials:
    platform: str
    values: Mapping[str, Secret]
    missing: tuple[str, ...] = ()     # required variables not found anywhere

    @property
    def complete(self) -> bool:
        return not self.missing

    def get(self, name: str) -> str | None:
        secret = self.values.get(name)
        return secret.reveal() if secret is not None else None

    def secrets(self) -> list[str]:
        """Every value, plus the encoded forms clients send on the wire (HTTP basic auth)."""
        found = [s.reveal() for s in self.values.values() if s.reveal()]
        pair = BASIC_AUTH_PAIRS.get(self.platform)
        if pair and all(self.get(name) for name in pair):
            found.append(base64.b64encode(":".join(self.get(name) for name in pair).encode()).decode())
        return found


def _prefect_secret(name: str) -> str | None:
    """A Prefect Secret block named like the variable (lower case, dashes). Only consulted when a
    Prefect API is configured: an ephemeral server would be started otherwise."""
    if not os.environ.get("PREFECT_API_URL"):
        return None
    try:
        from prefect.blocks.system import Secret as PrefectSecret

        return PrefectSecret.load(name.lower().replace("_", "-")).get()
    except Exception:  # block absent or API unreachable: the variable is simply not set
        return None


def load_credentials(platform: str, env: Mapping[str, str] | None = None,
                     dotenv_path: str | Path | None = ".env", use_prefect: bool = True) -> Credentials:
    env = os.environ if env is None else env
    dotenv: Mapping[str, str | None] = {}
    if dotenv_path is not None and Path(dotenv_path).is_file():
        from dotenv import dotenv_values

        dotenv = dotenv_values(dotenv_path)  # read only; not exported into os.environ
    values: dict[str, Secret] = {}
    missing = []
    for name, required in CREDENTIAL_VARS.get(platform, {}).items():
        value = env.get(name) or dotenv.get(name) or (_prefect_secret(name) if use_prefect else None)
        if value:
            values[name] = Secret(value)
        elif required:
            missing.append(name)
    return Credentials(platform, values, tuple(missing))


def secret_forms(secret: str) -> set[str]:
    """A secret as it may appear in text: raw, and percent-encoded as in URLs and form bodies
    (praw posts the Reddit password form-encoded; an error echoing the body carries that form)."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def redact(text: str, secrets: Iterable[str]) -> str:
    forms = {form for secret in secrets if secret for form in secret_forms(secret) if len(form) >= 4}
    for form in sorted(forms, key=len, reverse=True):   # longest first: no half-replaced form
        text = text.replace(form, "***")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites log records of client libraries (tweepy logs request headers at DEBUG) so no
    credential value reaches a handler."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__("maturity-redact")
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            cleaned = redact(message, self.secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


LIBRARY_LOGGERS = ("tweepy", "tweepy.client", "praw", "prawcore", "mastodon", "atproto", "atproto_client",
                   "httpx", "urllib3", "requests")


def install_log_redaction(secrets: Iterable[str]) -> RedactingFilter:
    flt = RedactingFilter(secrets)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) and f.secrets == flt.secrets for f in logger.filters):
            logger.addFilter(flt)
    return flt
