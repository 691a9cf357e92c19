"""Where connectors write: the interface they type against, satisfied structurally by the
pipeline's `Store` (DuckDB) and by `pipeline.sync.BufferedStore` (a pull recorded for replay).

Everything written inside one `transaction()` commits together or not at all: a page's posts, the
records set aside from it and the cursor values that cover it.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

Rejection = tuple[int | None, str | None, str, str | None]   # line, field, reason, raw excerpt


@dataclass
class LoadCounts:
    """What one ingest run read, loaded and set aside."""
    read: int = 0
    loaded: int = 0
    rejected: int = 0


class PostSink(Protocol):
    """Loading, as every connector does it."""

    def transaction(self) -> AbstractContextManager[object]: ...

    def load_posts(self, batch: pa.Table, *, source: str, run_id: int | None) -> int: ...

    def reject(self, run_id: int | None, source: str, rows: list[Rejection]) -> None: ...


class Sink(PostSink, Protocol):
    """What live connectors call: loading plus the cursors that cover what was loaded."""

    def set_cursor(self, source: str, account: str, cursor_name: str, value: str | None) -> None: ...


class RunSink(PostSink, Protocol):
    """What file importers call: loading plus the bookkeeping of their ingest run."""

    def start_run(self, source: str, kind: str) -> int: ...

    def finish_run(self, run_id: int, counts: LoadCounts, status: str = "ok",
                   message: str | None = None) -> None: ...

    def fail_run(self, run_id: int, counts: LoadCounts, message: str) -> None: ...
