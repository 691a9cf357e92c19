"""Evidence of absence needs coverage: a timeline source shows silence only over the period it covers
(a file's collection, a live account's completed timeline reads). Inside it, no official post is the
evidence the bottom stages need; beyond it, the window's counts are lower bounds and nothing is excluded."""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from connectors.observation import EXACT, LOWER_BOUND, covers, observe
from connectors.sp500 import import_sp500
from features.runner import build_features
from fake_api import FakeAPI
from connector_helpers import FakeClock
from models import dimensions as D
from models.rules import rule_frame
from models.spec import load_model
from pipeline.config import apply_config, load_config
from pipeline.estimation import org_frame, org_observation
from pipeline.store import utcnow
from pipeline.sync import sync

SNOWFLAKE_EPOCH_MS = 1288834974657
COLLECTION_END = datetime(2020, 9, 30, 12)


def snowflake(moment: datetime) -> int:
    return (int((moment - datetime(1970, 1, 1)).total_seconds() * 1000) - SNOWFLAKE_EPOCH_MS) << 22


def forrester_reading(store, as_of: datetime, window_days: int = 90) -> dict[str, tuple[str, int, int]]:
    """org -> (status, low, high) of the Forrester rules at as_of."""
    frame = D.compute(org_frame(store, as_of, window_days))
    rules = rule_frame(load_model("forrester"), frame)
    return {org: (status, int(low), int(high))
            for org, status, low, high in zip(frame["org"], rules.status, rules.low, rules.high)}


def test_a_period_need_is_a_lower_bound_where_the_window_reaches_beyond_the_source():
    assert observe(["sp500"])["timeline"] == EXACT
    assert observe(["sp500"], partial={"sp500"})["timeline"] == LOWER_BOUND
    assert observe(["sp500"], partial={"sp500"})["mentions"] == "none"        # only period needs change
    # another kind that covers the window still makes it exact
    assert observe(["sp500", "x"], partial={"sp500"})["timeline"] == EXACT
    as_of = datetime(2020, 9, 30)
    assert covers(datetime(2020, 1, 1), as_of, as_of - timedelta(days=90), as_of)
    assert not covers(datetime(2020, 1, 1), as_of - timedelta(days=1), as_of - timedelta(days=90), as_of)
    assert not covers(datetime(2020, 8, 1), as_of, as_of - timedelta(days=90), as_of)
    assert covers(datetime(2020, 8, 1), as_of, None, as_of)                   # all data: the end only
    assert covers(None, as_of, as_of - timedelta(days=900), as_of)


def test_silence_is_dormancy_inside_a_timeline_collection_and_unknown_beyond_it(store, tmp_path):
    folder = tmp_path / "sp500"
    folder.mkdir()
    busy = [datetime(2020, 1, 2) + timedelta(days=3 * k) for k in range(90)]      # through late Sep
    quiet = [datetime(2020, 1, 5), datetime(2020, 1, 9)]                          # January only
    lines = [f'"BusyCo"\t"{snowflake(t)}"' for t in busy] + [f'"QuietCo"\t"{snowflake(t)}"' for t in quiet]
    lines.append(f'"BusyCo"\t"{snowflake(COLLECTION_END)}"')
    (folder / "SP500-tweet-id-2020.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "orgs.toml"
    config.write_text('[[org]]\nid = "busy"\naccounts = [{ platform = "twitter", handle = "BusyCo" }]\n'
                      '[[org]]\nid = "quiet"\naccounts = [{ platform = "twitter", handle = "QuietCo" }]\n')
    import_sp500(store, folder)
    apply_config(store, load_config(config))
    later = COLLECTION_END + timedelta(days=365)
    for as_of in (COLLECTION_END, later):
        build_features(store.con, as_of, windows=(90,))

    inside = forrester_reading(store, COLLECTION_END)
    assert inside["quiet"] == ("ok", 0, 0)            # a complete timeline without a post: Laggards
    assert inside["busy"][1] >= 1                      # posting: above the bottom stage
    observed = org_observation(store, COLLECTION_END, 90).set_index("org")
    assert observed.loc["quiet", "observes_timeline"] == EXACT

    beyond = forrester_reading(store, later)          # a year after the file ends: nothing is known
    assert beyond["quiet"][0] != "ok" and beyond["busy"][0] != "ok"
    assert org_observation(store, later, 90).set_index("org").loc["quiet", "observes_timeline"] == LOWER_BOUND


@pytest.fixture
def api():
    with FakeAPI(page_size=3) as server:
        yield server


def test_a_live_account_read_to_its_end_without_posts_is_evidence_of_absence(api, store, tmp_path):
    api.add_statuses(4, "brand")
    config = tmp_path / "orgs.toml"
    config.write_text(f'''
[[source]]
kind = "mastodon"
[[org]]
id = "active"
accounts = [{{ platform = "mastodon", handle = "brand", instance = "{api.url}" }}]
[[org]]
id = "silent"
accounts = [{{ platform = "mastodon", handle = "nobody", instance = "{api.url}" }}]
''', encoding="utf-8")
    cfg = load_config(config)
    apply_config(store, cfg)
    before = utcnow()
    summary = sync(store, cfg, clock=FakeClock(), env={}, dotenv_path=None)
    assert summary.status == "ok"
    reads = store.df("select handle_key, read_from, read_through from timeline_reads order by handle_key")
    assert list(reads["handle_key"]) == ["brand", "nobody"]
    stored = {key: (start, through) for key, start, through in reads.itertuples(index=False)}
    (oldest,) = store.con.execute("select min(created_at) from posts").fetchone()
    assert pd.isna(stored["nobody"][0])                    # no post returned: from the platform's start
    assert stored["brand"][0] == oldest
    assert all(through >= before for _, through in stored.values())

    as_of = build_features(store.con, before, windows=(90,))
    reading = forrester_reading(store, as_of)
    assert reading["silent"] == ("ok", 0, 0)                                   # read, silent: Laggards
    # the same silence without a completed read is not observed at all
    store.con.execute("delete from timeline_reads where handle_key = 'nobody'")
    assert "silent" not in set(org_observation(store, as_of, 90)["org"])
    assert forrester_reading(store, as_of)["silent"][0] != "ok"

    # an incremental read continues the stored period; a backfill leaving a gap replaces it
    store.record_timeline_read("mastodon", "mastodon", "brand", None, before + timedelta(days=1), None,
                               continues=True)
    row = store.con.execute("select read_from, read_through from timeline_reads "
                            "where handle_key = 'brand'").fetchone()
    assert row == (oldest, before + timedelta(days=1))
    gap = before + timedelta(days=5)
    store.record_timeline_read("mastodon", "mastodon", "brand", gap, gap + timedelta(days=1), None,
                               continues=False)
    assert store.con.execute("select read_from from timeline_reads where handle_key = 'brand'").fetchone() == (gap,)


def test_an_id_whose_time_no_date_holds_is_rejected_at_its_line(store, tmp_path):
    folder = tmp_path / "sp500"
    folder.mkdir()
    (folder / "SP500-tweet-id-2020.txt").write_text(
        f'"BusyCo"\t"{snowflake(datetime(2020, 1, 2))}"\n"BusyCo"\t"2000000000000000000000"\n', encoding="utf-8")
    _, counts = import_sp500(store, folder)
    assert (counts.read, counts.loaded, counts.rejected) == (2, 1, 1)
    assert store.con.execute("select line, field, reason from rejected_rows").fetchall() == [
        (2, "tweet_id", "not an X id (its time is out of range): 2000000000000000000000")]
