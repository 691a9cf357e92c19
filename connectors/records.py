"""The normalised post record every connector emits, and its conversion to a load batch."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import pyarrow as pa

INT64_MAX = 2**63 - 1
TWITTER_EPOCH_MS = 1288834974657
_UNIX_EPOCH = datetime(1970, 1, 1)

# The columns a connector provides; the store derives everything else in SQL.
POST_BATCH_SCHEMA = pa.schema(
    [
        ("platform", pa.string()),
        ("post_id", pa.string()),
        ("author", pa.string()),
        ("is_org_author", pa.bool_()),
        ("created_at", pa.timestamp("us")),
        ("in_reply_to", pa.string()),
        ("conversation_id", pa.string()),
        ("text", pa.string()),
        ("has_media", pa.bool_()),
        ("like_count", pa.int64()),
        ("repost_count", pa.int64()),
        ("reply_count", pa.int64()),
    ]
)


class MalformedRecord(ValueError):
    """A platform payload the normaliser cannot turn into a Post (missing or wrongly typed field)."""

    def __init__(self, platform: str, field: str, reason: str, post_id: Any = None):
        if not isinstance(post_id, (str, int)) or isinstance(post_id, bool) or post_id == "":
            post_id = None     # only a plain id is worth naming (a payload may put anything there)
        where = f"{platform} record {str(post_id)[:60]}" if post_id is not None else f"{platform} record"
        super().__init__(f"{where}: {field}: {reason[:300]}")
        self.platform, self.field, self.reason, self.post_id = platform, field, reason, post_id


@contextmanager
def reading(platform: str, post_id: Any = None) -> Iterator[None]:
    """Normalise one payload: a missing field or one of the wrong shape becomes MalformedRecord
    (naming the field when the error does). Transport errors (OSError: requests, sockets) and
    malformed JSON pass through unchanged: the connector base retries those."""
    try:
        yield
    except (MalformedRecord, OSError, json.JSONDecodeError):
        raise
    except KeyError as exc:
        raise MalformedRecord(platform, str(exc.args[0]) if exc.args else "?", "missing", post_id) from None
    except AttributeError as exc:
        raise MalformedRecord(platform, exc.name or "payload", f"missing or of the wrong type ({exc})",
                              post_id) from None
    except (TypeError, ValueError, IndexError, OverflowError, RecursionError) as exc:
        raise MalformedRecord(platform, "payload", f"{type(exc).__name__}: {exc}", post_id) from None


def _check(post: "Post") -> None:
    """What the store's load schema needs, checked field by field so the error names the field."""
    def bad(name: str, reason: str) -> MalformedRecord:
        pid = post.post_id if isinstance(post.post_id, str) else None
        return MalformedRecord(post.platform if isinstance(post.platform, str) else "?", name, reason, pid)

    for name in ("platform", "post_id", "author"):
        value = getattr(post, name)
        if not isinstance(value, str) or not value:
            raise bad(name, f"expected a non-empty string, found {type(value).__name__} {str(value)[:40]!r}")
    for name in ("in_reply_to", "conversation_id", "text"):
        value = getattr(post, name)
        if value is not None and not isinstance(value, str):
            raise bad(name, f"expected a string, found {type(value).__name__}")
    for name in ("platform", "post_id", "author", "in_reply_to", "conversation_id", "text"):
        value = getattr(post, name)
        try:
            if value is not None:
                value.encode("utf-8")
        except UnicodeEncodeError:
            raise bad(name, "not valid Unicode (lone surrogate)") from None
    if not isinstance(post.is_org_author, bool):
        raise bad("is_org_author", f"expected true/false, found {type(post.is_org_author).__name__}")
    if post.has_media is not None and not isinstance(post.has_media, bool):
        raise bad("has_media", f"expected true/false or nothing, found {type(post.has_media).__name__}")
    if not isinstance(post.created_at, datetime):
        raise bad("created_at", f"expected a time, found {type(post.created_at).__name__}")
    for name in ("like_count", "repost_count", "reply_count"):
        value = getattr(post, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not -INT64_MAX - 1 <= value <= INT64_MAX):
            raise bad(name, f"expected a count, found {type(value).__name__} {str(value)[:40]!r}")


@dataclass(frozen=True, slots=True)
class Post:
    platform: str
    post_id: str
    author: str
    is_org_author: bool
    created_at: datetime          # timezone-aware or naive UTC
    in_reply_to: str | None = None
    conversation_id: str | None = None
    text: str | None = None
    has_media: bool | None = None   # None: the source does not report media
    like_count: int | None = None
    repost_count: int | None = None
    reply_count: int | None = None

    def __post_init__(self) -> None:
        _check(self)   # a Post that exists always loads: bad payloads fail here, naming the field


POST_FIELDS = [f.name for f in fields(Post)]
assert POST_FIELDS == POST_BATCH_SCHEMA.names, "Post and the load schema must list the same columns"


def to_utc_naive(moment: datetime) -> datetime:
    """Store convention: naive datetimes in UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def snowflake_time(tweet_id: int | str) -> datetime:
    """Naive UTC time a tweet was posted, decoded from its X (snowflake) id; ValueError for an id whose
    time no datetime holds."""
    try:
        return _UNIX_EPOCH + timedelta(milliseconds=(int(tweet_id) >> 22) + TWITTER_EPOCH_MS)
    except OverflowError:
        raise ValueError(f"not an X id (its time is out of range): {tweet_id}") from None


def posts_to_batch(posts: Iterable[Post]) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in POST_FIELDS}
    for post in posts:
        for name in POST_FIELDS:
            value = getattr(post, name)
            if name == "created_at":
                value = to_utc_naive(value)
            columns[name].append(value)
    return pa.table(columns, schema=POST_BATCH_SCHEMA)
