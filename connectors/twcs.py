"""File connector for the Customer Support on Twitter (twcs) format, as CSV or JSONL.

A CSV file is tokenised, typed, validated and derived by DuckDB (its CSV reader, in a private
in-memory database apart from the store) and streamed to the sink in batches of posts; Python reads
the header line and counts lines over bytes, never a row. A JSONL file is tokenised by Python's json
module, line by line, and checked by the same SQL. A bad value is reported with its physical line
and field while the rest loads.
"""
from __future__ import annotations

import csv
import json
import queue
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.files import (UTF8, InputFileError, check_encoding, empty_lines, encoding_label, file_run,
                              open_text, text_from_line, utf8_file)
from connectors.records import POST_BATCH_SCHEMA
from connectors.sink import LoadCounts, Rejection, RunSink

PLATFORM = "twitter"
REQUIRED_COLUMNS = ["tweet_id", "author_id", "inbound", "created_at"]
OPTIONAL_COLUMNS = ["text", "response_tweet_id", "in_response_to_tweet_id"]
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# One DuckDB row group: a commit writes a full row group straight into the database file, where a
# smaller batch goes to the log and is written again at the checkpoint (1M posts: 4.0 s -> 1.6 s).
BATCH_ROWS = 122_880
# Tried in this order on the header line; the first that yields every required column is the file's.
# Spreadsheets set to a European locale save "CSV" with semicolons.
DELIMITERS = (",", ";", "\t")
# DuckDB's reader drops the fields past its last column: these spare columns after the header's
# catch them, so a row with too many fields is rejected (counted up to the spares).
SPARE_COLUMNS = 4
# The longest CSV record DuckDB's reader accepts (its default is 2 MB; tweets with long quoted
# texts, and files a spreadsheet joined into one field, can exceed that).
MAX_RECORD_BYTES = 1 << 23
READ_BUFFER_BYTES = 2 * MAX_RECORD_BYTES
# DuckDB keeps the buffers of the file it has read cached up to its memory limit (measured RSS
# streaming a 210 MB file: 384 MB unlimited, 235 MB with 64 MB); the reader needs only a few buffers.
READER_MEMORY_LIMIT = "64MB"
TRUNCATED = "malformed CSV: file ends inside a quoted field (truncated file?)"

# Typing, validation and derivation of raw records (every field varchar), from `raw` with columns
# line, shape_problem ('|reason' when the record's fields do not fit the header), shape_excerpt,
# breaks (line breaks inside the record's fields) and ALL_COLUMNS. The first failing field names the rejection reason ('field|reason'). The common
# table expressions and the final select: a query puts its own `raw` before them.
_CHECKS = """
typed as (
    select
        line,
        shape_problem,
        shape_excerpt,
        breaks,
        nullif(trim(tweet_id), '') as tweet_id_raw,
        regexp_extract(trim(tweet_id), '^(\\d+)(?:\\.0*)?$', 1) as post_id,
        nullif(trim(author_id), '') as author,
        lower(trim(inbound)) as inbound_raw,
        case lower(trim(inbound)) when 'true' then true when '1' then true
                                  when 'false' then false when '0' then false end as inbound,
        created_at as created_raw,
        coalesce(
            try_strptime(trim(created_at), '%a %b %d %H:%M:%S %z %Y'),
            try_cast(trim(created_at) as timestamptz)
        )::timestamp as created_ts,
        text,
        nullif(trim(in_response_to_tweet_id), '') as reply_raw,
        regexp_extract(trim(in_response_to_tweet_id), '^(\\d+)(?:\\.0*)?$', 1) as in_reply_to
    from raw
),
checked as (
    select *,
        case
            when shape_problem is not null then shape_problem
            when tweet_id_raw is null then 'tweet_id|missing'
            when post_id = '' then 'tweet_id|not an integer id: ' || tweet_id_raw
            when author is null then 'author_id|missing'
            when inbound is null then 'inbound|expected True/False, found ' || coalesce(inbound_raw, 'nothing')
            when created_ts is null then 'created_at|unrecognised timestamp: ' || coalesce(created_raw, 'nothing')
            when reply_raw is not null and in_reply_to = ''
                then 'in_response_to_tweet_id|not an integer id: ' || reply_raw
        end as problem
    from typed
)
select
    line,
    breaks,
    nullif(split_part(problem, '|', 1), '') as problem_field,
    nullif(substr(problem, strpos(problem, '|') + 1), '') as problem_reason,
    coalesce(shape_excerpt, concat_ws(',', coalesce(tweet_id_raw, ''), coalesce(author, ''),
                                      coalesce(created_raw, ''), coalesce(text, ''))) as excerpt,
    'twitter' as platform,
    post_id,
    author,
    -- twcs: brand accounts are the non-numeric authors of outbound (inbound=False) tweets
    not inbound and not regexp_matches(author, '^\\d+$') as is_org_author,
    created_ts as created_at,
    nullif(in_reply_to, '') as in_reply_to,
    null::varchar as conversation_id,
    text,
    null::boolean as has_media,
    null::bigint as like_count,
    null::bigint as repost_count,
    null::bigint as reply_count
from checked
"""


@dataclass(frozen=True)
class CsvLayout:
    """What the header line says: the delimiter, and where each twcs column is among the fields."""
    delimiter: str
    width: int                      # fields a record has (a leading index column included)
    positions: dict[str, int]       # twcs column -> field index, for the columns the file has

    @property
    def required_past(self) -> int:
        """The index of the last required field: a shorter record lacks a required value."""
        return max(self.positions[name] for name in REQUIRED_COLUMNS)


def _layout(path: Path, first_line: str) -> CsvLayout:
    """The layout from the header line (a leading unnamed index column is not data)."""
    found_by: dict[str, list[str]] = {}
    for delimiter in DELIMITERS:
        header = next(csv.reader([first_line], delimiter=delimiter), [])
        # pandas-written copies carry an unnamed index column first; it is not data.
        first = header[0].strip().lower() if header else ""
        skip_index = first in ("", "unnamed: 0")
        names = [name.strip() for name in (header[1:] if skip_index else header)]
        if all(name in names for name in REQUIRED_COLUMNS):
            offset = 1 if skip_index else 0
            return CsvLayout(delimiter, len(names) + offset,
                             {name: names.index(name) + offset for name in ALL_COLUMNS if name in names})
        found_by[delimiter] = names
    names = found_by[","]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    raise InputFileError(
        path, f"missing required column(s): {', '.join(missing)} (found: {', '.join(names)}; "
              f"looked for comma-, semicolon- and tab-separated columns)", 1)


def _read_layout(path: Path, encoding: str) -> CsvLayout:
    with open_text(path, newline="", encoding=encoding) as handle:
        try:
            first_line = handle.readline()
        except UnicodeDecodeError as exc:
            raise InputFileError(path, f"not valid {encoding_label(encoding)} ({exc.reason})", 1) from None
    if not first_line.strip():
        raise InputFileError(path, "file is empty; expected a header line")
    return _layout(path, first_line)


def _csv_sql(layout: CsvLayout) -> str:
    """DuckDB's reader over the file's fields (c0, c1, ...: every field varchar, an empty one '',
    a missing one null) as the `raw` records _CHECKS reads. Identifiers are generated here;
    values are parameters."""
    fields = [f"c{i}" for i in range(layout.width + SPARE_COLUMNS)]
    present = " + ".join(f"({name} is not null)::int" for name in fields)
    every_field = ", ".join(fields)
    picked = ",\n        ".join(
        f"c{layout.positions[name]} as {name}" if name in layout.positions else f"null::varchar as {name}"
        for name in ALL_COLUMNS)
    return f"""
with fields as (
    select *, {present} as found, concat({every_field}) as joined
    from read_csv($path, columns = $columns, header = true, delim = $delimiter, quote = '"', escape = '"',
                  auto_detect = false, strict_mode = false, null_padding = true, parallel = false,
                  nullstr = chr(0), allow_quoted_nulls = false, max_line_size = $max_line_size,
                  buffer_size = $buffer_size)
),
raw as (
    select
        null::bigint as line,
        -- records cut short keep their leading fields when only optional ones are missing, as
        -- pandas reads them; any other count of fields is unusable
        case when found <> $width and not (found < $width and found > $required_past)
             then '|expected ' || $width || ' fields, found '
                  || case when found = {len(fields)} then 'at least ' else '' end || found end as shape_problem,
        case when found <> $width and not (found < $width and found > $required_past)
             then concat_ws($delimiter, {every_field}) end as shape_excerpt,
        -- line breaks inside quoted fields: physical lines the record takes beyond its first
        case when contains(joined, chr(10)) or contains(joined, chr(13))
             then length(joined) * 2 - length(replace(joined, chr(10), '')) - length(replace(joined, chr(13), ''))
                  - (length(joined) - length(replace(joined, chr(13) || chr(10), ''))) // 2
             else 0 end as breaks,
        {picked}
    from fields
),
{_CHECKS}"""


class _PhysicalLines:
    """The physical line each record of DuckDB's reader starts on, batch by batch. The reader gives
    no positions: a record takes one line plus the line breaks inside its quoted fields, and the
    empty lines between records, which the reader skips, come from a pass over the file's bytes
    (an empty line inside a quoted field belongs to its record)."""

    def __init__(self, empty: Iterator[int]):
        self._empty = empty
        self._pending = next(self._empty, None)
        self._next_start = 2           # the header is line 1
        self._skipped = 0              # empty lines between records so far

    def starts(self, breaks: np.ndarray) -> np.ndarray:
        count = len(breaks)
        if not count:
            return np.zeros(0, np.int64)
        # lines as if no empty line lay between records
        packed = self._next_start + np.arange(count) + np.concatenate(([0], np.cumsum(breaks)[:-1]))
        end = packed[-1] + breaks[-1]
        skipped_before = self._skipped
        skipped_at = []
        while self._pending is not None and self._pending - self._skipped <= end:
            at = self._pending - self._skipped
            record = np.searchsorted(packed, at, side="right") - 1
            if not (record >= 0 and packed[record] < at <= packed[record] + breaks[record]):
                skipped_at.append(at)
                self._skipped += 1
            self._pending = next(self._empty, None)
        self._next_start = end + 1
        return packed + skipped_before + np.searchsorted(np.array(skipped_at, np.int64), packed, side="right")


@dataclass
class RawBatch:
    """JSONL records (tuples in ALL_COLUMNS order) plus the line each is on."""
    lines: list[int] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)

    def add(self, line: int, row: tuple) -> None:
        self.lines.append(line)
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.lines)

    def to_arrow(self) -> pa.Table:
        columns = list(zip(*self.rows)) if self.rows else [[] for _ in ALL_COLUMNS]
        data = {"line": pa.array(self.lines, pa.int64()),
                "shape_problem": pa.nulls(len(self.lines), pa.string()),
                "shape_excerpt": pa.nulls(len(self.lines), pa.string()),
                "breaks": pa.array(np.zeros(len(self.lines), np.int64))}
        data.update({name: pa.array(values, pa.string()) for name, values in zip(ALL_COLUMNS, columns)})
        return pa.table(data)


def _records_from_jsonl(path: Path, on_reject: Callable[[Rejection], None],
                        encoding: str) -> Iterator[tuple[int, tuple]]:
    with open_text(path, encoding=encoding) as handle:
        line = 0
        while True:
            try:
                text = handle.readline()
            except UnicodeDecodeError as exc:
                raise InputFileError(path, f"not valid {encoding_label(encoding)} ({exc.reason})", line + 1) from None
            if not text:
                return
            line += 1
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                on_reject((line, None, f"malformed JSON: {getattr(exc, 'msg', 'nesting too deep')}",
                           text))
                continue
            if not isinstance(obj, dict):
                on_reject((line, None, f"expected a JSON object, found {type(obj).__name__}", text))
                continue
            yield line, tuple(_json_scalar(obj.get(name)) for name in ALL_COLUMNS)


def _json_scalar(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value)[:200]


@dataclass
class CheckedBatch:
    """One batch as the sink takes it: the posts, the records set aside, how many records it read."""
    posts: pa.Table
    rejected: list[Rejection]
    read: int


def _split(checked: pa.Table | pa.RecordBatch, lines: np.ndarray | None = None) -> CheckedBatch:
    """Posts and rejections of checked records; `lines` gives their lines when the SQL could not."""
    problem = checked.column("problem_reason")
    bad_mask = pc.is_valid(problem)
    good = checked.filter(pc.invert(bad_mask))
    posts = pa.Table.from_batches([good]) if isinstance(good, pa.RecordBatch) else good
    bad = checked.filter(bad_mask)
    rejected = []
    if bad.num_rows:
        bad_lines = (lines[pc.indices_nonzero(bad_mask).to_numpy()].tolist() if lines is not None
                     else bad.column("line").to_pylist())
        for line, field_name, reason, excerpt in zip(
                bad_lines, bad.column("problem_field").to_pylist(), bad.column("problem_reason").to_pylist(),
                bad.column("excerpt").to_pylist()):
            rejected.append((int(line), field_name, reason, (excerpt or "")[:500]))
    return CheckedBatch(posts.select(POST_BATCH_SCHEMA.names), rejected, checked.num_rows)


@contextmanager
def _reader() -> Iterator[duckdb.DuckDBPyConnection]:
    # the importer's caller draws any progress: DuckDB's own bar would write to stdout
    with duckdb.connect(config={"memory_limit": READER_MEMORY_LIMIT}) as reader:
        reader.execute("set TimeZone = 'UTC'")
        try:
            reader.execute("set enable_progress_bar = false")
        except duckdb.InvalidInputException:
            pass  # inside Jupyter without ipywidgets DuckDB refuses the setting (and draws no bar)
        yield reader


def _csv_batches(path: Path, encoding: str) -> Iterator[CheckedBatch]:
    layout = _read_layout(path, encoding)
    with utf8_file(path, encoding) as readable, _reader() as reader:
        columns = {f"c{i}": "varchar" for i in range(layout.width + SPARE_COLUMNS)}
        params = {"path": str(readable), "columns": columns, "delimiter": layout.delimiter,
                  "width": layout.width, "required_past": layout.required_past,
                  "max_line_size": MAX_RECORD_BYTES, "buffer_size": READ_BUFFER_BYTES}
        empty = empty_lines(readable)
        lines = _PhysicalLines(empty)
        # one batch is held back: whether the file ends inside its last record's quoted field is
        # known only once the reader has finished
        last_line, last_batch = None, None
        try:
            stream = reader.execute(_csv_sql(layout), params).to_arrow_reader(BATCH_ROWS)
            for checked in stream:
                starts = lines.starts(checked.column("breaks").to_numpy())
                if last_batch is not None:
                    yield last_batch
                last_batch = _split(checked, starts)
                last_line = int(starts[-1]) if len(starts) else last_line
        except duckdb.Error as exc:
            raise InputFileError(path, f"cannot read as CSV: {str(exc).splitlines()[0]}") from None
        finally:
            empty.close()
        if last_batch is not None:
            if last_line is not None and text_from_line(readable, last_line).count(b'"') % 2:
                last_batch = _without_last_record(last_batch, last_line)
            yield last_batch


def _read_ahead(batches: Iterator[CheckedBatch]) -> Iterator[CheckedBatch]:
    """The batches, read one ahead in a thread while the caller stores the previous one (DuckDB
    releases the GIL in both). Memory holds one more batch; an error reading is raised here, and
    the reading stops when the caller stops."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    finished = object()

    def read() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        handoff.put((batch, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put((finished, None))
        except BaseException as exc:  # handed to the caller, which raises it
            handoff.put((None, exc))
        finally:
            batches.close()

    reader = threading.Thread(target=read, name="twcs-reader", daemon=True)
    reader.start()
    try:
        while True:
            batch, error = handoff.get()
            if error is not None:
                raise error
            if batch is finished:
                return
            yield batch
    finally:
        stop.set()
        while reader.is_alive():
            try:
                handoff.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()


def _without_last_record(batch: CheckedBatch, line: int) -> CheckedBatch:
    """The batch with its last record set aside: the file ends inside that record's quoted field."""
    rejected = [r for r in batch.rejected if r[0] != line]
    if len(rejected) == len(batch.rejected) and batch.posts.num_rows:
        posts = batch.posts.slice(0, batch.posts.num_rows - 1)
    else:
        posts = batch.posts
    return CheckedBatch(posts, rejected + [(line, None, TRUNCATED, "")], batch.read)


def _jsonl_batches(path: Path, encoding: str, on_reject: Callable[[Rejection], None]) -> Iterator[CheckedBatch]:
    with _reader() as reader:
        batch = RawBatch()
        for line, row in _records_from_jsonl(path, on_reject, encoding):
            batch.add(line, row)
            if len(batch) >= BATCH_ROWS:
                yield _check(reader, batch)
                batch = RawBatch()
        if len(batch):
            yield _check(reader, batch)


def _check(reader: duckdb.DuckDBPyConnection, batch: RawBatch) -> CheckedBatch:
    reader.register("raw_records", batch.to_arrow())
    try:
        return _split(reader.execute("with raw as (from raw_records), " + _CHECKS).to_arrow_table())
    finally:
        reader.unregister("raw_records")


def import_twcs(sink: RunSink, path: str | Path, *, source: str | None = None, encoding: str = UTF8,
                progress: Callable[[int], None] | None = None) -> tuple[int, LoadCounts]:
    """Import one twcs CSV/JSONL file. Returns (run_id, counts).

    The file is UTF-8 (a byte-order mark, as Excel writes it, is skipped) unless `encoding` names
    another (e.g. "latin-1"); the columns are comma-, semicolon- or tab-separated, as the header
    line shows.

    Row problems are recorded in rejected_rows with their physical line and the rest loads.
    File-level problems (unreadable, another encoding, missing columns) are found before anything
    is stored and raise InputFileError. Each batch of BATCH_ROWS records commits on its own, so
    memory stays bounded; loads merge on (platform, post_id), so re-running an interrupted import
    completes it without duplicates.
    """
    path = Path(path)
    source = source or f"twcs:{path.name}"
    unreadable: list[Rejection] = []     # JSONL lines the tokeniser could not use, stored with the next batch

    with file_run(sink, source, "twcs") as run:
        def on_reject(rejection: Rejection) -> None:
            unreadable.append(rejection)
            run.counts.read += 1

        check_encoding(path, encoding, other_encoding_hint=" or import it with --encoding cp1252 (or latin-1)")
        batches = (_jsonl_batches(path, encoding, on_reject) if path.suffix.lower() in {".jsonl", ".ndjson"}
                   else _read_ahead(_csv_batches(path, encoding)))
        with closing(batches):
            for batch in batches:
                run.counts.read += batch.read
                run.commit(batch.posts, unreadable + batch.rejected)
                unreadable.clear()
                if progress:
                    progress(batch.read)
        run.commit(None, unreadable)     # JSON lines set aside after the last batch
    return run.run_id, run.counts
