"""Whole-run exclusivity for a database file.

DuckDB locks the file only while a connection is open, and the nightly flow opens the store once per
task; a second run could slip in between tasks. A run therefore holds an advisory lock on
`<db>.lock` for its whole duration (pipeline.store.writer), and every writable open checks it.
"""
from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from pipeline.errors import StoreError

_held: dict[Path, int] = {}  # lock files this process holds -> descriptor


def lock_path(db_path: str | Path) -> Path:
    db = Path(db_path).resolve()
    return db.with_name(db.name + ".lock")


def _describe_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        info = json.loads(os.read(fd, 4096) or b"{}")
        return f"{info.get('what', 'a run')} (process {info.get('pid', '?')}, since {info.get('since', '?')})"
    except (OSError, ValueError):
        return "another process"


@contextmanager
def exclusive_run(db_path: str | Path, what: str) -> Iterator[None]:
    """Hold the database for a whole run; a concurrent run fails fast naming the holder."""
    if str(db_path) == ":memory:":
        yield
        return
    path = lock_path(db_path)
    if path in _held:  # re-entrant within one process (e.g. a flow calling a sub-flow)
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _describe_holder(fd)
        os.close(fd)
        raise StoreError(f"database {db_path} is in use by {holder}; wait for it to finish") from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"what": what, "pid": os.getpid(),
                             "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode())
    _held[path] = fd
    try:
        yield
    finally:
        del _held[path]
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_not_held_elsewhere(db_path: str | Path) -> None:
    """Raise StoreError if another process holds the run lock for this database."""
    if str(db_path) == ":memory:":
        return
    path = lock_path(db_path)
    if path in _held or not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreError(f"database {db_path} is in use by {_describe_holder(fd)}; "
                         "wait for it to finish or use --db to choose another file") from None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
