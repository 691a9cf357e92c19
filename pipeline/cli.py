"""`maturity` command line. Commands are thin: they parse options and call tested functions."""
from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.files import UTF8, InputFileError, open_text
from connectors.twcs import import_twcs
from features.cache import cached_build
from features.runner import FeatureError, build_features, dictionary_markdown, features_frame
from models.labels import LabelError, read_labels_csv
from models.spec import MODEL_IDS, ModelSpecError, load_model
from pipeline.config import DEFAULT_WINDOW_DAYS, ConfigError, apply_config, load_config
from pipeline.console import (DURATION_FEATURE_COLUMNS, PROVISIONAL_NEXT_STEP, PROVISIONAL_NOTE,
                              SUMMARY_FEATURE_COLUMNS, UnknownFormat,
                              console, err_console, model_heading, print_frame, print_summary)
from pipeline.orgs import assign_provisional_orgs, provisional_org_ids, suggest_config
from pipeline.store import Store, StoreError, default_db_path, writer

# Commands import what only they need inside their body: scikit-learn (estimation), matplotlib (the
# report), Prefect (the flow) and the platform clients (sync) take seconds to import, and `maturity
# import` or `--help` should not pay for them.
app = typer.Typer(help="Social-media maturity inference: import public activity, compute signals, "
                       "estimate maturity stages.", no_args_is_help=True, add_completion=False)
import_app = typer.Typer(help="Import files into the store.", no_args_is_help=True)
app.add_typer(import_app, name="import")
orgs_app = typer.Typer(help="Organisations: suggest a config from the accounts found in the data, apply one.",
                       no_args_is_help=True)
app.add_typer(orgs_app, name="orgs")

DbOption = Annotated[Optional[Path], typer.Option("--db", help="DuckDB file (default: $MATURITY_DB, else "
                                                               "data/maturity.duckdb of the project).")]
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help="Organisation/pipeline TOML config.")]
AsOfOption = Annotated[Optional[datetime], typer.Option("--as-of", help="Point in time (UTC); default: "
                                                                        "the latest post stored.")]
FormatOption = Annotated[str, typer.Option("--format", help="table, csv or json.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors (for scheduled runs).")]
WindowOption = Annotated[int, typer.Option("--window", min=1, help="Estimation window: the stages are read "
                                           f"from this many days of activity up to as_of (default "
                                           f"{DEFAULT_WINDOW_DAYS}, as [settings] window_days).")]

KNOWN_ERRORS = (StoreError, ConfigError, InputFileError, FeatureError)


def fail(message: str) -> None:
    err_console.print("[bold red]error:[/]", end=" ")
    err_console.print(message, highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(1)


def db_path_for(db: Path | None, config=None) -> Path:
    return db or (config.database if config is not None and config.database else None) or default_db_path()


def open_store(db: Path | None, *, config=None) -> Store:
    """The store read-only (the commands that only read)."""
    return Store(db_path_for(db, config), read_only=True)


def open_writer(db: Path | None, what: str, *, config=None, create: bool = True):
    """A write run on the store (lock, migrations, recovery: pipeline.store.writer); create=False for
    commands that work on stored data, so a mistyped --db fails instead of creating an empty database."""
    return writer(db_path_for(db, config), what, keep_customer_text=bool(config and config.keep_customer_text),
                  create=create)


def note_provisional(store, quiet: bool) -> None:
    """Without a config, every discovered account becomes a provisional organisation: say so once (on
    stderr, so csv and json on stdout stay data)."""
    added = assign_provisional_orgs(store)
    if added and not quiet:
        err_console.print(f"{added} organisation accounts found and no organisation config yet: each is estimated "
                      f"as its own provisional organisation. {PROVISIONAL_NEXT_STEP}", highlight=False)


def show(frame: pd.DataFrame, fmt: str, title: str | None = None) -> None:
    try:
        print_frame(frame, fmt, title, durations=DURATION_FEATURE_COLUMNS)
    except UnknownFormat as exc:
        raise typer.BadParameter(str(exc), param_hint="--format") from None


def progress_bar(quiet: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet or not err_console.is_terminal, transient=True)


@import_app.command("twcs")
def import_twcs_command(
    path: Annotated[Path, typer.Argument(help="twcs-format CSV or JSONL file.")],
    db: DbOption = None,
    config: ConfigOption = None,
    encoding: Annotated[str, typer.Option(
        help="The file's text encoding, e.g. cp1252 or latin-1 for a file Excel saved as plain CSV "
             "(default UTF-8; a byte-order mark is skipped).")] = UTF8,
    quiet: QuietOption = False,
) -> None:
    """Import a Customer Support on Twitter (twcs) CSV or JSONL file; prints read/loaded/rejected."""
    try:
        open_text(path).close()   # an unreadable input fails before the store is created
        cfg = load_config(config) if config else None
        with open_writer(db, "import", config=cfg) as store:
            if cfg:
                apply_config(store, cfg)
            with progress_bar(quiet) as bar:
                task = bar.add_task(f"importing {path.name}", total=None)
                run_id, counts = import_twcs(store, path, encoding=encoding,
                                             progress=lambda n: bar.advance(task, n))
            store.refresh_facts()
            if not quiet:
                console.print(f"{path}: read {counts.read}, loaded {counts.loaded}, rejected {counts.rejected}"
                              f" (run {run_id})", highlight=False)
                if counts.rejected:
                    console.print("  rejected rows are in the rejected_rows table, e.g.:", highlight=False)
                    for line, field, reason in store.con.execute(
                            "select line, field, reason from rejected_rows where run_id = ? order by line limit 5",
                            [run_id]).fetchall():
                        where = f"line {line}, {field}" if field else f"line {line}"
                        console.print(f"  {where}: {reason}", highlight=False, markup=False)
                from pipeline.estimation import sample_of_posts_note

                note = sample_of_posts_note(store, run_id)
                if note:
                    console.print(f"  {note}", highlight=False)
            note_provisional(store, quiet)
    except KNOWN_ERRORS as exc:
        fail(str(exc))


@app.command("features")
def features_command(
    db: DbOption = None,
    as_of: AsOfOption = None,
    window: Annotated[int, typer.Option("--window", min=0, help="Trailing window in days (0 = all data).")] = 0,
    scope: Annotated[str, typer.Option("--scope", help="account or org.")] = "account",
    fmt: FormatOption = "table",
    columns: Annotated[Optional[str], typer.Option("--columns", help="Comma-separated columns to show in the "
                                                   "table, e.g. org,posts,response_rate.")] = None,
    all_columns: Annotated[bool, typer.Option("--all", help="Every feature column in the table (csv and json "
                                              "always have them all).")] = False,
    shards: Annotated[Optional[int], typer.Option("--shards", min=1, help="Build sharded by organisation in "
                                                  "this many shards, each a task on --task-runner "
                                                  "(docs/scale-out.md).")] = None,
    shard_dir: Annotated[Optional[Path], typer.Option("--shard-dir", help="Where the shards are written "
                                                      "(default: <db>.shards; workers must reach it).")] = None,
    runner: Annotated[str, typer.Option("--task-runner", help="Where shards are built: threads (this "
                                        "process) or dask.")] = "threads",
    dask_address: Annotated[Optional[str], typer.Option("--dask-address", help="Dask scheduler, e.g. "
                                                        "tcp://10.0.0.5:8786 (default: a local cluster).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Compute features for as_of and print one row per account (or organisation): the core columns in a
    table (--columns or --all for more), every column in csv and json; --quiet only builds. With
    --shards, the build is sharded by organisation and its shards run on the task runner."""
    if scope not in ("account", "org"):
        raise typer.BadParameter("use account or org", param_hint="--scope")
    if shards is None and (shard_dir or runner != "threads" or dask_address):
        raise typer.BadParameter("--shard-dir, --task-runner and --dask-address need --shards",
                                 param_hint="--shards")
    try:
        if shards is None:
            with open_writer(db, "features", create=False) as store:
                note_provisional(store, quiet)
                with progress_bar(quiet) as bar:
                    bar.add_task("building features", total=None)
                    as_of = build_features(store.con, as_of, windows=(window,))
                frame = features_frame(store.con, as_of, window, scope)
        else:
            as_of = build_sharded(db, as_of, window, shards, shard_dir, runner, dask_address, quiet)
            with open_store(db) as store:
                frame = features_frame(store.con, as_of, window, scope)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if quiet:
        return
    title = f"features as of {as_of:%Y-%m-%d %H:%M} UTC{f', last {window} days' if window else ', all data'}"
    if fmt == "table":
        if scope == "org":  # empty at org scope
            frame = frame.drop(columns=["platform", "account"])
        frame, title = table_columns(frame, columns, all_columns, title)
    show(frame, fmt, title=title)


def build_sharded(db: Path | None, as_of: datetime | None, window: int, shards: int, shard_dir: Path | None,
                  runner: str, dask_address: str | None, quiet: bool) -> datetime:
    """`maturity features --shards`: the sharded build flow on the chosen task runner, under the run lock."""
    from pipeline.flows import build_features_sharded, task_runner
    from pipeline.locking import exclusive_run

    try:
        flow = build_features_sharded.with_options(task_runner=task_runner(runner, dask_address))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task-runner") from None
    db_path = db_path_for(db)
    with exclusive_run(db_path, "maturity features"):   # the whole build; re-entrant for the writer and flow
        with open_writer(db, "features", create=False) as store:   # migrations, recovery, current facts
            note_provisional(store, quiet)
        with progress_bar(quiet) as bar:
            bar.add_task(f"building features in {shards} shards", total=None)
            result = flow(db_path=str(db_path), shards=shards, windows=[window],
                          as_of=as_of.isoformat() if as_of else None,
                          shard_dir=str(shard_dir) if shard_dir else None)
    return result.as_of


def table_columns(frame: pd.DataFrame, columns: str | None, all_columns: bool, title: str
                  ) -> tuple[pd.DataFrame, str]:
    """The columns a features table shows: the core ones, those named by --columns, or --all."""
    if all_columns:
        return frame, title
    if columns:
        wanted = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in wanted if c not in frame.columns]
        if unknown:
            raise typer.BadParameter(f"unknown column(s) {', '.join(unknown)}; available: "
                                     f"{', '.join(frame.columns)}", param_hint="--columns")
        keys = [c for c in ("org", "platform", "account") if c in frame.columns and c not in wanted]
        return frame[keys + wanted], title
    core = [c for c in SUMMARY_FEATURE_COLUMNS if c in frame.columns]
    return frame[core], f"{title}; core columns ({len(frame.columns) - len(core)} more: --all or --columns a,b)"


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
    """Validate a config file and summarise it; lists every problem in the file at once."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(f"{len(exc.errors)} problems in {config}:\n{exc}" if len(exc.errors) > 1 else str(exc))
    accounts = sum(len(o.accounts) for o in cfg.organisations)
    console.print(f"{config}: {len(cfg.organisations)} organisations, {accounts} accounts, "
                  f"{len(cfg.sources)} sources: ok", highlight=False)


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Option("--config", help="Pipeline TOML config (sources + organisations).")]
    = Path("data/demo.toml"),
    db: DbOption = None,
    as_of: AsOfOption = None,
    window: Annotated[Optional[int], typer.Option("--window", min=1, help="Estimation window in days "
                                                  "(default: [settings] window_days of the config, else "
                                                  f"{DEFAULT_WINDOW_DAYS}).")] = None,
    runner: Annotated[str, typer.Option("--task-runner", help="Where per-organisation pulls and estimation "
                                        "run: threads (this process) or dask (docs/scale-out.md).")] = "threads",
    dask_address: Annotated[Optional[str], typer.Option("--dask-address", help="Dask scheduler, e.g. "
                                                        "tcp://10.0.0.5:8786 (default: a local cluster).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Run the nightly flow once: ingest sources, build features, estimate, summarise. Exits 1 when
    any source or organisation failed (the rest is stored)."""
    from pipeline.flows import RunFailures, nightly, task_runner
    from pipeline.locking import exclusive_run

    try:
        cfg = load_config(config)
        flow = nightly.with_options(task_runner=task_runner(runner, dask_address))
    except ConfigError as exc:
        fail(str(exc))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--task-runner") from None
    db_path = db_path_for(db, cfg)
    try:
        # the run lock is taken here, before Prefect starts: a database in use is one clear line, not
        # a crashed flow run's traceback (the flow's own lock is re-entrant in this process)
        with exclusive_run(db_path, "maturity run"):
            summary = flow(config_path=str(config), db_path=str(db_path),
                           as_of=as_of.isoformat() if as_of else None, window_days=window)
    except RunFailures as failures:
        summary = failures.summary
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if not quiet:
        try:
            print_run_summary(summary)
        except Exception as exc:  # noqa: BLE001 - the run's work is stored; its exit code says how it went
            err_console.print(f"warning: run {summary.run_id[:8]} ended {summary.status} and its results are "
                              f"stored, but its summary could not be printed ({type(exc).__name__}: {exc}); "
                              "see `maturity estimates`", highlight=False, markup=False, soft_wrap=True)
    if summary.failures:
        raise typer.Exit(1)


def print_run_summary(summary) -> None:
    """The run summary with what the run stored: account features and the stage table."""
    from pipeline.estimation import orgs_without_posts, stored_estimates

    features = estimates = None
    without_posts: set[str] = set()
    with Store(summary.db, read_only=True) as store:
        if summary.features is not None:
            features = features_frame(store.con, summary.as_of, 0, "account")
        if summary.estimates is not None:
            estimates = stored_estimates(store, summary.estimates.as_of, summary.estimates.window_days)
            without_posts = orgs_without_posts(store)
        provisional = provisional_org_ids(store)
    print_summary(summary, features, estimates, without_posts, provisional)


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
    deployment = nightly_deployment(config, db_path_for(db, cfg), cron=cron,
                                    timezone=timezone or cfg.timezone)
    serve(deployment)


def _null_where_nan(value):
    """`value` with every NaN (a metric over no organisations) as None: JSON has no NaN."""
    if isinstance(value, dict):
        return {key: _null_where_nan(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_null_where_nan(item) for item in value]
    return None if isinstance(value, float) and value != value else value


@app.command("evaluate")
def evaluate_command(
    seed_a: Annotated[int, typer.Option("--seed-a", help="Seed of generator A's training set (test: seed + 1).")] = 11,
    seed_b: Annotated[int, typer.Option("--seed-b", help="Seed of generator B's training set (test: seed + 1).")] = 21,
    orgs: Annotated[int, typer.Option("--orgs", help="Generator A organisations per set.")] = 200,
    orgs_per_model: Annotated[int, typer.Option("--orgs-per-model",
                                                help="Generator B organisations per model and set.")] = 100,
    window: WindowOption = DEFAULT_WINDOW_DAYS,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Score rules-only and rules+classifier per model: train-A->test-A, A->B and B->A (generator B: a
    latent stage with seed-narrative behaviour, three operationalisations), with the spread over them."""
    from models.evaluate import meets_targets
    from pipeline.training.evaluation import evaluate_generators, observed_table, spread_table, table

    if fmt not in ("table", "json"):
        raise typer.BadParameter("use table or json", param_hint="--format")
    with progress_bar(False) as bar:
        bar.add_task(f"generating, training and scoring ({orgs} A + {orgs_per_model} B per model, per set)",
                     total=None)
        result = evaluate_generators(orgs, orgs_per_model, window_days=window, seed_a=seed_a, seed_b=seed_b)
    if fmt == "json":
        sys.stdout.write(json.dumps(_null_where_nan(result), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        return
    show(table(result), "table", title=f"evaluation: combined (rules + classifier) beside rules only; "
                                        f"seeds A {seed_a}, B {seed_b}, window {window} d")
    show(spread_table(result), "table", title="spread over the operationalisations O1..O3 (min..max)")
    show(observed_table(result), "table", title="A->A with the test organisations as each kind of real source "
                                                "shows them (ece: of the point or interval reported)")
    worse = [f"{m} {d} {o}" for m, ds in result["models"].items() for d in ("A→B", "B→A")
             for o, ok in ds[d]["not_worse"].items() if not ok]
    console.print("combination not worse than rules only on the generator it was not trained on: "
                  + ("yes, everywhere" if not worse else "NO for " + ", ".join(worse)), highlight=False)
    missed = {m: v for m, v in meets_targets(result["a_to_a_detail"]).items() if v}
    console.print("A->A targets (exact >= 0.85, within-one >= 0.98, ECE <= 0.05): "
                  + ("met for every model" if not missed else "; ".join(f"{m}: {', '.join(v)}" for m, v in missed.items())),
                  highlight=False)


@app.command("estimate")
def estimate_command(db: DbOption = None, as_of: AsOfOption = None, window: WindowOption = DEFAULT_WINDOW_DAYS,
                     quiet: QuietOption = False) -> None:
    """(Re)compute maturity estimates for every organisation and model on the estimation window
    (features are built first when their inputs changed)."""
    from pipeline.api import Analyst
    from pipeline.estimation import estimate_store
    from pipeline.jobs import feature_windows
    from pipeline.training.cache import load_or_train

    try:
        with open_writer(db, "estimate", create=False) as store, progress_bar(quiet) as bar:
            note_provisional(store, quiet)
            provisional = provisional_org_ids(store)
            task = bar.add_task("building features", total=None)
            as_of = cached_build(store.con, as_of, windows=feature_windows(window)).as_of
            bar.remove_task(task)
            bar.add_task("estimating (trains the models on first use)", total=None)
            log = None if quiet else (lambda m: bar.console.print(m, highlight=False))
            fitted = load_or_train(store, Analyst(store).signals(as_of=as_of, window_days=window), window, log=log)
            rows, used = estimate_store(store, fitted, as_of, window)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if not quiet:
        ok = sum(r["status"] == "ok" for r in rows)
        interval = sum(r["status"] == "interval" for r in rows)
        console.print(f"{len(rows)} estimates as of {used:%Y-%m-%d %H:%M} UTC on the last {window} days: {ok} ok, "
                      f"{interval} interval, {len(rows) - ok - interval} insufficient evidence", highlight=False)
        if provisional:
            console.print(f"{len(provisional)} of them provisional (no organisation config yet: each account found "
                          f"in the data is its own organisation). {PROVISIONAL_NEXT_STEP}", highlight=False)


@app.command("estimates")
def estimates_command(db: DbOption = None, fmt: FormatOption = "table") -> None:
    """Print the latest estimates: one row per organisation x model, with their as_of and window. A stage
    the evidence cannot pin down is an interval: stage / stage_index are its lowest stage,
    stage_low_index / stage_high_index its ends, stages_possible the stages still possible ('|'-joined;
    for SMI, whose quadrants are no ordered scale, the only reading of an interval); the table says it
    in words."""
    from pipeline.estimation import describe_estimate, stored_estimates

    try:
        with open_store(db) as store:
            frame = stored_estimates(store)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if frame.empty:
        fail("no estimates are stored yet; run `maturity estimate` or `maturity run` first")
    provisional = bool(frame["provisional"].any())
    columns = ["org", "model", "stage", "stage_index", "confidence", "status", "stage_low_index",
               "stage_high_index", "stages_possible", "as_of", "window_days"]
    if fmt == "table":
        frame = frame.assign(
            stage=[describe_estimate(*r) for r in frame[
                ["model", "status", "stage_low_index", "stage_high_index", "stages_possible"]].itertuples(index=False)],
            org=[f"{o} (provisional)" if p else o for o, p in zip(frame["org"], frame["provisional"])],
            model=frame["model"].map(model_heading))
    # a table says the interval in words; csv/json keep the indices and the provisional flag
    table_columns = ["org", "model", "stage", "confidence", "status", "as_of", "window_days"]
    show(frame[table_columns if fmt == "table" else [*columns, "provisional"]], fmt,
         title=f"maturity estimates as of {frame['as_of'].iloc[0]:%Y-%m-%d %H:%M} UTC, "
               f"estimated on the last {frame['window_days'].iloc[0]} days")
    if provisional and fmt == "table":
        console.print(PROVISIONAL_NOTE, highlight=False)


@app.command("explain")
def explain_command(
    org: Annotated[str, typer.Argument(help="Organisation id (any case), or an account handle of one.")],
    model: Annotated[Optional[str], typer.Option("--model", help="smmm, s3m, forrester, altimeter or smi "
                                                                 "(default: all five).")] = None,
    db: DbOption = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Why an organisation is at its stored stage, and what the seed advises for the next one (with the
    measured gap); the same estimate `maturity estimates` and the report show."""
    from models.explain import render_text
    from pipeline.api import Analyst

    try:
        models = [load_model(model).id] if model else MODEL_IDS
    except ModelSpecError as exc:
        fail(str(exc))
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use text or json", param_hint="--format")
    try:
        with open_store(db) as store:
            analyst = Analyst(store)
            org, handle_note = analyst.resolve_org(org)
            if handle_note:
                err_console.print(handle_note, highlight=False, markup=False)
            explanations = analyst.explanations(org, models, with_contributions=True)
    except (LookupError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    if fmt == "json":
        sys.stdout.write(json.dumps(explanations, indent=2, default=str) + "\n")
    else:
        first = explanations[0]
        console.print(f"estimates as of {first['as_of']:%Y-%m-%d %H:%M} UTC on the last {first['window_days']} days\n",
                      highlight=False)
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
    from pipeline.estimation import add_labels

    try:
        if csv_file is not None:
            labels, source = read_labels_csv(csv_file), f"csv:{csv_file.name}"
        elif org and model and stage:
            labels, source = [(org, model, stage)], "cli"
        else:
            raise typer.BadParameter("give ORG MODEL STAGE or --csv FILE")
        with open_writer(db, "label", create=False) as store:
            count = add_labels(store, labels, source)
    except (LabelError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    console.print(f"stored {count} label(s); the next `maturity estimate` retrains with them", highlight=False)


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write; with --format csv|parquet, a folder "
                                                    "that gets one file per table; with --format xlsx, a "
                                                    ".xlsx file (or a folder for report.xlsx), one sheet per "
                                                    "table.")],
    group: Annotated[Optional[str], typer.Option("--group", help="Competitor group (sector) to compare.")] = None,
    org: Annotated[Optional[list[str]], typer.Option("--org", help="Organisation id (repeatable).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html, csv, parquet or xlsx.")] = "html",
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Competitor benchmarking report: one self-contained HTML file (works offline), or its tables."""
    from pipeline.api import Analyst
    from pipeline.report import CHARTS, EXPORT_FORMATS, TABLE_SECTIONS, build_report, export_tables, write_html

    if fmt not in ("html", *EXPORT_FORMATS):
        raise typer.BadParameter(f"unknown format {fmt!r}; use html, {', '.join(EXPORT_FORMATS)}",
                                 param_hint="--format")
    try:
        with open_store(db) as store:
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
    window: WindowOption = DEFAULT_WINDOW_DAYS,
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Compute features and estimates for past dates from stored posts (idempotent per as_of)."""
    from pipeline.jobs import backfill

    if not every.endswith("d") or not every[:-1].isdigit():
        raise typer.BadParameter("use a number of days such as 7d", param_hint="--every")
    try:
        with progress_bar(quiet) as bar:
            task = bar.add_task("backfilling", total=None)
            results = backfill(str(db_path_for(db)), start, end, int(every[:-1]), window,
                               progress=lambda n: bar.advance(task, n))
    except (ValueError, *KNOWN_ERRORS) as exc:
        fail(str(exc))
    if not quiet:
        for result in results:
            statuses = ", ".join(f"{v} {k}" for k, v in sorted(result.statuses.items())) or "no organisations"
            console.print(f"{result.as_of:%Y-%m-%d %H:%M}: {result.estimates} estimates on the last "
                          f"{result.window_days} days ({statuses})", highlight=False)


@orgs_app.command("suggest")
def orgs_suggest_command(db: DbOption = None) -> None:
    """Print an organisation config skeleton for the accounts found in the data (`> orgs.toml`, edit,
    `maturity config-check`, then `maturity orgs apply`): accounts of one brand grouped by a guess from
    their handles, sector left to fill in."""
    try:
        with open_store(db) as store:
            text = suggest_config(store)
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    sys.stdout.write(text)


@orgs_app.command("apply")
def orgs_apply_command(
    config: Annotated[Path, typer.Argument(help="Organisation TOML config (e.g. from `maturity orgs suggest`).")],
    db: DbOption = None,
    quiet: QuietOption = False,
) -> None:
    """Attach an organisation config to an existing database, without re-importing: its organisations
    replace the configured (or provisional) ones; run `maturity estimate` next."""
    try:
        cfg = load_config(config)
        with open_writer(db, "orgs apply", config=cfg, create=False) as store:
            apply_config(store, cfg)
            unassigned = store.con.execute("select count(*) from accounts where org_id is null").fetchone()[0]
    except ConfigError as exc:
        fail(f"{len(exc.errors)} problems in {config}:\n{exc}" if len(exc.errors) > 1 else str(exc))
    except KNOWN_ERRORS as exc:
        fail(str(exc))
    if not quiet:
        accounts = sum(len(o.accounts) for o in cfg.organisations)
        console.print(f"applied {config}: {len(cfg.organisations)} organisations, {accounts} accounts"
                      f"{f'; {unassigned} accounts found in the data are in no organisation' if unassigned else ''}."
                      " Run `maturity estimate` to estimate them.", highlight=False)


@app.command("sync")   # the docstring is Rich markup in --help: [\[source]] shows as [[source]]
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
    r"""Pull new public activity of the configured accounts from the live platforms (incremental).
    Setup per platform (API access, credentials, handle formats, example [\[source]] blocks):
    docs/connectors.md. Exit codes: 0 every account synced (platforms without credentials are
    skipped); 1 some accounts failed, or an error stopped the command; 2 a usage error."""
    from pipeline.sync import sync

    try:
        cfg = load_config(config)
        with open_writer(db, "sync", config=cfg) as store:
            apply_config(store, cfg)
            summary = sync(store, cfg, platform=platform, org=org, since=since, until=until)
            store.refresh_facts()
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
    # `run` starts Prefect's ephemeral API (~10 s on a quiet machine); its 20 s default fails busy ones
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    app()


if __name__ == "__main__":
    main()
