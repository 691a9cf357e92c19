"""Helpers for connector tests: a fake clock (no real sleeping), credentials, accounts, and
reading the JSON payloads of recorded cassettes (to compare records with what the API sent)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import yaml

from connectors.accounts import Account
from connectors.credentials import Credentials, Secret
from pipeline.sync import account_cursors, saved_cursors


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


def sync_from_store(connector, store, account: Account, *, source: str, **kwargs):
    """connector.sync_account from the account's cursors saved in `store` (as pipeline.sync runs
    it), committing into the same store."""
    cursors = account_cursors(saved_cursors(store, [(source, account.key)]), source, account.key)
    return connector.sync_account(store, account, cursors=cursors, source=source, **kwargs)


def bsky_view(rkey: str, handle: str, did: str, created: str, text: str, replies: int = 0,
              parent: str | None = None, root: str | None = None):
    """An atproto PostView (a reply when parent is given; root defaults to the parent)."""
    from atproto import models

    uri = f"at://{did}/app.bsky.feed.post/{rkey}"
    reply = None
    if parent:
        reply = models.AppBskyFeedPost.ReplyRef(
            parent=models.ComAtprotoRepoStrongRef.Main(uri=parent, cid="bafyp"),
            root=models.ComAtprotoRepoStrongRef.Main(uri=root or parent, cid="bafyr"))
    record = models.AppBskyFeedPost.Record(text=text, created_at=created, reply=reply)
    return models.AppBskyFeedDefs.PostView(
        uri=uri, cid=f"bafy{rkey}", indexed_at=created, record=record, reply_count=replies, like_count=3,
        repost_count=1, author=models.AppBskyActorDefs.ProfileViewBasic(did=did, handle=handle))


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


def register_praw_cassette_format() -> str:
    """praw's cassettes use betamax's original layout ({"interactions": [...], "version": 1});
    betamax 0.9 reads {"http_interactions": [...]}. Same interaction records, renamed top key."""
    from betamax import Betamax
    from betamax.serializers import JSONSerializer

    class PrawCassetteSerializer(JSONSerializer):
        name = "praw-json"

        def deserialize(self, cassette_data):
            data = super().deserialize(cassette_data)
            if "interactions" in data and "http_interactions" not in data:
                data["http_interactions"] = data.pop("interactions")
                data["recorded_with"] = f"betamax (format {data.pop('version', '?')})"
            for interaction in data.get("http_interactions", []):
                for part in ("request", "response"):
                    body = interaction[part].get("body")
                    if isinstance(body, dict):
                        body.setdefault("encoding", "utf-8")
                    elif part == "request":
                        interaction[part]["body"] = {"encoding": "utf-8", "string": body or ""}
                # placeholders (<ACCESS_TOKEN>) replaced recorded values after the fact, so a
                # recorded Content-Length no longer fits the stored body
                headers = interaction["response"].get("headers", {})
                for name in [h for h in headers if h.lower() == "content-length"]:
                    del headers[name]
            return data

    Betamax.register_serializer(PrawCassetteSerializer)
    return PrawCassetteSerializer.name
