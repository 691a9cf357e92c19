"""`make bench POSTS=N`: the feature library at scale against the alternatives a user has.

One run generates (once) N posts over 5,000 organisations as a twcs-format CSV under benchmarks/data/,
imports it into a DuckDB store with the project's importer, and measures, each step in its own process
(so every step has its own peak RSS):

  ingest      connectors.twcs.import_twcs of the CSV             vs  read_csv   bare DuckDB read_csv
              (then the conversation facts derived once, as the pipeline does after a load: facts_seconds)
  core        the core cadence + responsiveness columns  vs  pandas     benchmarks/pandas_core.py
              (features/sql 00, 10, 20; all organisations)       vs  floor      one join + aggregate
  full        the cold build: conversation facts derived from all posts, then every feature group,
              windows 0, 30 and 90
  incremental the nightly increment: 1% new posts (one day) loaded with their facts refreshed, then
              every feature rebuilt (windows 0, 30, 90), against the cold build of the same as_of
  estimate    models.estimate.estimate for 10,000 organisations x 5 models
  sharded     every feature (windows 0, 30, 90) sharded by organisation (features/shards.py) in --shards
              shards (default 8): exported, built one after another in this process and on a Dask
              LocalCluster of two single-threaded workers, stored; against the single build of the
              same as_of (and checked equal to it)

and writes benchmarks/results.json. Timings exclude interpreter start-up and, for pandas, loading its
input into memory (the baseline is given its data already in memory).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
ORGS = 5000
START = datetime(2024, 1, 1)
DAYS = 120
CORE = ("cadence", "responsiveness")

# One conversation: a customer mention (A); the brand replies with p 0.75 (B, log-normal latency,
# median 15 min); the customer follows up with p 0.3 (C) and the brand answers that with p 0.8 (D).
# Plus proactive brand posts (8% of all posts). Every fifth organisation answers from a care account.
POSTS_PER_CONVERSATION = 1 + 0.75 + 0.75 * 0.3 + 0.75 * 0.3 * 0.8
PROACTIVE_SHARE = 0.08

_GENERATE_SQL = """
create or replace temp table conv as
select i as conv,
       least(floor(pow(random(), 2) * $orgs), $orgs - 1)::int as org,
       (1000000 + floor(random() * $customers))::bigint as customer,
       $start + to_microseconds((random() * $days * 86400e6)::bigint) as t0,
       random() as q, random() as r_reply, random() as r_text, random() as r_follow, random() as r_again,
       exp(ln(900) + 1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as lat1,
       exp(ln(1800) + 1.0 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as lat2,
       exp(ln(600) + 1.2 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) as lat3
from range($conversations) t(i);

create or replace temp table gen as
with brand as (select *, case when org % 5 = 0 then 'org' || org || 'care' else 'org' || org end as agent
               from conv)
select conv * 4 + 1 as tweet_id, customer::varchar as author_id, true as inbound, t0 as created,
       '@org' || org || case when q < 0.25 then ' is my order late?' else ' my parcel has not arrived' end as text,
       null::bigint as in_response_to_tweet_id
from brand
union all
select conv * 4 + 2, agent, false, t0 + to_microseconds((lat1 * 1e6)::bigint),
       '@' || customer || case when r_text < 0.25 then ' Sorry! Please DM us your order number ^' || chr((65 + (org + conv) % 7)::int)
                               when r_text < 0.5 then ' We are on it, see https://t.co/x -' || ['Becky', 'Sam', 'Jo'][1 + conv % 3]
                               when r_text < 0.8 then ' Thanks for reaching out ^' || chr((65 + conv % 4)::int) || 'K'
                               else ' Thanks, we will check' end,
       conv * 4 + 1
from brand where r_reply < 0.75
union all
select conv * 4 + 3, customer::varchar, true, t0 + to_microseconds(((lat1 + lat2) * 1e6)::bigint),
       '@org' || org || ' thanks, still waiting', conv * 4 + 2
from brand where r_reply < 0.75 and r_follow < 0.3
union all
select conv * 4 + 4, agent, false, t0 + to_microseconds(((lat1 + lat2 + lat3) * 1e6)::bigint),
       '@' || customer || ' Done, all sorted ^' || chr((65 + (org + conv) % 7)::int), conv * 4 + 3
from brand where r_reply < 0.75 and r_follow < 0.3 and r_again < 0.8
union all
select $id_offset + i, 'org' || least(floor(pow(random(), 2) * $orgs), $orgs - 1)::int, false,
       $start + to_microseconds((random() * $days * 86400e6)::bigint),
       'New this week #offer https://t.co/y', null
from range($proactive) t(i);
"""

_CSV_SQL = """
copy (
    select tweet_id, author_id, case when inbound then 'True' else 'False' end as inbound,
           strftime(created, '%a %b %d %H:%M:%S +0000 %Y') as created_at, text,
           null as response_tweet_id, in_response_to_tweet_id
    from gen order by created
) to '{path}' (header, delimiter ',', quote '"')
"""


def generate(posts: int, path: Path, *, seed: float = 0.42, start: datetime = START, days: int = DAYS,
             id_offset: int = 0) -> None:
    """Write about `posts` posts (twcs CSV) over ORGS organisations."""
    import duckdb

    con = duckdb.connect()
    con.execute("select setseed(?)", [seed])
    conversations = int(posts * (1 - PROACTIVE_SHARE) / POSTS_PER_CONVERSATION)
    params = {"orgs": ORGS, "customers": max(posts // 3, 1000), "start": start, "days": days,
              "conversations": conversations, "proactive": int(posts * PROACTIVE_SHARE),
              "id_offset": id_offset + 4 * conversations + 10}
    sql = _GENERATE_SQL
    for name in sorted(params, key=len, reverse=True):  # benchmark constants, not user data
        sql = sql.replace(f"${name}", f"getvariable('bench_{name}')")
        con.execute(f"set variable bench_{name} = ?", [params[name]])
    con.execute(sql)
    if id_offset:
        con.execute("update gen set tweet_id = tweet_id + ?, in_response_to_tweet_id = "
                    "in_response_to_tweet_id + ?", [id_offset, id_offset])
    tmp = path.with_suffix(".partial")
    con.execute(_CSV_SQL.format(path=str(tmp).replace("'", "''")))
    tmp.replace(path)
    con.close()


def configure_orgs(store) -> None:
    """5,000 organisations (a few time zones) with their brand accounts and, for every fifth, a care
    account: written straight into the two config tables (apply_config's job, at benchmark scale)."""
    zones = ["UTC", "Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "America/Los_Angeles"]
    with store.transaction() as con:
        con.execute("set variable bench_orgs = ?", [ORGS])
        con.execute("set variable bench_zones = ?", [zones])
        con.execute("""
            insert into organisations (org_id, name, sector, timezone)
            select 'o' || i, 'Organisation ' || i, 'sector' || (i % 20),
                   getvariable('bench_zones')[1 + i % 5] from range(getvariable('bench_orgs')) t(i)""")
        con.execute("""
            insert into accounts (platform, handle_key, handle, org_id, role, configured)
            select 'twitter', 'org' || i, 'org' || i, 'o' || i, 'brand', true
            from range(getvariable('bench_orgs')) t(i)
            union all
            select 'twitter', 'org' || i || 'care', 'org' || i || 'care', 'o' || i, 'support', true
            from range(getvariable('bench_orgs')) t(i) where i % 5 = 0""")


# -- steps (each runs in its own process) --------------------------------------------------------------

def step_ingest(posts: int) -> dict:
    from connectors.twcs import import_twcs
    from pipeline.store import writer

    db = DATA / f"scale_{posts}.duckdb"
    for stale in (db, db.with_name(db.name + ".wal"), db.with_name(db.name + ".key")):
        stale.unlink(missing_ok=True)
    with writer(db, "benchmark") as store:
        configure_orgs(store)
        started = time.perf_counter()
        _, counts = import_twcs(store, DATA / f"scale_{posts}.csv")
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        store.refresh_facts()
        facts = time.perf_counter() - started
    return {"seconds": seconds, "facts_seconds": facts, "loaded": counts.loaded, "rejected": counts.rejected}


def step_read_csv(posts: int) -> dict:
    import duckdb

    con = duckdb.connect()
    started = time.perf_counter()
    con.execute("create table t as select * from read_csv(?)", [str(DATA / f"scale_{posts}.csv")])
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": con.execute("select count(*) from t").fetchone()[0]}


def _store(posts: int):
    from pipeline.store import Store

    store = Store(DATA / f"scale_{posts}.duckdb")
    store.migrate()   # `--steps` may re-run on a store an earlier version made
    return store


def step_floor(posts: int) -> dict:
    """The bare minimum for first-reply latency: one join (brand reply -> customer post) + aggregate."""
    with _store(posts) as store:
        started = time.perf_counter()
        rows = store.con.execute("""
            select r.author_key, count(*) as answered, median(epoch(r.created_at) - epoch(c.created_at))
            from posts r join posts c on c.platform = r.platform and c.post_id = r.in_reply_to
            where r.is_org_author and not c.is_org_author
            group by r.author_key""").fetchall()
        return {"seconds": time.perf_counter() - started, "accounts": len(rows)}


def step_core(posts: int) -> dict:
    from features.runner import build_features

    with _store(posts) as store:
        started = time.perf_counter()
        build_features(store.con, None, windows=(0,), only=CORE)
        return {"seconds": time.perf_counter() - started}


def step_pandas(posts: int) -> dict:
    from benchmarks.pandas_core import core_features, load_inputs

    with _store(posts) as store:
        inputs = load_inputs(store)  # not timed: the baseline gets its data in memory
    started = time.perf_counter()
    frame = core_features(*inputs)
    return {"seconds": time.perf_counter() - started, "rows": len(frame)}


def cold_build(store, as_of=None, windows=(0, 30, 90)) -> tuple[float, float]:
    """Facts derived from all posts, then every feature: (facts seconds, total seconds)."""
    from features.facts import rebuild_facts
    from features.runner import build_features

    started = time.perf_counter()
    with store.transaction() as con:
        rebuild_facts(con)
    facts = time.perf_counter() - started
    build_features(store.con, as_of, windows=windows)
    return facts, time.perf_counter() - started


def step_full(posts: int) -> dict:
    from features.runner import build_features

    with _store(posts) as store:
        facts, full = cold_build(store)
        started = time.perf_counter()
        build_features(store.con, None, windows=(0,))   # facts current: aggregation only
        return {"seconds": full, "facts_seconds": facts, "window0_seconds": time.perf_counter() - started}


def step_incremental(posts: int) -> dict:
    """The nightly increment: load 1% new posts (the day after the data ends) with their facts
    refreshed, then rebuild every feature; compare with the cold build of the same as_of."""
    from connectors.twcs import import_twcs
    from features.runner import affected_orgs, build_features, default_as_of

    new_csv = DATA / f"scale_{posts}_new.csv"
    generate(max(posts // 100, 100), new_csv, seed=0.77, start=START + timedelta(days=DAYS), days=1,
             id_offset=10 * posts + 1_000_000)
    with _store(posts) as store:
        store.refresh_facts()   # not timed: facts as the last load left them
        (loaded,) = store.con.execute("select max(loaded_at) from posts").fetchone()
        started = time.perf_counter()
        import_twcs(store, new_csv)
        load = time.perf_counter() - started
        store.refresh_facts()
        refreshed = time.perf_counter() - started
        as_of = default_as_of(store.con)
        build_features(store.con, as_of, windows=(0, 30, 90))
        incremental = time.perf_counter() - started
        orgs = affected_orgs(store.con, loaded)
        _, full = cold_build(store, as_of)
        # back to the original data set for the next run's steps
        store.con.execute("delete from posts where loaded_at > ?", [loaded])
        store.refresh_facts()
    return {"seconds": incremental, "load_seconds": load, "facts_refresh_seconds": refreshed - load,
            "full_rebuild_seconds": full, "affected_orgs": len(orgs)}


def step_estimate(posts: int) -> dict:
    import numpy as np

    from models.estimate import estimate
    from pipeline.estimation import org_dimensions, resolve_as_of
    from pipeline.training.cache import fit_for_sources, training_frame

    # the models as the store fits them; not timed: training happens once, not per estimate
    fitted = fit_for_sources(training_frame(7001, 200, 90))
    with _store(posts) as store:
        dims = org_dimensions(store, resolve_as_of(store, None, 90), 90)
    rows = dims.iloc[np.arange(10_000) % len(dims)].reset_index(drop=True)
    rows["org"] = [f"e{i}" for i in range(len(rows))]
    started, cpu_started = time.perf_counter(), time.process_time()
    result = estimate(fitted, rows)
    # CPU seconds of all threads: on a shared machine, less dependent on the other processes than wall time
    return {"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
            "estimates": len(result)}


def _shard_with_memory(shard: str, as_of, windows) -> tuple:
    """A shard's rows and its worker process's peak RSS (MB) after building it."""
    from pipeline.jobs import build_feature_shard

    return build_feature_shard(shard, as_of, windows), peak_rss_mb()


def step_sharded(posts: int, shards: int = 8) -> dict:
    """The sharded build (export, shards on a 2-worker LocalCluster, rows stored by this process) first,
    so this process's peak RSS is the sharded build's own; then, for reference and the identity check,
    the single-process build and the shards built one after another in this process."""
    import shutil

    from distributed import Client, LocalCluster

    from features.runner import build_features, default_as_of, store_feature_rows
    from features.shards import export_shards
    from pipeline.jobs import build_feature_shard

    windows = (0, 30, 90)
    folder = DATA / f"scale_{posts}.shards"
    shutil.rmtree(folder, ignore_errors=True)
    with _store(posts) as store:
        store.refresh_facts()   # not timed: facts as the last load left them
        as_of = default_as_of(store.con)
        stored_rows = lambda: store.df(  # noqa: E731
            "select * exclude (computed_at) from features where as_of = ? order by all", [as_of])
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.submit(int, 0).result()   # workers up before the clock starts
            started = time.perf_counter()
            folders = [str(f) for f in export_shards(store.con, folder / "b", shards)]
            built = client.gather(client.map(_shard_with_memory, folders, as_of=as_of, windows=windows))
            store_feature_rows(store.con, as_of, windows, [table for table, _ in built])
            on_dask = time.perf_counter() - started
        sharded_rss = peak_rss_mb()
        on_dask_rows = stored_rows()

        started = time.perf_counter()
        build_features(store.con, as_of, windows=windows)
        single = time.perf_counter() - started
        expected = stored_rows()

        started = time.perf_counter()
        folders = [str(f) for f in export_shards(store.con, folder / "a", shards)]
        export = time.perf_counter() - started
        started = time.perf_counter()
        rows = [build_feature_shard(shard, as_of, windows) for shard in folders]
        in_process = time.perf_counter() - started
        started = time.perf_counter()
        store_feature_rows(store.con, as_of, windows, rows)
        stored = time.perf_counter() - started
        identical = on_dask_rows.equals(expected) and stored_rows().equals(expected)
    shard_mb = sum(f.stat().st_size for f in (folder / "a").rglob("*.parquet")) / 2**20
    shutil.rmtree(folder, ignore_errors=True)
    return {"seconds": on_dask, "peak_rss_mb": sharded_rss, "process_peak_rss_mb": round(peak_rss_mb(), 1),
            "single_s": single, "in_process_s": export + in_process + stored,
            "export_s": export, "shard_builds_s": in_process, "store_s": stored, "shards": shards,
            "shard_files_mb": round(shard_mb, 1), "worker_peak_rss_mb": round(max(mb for _, mb in built), 1),
            "identical": identical}


STEPS = {"ingest": step_ingest, "read_csv": step_read_csv, "floor": step_floor, "core": step_core,
         "pandas": step_pandas, "full": step_full, "incremental": step_incremental, "estimate": step_estimate,
         "sharded": step_sharded}


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: on Linux a child keeps the high-water mark of the memory
    it forked from across exec, so every step would report at least the parent's size (the parent
    holds DuckDB's memory after generating the CSV: 3.7 GB at 10M posts)."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_step(name: str, posts: int, shards: int) -> dict:
    # the machine may be shared: the 1-minute load average when the step starts goes with its result
    load = round(os.getloadavg()[0], 2)
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", "--posts", str(posts), "--step", name,
                          "--shards", str(shards)],
                         cwd=HERE.parent, capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-3000:], file=sys.stderr)
        if out.returncode < 0:  # e.g. SIGKILL from the kernel's out-of-memory killer leaves no traceback
            return {"error": f"killed by signal {-out.returncode} ({signal.Signals(-out.returncode).name})",
                    "load_average": load}
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed",
                "load_average": load}
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_average": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--step", choices=sorted(STEPS), help="run one step in this process (internal)")
    parser.add_argument("--shards", type=int, default=8, help="shards of the sharded step")
    parser.add_argument("--steps", help="comma-separated steps to run (default: all); a subset prints its "
                                        "results and leaves benchmarks/results.json alone")
    args = parser.parse_args()
    if args.step:
        result = STEPS[args.step](args.posts, *([args.shards] if args.step == "sharded" else []))
        result.setdefault("peak_rss_mb", peak_rss_mb())   # a step may report the peak of its measured part
        print(json.dumps(result))
        return

    DATA.mkdir(parents=True, exist_ok=True)
    csv_path = DATA / f"scale_{args.posts}.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        generate(args.posts, csv_path)
        print(f"generated {csv_path} in {time.perf_counter() - started:.1f} s", flush=True)
    chosen = args.steps.split(",") if args.steps else list(STEPS)
    unknown = sorted(set(chosen) - set(STEPS))
    if unknown:
        parser.error(f"unknown steps {', '.join(unknown)} (choose from {', '.join(STEPS)})")
    steps = {}
    for name in chosen:
        steps[name] = run_step(name, args.posts, args.shards)
        print(f"{name:12s} {json.dumps(steps[name])}", flush=True)
    if args.steps:
        return

    sec = lambda name: steps[name].get("seconds")  # noqa: E731
    ratio = lambda a, b: round(a / b, 3) if a is not None and b else None  # noqa: E731
    results = {
        "posts": steps["ingest"].get("loaded", args.posts),
        "organisations": ORGS,
        "core_features_s": sec("core"), "pandas_s": sec("pandas"), "floor_s": sec("floor"),
        "full_features_s": sec("full"), "full_features_window0_s": steps["full"].get("window0_seconds"),
        "incremental_s": sec("incremental"),
        "incremental_full_rebuild_s": steps["incremental"].get("full_rebuild_seconds"),
        "incremental_affected_orgs": steps["incremental"].get("affected_orgs"),
        "ingest_s": sec("ingest"), "read_csv_s": sec("read_csv"),
        "estimate_10k_s": sec("estimate"),
        "sharded_features_s": sec("sharded"), "sharded_shards": steps["sharded"].get("shards"),
        "sharded_single_s": steps["sharded"].get("single_s"),
        "peak_rss_mb": max((s.get("peak_rss_mb") or 0) for s in steps.values()),
        "peak_rss_mb_by_step": {k: round(v.get("peak_rss_mb") or 0, 1) for k, v in steps.items()},
        "load_average_by_step": {k: v["load_average"] for k, v in steps.items()},
        "ratios": {
            "core_vs_floor": ratio(sec("core"), sec("floor")),
            "pandas_vs_core": ratio(sec("pandas"), sec("core")),
            "incremental_vs_full": ratio(sec("incremental"), steps["incremental"].get("full_rebuild_seconds")),
            "ingest_vs_read_csv": ratio(sec("ingest"), sec("read_csv")),
        },
        "errors": {k: v["error"] for k, v in steps.items() if "error" in v},
        "command": f"make bench POSTS={args.posts}",
        "measured_at": datetime.now().isoformat(timespec="seconds"),
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
