"""The normalised post record every connector emits, and its conversion to a load batch."""
from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Iterable

import pyarrow as pa

from pipeline.store import POST_BATCH_SCHEMA


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
    has_media: bool = False
    like_count: int | None = None
    repost_count: int | None = None
    reply_count: int | None = None


POST_FIELDS = [f.name for f in fields(Post)]
assert POST_FIELDS == POST_BATCH_SCHEMA.names, "Post and the load schema must list the same columns"


def to_utc_naive(moment: datetime) -> datetime:
    """Store convention: naive datetimes in UTC."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def posts_to_batch(posts: Iterable[Post]) -> pa.Table:
    columns: dict[str, list] = {name: [] for name in POST_FIELDS}
    for post in posts:
        for name in POST_FIELDS:
            value = getattr(post, name)
            if name == "created_at":
                value = to_utc_naive(value)
            columns[name].append(value)
    return pa.table(columns, schema=POST_BATCH_SCHEMA)
