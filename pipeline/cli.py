"""`maturity` command line. Commands are thin: they parse options and call tested functions."""
from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

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
            table.add_column(Text(str(column)), justify="right" if numeric else "left")
        for row in frame.itertuples(index=False):
            # Text, not str: a value such as "[/]" or "[bold]" is data, never console markup; control
            # characters are shown escaped so data cannot drive the terminal (csv/json stay exact)
            table.add_row(*(Text(_visible(_cell(v))) for v in row))
        console.print(table)
    else:
        raise typer.BadParameter(f"unknown format {fmt!r}; use table, csv or json", param_hint="--format")


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> str:
    return _CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() or abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def progress_bar(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet or not err_console.is_terminal, transient=True)


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
    quiet: QuietOption = False,
) -> None:
    """Compute features for as_of and print one row per account (or organisation); --quiet only builds."""
    if scope not in ("account", "org"):
        raise typer.BadParameter("use account or org", param_hint="--scope")
    try:
        with open_store(db) as store:
            with progress_bar(quiet) as bar:
                bar.add_task("building features", total=None)
                as_of = build_features(store.con, as_of, windows=(window,))
            frame = features_frame(store.con, as_of, window, scope)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if quiet:
        return
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
    runner: Annotated[str, typer.Option("--task-runner", help="Where per-organisation pulls and estimation "
                                        "run: threads (this process) or dask (docs/scale-out.md).")] = "threads",
    dask_address: Annotated[Optional[str], typer.Option("--dask-address", help="Dask scheduler, e.g. "
                                                        "tcp://10.0.0.5:8786 (default: a local cluster).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Run the nightly flow once: ingest sources, build features, estimate, summarise. Exits 1 when
    any source or organisation failed (the rest is stored)."""
    from pipeline.flows import RunFailures, nightly, task_runner

    try:
        cfg = load_config(config)
        flow = nightly.with_options(task_runner=task_runner(runner, dask_address))
    except ConfigError as exc:
        fail(str(exc))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task-runner") from None
    db_path = db or cfg.database or default_db_path()
    try:
        summary = flow(config_path=str(config), db_path=str(db_path), as_of=as_of.isoformat() if as_of else None)
    except RunFailures as failures:
        summary = failures.summary
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


@app.command("evaluate")
def evaluate_command(
    train_seed: Annotated[int, typer.Option("--train-seed", help="Seed of the training organisations.")] = 11,
    test_seed: Annotated[int, typer.Option("--test-seed", help="Seed of the held-out test organisations.")] = 12,
    orgs: Annotated[int, typer.Option("--orgs", help="Organisations per set.")] = 400,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    shifted: Annotated[bool, typer.Option("--shifted", help="Also report a shifted test set (noisier latency, "
                                                           "fewer mentions; no target).")] = False,
) -> None:
    """Train on synthetic organisations from one seed, test on held-out ones from another; per-model metrics."""
    import json

    from models.estimate import training_frame
    from models.evaluate import evaluate, meets_targets

    if fmt not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    with progress_bar(False) as bar:
        bar.add_task(f"training and evaluating on {orgs} + {orgs} synthetic organisations", total=None)
        train = training_frame(train_seed, orgs, prefix="train")
        result = evaluate(train_seed, test_seed, orgs, train=train)
        shifted_result = evaluate(train_seed, test_seed, orgs, train=train, shifted=True) if shifted else None
    report = {m: {k: v[k] for k in ("exact_accuracy", "within_one_accuracy", "macro_f1", "ece",
                                    "rules_only_exact_accuracy", "confusion", "n", "insufficient")}
              for m, v in result.items()}
    shifted_report = None
    if shifted:
        shifted_report = {m: {k: v[k] for k in report[m]} for m, v in shifted_result.items()}
    if fmt == "json":
        out = dict(report)
        if shifted_report:
            out["shifted"] = shifted_report
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    for title, rep in (("held-out", report), ("shifted (no target)", shifted_report)):
        if rep is None:
            continue
        frame = pd.DataFrame([{"model": m, **{k: v for k, v in r.items() if k != "confusion"}} for m, r in rep.items()])
        print_frame(frame, "table", title=f"evaluation, {title}: train seed {train_seed}, test seed {test_seed}, "
                                           f"{orgs} organisations each")
    missed = {m: v for m, v in meets_targets(result).items() if v}
    console.print("targets (exact >= 0.85, within-one >= 0.98, ECE <= 0.05): "
                  + ("met for every model" if not missed else "; ".join(f"{m}: {', '.join(v)}" for m, v in missed.items())),
                  highlight=False)


@app.command("estimate")
def estimate_command(db: DbOption = None, as_of: AsOfOption = None, quiet: QuietOption = False) -> None:
    """(Re)compute maturity estimates for every organisation and model from the stored features."""
    from models.estimate import estimate_store

    try:
        with open_store(db) as store, progress_bar(quiet) as bar:
            if as_of is not None or store.con.execute("select count(*) from features").fetchone()[0] == 0:
                task = bar.add_task("building features", total=None)
                build_features(store.con, as_of, windows=(0, 90))
                bar.remove_task(task)
            bar.add_task("estimating (trains the models on first use)", total=None)
            rows, used = estimate_store(store, as_of, log=None if quiet else
                                        (lambda m: bar.console.print(m, highlight=False)))
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if not quiet:
        ok = sum(r["status"] == "ok" for r in rows)
        console.print(f"{len(rows)} estimates as of {used:%Y-%m-%d %H:%M} UTC: {ok} ok, "
                      f"{len(rows) - ok} insufficient evidence", highlight=False)


@app.command("estimates")
def estimates_command(db: DbOption = None, fmt: FormatOption = "table") -> None:
    """Print the latest estimates: one row per organisation x model."""
    from models.estimate import stored_estimates

    try:
        with open_store(db, read_only=True) as store:
            frame = stored_estimates(store)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if frame.empty:
        fail("no estimates are stored yet; run `maturity estimate` or `maturity run` first")
    print_frame(frame[["org", "model", "stage", "stage_index", "confidence", "status"]], fmt,
                title=f"maturity estimates as of {frame['as_of'].iloc[0]:%Y-%m-%d %H:%M} UTC")


@app.command("explain")
def explain_command(
    org: Annotated[str, typer.Argument(help="Organisation id.")],
    model: Annotated[Optional[str], typer.Option("--model", help="smmm, s3m, forrester, altimeter or smi "
                                                                 "(default: all five).")] = None,
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Why an organisation is at its stage, and what the seed advises for the next one (with the measured gap)."""
    import json

    from models import dimensions as D
    from models.estimate import estimate, load_or_train, model_dir
    from models.explain import explain_row, render_text
    from models.spec import MODEL_IDS, ModelSpecError, load_model

    try:
        models = [load_model(model).id] if model else MODEL_IDS
    except ModelSpecError as exc:
        fail(str(exc))
    try:
        with open_store(db) as store:
            features, _, _ = D.org_frame(store)
            dims = D.compute(features)
            if org not in set(dims["org"]):
                fail(f"unknown organisation {org!r} (known: {', '.join(sorted(dims['org'])[:15])} …)")
            fitted = load_or_train(store, dims)
            train_files = sorted(model_dir(store.path).glob("train-*.parquet")) if model_dir(store.path) else []
            train_dims = pd.read_parquet(train_files[-1]) if train_files else None
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    row = dims[dims["org"] == org]
    results = [e for e in estimate(fitted, row) if e["model"] in models]
    explanations = [explain_row(row.iloc[0].to_dict(), e, fitted, train_dims) for e in results]
    if fmt == "json":
        sys.stdout.write(json.dumps(explanations, indent=2, default=str) + "\n")
    else:
        console.print("\n\n".join(render_text(e) for e in explanations), highlight=False, markup=False)


@app.command("label")
def label_command(
    org: Annotated[Optional[str], typer.Argument(help="Organisation id.")] = None,
    model: Annotated[Optional[str], typer.Argument(help="Model id.")] = None,
    stage: Annotated[Optional[str], typer.Argument(help="Stage name as in models/<model>.toml.")] = None,
    csv_file: Annotated[Optional[Path], typer.Option("--csv", help="CSV with columns org, model, stage.")] = None,
    db: DbOption = None,
) -> None:
    """Record analyst labels (first-class training data; they survive retraining and regeneration)."""
    from models.labels import LabelError, add_labels, read_labels_csv

    try:
        if csv_file is not None:
            labels, source = read_labels_csv(csv_file), f"csv:{csv_file.name}"
        elif org and model and stage:
            labels, source = [(org, model, stage)], "cli"
        else:
            raise typer.BadParameter("give ORG MODEL STAGE or --csv FILE")
        with open_store(db) as store:
            count = add_labels(store, labels, source)
    except (LabelError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    console.print(f"stored {count} label(s); the next `maturity estimate` retrains with them", highlight=False)


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write; with --format csv|parquet, a folder "
                                                    "that gets one file per table.")],
    group: Annotated[Optional[str], typer.Option("--group", help="Competitor group (sector) to compare.")] = None,
    org: Annotated[Optional[list[str]], typer.Option("--org", help="Organisation id (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, csv or parquet.")] = "html",
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Competitor benchmarking report: one self-contained HTML file (works offline), or its tables."""
    from pipeline.api import Analyst
    from pipeline.report import CHARTS, EXPORT_FORMATS, TABLE_SECTIONS, build_report, export_tables, write_html

    if fmt not in ("html", *EXPORT_FORMATS):
        raise typer.BadParameter(f"unknown format {fmt!r}; use html, csv or parquet", param_hint="--format")
    try:
        with open_store(db, read_only=True) as store:
            analyst = Analyst(store)
            with progress_bar(quiet) as bar:
                task = bar.add_task("building report", total=len(CHARTS) + len(TABLE_SECTIONS))
                report = build_report(analyst, group, org, progress=lambda title: bar.advance(task))
    except ValueError as exc:
        fail(str(exc))
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if fmt == "html":
        written = [write_html(report, out)]
    else:
        written = export_tables(report, out, fmt)
    if not quiet:
        missing = [s.title for s in report.sections if s.missing]
        console.print(f"wrote {', '.join(str(p) for p in written)} ({len(report.orgs)} organisations"
                      f"{'; not available yet: ' + ', '.join(missing) if missing else ''})", highlight=False)


@app.command("backfill")
def backfill_command(
    start: Annotated[datetime, typer.Option("--from", help="First as_of (UTC).")],
    end: Annotated[datetime, typer.Option("--to", help="Last as_of (UTC), included.")],
    every: Annotated[str, typer.Option("--every", help="Step, e.g. 7d or 1d.")] = "7d",
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Compute features and estimates for past dates from stored posts (idempotent per as_of)."""
    from pipeline.jobs import backfill

    if not every.endswith("d") or not every[:-1].isdigit():
        raise typer.BadParameter("use a number of days such as 7d", param_hint="--every")
    db_path = str(db or default_db_path())
    try:
        with progress_bar(quiet) as bar:
            task = bar.add_task("backfilling", total=None)
            results = backfill(db_path, start, end, int(every[:-1]), progress=lambda n: bar.advance(task, n))
    except (ValueError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    if not quiet:
        for result in results:
            statuses = ", ".join(f"{v} {k}" for k, v in sorted(result["statuses"].items())) or "no organisations"
            console.print(f"{result['as_of']:%Y-%m-%d %H:%M}: {result['estimates']} estimates ({statuses})",
                          highlight=False)


@app.command("sync")
def sync_command(
    config: Annotated[Path, typer.Option("--config", help="Organisation/pipeline TOML config (accounts).")],
    platform: Annotated[Optional[str], typer.Option("--platform", help="x, reddit, mastodon or bluesky.")] = None,
    org: Annotated[Optional[str], typer.Option("--org", help="Only this organisation id.")] = None,
    since: Annotated[Optional[datetime], typer.Option("--since", help="Backfill from (UTC); saved cursors "
                                                                      "are left alone.")] = None,
    until: Annotated[Optional[datetime], typer.Option("--until", help="Backfill until (UTC, excluded).")] = None,
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Pull new public activity of the configured accounts from the live platforms (incremental).
    Exit code 0: all synced (or skipped for lack of credentials); 1: some accounts failed, or an error
    (2 stays reserved for usage errors, as in every command)."""
    from pipeline.sync import sync

    try:
        cfg = load_config(config)
        with open_store(db, config=cfg) as store:
            apply_config(store, cfg)
            summary = sync(store, cfg, platform=platform, org=org, since=since, until=until)
    except (ValueError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    for line in summary.lines():
        if not quiet or ": ok," not in line:
            console.print(line, highlight=False, markup=False)
    if not quiet:
        console.print(f"{summary.posts} posts synced ({summary.status})", highlight=False)
    if summary.status in ("failed", "partial_failure"):
        raise typer.Exit(1)


def main() -> None:
    # Prefect's per-task INFO lines drown the summary; users can still raise the level themselves.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    app()


if __name__ == "__main__":
    main()
