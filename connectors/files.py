"""What every file importer shares: the file-level error, the encoding check made before anything
is stored, and the bookkeeping of one ingest run (start, batches committed with their rejected rows,
finish or fail). An importer (twcs.py, sp500.py, facebook_pages.py) only parses its format.
"""
from __future__ import annotations

import codecs
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Sequence

import pyarrow as pa

from connectors.sink import LoadCounts, Rejection, RunSink


class InputFileError(ValueError):
    """The file as a whole cannot be imported; nothing from it was stored."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path, self.line = path, line


# Python's name for UTF-8 that skips a leading byte-order mark (Excel's "CSV UTF-8" writes one).
UTF8 = "utf-8-sig"


def is_utf8(encoding: str) -> bool:
    """Whether `encoding` is one of Python's utf-8 variants (utf-8, utf-8-sig, ...)."""
    return codecs.lookup(encoding).name.startswith("utf-8")


def encoding_label(encoding: str) -> str:
    """How an error names the encoding: "UTF-8" for Python's utf-8 variants, else as given."""
    return "UTF-8" if is_utf8(encoding) else encoding


def open_text(path: Path, newline: str | None = None, encoding: str = UTF8) -> IO[str]:
    """The file as strict text in `encoding` (UTF-8, a byte-order mark skipped, unless told
    otherwise); an unreadable file is an InputFileError naming it."""
    try:
        return open(path, newline=newline, encoding=encoding, errors="strict")
    except OSError as exc:
        raise InputFileError(path, f"cannot open: {exc.strerror}") from None


def check_encoding(path: Path, encoding: str = UTF8, *, other_encoding_hint: str = "",
                   chunk_bytes: int = 1 << 24) -> None:
    """Reject a file that is not valid `encoding` before anything from it is stored. The error
    names the first bad byte, its line, and how to convert the file (plus `other_encoding_hint`,
    e.g. the importer's option for reading another encoding)."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)()
    except LookupError:
        raise InputFileError(path, f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from None
    lines_before, offset = 0, 0
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise InputFileError(path, f"cannot open: {exc.strerror}") from None
    with handle:
        while True:
            chunk = handle.read(chunk_bytes)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                if chunk:
                    line = lines_before + chunk.count(b"\n", 0, exc.start) + 1
                    what = f"byte 0x{chunk[exc.start]:02x} at offset {offset + exc.start}"
                else:  # the file ends inside a multi-byte character
                    line, what = lines_before + 1, "incomplete character at the end of the file"
                raise InputFileError(
                    path, f"not valid {encoding_label(encoding)} ({what}); is the file in another encoding? A latin-1 / "
                          f"Windows-1252 file converts with `iconv -f cp1252 -t utf-8 IN > OUT`"
                          f"{other_encoding_hint}", line) from None
            if not chunk:
                return
            lines_before += chunk.count(b"\n")
            offset += len(chunk)


# Lines end at \r\n, \r or \n, as Python's universal newlines and its csv module count them.
_BREAK_CHARS = b"\r\n"
_BREAK_RUN = re.compile(rb"(?:\r\n|\r|\n){2,}")
_BREAK = re.compile(rb"\r\n|\r|\n")


def _breaks(data: bytes, start: int = 0, end: int | None = None) -> int:
    end = len(data) if end is None else end
    return data.count(b"\n", start, end) + data.count(b"\r", start, end) - data.count(b"\r\n", start, end)


def _regions(path: Path, chunk_bytes: int) -> Iterator[bytes]:
    """The file's bytes in pieces that never end inside a run of line breaks (a run ending a piece
    moves to the next one), so a \r\n or a run of empty lines is never split."""
    pending = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            data = pending + chunk
            cut = len(data.rstrip(_BREAK_CHARS))
            if cut:
                yield data[:cut]
            pending = data[cut:]
    if pending:
        yield pending


# Every run of two or more line breaks holds one of these pairs, and a single break (\r\n too) none.
_RUN_PAIRS = (b"\n\n", b"\r\r", b"\n\r")


def _break_runs(region: bytes) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of two or more line breaks in `region`, in order: found by the byte
    search of those pairs, since a regular expression tried at every byte costs seconds per 100 MB."""
    next_at = {pair: region.find(pair) for pair in _RUN_PAIRS}
    position = 0
    while True:
        for pair, at in next_at.items():
            if 0 <= at < position:
                next_at[pair] = region.find(pair, position)
        found = [at for at in next_at.values() if at >= 0]
        if not found:
            return
        start = min(found)
        while start > position and region[start - 1] in _BREAK_CHARS:
            start -= 1
        end = _BREAK_RUN.match(region, start).end()
        yield start, end
        position = end


def empty_lines(path: Path, chunk_bytes: int = 1 << 24) -> Iterator[int]:
    """The numbers of the file's empty physical lines after the first, in order (a pass over bytes)."""
    lines_before = 0   # line breaks before the current region
    for region in _regions(path, chunk_bytes):
        position = 0
        for start, end in _break_runs(region):
            lines_before += _breaks(region, position, start)
            in_run = _breaks(region, start, end)
            yield from range(lines_before + 2, lines_before + in_run + 1)
            lines_before += in_run
            position = end
        lines_before += _breaks(region, position)


def text_from_line(path: Path, line: int, chunk_bytes: int = 1 << 24) -> bytes:
    """The file's bytes from the start of physical line `line` to its end."""
    breaks_to_skip = line - 1
    with open(path, "rb") as handle:
        offset = 0
        for region in _regions(path, chunk_bytes):
            in_region = _breaks(region)
            if in_region >= breaks_to_skip:
                for found, match in enumerate(_BREAK.finditer(region), start=1):
                    if found == breaks_to_skip:
                        offset += match.end()
                        break
                handle.seek(offset if breaks_to_skip else 0)
                return handle.read()
            breaks_to_skip -= in_region
            offset += len(region)
    return b""


@contextmanager
def utf8_file(path: Path, encoding: str, chunk_chars: int = 1 << 22) -> Iterator[Path]:
    """The file itself when it is UTF-8, else a temporary UTF-8 copy (the file was checked with
    check_encoding first); line breaks, and so line numbers, stay as they are."""
    if is_utf8(encoding):
        yield path
        return
    handle, copy = tempfile.mkstemp(suffix=".csv", prefix="maturity-import-")
    try:
        with open(path, encoding=encoding, newline="") as source, \
                os.fdopen(handle, "w", encoding="utf-8", newline="") as target:
            while text := source.read(chunk_chars):
                target.write(text)
        yield Path(copy)
    finally:
        os.unlink(copy)


class FileRun:
    """One ingest run of a file import. The importer adds what it reads to `counts.read` and
    commits each batch with `commit`; loaded and rejected are counted once the batch is stored."""

    def __init__(self, sink: RunSink, source: str, kind: str):
        self.sink, self.source = sink, source
        self.counts = LoadCounts()
        self.run_id = sink.start_run(source, kind)

    def commit(self, posts: pa.Table | None, rejected: Sequence[Rejection] = (), *,
               rejected_source: str | None = None) -> None:
        """Store a batch of posts and the rows set aside from it in one transaction.
        `rejected_source` names where their line numbers count from when that is not the run's
        source (one file of a folder)."""
        loaded = 0
        with self.sink.transaction():
            if posts is not None and posts.num_rows:
                loaded = self.sink.load_posts(posts, source=self.source, run_id=self.run_id)
            self.sink.reject(self.run_id, rejected_source or self.source, list(rejected))
        self.counts.loaded += loaded
        self.counts.rejected += len(rejected)


@contextmanager
def file_run(sink: RunSink, source: str, kind: str) -> Iterator[FileRun]:
    """Start an ingest run, and finish it, or record why it failed, when the block ends. Batches
    committed before a failure stay stored; loads merge on (platform, post_id), so re-running the
    import completes it without duplicates."""
    run = FileRun(sink, source, kind)
    try:
        yield run
    except InputFileError as exc:
        sink.fail_run(run.run_id, run.counts, str(exc))
        raise
    except BaseException as exc:
        stored = (f"; {run.counts.loaded} rows were stored before the failure and re-running the import "
                  "completes it" if run.counts.loaded else "")
        sink.fail_run(run.run_id, run.counts, f"{type(exc).__name__}: {exc}{stored}")
        raise
    sink.finish_run(run.run_id, run.counts)
