"""File connector for Facebook page posts with engagement counts (UCI "Facebook Live Sellers in
Thailand", Live.csv).

Columns used: status_id (`<page id>_<post id>`), status_type (video, photo, link, status),
status_published (`M/D/YYYY H:MM`, stored as given, read as UTC: the file carries no time zone),
num_reactions, num_comments, num_shares. Each row is a post by the page (platform facebook, author =
the page id prefix of status_id, is_org_author true); likes = reactions, reposts = shares,
replies = comments; photos and videos count as media.
"""
from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from typing import Callable

from connectors.files import InputFileError, check_encoding, file_run, open_text
from connectors.records import Post, posts_to_batch
from connectors.sink import LoadCounts, RunSink

PLATFORM = "facebook"
REQUIRED = ["status_id", "status_type", "status_published", "num_reactions", "num_comments", "num_shares"]
MEDIA_TYPES = {"photo", "video"}


def _count(value: str) -> int:
    value = value.strip()
    if not value.isdigit():
        raise ValueError(value)
    return int(value)


def import_facebook_pages(sink: RunSink, path: str | Path, *, source: str | None = None,
                          progress: Callable[[int], None] | None = None) -> tuple[int, LoadCounts]:
    """Import a Live.csv-style file of page posts. Returns (run_id, counts); bad rows are rejected with
    their line and field, the rest loads in one transaction."""
    path = Path(path)
    source = source or f"facebook_pages:{path.name}"
    handle = open_text(path, newline="")     # an unreadable file is refused before a run starts
    with file_run(sink, source, "facebook_pages") as run, handle:
        check_encoding(path)    # another encoding: refused before anything is stored
        posts, rejected = [], []
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputFileError(path, f"missing required column(s): {', '.join(missing)}", 1)
        at = {name: header.index(name) for name in REQUIRED}
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            run.counts.read += 1
            raw = ",".join(row)
            if len(row) < len(header):
                rejected.append((line, None, f"expected {len(header)} fields, found {len(row)}", raw))
                continue
            status_id = row[at["status_id"]].strip()
            page, _, _ = status_id.partition("_")
            if not page or "_" not in status_id:
                rejected.append((line, "status_id", f"expected <page id>_<post id>, found {status_id!r}", raw))
                continue
            try:
                published = datetime.strptime(row[at["status_published"]].strip(), "%m/%d/%Y %H:%M")
            except ValueError:
                rejected.append((line, "status_published",
                                 f"unrecognised time: {row[at['status_published']]!r}", raw))
                continue
            try:
                reactions, comments, shares = (_count(row[at[c]]) for c in
                                               ("num_reactions", "num_comments", "num_shares"))
            except ValueError as exc:
                rejected.append((line, "num_*", f"not a count: {exc}", raw))
                continue
            kind = row[at["status_type"]].strip().lower()
            posts.append(Post(PLATFORM, status_id, page, True, published, text=None,
                              has_media=kind in MEDIA_TYPES, like_count=reactions,
                              repost_count=shares, reply_count=comments))
        run.commit(posts_to_batch(posts), rejected)
        if progress:
            progress(run.counts.read)
    return run.run_id, run.counts
