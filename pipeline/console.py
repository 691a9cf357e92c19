"""Terminal rendering: tables of frames and the run summary. Pure: everything shown is passed in."""
from __future__ import annotations

import re
import sys

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from models.spec import MODEL_IDS
from pipeline.estimation import describe_estimate
from pipeline.summary import RunSummary

# Piped output (CI logs, `make run`) gets a wide console so feature tables are not squeezed.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

# the core columns fit a terminal; `maturity features` shows every signal
SUMMARY_FEATURE_COLUMNS = ["org", "account", "platform", "posts", "mentions", "answered", "response_rate",
                           "first_reply_median_s", "first_reply_p90_s"]

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class UnknownFormat(ValueError):
    pass


def print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=2) + "\n")
    elif fmt == "table":
        table = Table(title=title, show_lines=False)
        for column in frame.columns:
            numeric = pd.api.types.is_numeric_dtype(frame[column])
            table.add_column(Text(str(column)), justify="right" if numeric else "left")
        for row in frame.itertuples(index=False):
            # Text, not str: a value such as "[/]" or "[bold]" is data, never console markup; control
            # characters are shown escaped so data cannot drive the terminal (csv/json stay exact)
            table.add_row(*(Text(_visible(_cell(v))) for v in row))
        console.print(table)
    else:
        raise UnknownFormat(f"unknown format {fmt!r}; use table, csv or json")


def _visible(text: str) -> str:
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def print_summary(summary: RunSummary, features: pd.DataFrame | None, estimates: pd.DataFrame | None,
                  orgs_without_posts: set[str]) -> None:
    """The run summary with the account features (core columns) and the stage table it produced."""
    sources = Table(title="sources")
    for column in ("source", "status", "read", "loaded", "rejected", "seconds", "note"):
        sources.add_column(column, justify="right" if column in ("read", "loaded", "rejected", "seconds") else "left")
    for s in summary.sources:
        sources.add_row(s.name, s.status, str(s.read), str(s.loaded), str(s.rejected), f"{s.seconds:.2f}",
                        s.message or "")
    console.print(sources)
    if summary.features is not None and features is not None:
        frame = features[features["posts"] > 0] if "posts" in features else features
        frame = frame[[c for c in SUMMARY_FEATURE_COLUMNS if c in frame]]
        cached = ", inputs unchanged: cached" if summary.features.cached else ""
        print_frame(frame, "table", title=f"features as of {summary.as_of:%Y-%m-%d %H:%M} UTC, all data "
                                          f"({summary.features.seconds:.2f} s{cached})")
    if summary.estimates is not None and estimates is not None:
        print_stage_table(estimates, orgs_without_posts)
    unassigned = summary.unassigned_accounts
    if unassigned:
        console.print(f"{len(unassigned)} org accounts in the data are not assigned to a configured "
                      f"organisation: {', '.join(unassigned[:12])}{' …' if len(unassigned) > 12 else ''}",
                      highlight=False)
    for failure in summary.failures:
        console.print(Text.assemble(("failed: ", "bold red"), failure.describe()))
    console.print(f"run {summary.run_id[:8]}: {summary.status}", highlight=False)


def print_stage_table(frame: pd.DataFrame, orgs_without_posts: set[str], out: Console = console) -> None:
    """Organisation x model stage table (organisations with any estimate that is not thin data first)."""
    if frame.empty:
        return
    as_of, window_days = frame["as_of"].iloc[0], int(frame["window_days"].iloc[0])
    cells = []
    for r in frame.itertuples(index=False):
        text = describe_estimate(r.model, r.status, r.stage_low_index, r.stage_high_index, r.stages_possible)
        cells.append(text if r.status == "insufficient_evidence" else f"{text} ({r.confidence:.2f})")
    frame = frame.assign(cell=cells)
    wide = frame.pivot(index="org", columns="model", values="cell").reindex(columns=MODEL_IDS)
    judged = set(frame[frame["status"] != "insufficient_evidence"]["org"])
    thin = [org for org in wide.index if org not in judged]
    table = Table(title=f"maturity stage (confidence) as of {as_of:%Y-%m-%d %H:%M} UTC, "
                        f"estimated on the last {window_days} days")
    table.add_column("organisation")
    for model in MODEL_IDS:
        table.add_column(model)
    for org, row in wide.loc[[o for o in wide.index if o in judged]].iterrows():
        table.add_row(org, *(row[m] if isinstance(row[m], str) else "-" for m in MODEL_IDS))
    out.print(table)
    for orgs, what in (([o for o in thin if o in orgs_without_posts], "have no posts stored yet (configured, no data)"),
                       ([o for o in thin if o not in orgs_without_posts],
                        "have too little data to judge (insufficient evidence)")):
        if orgs:
            out.print(f"{len(orgs)} organisations {what}: {', '.join(orgs[:10])}{' …' if len(orgs) > 10 else ''}",
                          highlight=False)
