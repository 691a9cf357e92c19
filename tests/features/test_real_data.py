"""The signal library on the real shared data: S&P 500 tweet ids (cadence, time decoded from the
snowflake id), Facebook Live sellers pages (engagement) and the twcs prefix file (responsiveness, team).
Expected values are recomputed here directly from the files with pandas."""
import csv
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from connectors.facebook_pages import import_facebook_pages
from connectors.records import snowflake_time
from connectors.sp500 import import_sp500
from connectors.twcs import import_twcs
from features.runner import build_features, feature_catalog, features_frame
from pipeline.config import apply_config, load_config
from pipeline.jobs import FILE_IMPORTERS


def test_importers_are_registered():
    assert FILE_IMPORTERS["sp500"] is import_sp500
    assert FILE_IMPORTERS["facebook_pages"] is import_facebook_pages


def test_snowflake_decoding():
    # 1212161514087624704 is the first row of SP500-tweet-id-2020-01.txt (TiffanyAndCo, 1 Jan 2020)
    moment = snowflake_time(1212161514087624704)
    assert moment == datetime(1970, 1, 1) + pd.Timedelta(
        milliseconds=(1212161514087624704 >> 22) + 1288834974657)
    assert moment.date() == datetime(2020, 1, 1).date()


def test_sp500_cadence(shared_data, store, tmp_path):
    folder = shared_data / "raw" / "sp500"
    rows = []
    for file in sorted(folder.glob("SP500-tweet-id-*.txt")):
        with open(file, newline="", encoding="utf-8") as handle:
            rows += [r for r in csv.reader(handle, delimiter="\t") if r]
    frame = pd.DataFrame(rows, columns=["name", "id"])
    frame = frame[frame["id"].str.isdigit()].drop_duplicates("id", keep="last")
    frame["at"] = pd.to_datetime((frame["id"].astype("int64").to_numpy() >> 22) + 1288834974657, unit="ms")

    _, counts = import_sp500(store, folder)
    assert counts.read == len(rows) and counts.loaded + counts.rejected == counts.read
    cfg = tmp_path / "org.toml"
    cfg.write_text('[[org]]\nid = "apple"\naccounts = [{ platform = "twitter", handle = "Apple" }]\n')
    apply_config(store, load_config(cfg))
    as_of = build_features(store.con, windows=(0, 30))
    assert as_of == frame["at"].max().to_pydatetime()

    accounts = features_frame(store.con, as_of, 0).set_index("account")
    busiest = frame["name"].value_counts().index[0]
    mine = frame[frame["name"] == busiest].sort_values("at")
    row = accounts.loc[busiest]
    assert row.posts == len(mine)
    days = (as_of - mine["at"].min()).total_seconds() / 86400
    assert row.posts_per_day == pytest.approx(len(mine) / days)
    gaps = mine["at"].diff().dt.total_seconds().dropna().to_numpy()
    assert row.post_gap_cv == pytest.approx(gaps.std() / gaps.mean())
    cells = (mine["at"].dt.day_of_week * 24 + mine["at"].dt.hour).nunique()
    assert row.weekday_hour_coverage == pytest.approx(cells / 168)
    assert row.mentions == 0 and np.isnan(row.response_rate)  # ids only: no mentions to judge
    assert accounts["posts"].sum() == len(frame)
    org = features_frame(store.con, as_of, 30, scope="org").set_index("org").loc["apple"]
    assert org.posts == ((frame["name"] == "Apple") & (frame["at"] >= as_of - pd.Timedelta(days=30))).sum()
    assert org.platforms == (1 if org.posts else 0)


def test_facebook_pages_engagement(shared_data, store):
    path = shared_data / "raw" / "facebook_live_sellers" / "Live.csv"
    raw = pd.read_csv(path, dtype={"status_id": str})
    raw = raw.drop_duplicates("status_id", keep="last")
    raw["page"] = raw["status_id"].str.split("_").str[0]
    _, counts = import_facebook_pages(store, path)
    assert counts.rejected == 0 and counts.loaded == counts.read
    as_of = build_features(store.con)
    pages = features_frame(store.con, as_of, 0).set_index("account")
    # PROVENANCE.txt says 10 pages; the file holds 9 distinct page ids (and 53 repeated status_ids)
    assert len(pages) == raw["page"].nunique() == 9
    for page, posts in raw.groupby("page"):
        row = pages.loc[page]
        assert row.posts == len(posts)
        engagement = (posts["num_reactions"] + posts["num_comments"] + posts["num_shares"]).mean()
        assert row.engagement_per_post == pytest.approx(engagement)
        assert row.media_share == pytest.approx(posts["status_type"].isin(["photo", "video"]).mean())
        assert row.proactive_share == 1.0


def test_twcs_responsiveness_and_team(twcs_prefix, store):
    import_twcs(store, twcs_prefix)
    as_of = build_features(store.con, windows=(0, 30))
    frame = features_frame(store.con, as_of, 0).set_index("account")
    raw = pd.read_csv(twcs_prefix, dtype={"author_id": str, "text": str})
    raw = raw[pd.to_numeric(raw["tweet_id"], errors="coerce").notna()]
    amazon = raw[(raw["author_id"] == "AmazonHelp") & raw["in_response_to_tweet_id"].notna()]
    hours = pd.to_datetime(amazon["created_at"], format="%a %b %d %H:%M:%S %z %Y", utc=True).dt.hour
    row = frame.loc["AmazonHelp"]
    assert row.reply_hours_covered == hours.nunique()
    assert row.agent_signatures > 10 and 1 <= row.estimated_team_size <= row.agent_signatures
    private = amazon["text"].str.contains(
        r"(?i)\b(?:dm|dms|pm|direct message|private message|private messages|message us|inbox)\b")
    assert row.private_channel_share == pytest.approx(private.mean())
    assert row.mentions > 100 and 0 < row.answered_within_1h_share <= row.response_rate
    assert 0 <= row.multi_party_reply_share <= 1 and row.conversation_depth_mean >= 2
    # every feature exists for every brand, with its evidence count
    stored = store.con.execute(
        "select count(distinct feature), count(*) filter (where evidence is null and feature not like '%trend') "
        "from features where as_of = ?", [as_of]).fetchone()
    assert stored == (len(feature_catalog()), 0)
