"""File connector for the Customer Support on Twitter (twcs) format, as CSV or JSONL.

Python only tokenises (csv / json) and tracks physical line numbers; validation and typing happen
per batch in DuckDB SQL (a private in-memory database, apart from the store), so a bad value is
reported with its line and field while the rest loads.
"""
from __future__ import annotations

import csv
import json
import operator
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.files import UTF8, InputFileError, check_encoding, encoding_label, file_run, open_text
from connectors.sink import LoadCounts, Rejection, RunSink

PLATFORM = "twitter"
REQUIRED_COLUMNS = ["tweet_id", "author_id", "inbound", "created_at"]
OPTIONAL_COLUMNS = ["text", "response_tweet_id", "in_response_to_tweet_id"]
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
BATCH_ROWS = 100_000
# Tried in this order on the header line; the first that yields every required column is the file's.
# Spreadsheets set to a European locale save "CSV" with semicolons.
DELIMITERS = (",", ";", "\t")

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass
class RawBatch:
    """Raw records (tuples in ALL_COLUMNS order) plus the physical line each record starts on."""
    lines: list[int] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)

    def add(self, line: int, row: tuple) -> None:
        self.lines.append(line)
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.lines)

    def to_arrow(self) -> pa.Table:
        columns = list(zip(*self.rows)) if self.rows else [[] for _ in ALL_COLUMNS]
        data = {"line": pa.array(self.lines, pa.int64())}
        data.update({name: pa.array(values, pa.string()) for name, values in zip(ALL_COLUMNS, columns)})
        return pa.table(data)


# Typing and validation of one raw batch. The first failing field names the rejection reason.
_VALIDATE_SQL = """
with typed as (
    select
        line,
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
    from raw_batch
),
checked as (
    select *,
        case
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
select * from checked
"""


def _header(path: Path, first_line: str) -> tuple[str, list[str], bool]:
    """The delimiter, the column names and whether a leading unnamed index column is to be skipped."""
    found_by: dict[str, list[str]] = {}
    for delimiter in DELIMITERS:
        header = next(csv.reader([first_line], delimiter=delimiter), [])
        # pandas-written copies carry an unnamed index column first; it is not data.
        first = header[0].strip().lower() if header else ""
        skip_index = first in ("", "unnamed: 0")
        names = [name.strip() for name in (header[1:] if skip_index else header)]
        if all(name in names for name in REQUIRED_COLUMNS):
            return delimiter, names, skip_index
        found_by[delimiter] = names
    names = found_by[","]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    raise InputFileError(
        path, f"missing required column(s): {', '.join(missing)} (found: {', '.join(names)}; "
              f"looked for comma-, semicolon- and tab-separated columns)", 1)


def _records_from_csv(path: Path, on_reject: Callable[[Rejection], None],
                      encoding: str) -> Iterator[tuple[int, tuple]]:
    with open_text(path, newline="", encoding=encoding) as handle:
        try:
            first_line = handle.readline()
        except UnicodeDecodeError as exc:
            raise InputFileError(path, f"not valid {encoding_label(encoding)} ({exc.reason})", 1) from None
        if not first_line.strip():
            raise InputFileError(path, "file is empty; expected a header line")
        delimiter, names, skip_index = _header(path, first_line)
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        header_lines = 1
        offset = 1 if skip_index else 0
        width = len(names) + offset
        positions = {name: names.index(name) + offset for name in ALL_COLUMNS if name in names}
        optional_tail = {i for name, i in positions.items() if name in OPTIONAL_COLUMNS}
        # rows are padded with one None past the last field; absent optional columns read it
        pick = operator.itemgetter(*(positions.get(name, width) for name in ALL_COLUMNS))
        padding = [None]
        start = header_lines + reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise InputFileError(path, f"not valid {encoding_label(encoding)} ({exc.reason}); is the file in another "
                                           "encoding?", header_lines + reader.line_num + 1) from None
            except csv.Error as exc:
                reason = str(exc)
                if "end of data" in reason:
                    reason = "file ends inside a quoted field (truncated file?)"
                on_reject((start, None, f"malformed CSV: {reason}", ""))
                start = header_lines + reader.line_num + 1
                continue
            line, start = start, header_lines + reader.line_num + 1
            if not row:  # blank line
                continue
            if len(row) != width:
                # Rows cut short keep their leading fields when only optional ones are missing,
                # as pandas does; anything else is unusable.
                short_ok = len(row) < width and all(i < len(row) or i in optional_tail
                                                    for i in positions.values())
                if not short_ok:
                    on_reject((line, None, f"expected {width} fields, found {len(row)}",
                               delimiter.join(row)))
                    continue
                row += [None] * (width - len(row))
            row += padding
            yield line, pick(row)


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


def _batches(path: Path, on_reject: Callable[[Rejection], None], encoding: str) -> Iterator[RawBatch]:
    reader = _records_from_jsonl if path.suffix.lower() in {".jsonl", ".ndjson"} else _records_from_csv
    batch = RawBatch()
    for line, row in reader(path, on_reject, encoding):
        batch.add(line, row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = RawBatch()
    if len(batch):
        yield batch


def import_twcs(sink: RunSink, path: str | Path, *, source: str | None = None, encoding: str = UTF8,
                progress: Callable[[int], None] | None = None) -> tuple[int, LoadCounts]:
    """Import one twcs CSV/JSONL file. Returns (run_id, counts).

    The file is UTF-8 (a byte-order mark, as Excel writes it, is skipped) unless `encoding` names
    another (e.g. "latin-1"); the columns are comma-, semicolon- or tab-separated, as the header
    line shows.

    Row problems are recorded in rejected_rows and the rest loads. File-level problems (unreadable,
    another encoding, missing columns) are found before anything is stored and raise
    InputFileError. Each batch of BATCH_ROWS records commits on its own, so memory stays bounded;
    loads merge on (platform, post_id), so re-running an interrupted import completes it without
    duplicates.
    """
    path = Path(path)
    source = source or f"twcs:{path.name}"
    unreadable: list[Rejection] = []     # records the tokeniser could not use, stored with the next batch

    with file_run(sink, source, "twcs") as run, duckdb.connect() as validator:
        validator.execute("set TimeZone = 'UTC'")

        def on_reject(rejection: Rejection) -> None:
            unreadable.append(rejection)
            run.counts.read += 1

        check_encoding(path, encoding, other_encoding_hint=" or import it with --encoding cp1252 (or latin-1)")
        for batch in _batches(path, on_reject, encoding):
            run.counts.read += len(batch)
            posts, invalid = _validate(validator, batch)
            run.commit(posts, unreadable + invalid)
            unreadable.clear()
            if progress:
                progress(len(batch))
        run.commit(None, unreadable)     # record-level CSV/JSON errors after the last batch
    return run.run_id, run.counts


def _validate(validator: duckdb.DuckDBPyConnection, batch: RawBatch) -> tuple[pa.Table, list[Rejection]]:
    """The batch's valid records as posts, and a rejection (line, field, reason) for each other one."""
    validator.register("raw_batch", batch.to_arrow())
    try:
        checked = validator.execute(_VALIDATE_SQL).to_arrow_table()
    finally:
        validator.unregister("raw_batch")
    posts, bad = _split(checked)
    invalid = []
    for row in bad:
        field_name, reason = row["problem"].split("|", 1)
        invalid.append((row["line"], field_name, reason, _excerpt(row)))
    return posts, invalid


def _split(checked: pa.Table) -> tuple[pa.Table, list[dict]]:
    problem = checked.column("problem")
    bad_mask = pc.is_valid(problem)
    bad = checked.filter(bad_mask).to_pylist()
    good = checked.filter(pc.invert(bad_mask))
    author = good.column("author")
    numeric_author = pc.match_substring_regex(author, r"^\d+$")
    posts = pa.table({
        "platform": pa.array([PLATFORM] * good.num_rows, pa.string()),
        "post_id": good.column("post_id"),
        "author": author,
        # twcs: brand accounts are the non-numeric authors of outbound (inbound=False) tweets
        "is_org_author": pc.and_(pc.invert(good.column("inbound")), pc.invert(numeric_author)),
        "created_at": good.column("created_ts"),
        "in_reply_to": pc.if_else(pc.equal(good.column("in_reply_to"), ""), None,
                                  good.column("in_reply_to")),
        "conversation_id": pa.nulls(good.num_rows, pa.string()),
        "text": good.column("text"),
        "has_media": pa.nulls(good.num_rows, pa.bool_()),
        "like_count": pa.nulls(good.num_rows, pa.int64()),
        "repost_count": pa.nulls(good.num_rows, pa.int64()),
        "reply_count": pa.nulls(good.num_rows, pa.int64()),
    })
    return posts, bad


def _excerpt(row: dict) -> str:
    parts = [row.get("tweet_id_raw"), row.get("author"), row.get("created_raw"), row.get("text")]
    return ",".join("" if p is None else str(p) for p in parts)[:500]
