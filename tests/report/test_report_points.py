"""Issue 15 part 4: the report an analyst hands over (summary, data warnings, methodology, chart fixes,
percentile gate, concise advice, xlsx and print exports). HTML checks on the twcs airlines demo."""
from __future__ import annotations

import html as htmllib
import random
import re

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.api import open_store
from pipeline.report import (QUADRANT_LABELS, _cell_stage, _leaderboard, _quadrant_labels, _stage_bounds,
                             build_report, export_tables, render_html)


@pytest.fixture(scope="module")
def report(airlines_db):
    with open_store(airlines_db) as mi:
        return build_report(mi, group="airlines")


@pytest.fixture(scope="module")
def page(report):
    return render_html(report)


def section(page: str, sid: str) -> str:
    match = re.search(rf"<section id='{sid}'.*?</section>", page, re.S)
    assert match, sid
    return match.group(0)


def alt(page: str, chart: str) -> str:
    match = re.search(rf"data-chart='{chart}'><img alt='([^']*)'", page)
    assert match, chart
    return htmllib.unescape(match.group(1))


def test_summary_comes_first_with_leaderboard_kpis_and_changes(report, page):
    assert [s.id for s in report.sections][:2] == ["summary", "data-coverage"]
    summary = section(page, "summary")
    for kpi in ("response_rate", "median_reply_s", "posts", "mentions"):
        assert f"data-kpi='{kpi}'" in summary
    assert "since 2017-11-24" in summary                      # deltas between the two latest estimate dates
    board = report.tables["leaderboard"]
    ranked = board[board["rank"].notna()]
    assert list(ranked["score_low"]) == sorted(ranked["score_low"], reverse=True)
    # gated organisations (JetBlue: 1 post) are listed but not ranked
    assert pd.isna(board.set_index("org").at["jetblue", "rank"])
    assert "not ranked: insufficient evidence" in summary
    assert re.search(r"data-changes='\d+'", summary)


def test_leaderboard_reads_intervals_by_their_low_end():
    from models.spec import load_models

    specs = load_models()
    est = pd.DataFrame([
        {"org": "a", "model": "smmm", "stage": "x", "stage_index": 1, "status": "ok",
         "stage_low_index": 1, "stage_high_index": 1},
        {"org": "b", "model": "smmm", "stage": "x", "stage_index": None, "status": "interval",
         "stage_low_index": 0, "stage_high_index": 3},
        {"org": "c", "model": "smmm", "stage": None, "stage_index": None, "status": "insufficient_evidence",
         "stage_low_index": None, "stage_high_index": None}])
    board = _leaderboard(["a", "b", "c"], est, specs).set_index("org")
    assert board.at["a", "rank"] == 1 and board.at["b", "rank"] == 2 and pd.isna(board.at["c", "rank"])
    assert board.at["b", "score_low"] == 0 and board.at["b", "score_high"] == 100


def test_smi_shows_its_possible_quadrants_and_stays_out_of_the_score():
    from models.spec import load_models

    specs = load_models()
    smmm = {"org": "a", "model": "smmm", "stage": "x", "stage_index": 1, "status": "ok",
            "stage_low_index": 1, "stage_high_index": 1, "stages_possible": specs["smmm"].stage_names[1]}
    smi = {"org": "a", "model": "smi", "stage": "Conservative", "stage_index": 1, "status": "interval",
           "stage_low_index": 1, "stage_high_index": 3, "stages_possible": "Conservative|#SocialFirst"}
    alone = _leaderboard(["a"], pd.DataFrame([smmm]), specs)
    board = _leaderboard(["a"], pd.DataFrame([smmm, smi]), specs)
    assert board[["score_low", "score_high", "models_judged"]].equals(alone[["score_low", "score_high",
                                                                               "models_judged"]])
    assert board.at[0, "models_judged"] == 1
    cell = _cell_stage(_stage_bounds(pd.DataFrame([smi])).iloc[0].to_dict(), specs)
    assert "Conservative / #SocialFirst" in cell and "of 4" not in cell and "Contenders" not in cell


def test_report_shows_smi_as_quadrants(page):
    summary, matrix = section(page, "summary"), section(page, "stage-matrix")
    assert "SMI's quadrants are no ordered scale" in summary
    assert "<td class='quadrant'>" in summary and "<td class='quadrant'>" in matrix


def test_single_run_says_first_run_and_draws_no_history(synthetic_db):
    with open_store(synthetic_db) as mi:
        report = build_report(mi, group="synthetic")
    page = render_html(report)
    assert "data-changes='first-run'" in section(page, "summary")
    assert "first run" in section(page, "summary")
    history = section(page, "stage-history")
    assert "data-chart=" not in history and "data-note='single-run'" in history


def test_period_and_coverage_warnings_are_computed_from_the_data(report, page):
    data = section(page, "data-coverage")
    assert "61% of its 5,000 posts are from one day, 2017-10-31" in data
    assert re.search(r"post\(s\) far before the bulk \([^)]*\): 2011-", data)
    period = report.tables["data_period"].iloc[0]
    assert period["first_day"].year == 2011 and period["posts_far_before"] >= 1
    assert "JetBlue: 1 post(s)" in data                           # below the evidence gate
    assert "cannot show" in data


def test_methodology_is_in_the_report(page):
    method = section(page, "methodology")
    for name in ("Social Media Maturity Model", "S3M Social Media Maturity Model", "Forrester Social Media",
                 "Altimeter Social Business", "Conversocial Social Maturity Index"):
        assert name in method
    for term in ("Stage", "Interval", "Confidence", "Evidence gate", "minimum evidence", "resampled"):
        assert term in method
    for anchor in ("65%", "Socially Devoted", "40%", "10 h", "4 h", "7 in 8", "72 h", "Conversocial 2016",
                   "about 1 h"):
        assert anchor in method, anchor


def test_log_axes_print_plain_numbers(page):
    text = alt(page, "response-volume")
    assert "mathdefault" not in text and "$" not in text
    assert "; 1; 10; 100" in text
    assert "mathdefault" not in alt(page, "latency")


def test_heatmaps_share_one_colour_scale_with_a_legend(page):
    text = alt(page, "posting-heatmap")
    scales = set(re.findall(r"colour scale ([\d.]+–[\d.]+)", text))
    assert len(scales) == 1
    assert "same scale for all" in text


def test_quadrant_labels_stay_few_and_every_org_is_in_the_key(page):
    rng = random.Random(3)
    points = [(f"org {i}", rng.random() * 0.5, rng.random() * 0.1) for i in range(68)]
    labels = _quadrant_labels(points)
    assert len(labels) <= QUADRANT_LABELS
    same = _quadrant_labels([("a", 0, 0), ("b", 0, 0), ("c", 0.01, 0)])
    assert len(same) == 1 and "+ 2 more" in same[0][2]
    quadrant = section(page, "smi-quadrant")
    assert "data-table='smi-key'" in quadrant
    assert quadrant.split("<tbody>")[1].count("<tr>") == 8


def test_percentiles_do_not_rank_thin_evidence_or_constant_signals(report, page):
    ranks = report.tables["percentile_ranks"]
    jetblue = ranks[ranks["org"] == "jetblue"]
    # never ranked: "insufficient evidence" where the group has values, "not observed" where nobody has
    assert jetblue["percentile"].isna().all() and (jetblue["not_ranked"] != "").all()
    assert (jetblue.loc[jetblue["signal"] == "response_rate", "not_ranked"] == "insufficient evidence").all()
    media = ranks[ranks["signal"] == "media_share"]                 # twcs reports no media: nobody has it
    assert media["percentile"].isna().all() and (media["not_ranked"] == "not observed").all()
    ranked = ranks[ranks["not_ranked"] == ""]
    assert ranked["percentile"].notna().all()
    rate = ranks[(ranks["signal"] == "response_rate") & (ranks["not_ranked"] == "")]
    assert rate["n"].iloc[0] == len(rate) >= 5 and rate["percentile"].max() == 100   # n counts the ranked only
    row = re.search(r"<tr><th data-sort='JetBlue'>.*?</tr>", section(page, "percentiles"), re.S).group(0)
    assert "p100" not in row and "not ranked" in row


def test_advice_is_one_concise_block_per_org_levers_first(report, page):
    advice = section(page, "advice")
    blocks = re.findall(r"<div class='org-advice'.*?</div>(?=<div class='org-advice'|</div>)", advice, re.S)
    assert len(blocks) == len(report.orgs)
    for block in blocks:
        models = [int(x) for x in re.findall(r"<li data-models='(\d+)'", block)]
        assert len(models) <= 3 and models == sorted(models, reverse=True)
        visible = re.sub(r"<details>.*?</details>", "", block, flags=re.S)
        assert len(re.sub(r"<[^>]+>", "", visible)) < 700
    assert len(re.sub(r"<details>.*?</details>", "", advice, flags=re.S)) < 12000


def test_xlsx_export_has_one_sheet_per_table(report, tmp_path):
    (path,) = export_tables(report, tmp_path / "r.xlsx", "xlsx")
    book = load_workbook(path, read_only=True)
    assert set(book.sheetnames) == {name[:31] for name in report.tables}
    sheet = book["percentile_ranks"]
    assert sheet.max_row == len(report.tables["percentile_ranks"]) + 1


def test_print_css_hides_nav_and_breaks_pages(page):
    css = re.search(r"@media print\{(.*?)\n\}", page, re.S).group(1)
    assert re.search(r"nav[^{]*\{display:none", css)
    assert "break-before:page" in css and "max-width:100%" in css
