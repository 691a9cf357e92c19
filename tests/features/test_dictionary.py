"""The committed feature dictionary is generated from the code and must match it."""
from pathlib import Path

from typer.testing import CliRunner

from features.runner import dictionary_markdown, feature_catalog
from pipeline.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs" / "features.md"

REQUIRED = {
    "cadence": ["posts", "posts_per_day", "active_day_share", "post_gap_cv", "weekday_hour_coverage",
                "posts_per_day_robust", "active_week_share", "proactive_posts"],
    "responsiveness": ["mentions", "answered", "response_rate", "first_reply_median_s", "first_reply_p90_s",
                       "answered_within_1h_share", "business_hours_median_s", "off_hours_median_s",
                       "question_share", "question_response_rate", "multi_party_reply_share"],
    "mention_handling": ["private_channel_share", "public_resolution_share", "multi_turn_share",
                         "conversation_depth_mean"],
    "team": ["agent_signatures", "estimated_team_size", "reply_hours_covered"],
    "structure": ["accounts", "department_accounts", "roles_covered", "platforms", "accounts_per_platform",
                  "replies", "care_account_active", "platforms_engaged"],
    "content": ["proactive_share", "link_share", "media_share", "hashtag_share", "engagement_per_post",
                "customer_to_customer_replies"],
    "trend": ["posts_per_day_trend", "response_rate_trend", "first_reply_median_s_trend", "mentions_trend"],
    "completeness": ["completeness"],
}


def test_docs_features_md_is_up_to_date():
    assert DOCS.read_text(encoding="utf-8") == dictionary_markdown(), (
        "docs/features.md is out of date: run `maturity dictionary --out docs/features.md`")


def test_announced_names_are_defined_in_their_groups():
    by_name = {f.name: f for f in feature_catalog()}
    for group, names in REQUIRED.items():
        for name in names:
            assert name in by_name, name
            assert by_name[name].group == group, name
            assert by_name[name].definition and by_name[name].unit
    assert len(by_name) == len(feature_catalog())  # names are unique across groups


def test_dictionary_command_writes_the_file(tmp_path):
    out = tmp_path / "features.md"
    result = CliRunner().invoke(app, ["dictionary", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text == dictionary_markdown()
    assert "| `post_gap_cv` | cadence | ratio |" in text
    assert "| `mentions_trend` | trend | mentions | 30, 90" in text
