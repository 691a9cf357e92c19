"""The feature build sharded by organisation through the pipeline: the jobs, the flow on a Dask
LocalCluster and the nightly's `[settings] feature_shards` store exactly what the single build stores
(the library's identity: tests/features/test_shards.py)."""
from __future__ import annotations

import pytest

from features.runner import FeatureError, build_features
from pipeline import jobs
from pipeline.flows import build_features_sharded, nightly, task_runner
from pipeline.store import Store
from tests.features.test_shards import PAST, WINDOWS, write_orgs_store


def stored(db) -> object:
    with Store(db, read_only=True) as store:
        return store.df("select * exclude (computed_at) from features order by all")


def latest(db):
    with Store(db, read_only=True) as store:
        return store.con.execute("select max(created_at) from posts").fetchone()[0]


def single_build(db, moments) -> object:
    with Store(db) as store:
        for as_of in moments:
            build_features(store.con, as_of, windows=WINDOWS)
    return stored(db)


def test_the_sharded_job_stores_the_single_build_and_is_cached_like_it(tmp_path):
    db = write_orgs_store(tmp_path / "orgs.duckdb")
    single = single_build(db, [PAST])
    result = jobs.compute_features_sharded(str(db), PAST, WINDOWS, shards=3)
    assert result.cached == [] and result.organisations == 3 and result.accounts == 5
    assert stored(db).equals(single)
    assert not list(jobs.default_shard_dir(db).iterdir())   # the shards are gone once stored
    # the fingerprints it recorded are the single build's: either build's features answer for them
    assert jobs.compute_features(str(db), PAST, WINDOWS).cached == list(WINDOWS)
    again = jobs.compute_features_sharded(str(db), PAST, WINDOWS, shards=5, shard_dir=tmp_path / "elsewhere")
    assert again.cached == list(WINDOWS) and not (tmp_path / "elsewhere").exists()


@pytest.mark.flow
def test_shards_on_a_local_cluster_store_the_single_build_row_for_row(harness, tmp_path):
    from distributed import Client, LocalCluster, get_task_stream

    db = write_orgs_store(tmp_path / "orgs.duckdb")
    moments = [latest(db), PAST]
    single = single_build(db, moments)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client, get_task_stream(client) as stream:
        flow = build_features_sharded.with_options(task_runner=task_runner("dask", cluster.scheduler_address))
        for as_of in moments:
            result = flow(db_path=str(db), shards=4, windows=list(WINDOWS), as_of=as_of.isoformat(),
                          shard_dir=str(tmp_path / "shared"))
            assert result.as_of == as_of and result.cached == []
    ran = [str(entry["key"]) for entry in stream.data]
    assert sum(key.startswith("build_feature_shard_task-") for key in ran) == 2 * 4
    sharded = stored(db)
    assert set(sharded["scope"]) == {"org", "account"} and set(sharded["window_days"]) == set(WINDOWS)
    assert len({a for a in sharded["as_of"]}) == 2
    assert sharded.equals(single)
    assert not list((tmp_path / "shared").iterdir())


@pytest.mark.flow
def test_the_nightly_with_feature_shards_stores_the_features_of_the_single_build(harness, tmp_path, monkeypatch):
    monkeypatch.setenv("MATURITY_PSEUDONYM_KEY", "flow-shards-test-key")   # same pseudonyms in both stores
    source = '[[source]]\nkind = "synthetic"\nname = "syn"\nseed = 7\norgs = 6\n'
    (tmp_path / "single.toml").write_text(source, encoding="utf-8")
    (tmp_path / "sharded.toml").write_text(f'[settings]\nfeature_shards = 3\nshard_dir = "shards"\n{source}',
                                           encoding="utf-8")
    runs = {name: nightly(config_path=str(tmp_path / f"{name}.toml"), db_path=str(tmp_path / f"{name}.duckdb"))
            for name in ("single", "sharded")}
    assert runs["single"].status == runs["sharded"].status == "ok"
    assert runs["sharded"].features.organisations == 6
    single, sharded = stored(tmp_path / "single.duckdb"), stored(tmp_path / "sharded.duckdb")
    assert len(single) and sharded.equals(single)
    assert not list((tmp_path / "shards").iterdir())
    again = nightly(config_path=str(tmp_path / "sharded.toml"), db_path=str(tmp_path / "sharded.duckdb"))
    assert again.status == "ok" and again.features.cached == again.features.windows   # inputs unchanged


@pytest.mark.flow
def test_a_failed_shard_stores_nothing_and_names_the_shard(harness, tmp_path, monkeypatch):
    db = write_orgs_store(tmp_path / "orgs.duckdb")
    before = single_build(db, [PAST])
    build = jobs.build_feature_shard

    def failing(shard, as_of, windows):
        if shard.endswith("shard-001"):
            raise MemoryError("worker out of memory")
        return build(shard, as_of, windows)

    monkeypatch.setattr(jobs, "build_feature_shard", failing)
    with Store(db) as store:   # window 30 missing: a failed build must not fill it
        store.con.execute("delete from features where window_days = 30")
    with pytest.raises(FeatureError, match="shard shard-001 failed: worker out of memory"):
        build_features_sharded(db_path=str(db), shards=3, windows=list(WINDOWS), as_of=PAST.isoformat(),
                               shard_dir=str(tmp_path / "shards"))
    assert stored(db).equals(before.query("window_days != 30").reset_index(drop=True))
    assert not list((tmp_path / "shards").iterdir())


@pytest.mark.flow
def test_the_features_command_with_shards_prints_the_single_builds_table(harness, tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    db = str(write_orgs_store(tmp_path / "orgs.duckdb"))
    command = ["features", "--db", db, "--window", "30", "--scope", "org", "--format", "csv"]
    single = CliRunner().invoke(app, command)
    sharded = CliRunner().invoke(app, [*command, "--shards", "3", "--shard-dir", str(tmp_path / "shards")])
    assert single.exit_code == sharded.exit_code == 0, sharded.output
    assert sharded.stdout == single.stdout and single.stdout.count("\n") == 4   # header and three organisations
    needs_shards = CliRunner().invoke(app, ["features", "--db", db, "--task-runner", "dask"])
    assert needs_shards.exit_code == 2 and "need --shards" in needs_shards.output
