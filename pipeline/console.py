"""Terminal rendering: tables of frames and the run summary. Pure: everything shown is passed in."""
from __future__ import annotations

import re
import sys
from typing import Iterable

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from features.runner import feature_catalog
from models.spec import MODEL_IDS, load_model
from pipeline.estimation import describe_estimate
from pipeline.summary import RunSummary

# Piped output (CI logs, `make run`) gets a wide console so feature tables are not squeezed.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

# the core columns fit a terminal; `maturity features` shows every signal
SUMMARY_FEATURE_COLUMNS = ["org", "account", "platform", "posts", "mentions", "answered", "response_rate",
                           "first_reply_median_s", "first_reply_p90_s"]
# features measured in seconds (their unit in the feature dictionary)
DURATION_FEATURE_COLUMNS = frozenset(f.name for f in feature_catalog() if f.unit == "seconds")

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


PROVISIONAL_NEXT_STEP = ("Write a config with `maturity orgs suggest > orgs.toml`, edit it, then "
                         "`maturity orgs apply orgs.toml`.")
PROVISIONAL_NOTE = ("provisional: no organisation config yet, so each account found in the data is estimated as "
                    f"its own organisation. {PROVISIONAL_NEXT_STEP}")


class UnknownFormat(ValueError):
    pass


def model_heading(model_id: str) -> str:
    """A stage table's column heading: the model's name (models/<id>.toml) and the id commands take."""
    return f"{load_model(model_id).name} ({model_id})"


def human_duration(seconds: float) -> str:
    """A duration as people read it: 45 s, 12 m 5 s, 2 h 43 m, 3 d 4 h (negative: a trend went down)."""
    sign, left = ("-" if seconds < 0 else ""), round(abs(seconds))
    for unit, size, smaller, smaller_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if left >= size:
            whole, rest = divmod(left, size)
            return f"{sign}{whole} {unit}" + (f" {rest // smaller_size} {smaller}" if rest // smaller_size else "")
    return f"{sign}{left} s"


def print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None, *,
                durations: Iterable[str] = ()) -> None:
    """A frame as a table, csv or json. `durations`: columns in seconds, shown as human durations in a
    table (csv and json keep the exact seconds)."""
    durations = set(durations)
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
            table.add_row(*(Text(_visible(human_duration(v) if c in durations and pd.notna(v) else _cell(v)))
                            for c, v in zip(frame.columns, row)))
        console.print(table)
    else:
        raise UnknownFormat(f"unknown format {fmt!r}; use table, csv or json")


def _visible(text: str) -> str:
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(value) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def print_summary(summary: RunSummary, features: pd.DataFrame | None, estimates: pd.DataFrame | None,
                  orgs_without_posts: set[str], provisional: set[str] = frozenset()) -> None:
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
                                          f"({summary.features.seconds:.2f} s{cached})",
                    durations=DURATION_FEATURE_COLUMNS)
    if summary.estimates is not None and estimates is not None:
        print_stage_table(estimates, orgs_without_posts, provisional=provisional)
    unassigned = summary.unassigned_accounts
    if unassigned:
        console.print(f"{len(unassigned)} org accounts in the data are not assigned to a configured "
                      f"organisation: {', '.join(unassigned[:12])}{' …' if len(unassigned) > 12 else ''}",
                      highlight=False)
    for failure in summary.failures:
        console.print(Text.assemble(("failed: ", "bold red"), failure.describe()))
    console.print(f"run {summary.run_id[:8]}: {summary.status}", highlight=False)


def print_stage_table(frame: pd.DataFrame, orgs_without_posts: set[str], out: Console = console,
                      provisional: set[str] = frozenset()) -> None:
    """Organisation x model stage table (organisations with any estimate that is not thin data first);
    `provisional` organisations (no config yet, pipeline/orgs.py) are marked."""
    if frame.empty:
        return
    as_of, window_days = frame["as_of"].iloc[0], int(frame["window_days"].iloc[0])
    cells = []
    for r in frame.itertuples(index=False):
        text = describe_estimate(r.model, r.status, r.stage_low_index, r.stage_high_index, r.stages_possible,
                                 compact=True)
        cells.append(text if r.status == "insufficient_evidence" else f"{text} ({r.confidence:.2f})")
    frame = frame.assign(cell=cells)
    wide = frame.pivot(index="org", columns="model", values="cell").reindex(columns=MODEL_IDS)
    judged = set(frame[frame["status"] != "insufficient_evidence"]["org"])
    thin = [org for org in wide.index if org not in judged]
    table = Table(title=f"maturity stage (confidence) as of {as_of:%Y-%m-%d %H:%M} UTC, "
                        f"estimated on the last {window_days} days",
                  caption="≥ X: at least X, higher stages not assessable from these sources; "
                          "A / B: the quadrants still possible")
    table.add_column("organisation")
    for model in MODEL_IDS:
        table.add_column(model_heading(model))
    for org, row in wide.loc[[o for o in wide.index if o in judged]].iterrows():
        table.add_row(f"{org} (provisional)" if org in provisional else org,
                      *(row[m] if isinstance(row[m], str) else "-" for m in MODEL_IDS))
    out.print(table)
    if provisional:
        out.print(PROVISIONAL_NOTE, highlight=False)
    for orgs, what in (([o for o in thin if o in orgs_without_posts], "have no posts stored yet (configured, no data)"),
                       ([o for o in thin if o not in orgs_without_posts],
                        "have too little data to judge (insufficient evidence)")):
        if orgs:
            # every one: the list is what an analyst acts on (configure, collect more), so it is not cut
            out.print(f"{len(orgs)} organisations {what}: {', '.join(orgs)}", highlight=False)
