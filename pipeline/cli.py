"""`maturity` command line. Commands are thin: they parse options and call tested functions."""
from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.twcs import InputFileError, import_twcs
from features.runner import FeatureError, build_features, dictionary_markdown, features_frame
from pipeline.config import ConfigError, apply_config, load_config
from pipeline.store import Store, StoreError, default_db_path

app = typer.Typer(help="Social-media maturity inference: import public activity, compute signals, "
                       "estimate maturity stages.", no_args_is_help=True, add_completion=False)
import_app = typer.Typer(help="Import files into the store.", no_args_is_help=True)
app.add_typer(import_app, name="import")

# Piped output (CI logs, `make run`) gets a wide console so feature tables are not squeezed.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

DbOption = Annotated[Optional[Path], typer.Option("--db", help="DuckDB file (default: $MATURITY_DB or "
                                                               "data/maturity.duckdb).")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Organisation/pipeline TOML config.")]
AsOfOption = Annotated[Optional[datetime], typer.Option("--as-of", help="Point in time (UTC); default: "
                                                                        "the latest post stored.")]
FormatOption = Annotated[str, typer.Option("--format", help="table, csv or json.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (for scheduled runs).")]

KNOWN_ERRORS = (StoreError, ConfigError, InputFileError, FeatureError)


def fail(message: str) -> None:
    err_console.print("[bold red]error:[/]", end=" ")
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(1)


def open_store(db: Path | None, *, read_only: bool = False, config=None) -> Store:
    path = db or (config.database if config is not None and config.database else None) or default_db_path()
    return Store(path, read_only=read_only,
                 keep_customer_text=bool(config and config.keep_customer_text))


def print_frame(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    if fmt == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif fmt == "json":
        sys.stdout.write(frame.to_json(orient="records", date_format="iso", indent=2) + "\n")
    elif fmt == "table":
        table = Table(title=title, show_lines=False)
        for column in frame.columns:
            numeric = pd.api.types.is_numeric_dtype(frame[column])
            table.add_column(str(column), justify="right" if numeric else "left")
        for row in frame.itertuples(index=False):
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
    else:
        raise typer.BadParameter(f"unknown format {fmt!r}; use table, csv or json", param_hint="--format")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def progress_bar(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet, transient=True)


@import_app.command("twcs")
def import_twcs_command(
    path: Annotated[Path, typer.Argument(help="twcs-format CSV or JSONL file.")],
    db: DbOption = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Import a Customer Support on Twitter (twcs) CSV or JSONL file; prints read/loaded/rejected."""
    try:
        cfg = load_config(config) if config else None
        with open_store(db, config=cfg) as store:
            if cfg:
                apply_config(store, cfg)
            with progress_bar(quiet) as bar:
                task = bar.add_task(f"importing {path.name}", total=None)
                run_id, counts = import_twcs(store, path, progress=lambda n: bar.advance(task, n))
            if not quiet:
                console.print(f"{path}: read {counts.read}, loaded {counts.loaded}, rejected {counts.rejected}"
                              f" (run {run_id})", highlight=False)
                if counts.rejected:
                    console.print("  rejected rows are in the rejected_rows table, e.g.:", highlight=False)
                    for line, reason in store.con.execute(
                            "select line, reason from rejected_rows where run_id = ? order by line limit 5",
                            [run_id]).fetchall():
                        console.print(f"  line {line}: {reason}", highlight=False, markup=False)
    except KNOWN_ERRORS as exc:
        fail(str(exc))


@app.command("features")
def features_command(
    db: DbOption = None,
    as_of: AsOfOption = None,
    window: Annotated[int, typer.Option("--window", help="Trailing window in days (0 = all data).")] = 0,
    scope: Annotated[str, typer.Option("--scope", help="account or org.")] = "account",
    fmt: FormatOption = "table",
) -> None:
    """Compute features for as_of and print one row per account (or organisation)."""
    if scope not in ("account", "org"):
        raise typer.BadParameter("use account or org", param_hint="--scope")
    try:
        with open_store(db) as store:
            as_of = build_features(store, as_of, windows=(window,))
            frame = features_frame(store, as_of, window, scope)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    print_frame(frame, fmt, title=f"features as of {as_of:%Y-%m-%d %H:%M} UTC"
                                  f"{f', last {window} days' if window else ', all data'}")


@app.command("dictionary")
def dictionary_command(
    out: Annotated[Optional[Path], typer.Option("--out", help="Write Markdown here instead of stdout.")] = None,
) -> None:
    """Print (or write) the feature dictionary generated from features/sql."""
    text = dictionary_markdown()
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        sys.stdout.write(text)


@app.command("config-check")
def config_check_command(config: Annotated[Path, typer.Argument(help="TOML config to validate.")]) -> None:
    """Validate a config file and summarise it."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    accounts = sum(len(o.accounts) for o in cfg.organisations)
    console.print(f"{config}: {len(cfg.organisations)} organisations, {accounts} accounts, "
                  f"{len(cfg.sources)} sources: ok", highlight=False)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Option("--config", help="Pipeline TOML config (sources + organisations).")]
    = Path("data/demo.toml"),
    db: DbOption = None,
    as_of: AsOfOption = None,
    quiet: QuietOption = False,
) -> None:
    """Run the nightly flow once: ingest sources, build features, estimate, summarise."""
    from pipeline.flows import nightly

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    db_path = db or cfg.database or default_db_path()
    try:
        summary = nightly(config_path=str(config), db_path=str(db_path),
                          as_of=as_of.isoformat() if as_of else None)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if not quiet:
        from pipeline.summary import print_summary
        print_summary(summary, console)
    if summary.get("failures"):
        raise typer.Exit(1)


@app.command("serve")
def serve_command(
    config: Annotated[Path, typer.Option("--config", help="Pipeline TOML config.")] = Path("data/demo.toml"),
    db: DbOption = None,
    cron: Annotated[str, typer.Option("--cron", help="Cron schedule.")] = "0 2 * * *",
    timezone: Annotated[Optional[str], typer.Option("--timezone", help="Time zone of the schedule "
                                                    "(default: [settings] timezone, else UTC).")] = None,
) -> None:
    """Serve the nightly flow on a cron schedule (default 02:00) until interrupted."""
    from prefect import serve

    from pipeline.deploy import nightly_deployment

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    deployment = nightly_deployment(config, db or cfg.database or default_db_path(), cron=cron,
                                    timezone=timezone or cfg.timezone)
    serve(deployment)


def main() -> None:
    # Prefect's per-task INFO lines drown the summary; users can still raise the level themselves.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()


if __name__ == "__main__":
    main()
