"""File connector for the S&P 500 company tweet ids (MeixianWang2/SP-500-TweetIDs).

Input: one `SP500-tweet-id-*.txt` file or a folder of them; tab-separated, quoted `screen_name`,
`tweet_id` rows without a header. There is no text: the post time is decoded from the snowflake id,
posted_at_ms = (id >> 22) + 1288834974657. Every row is a post by the company account (platform
twitter, author = screen_name, is_org_author true), so cadence features compute on it; responsiveness
cannot (no replies, no mentions).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from connectors.files import InputFileError, check_encoding, file_run, open_text
from connectors.records import Post, posts_to_batch, snowflake_time
from connectors.sink import LoadCounts, Rejection, RunSink

PLATFORM = "twitter"
BATCH_ROWS = 50_000


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(path.glob("SP500-tweet-id-*.txt"))
        if not files:
            raise InputFileError(path, "no SP500-tweet-id-*.txt files in this folder")
        return files
    if not path.exists():
        raise InputFileError(path, "cannot open: no such file")
    return [path]


def import_sp500(sink: RunSink, path: str | Path, *, source: str | None = None,
                 progress: Callable[[int], None] | None = None) -> tuple[int, LoadCounts]:
    """Import S&P 500 tweet-id files (a file or a folder). Returns (run_id, counts); rows without a
    screen name or with a non-numeric id are rejected with their file line."""
    path = Path(path)
    files = _files(path)
    source = source or f"sp500:{path.name}"
    with file_run(sink, source, "sp500") as run:
        for file in files:   # a file in another encoding stops the import before anything is stored
            check_encoding(file)
        for file in files:
            posts, rejected = _read(file, run.counts)
            for start in range(0, max(len(posts), 1), BATCH_ROWS):
                chunk = posts[start:start + BATCH_ROWS]
                # line numbers count within the file, so its rows are recorded under its name
                run.commit(posts_to_batch(chunk), rejected if start == 0 else (),
                           rejected_source=f"{source}:{file.name}")
                if progress:
                    progress(len(chunk))
    return run.run_id, run.counts


def _read(file: Path, counts: LoadCounts) -> tuple[list[Post], list[Rejection]]:
    posts, rejected = [], []
    with open_text(file, newline="") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row:
                continue
            counts.read += 1
            if len(row) != 2:
                rejected.append((line, None, f"expected 2 tab-separated fields, found {len(row)}",
                                 "\t".join(row)))
                continue
            name, tweet_id = row[0].strip(), row[1].strip()
            if not name:
                rejected.append((line, "screen_name", "missing", "\t".join(row)))
            elif not tweet_id.isdigit():
                rejected.append((line, "tweet_id", f"not an integer id: {tweet_id}", "\t".join(row)))
            else:
                try:
                    posts.append(Post(PLATFORM, tweet_id, name, True, snowflake_time(tweet_id)))
                except ValueError as exc:
                    rejected.append((line, "tweet_id", str(exc), "\t".join(row)))
    return posts, rejected
