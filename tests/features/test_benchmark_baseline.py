"""The benchmark compares like with like: the pandas baseline (benchmarks/pandas_core.py) computes the
same core features as the SQL library on the benchmark's generated data, and the generator's output
imports cleanly through the project's importer."""
import numpy as np
import pandas as pd

from benchmarks import run as bench
from benchmarks.pandas_core import core_features, load_inputs
from connectors.twcs import import_twcs
from features.runner import build_features

CORE = ["posts", "posts_per_day", "active_day_share", "mentions", "answered", "response_rate",
        "first_reply_median_s", "first_reply_p90_s"]


def test_pandas_baseline_matches_the_sql_core(store, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "ORGS", 50)
    csv_path = tmp_path / "scale.csv"
    bench.generate(6000, csv_path)
    bench.configure_orgs(store)
    _, counts = import_twcs(store, csv_path)
    assert counts.rejected == 0 and counts.loaded > 5000
    as_of = build_features(store.con, only=bench.CORE)
    sql = store.df("select scope, org_id, platform, account, feature, value from features where as_of = ?",
                   [as_of]).pivot(index=["scope", "org_id", "platform", "account"], columns="feature",
                                  values="value")
    baseline = core_features(*load_inputs(store, as_of))
    baseline[["platform", "account"]] = baseline[["platform", "account"]].fillna("")
    baseline = baseline.set_index(["scope", "org_id", "platform", "account"])
    joined = sql.join(baseline, rsuffix="_pandas", how="inner")
    assert len(joined) == len(baseline) >= 50 + 50  # every org and every account with activity
    assert joined["mentions"].sum() > 1000
    for feature in CORE:
        a, b = joined[feature].astype(float), joined[f"{feature}_pandas"].astype(float)
        assert np.allclose(a.fillna(-1), b.fillna(-1)), feature
