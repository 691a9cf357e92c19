"""The signal library on small hand-made data with answers worked out by hand from the definitions in
the `-- feature:` lines (see docs/features.md)."""
from datetime import datetime, timedelta

import numpy as np
import pytest

from connectors.records import Post, posts_to_batch
from features import runner
from features.runner import (FeatureError, affected_orgs, backfill_features, build_features,
                             feature_catalog, features_frame)
from pipeline.config import apply_config, load_config

# Monday 2024-03-04 12:00 UTC = 07:00 in New York (UTC-5 before the DST change of 10 March)
T0 = datetime(2024, 3, 4, 12, 0, 0)
AS_OF = T0 + timedelta(days=4)


def load(store, posts):
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="test", run_id=None)


def tw(pid, author, minutes, reply=None, text=""):
    return Post("twitter", pid, author, not author.isdigit(), T0 + timedelta(minutes=minutes),
                in_reply_to=reply, text=text)


def fb(pid, minutes, text, media, likes, shares, comments):
    return Post("facebook", pid, "acme_fb", True, T0 + timedelta(minutes=minutes), text=text,
                has_media=media, like_count=likes, repost_count=shares, reply_count=comments)


@pytest.fixture
def acme(store, tmp_path):
    cfg = tmp_path / "acme.toml"
    cfg.write_text(
        '[[org]]\nid = "acme_org"\ntimezone = "America/New_York"\nbusiness_hours = "09:00-17:00"\n'
        'accounts = [\n'
        '  { platform = "twitter", handle = "acme", role = "brand" },\n'
        '  { platform = "twitter", handle = "acmehelp", role = "support" },\n'
        '  { platform = "facebook", handle = "acme_fb", role = "marketing" },\n'
        '  { platform = "twitter", handle = "acme_news", role = "news" },\n]\n')
    apply_config(store, load_config(cfg))
    load(store, [
        tw("1", "acme", 0, text="Spring sale #deals https://x.co/a"),           # proactive
        tw("2", "100", 10, "1", "when does it end?"),                           # mention (rule 1), question
        tw("3", "acme", 20, "2", "Friday! DM us for a code ^AB"),                # private channel, 600 s
        tw("4", "100", 30, "3", "thanks"),                                       # mention (rule 1)
        tw("5", "acme", 40, "4", "you are welcome ^AB"),                         # 600 s, multi-turn
        tw("15", "acme", 45, "4", "Anything else?"),                             # unsigned, multi-turn
        tw("6", "101", 150, None, "@acmehelp my order is late?"),                # rule 2, business hours
        tw("7", "acmehelp", 270, "6", "Sorry about that -Becky"),                # 7,200 s
        tw("8", "102", 200, "6", "same here"),                                   # customer-to-customer
        tw("14", "acmehelp", 210, "8", "Checking -Becky"),                       # 600 s
        tw("9", "103", 300, None, "@acme hello"),                                # rule 3, never answered
        fb("10", 60, "New video", True, 10, 2, 3),
        fb("11", 1440, "Photo", False, 5, 0, 0),
        tw("12", "acme", 3 * 1440, text="Update"),
    ])
    build_features(store.con, AS_OF, windows=(0,))
    return store


def org_row(store, window=0, as_of=AS_OF):
    return features_frame(store.con, as_of, window, scope="org").set_index("org").loc["acme_org"]


def account_row(store, handle, window=0, as_of=AS_OF):
    return features_frame(store.con, as_of, window).set_index("account").loc[handle]


def test_cadence_regularity_and_weekday_hour_coverage(acme):
    org = org_row(acme)
    assert org.posts == 9
    assert org.posts_per_day == pytest.approx(9 / 4)
    assert org.active_day_share == pytest.approx(3 / 5)  # 4, 5 and 7 March of 4..8 March
    minutes = np.array([0, 20, 40, 45, 60, 210, 270, 1440, 4320]) * 60.0
    gaps = np.diff(minutes)
    assert org.post_gap_cv == pytest.approx(gaps.std() / gaps.mean())
    # New York: Mon 07 (x4), Mon 08, Mon 10, Mon 11, Tue 07, Thu 07 -> 6 distinct cells
    assert org.weekday_hour_coverage == pytest.approx(6 / 168)
    # two posts: one gap, too few for a coefficient of variation
    assert np.isnan(account_row(acme, "acmehelp").post_gap_cv)


def test_responsiveness_extras(acme):
    org = org_row(acme)
    assert (org.mentions, org.answered) == (5, 4)  # 2, 4, 6, 8 answered; 9 not
    assert org.first_reply_median_s == 600
    assert org.answered_within_1h_share == pytest.approx(3 / 5)
    # 6 (09:30 NY) and 8 (10:20 NY) in business hours; 2 and 4 (07:10, 07:30 NY) before them
    assert org.business_hours_median_s == pytest.approx((7200 + 600) / 2)
    assert org.off_hours_median_s == 600
    assert org.question_share == pytest.approx(2 / 5)
    assert org.question_response_rate == 1.0
    # thread of 6 holds customers 101 and 102: mentions 6 and 8; thread of 1 only customer 100
    assert org.multi_party_reply_share == pytest.approx(2 / 4)


def test_business_hours_follow_the_org_timezone(acme, tmp_path):
    cfg = tmp_path / "utc.toml"
    cfg.write_text('[[org]]\nid = "acme_org"\ntimezone = "UTC"\nbusiness_hours = "12:00-13:00"\n'
                   'accounts = [{ platform = "twitter", handle = "acme", role = "brand" }]\n')
    apply_config(acme, load_config(cfg))
    build_features(acme.con, AS_OF)
    acme_account = account_row(acme, "acme")
    # in UTC 12:00-13:00 both answered acme mentions (12:10, 12:30) are business hours
    assert acme_account.business_hours_median_s == 600 and np.isnan(acme_account.off_hours_median_s)


def test_mention_handling(acme):
    org = org_row(acme)
    assert org.private_channel_share == pytest.approx(1 / 5)   # reply 3 of replies 3, 5, 15, 7, 14
    assert org.public_resolution_share == pytest.approx(3 / 4)  # mention 2 moved to DM
    assert org.multi_turn_share == pytest.approx(3 / 5)        # 3, 5, 15 continue a back-and-forth
    # threads: 1-2-3-4-5(15) depth 5, 6-8-14 depth 3, facebook 10 and 11 and post 12 depth 1
    assert org.conversation_depth_mean == pytest.approx((5 + 3 + 1 + 1 + 1) / 5)
    assert account_row(acme, "acme").conversation_depth_mean == pytest.approx((5 + 1) / 2)


def test_team(acme):
    org = org_row(acme)
    assert org.agent_signatures == 2          # AB and Becky
    assert org.estimated_team_size == 2       # both sign two replies
    assert org.signed_reply_share == pytest.approx(4 / 5)
    assert org.reply_hours_covered == 3       # 07, 10 and 11 h New York time
    acme_account = account_row(acme, "acme")
    assert (acme_account.agent_signatures, acme_account.estimated_team_size) == (1, 1)
    news = account_row(acme, "acme_news")
    assert (news.agent_signatures, news.estimated_team_size, news.reply_hours_covered) == (0, 0, 0)


def test_structure(acme):
    org = org_row(acme)
    assert org.accounts == 4
    assert org.department_accounts == 2      # support and marketing posted; news did not
    assert org.roles_covered == 3            # brand, support, marketing
    assert org.platforms == 2
    assert org.accounts_per_platform == 2


def test_content_and_engagement(acme):
    org = org_row(acme)
    assert org.proactive_share == pytest.approx(4 / 9)       # 1, 10, 11, 12
    assert org.link_share == pytest.approx(1 / 9)
    assert org.media_share == pytest.approx(1 / 2)          # only facebook reports media: 1 of its 2 posts
    assert org.hashtag_share == pytest.approx(1 / 9)
    assert org.engagement_per_post == pytest.approx((15 + 5) / 2)  # only facebook reports counts
    assert org.customer_to_customer_replies == 1                    # 102 answering 101 (to acmehelp)
    assert account_row(acme, "acmehelp").customer_to_customer_replies == 1
    assert np.isnan(account_row(acme, "acme").engagement_per_post)


def test_completeness_and_evidence(acme):
    # acme_news never posted: only the structure features resting on the account list are supported
    # (accounts, department_accounts, roles_covered, accounts_per_platform; platforms rests on posts)
    scored = [f for f in feature_catalog() if f.group not in ("trend", "completeness")]
    assert account_row(acme, "acme_news").completeness == pytest.approx(4 / len(scored))
    evidence = dict(acme.con.execute(
        "select feature, evidence from features where scope = 'org' and window_days = 0").fetchall())
    assert evidence["first_reply_median_s"] == 4 and evidence["question_response_rate"] == 2
    assert evidence["engagement_per_post"] == 2 and evidence["private_channel_share"] == 5
    org = org_row(acme)
    assert 0 < org.completeness < 1


def test_every_catalog_feature_is_stored(acme):
    stored = {f for (f,) in acme.con.execute("select distinct feature from features").fetchall()}
    assert stored == {f.name for f in feature_catalog()}


@pytest.fixture
def shop(store):
    """Mentions of @shop: day 1 three (answered after 60 s and 120 s, one never), day 11 four (30 s)."""
    day = timedelta(days=1)
    posts = []
    for i, latency in enumerate([60, 120, None]):
        at = T0 + day + timedelta(minutes=10 * i)
        posts.append(Post("twitter", f"a{i}", str(200 + i), False, at, text="@shop hi"))
        if latency:
            posts.append(Post("twitter", f"r{i}", "shop", True, at + timedelta(seconds=latency), in_reply_to=f"a{i}"))
    for i in range(4):
        at = T0 + 11 * day + timedelta(minutes=10 * i)
        posts.append(Post("twitter", f"b{i}", str(300 + i), False, at, text="@shop hi"))
        posts.append(Post("twitter", f"s{i}", "shop", True, at + timedelta(seconds=30), in_reply_to=f"b{i}"))
    load(store, posts)
    return store


def test_trend_compares_with_the_previous_window(shop):
    as_of = T0 + timedelta(days=20)
    build_features(shop.con, as_of, windows=(0, 10))
    now = account_row(shop, "shop", 10, as_of)
    assert (now.mentions, now.response_rate, now.first_reply_median_s) == (4, 1.0, 30)
    assert now.mentions_trend == 4 - 3
    assert now.response_rate_trend == pytest.approx(1 - 2 / 3)
    assert now.first_reply_median_s_trend == pytest.approx(30 - 90)
    assert now.posts_per_day_trend == pytest.approx(4 / 10 - 2 / 10)
    all_data = account_row(shop, "shop", 0, as_of)
    assert np.isnan(all_data.mentions_trend) and np.isnan(all_data.posts_per_day_trend)


def test_windows_in_one_call_and_backfill_keyed_by_as_of(shop):
    as_of = T0 + timedelta(days=20)
    build_features(shop.con, as_of, windows=(0, 30, 90))
    windows = {w for (w,) in shop.con.execute("select distinct window_days from features").fetchall()}
    assert windows == {0, 30, 90}
    moments = backfill_features(shop.con, T0 + timedelta(days=5), T0 + timedelta(days=15),
                                every=timedelta(days=5), windows=(0,))
    assert moments == [T0 + timedelta(days=d) for d in (5, 10, 15)]
    backfill_features(shop.con, T0 + timedelta(days=5), T0 + timedelta(days=15), every=timedelta(days=5),
                      windows=(0,))  # idempotent
    per_as_of = dict(shop.con.execute(
        "select as_of, count(*) from features where window_days = 0 group by 1").fetchall())
    assert len(per_as_of) == 4 and len(set(per_as_of.values())) == 1
    # day 5: mentions of day 1 are judged (answered 2 of 3); day 15: day-11 mentions too
    assert account_row(shop, "shop", 0, T0 + timedelta(days=5)).mentions == 3
    assert account_row(shop, "shop", 0, T0 + timedelta(days=15)).mentions == 7
    with pytest.raises(FeatureError):
        backfill_features(shop.con, T0 + timedelta(days=5), T0, every=timedelta(days=1))


def test_incremental_rebuild_replaces_only_the_given_orgs(acme):
    before = acme.con.execute("select count(*) from features where window_days = 0").fetchone()[0]
    (loaded,) = acme.con.execute("select max(loaded_at) from posts").fetchone()
    load(acme, [tw("99", "acme", 100, text="one more"), tw("98", "555", 100, text="@nobody hi")])
    assert affected_orgs(acme.con, loaded) == ["acme_org"]
    build_features(acme.con, AS_OF, orgs=["acme_org"])
    after = acme.con.execute("select count(*) from features where window_days = 0").fetchone()[0]
    assert after == before
    assert org_row(acme).posts == 10



def test_core_only_build(acme):
    build_features(acme.con, AS_OF + timedelta(days=1), only=("cadence", "responsiveness"))
    stored = {f for (f,) in acme.con.execute(
        "select distinct feature from features where as_of = ?", [AS_OF + timedelta(days=1)]).fetchall()}
    assert stored == {"posts", "posts_per_day", "active_day_share", "mentions", "answered", "response_rate",
                      "first_reply_median_s", "first_reply_p90_s"}
    with pytest.raises(FeatureError):
        build_features(acme.con, AS_OF, only=("nonsense",))


def test_a_failed_build_stores_nothing(acme, monkeypatch):
    stored = acme.df("select * from features order by all")
    groups = runner.feature_groups()
    # completeness fails in window 30 only, after window 0's rows were written in the same build
    failing = "select * from ({}) where case when getvariable('window_days') = 30 then error('window 30 broke') else true end"
    broken = [type(g)(g.name, g.filename, failing.format(g.sql), g.features) if g.name == "completeness" else g
              for g in groups]
    monkeypatch.setattr(runner, "feature_groups", lambda: broken)
    load(acme, [tw("97", "acme", 100, text="one more")])
    with pytest.raises(Exception, match="window 30 broke"):
        build_features(acme.con, AS_OF, windows=(0, 30))
    assert acme.df("select * from features order by all").equals(stored)
    monkeypatch.setattr(runner, "feature_groups", lambda: groups)
    build_features(acme.con, AS_OF)   # no transaction was left open on the connection
    assert org_row(acme).posts == 10


def test_a_build_leaves_none_of_its_work_tables_on_the_connection(acme):
    # the staged rows and the groups' results are dropped when a build ends: what runs next on the
    # connection (estimation, a facts rebuild) has the memory limit to itself
    build_features(acme.con, AS_OF, windows=(0, 30))            # 30: the previous window's tables too
    temporary = acme.con.execute("select table_name from duckdb_tables() where temporary union all "
                                 "select view_name from duckdb_views() where temporary").fetchall()
    assert not [name for (name,) in temporary if name.startswith(("stg_", "feat_", "prev_", "fact_"))], temporary
    assert org_row(acme, window=30).posts == 9                   # the build stored its rows
