"""The analyst API on the real twcs prefix (airlines group) with real model estimates."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models import dimensions as D
from models.spec import MODEL_IDS, load_models
from pipeline.api import NoEstimatesError, open_store

AIRLINES = {"airasia", "alaska_air_group", "american_airlines", "british_airways", "delta", "jetblue",
            "southwest", "virgin_atlantic"}


@pytest.fixture
def mi(airlines_db):
    with open_store(airlines_db) as analyst:
        yield analyst


def test_group_selection_and_hostile_filters(mi):
    assert set(mi.org_ids("airlines")) == AIRLINES
    assert mi.org_ids(orgs=["delta", "jetblue"]) == ["delta", "jetblue"]
    # values are parameters: an injection attempt matches nothing rather than everything
    with pytest.raises(ValueError, match="no configured organisation"):
        mi.org_ids(group="airlines' or '1'='1")
    with pytest.raises(ValueError):
        mi.org_ids(orgs=["x') or true --"])


def test_latency_distribution_matches_the_stored_features(mi):
    lat = mi.latency_distribution("airlines")
    feats = mi.features("airlines").set_index("org")
    assert set(lat["org"]) <= AIRLINES
    per_org = lat.groupby("org")
    for org, rows in per_org:
        assert len(rows) == feats.loc[org, "mentions"]
        assert rows["answered"].sum() == feats.loc[org, "answered"]
        answered = rows.loc[rows["answered"], "first_reply_s"]
        assert answered.between(0, 72 * 3600).all()
        assert np.isclose(np.quantile(answered, 0.5), feats.loc[org, "first_reply_median_s"])
    assert lat.loc[~lat["answered"], "first_reply_s"].isna().all()


def test_posting_heatmap_counts_every_post_once_in_local_time(mi):
    heat = mi.posting_heatmap("airlines")
    feats = mi.features("airlines").set_index("org")
    totals = heat.groupby("org")["posts"].sum()
    for org in AIRLINES:
        assert totals.get(org, 0) == feats.loc[org, "posts"]
    assert heat["weekday"].between(0, 6).all() and heat["hour"].between(0, 23).all()
    # independent check: the org's posts converted with Python's zoneinfo (New York, DST-aware)
    posts = mi.store.df("select created_at from posts where author_key = 'delta'")
    local = posts["created_at"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    expected = local.groupby([local.dt.day_of_week, local.dt.hour]).size()
    got = mi.posting_heatmap(orgs=["delta"]).set_index(["weekday", "hour"])["posts"]
    assert got.to_dict() == {k: int(v) for k, v in expected.items()}
    utc = mi.posting_heatmap(orgs=["delta"], local_time=False).set_index(["weekday", "hour"])["posts"]
    naive = posts["created_at"]
    assert utc.to_dict() == {k: int(v) for k, v in naive.groupby([naive.dt.day_of_week, naive.dt.hour]).size().items()}


def test_coverage_by_role_and_platform(mi):
    cov = mi.coverage("airlines")
    south = cov[cov["org"] == "southwest"].set_index("role")
    assert set(south.index) == {"brand", "support"}
    assert south["accounts"].sum() == 2
    feats = mi.features("airlines").set_index("org")
    assert cov.groupby("org")["posts"].sum().to_dict() == feats["posts"].astype(int).to_dict()


def test_percentile_ranks_orient_latency_and_put_the_best_at_100(mi):
    ranks = mi.percentile_ranks("airlines")
    assert set(ranks["signal"]) == set(D.SIGNALS)
    latency = ranks[ranks["signal"] == "first_reply_median_s"].dropna(subset=["value"])
    fastest = latency.loc[latency["value"].idxmin()]
    assert fastest["percentile"] == 100 and fastest["rank"] == 1
    rate = ranks[ranks["signal"] == "response_rate"].dropna(subset=["value"]).sort_values("value")
    assert rate["percentile"].is_monotonic_increasing
    assert ranks["percentile"].dropna().between(0, 100).all()


def test_estimates_matrix_history_and_smi_axes(mi):
    est = mi.estimates("airlines")
    assert set(est["org"]) == AIRLINES and set(est["model"]) == set(MODEL_IDS)
    assert est["as_of"].nunique() == 1
    matrix = mi.stage_matrix("airlines")
    assert list(matrix.columns) == ["org", *[c for m in MODEL_IDS for c in (m, f"{m}_confidence")]]
    specs = load_models()
    # each cell is the estimate in words: a stage, an interval, the SMI quadrants still possible
    described = est.pivot(index="org", columns="model", values="estimate")
    for m in MODEL_IDS:
        assert list(matrix[m]) == list(described.loc[matrix["org"], m])
        points = est[(est["model"] == m) & (est["status"] == "ok")]
        assert points["estimate"].isin(specs[m].stage_names).all()
        intervals = est[(est["model"] == m) & (est["status"] == "interval")]
        assert intervals["estimate"].str.contains("at least| to |one of ").all()
    hist = mi.history("airlines")
    assert hist["as_of"].nunique() == 2 and len(hist) == 2 * len(est)
    quad = mi.smi_quadrant("airlines").set_index("org")
    dims = mi.signals("airlines", as_of=est["as_of"].iloc[0]).set_index("org")
    for org in AIRLINES:
        assert quad.loc[org, "investment"] == pytest.approx(dims.loc[org, "investment"], abs=1e-4)
        assert quad.loc[org, "innovation"] == pytest.approx(dims.loc[org, "innovation"], abs=1e-4)
    smi = specs["smi"]
    for org, r in quad.iterrows():
        # every quadrant still possible agrees with each axis the evidence could read
        for quadrant in r["possible"]:
            levels = dict(smi.stages[smi.index_of(quadrant)].levels)
            for axis in ("investment", "innovation"):
                assert r[f"{axis}_level"] in ("unknown", levels[axis]), (org, quadrant, axis)


def test_explanations_and_advice_come_from_the_stored_estimate(mi):
    table = mi.explain("delta", "smmm")
    exp = mi.explanation("delta", "smmm")
    # every model's at once, the organisation's signals read once, are each model's own
    assert mi.explanations("delta") == [mi.explanation("delta", m) for m in MODEL_IDS]
    assert mi.explanations("delta", ["forrester", "smmm"])[1] == exp
    stored = mi.estimates(orgs=["delta"], models=["smmm"], detail=True).iloc[0]
    assert exp["stage"] == stored["stage"] and exp["probabilities"] == stored["probabilities"]
    assert len(table) == len(exp["signals"]) and set(table["model"]) == {"smmm"}
    # each criterion is stored without values and read back with the organisation's own
    explanation = stored["explanation"]
    entries = [e for kind in ("held", "failed", "abstained", "unobserved") for e in explanation["rules"][kind]]
    assert entries and all(list(e["signals"]) == [c["signal"] for c in e["comparisons"]]
                           and e["signals"] == {s: explanation["signals"][s] for s in e["signals"]} for e in entries)
    assert any(v is not None for e in entries for v in e["signals"].values())
    (raw,) = mi.store.con.execute(
        "select explanation from estimates where org_id = 'delta' and model = 'smmm'").fetchone()
    assert all(isinstance(e["signals"], list) for kind in ("held", "failed", "abstained", "unobserved")
               for e in json.loads(raw)["rules"][kind])
    advice = mi.advice("airlines")
    assert set(advice["org"]) == AIRLINES
    staged = advice[advice["status"] != "insufficient_evidence"]
    assert staged["advice"].str.startswith('"').all()
    thin = advice[advice["status"] == "insufficient_evidence"]
    assert thin["insufficient"].str.len().gt(0).all()


def test_what_if_uses_the_real_models_and_is_monotone(mi):
    fitted = mi.fitted_models()
    best = {s.signal: s.hi for s in D.SCALES}
    worst = {s.signal: s.lo for s in D.SCALES}
    up = mi.what_if("american_airlines", best, fitted=fitted)
    down = mi.what_if("american_airlines", worst, fitted=fitted)
    specs = load_models()
    assert list(up["model"]) == MODEL_IDS
    # the fitted models found beside the database are the ones the stored estimates came from
    assert (up["stored_stage"].fillna("-") == up["stage_before"].fillna("-")).all()
    for model, spec in specs.items():
        u, d = up.set_index("model").loc[model], down.set_index("model").loc[model]
        if spec.kind == "ordinal":
            assert spec.index_of(u["stage_after"]) >= spec.index_of(u["stage_before"])
            assert spec.index_of(d["stage_after"]) <= spec.index_of(d["stage_before"])
    # the best behaviour on every signal reaches the highest stage these sources can show in every
    # ordinal model (above it the estimate stays "at least ...")
    kinds = mi.signals(orgs=["american_airlines"]).iloc[0]
    shown = lambda c: any(kinds[f"obs_{m.signal}"] != "none" for m in c.comparisons)  # noqa: E731
    highest = {m: max(s.index for s in specs[m].stages
                      if s.criteria and all(shown(c) for c in s.criteria if c.required))
               for m in ("smmm", "s3m", "forrester", "altimeter")}
    for m, index in highest.items():
        assert specs[m].index_of(up.set_index("model").loc[m, "stage_after"]) == index, m
    assert up.set_index("model").loc["smi", "stage_after"] == "#SocialFirst"
    # an estimate in words: a stage alone is only an interval's lowest
    for r in pd.concat([up, down]).itertuples():
        if r.status_after == "insufficient_evidence":
            assert r.estimate_after == "insufficient evidence"
        else:
            assert r.stage_after in r.estimate_after
            assert (r.estimate_after != r.stage_after) == (r.status_after == "interval"), r
    assert up["changed"].equals(up["estimate_after"] != up["estimate_before"]) and up["changed"].any()
    with pytest.raises(ValueError, match="unknown signal"):
        mi.what_if("delta", {"followers": 10}, fitted=fitted)


def test_no_estimates_is_a_clear_error(airlines_db_no_estimates):
    with open_store(airlines_db_no_estimates) as mi:
        assert len(mi.features("airlines")) == len(AIRLINES)
        with pytest.raises(NoEstimatesError, match="maturity estimate"):
            mi.estimates("airlines")
        with pytest.raises(NoEstimatesError):
            mi.history("airlines")


def test_estimate_json_columns_are_parsed(mi):
    est = mi.estimates(orgs=["delta"], detail=True)
    assert all(isinstance(p, dict) for p in est["probabilities"])
    assert all("dimensions" in e for e in est["explanation"])
    json.dumps(est["explanation"].iloc[0])
