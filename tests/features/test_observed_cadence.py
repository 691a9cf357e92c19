"""The robust cadence (features/sql/12_observed_cadence.sql) and the care features
(features/sql/55_teams.sql) on hand-made data with answers worked out from their definitions."""
from datetime import datetime, timedelta

import pytest

from connectors.records import Post, posts_to_batch
from features.runner import build_features, features_frame
from pipeline.config import apply_config, load_config

AS_OF = datetime(2024, 6, 30, 23, 0)


@pytest.fixture
def brand(store, tmp_path):
    cfg = tmp_path / "brand.toml"
    cfg.write_text('[[org]]\nid = "brand_org"\naccounts = [\n'
                   '  { platform = "twitter", handle = "brand", role = "brand" },\n'
                   '  { platform = "twitter", handle = "brandhelp", role = "support" },\n]\n')
    apply_config(store, load_config(cfg))
    start = datetime(2024, 5, 1, 12)
    # 40 posts, one a day from 1 May (12:00, the last on 9 June), plus one stray post a year earlier
    posts = [Post("twitter", f"p{i}", "brand", True, start + timedelta(days=i), text="news") for i in range(40)]
    posts.append(Post("twitter", "stray", "brand", True, datetime(2023, 5, 1), text="old"))
    # 12 customer mentions answered by the care account within an hour; 3 answers signed by two agents
    for i in range(12):
        at = start + timedelta(days=i, hours=2)
        posts.append(Post("twitter", f"m{i}", str(1000 + i), False, at, text="@brandhelp help?"))
        posts.append(Post("twitter", f"r{i}", "brandhelp", True, at + timedelta(minutes=30), in_reply_to=f"m{i}",
                          text="On it ^AB" if i < 2 else "Looking"))
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="test", run_id=None)
    build_features(store.con, AS_OF, windows=(0,))
    return features_frame(store.con, AS_OF, 0, scope="org").iloc[0]


def test_a_stray_old_post_does_not_stretch_the_observed_span(brand):
    # 53 posts over 41 days: P5-P95 span of the post times; the stray post moves P5 by one order statistic
    assert brand["posts"] == 53
    assert 0.9 * 53 / 45 < brand["posts_per_day_robust"] < 0.9 * 53 / 30     # about one post a day, not 53 / 426
    assert brand["active_week_share"] == pytest.approx(1.0)
    assert brand["proactive_posts"] == 41


def test_care_features_count_replies_the_care_account_and_answered_platforms(brand):
    assert brand["replies"] == 12
    assert brand["care_account_active"] == 1
    assert brand["platforms_engaged"] == 1     # 12 answered mentions on twitter (>= 10)


def test_too_few_posts_have_no_cadence(store, tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text('[[org]]\nid = "small"\naccounts = [ { platform = "twitter", handle = "small", role = "brand" } ]\n')
    apply_config(store, load_config(cfg))
    posts = [Post("twitter", f"s{i}", "small", True, datetime(2024, 6, 1) + timedelta(days=i), text="x")
             for i in range(10)]
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="test", run_id=None)
    build_features(store.con, AS_OF, windows=(0,))
    row = features_frame(store.con, AS_OF, 0, scope="org").iloc[0]
    assert row["posts"] == 10 and row["posts_per_day_robust"] != row["posts_per_day_robust"]   # NaN
    assert row["platforms_engaged"] == 0
