"""The benchmark report: every section for the airlines group, self-contained HTML, exports, CLI, degrade."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from models import dimensions as D
from pipeline.api import open_store
from pipeline.cli import app
from pipeline.report import (CHARTS, NO_ESTIMATES, NOT_OBSERVED_BY_ESTIMATES, SHOWN_AS_BOUND, build_report,
                             export_tables, render_html)

runner = CliRunner()


@pytest.fixture(scope="module")
def airlines_report(airlines_db):
    with open_store(airlines_db) as mi:
        return build_report(mi, group="airlines")


def test_every_chart_and_table_is_rendered(airlines_report):
    page = render_html(airlines_report)
    assert [s.id for s in airlines_report.sections if s.missing] == []
    for chart in CHARTS:
        match = re.search(rf"<figure class='chart' data-chart='{chart}'><img alt='[^']*' "
                          r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
        assert match, chart
        assert len(match.group(1)) > 5000, chart          # a real figure, not an empty canvas
    for table in ("stage-matrix", "percentiles", "leaderboard"):
        assert f"data-table='{table}'" in page
    # every organisation of the group appears in the stage matrix and the competitor table
    for name in airlines_report.names.values():
        assert page.count(f"<th>{name}</th>") + page.count(f">{name}</th>") >= 2, name
    assert page.count("class='org-advice'") == len(airlines_report.orgs)


def test_html_is_self_contained(airlines_report):
    page = render_html(airlines_report)
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:|//)""", page)
    assert "@import" not in page and "url(" not in page
    assert not re.search(r"<script[^>]+src=", page) and not re.search(r"<link[^>]+stylesheet", page)


def test_exports_hold_the_same_tables(airlines_report, tmp_path):
    csv_files = {p.stem: p for p in export_tables(airlines_report, tmp_path / "csv", "csv")}
    pq_files = {p.stem: p for p in export_tables(airlines_report, tmp_path / "pq", "parquet")}
    expected = {"stage_matrix", "smi_quadrant", "latency", "response_volume", "posting_heatmap", "coverage",
                "stage_history", "percentile_ranks", "advice", "kpis", "leaderboard", "changes", "data_period",
                "evidence", "unobserved", "methodology_models"}
    assert set(csv_files) == set(pq_files) == expected
    for name, frame in airlines_report.tables.items():
        from_csv, from_pq = pd.read_csv(csv_files[name]), pd.read_parquet(pq_files[name])
        assert len(from_csv) == len(from_pq) == len(frame), name
        assert list(from_csv.columns) == list(from_pq.columns) == list(frame.columns), name
    ranks = pd.read_parquet(pq_files["percentile_ranks"])
    assert set(ranks["org"]) == set(airlines_report.orgs)


def test_without_estimates_the_report_says_how_to_get_them(airlines_db_no_estimates):
    with open_store(airlines_db_no_estimates) as mi:
        report = build_report(mi, group="airlines")
    page = render_html(report)
    missing = {s.id for s in report.sections if s.missing}
    assert missing == {"stage-matrix", "smi-quadrant", "stage-history", "advice"}
    assert all(s.missing == NO_ESTIMATES for s in report.sections if s.missing)
    assert page.count("<code>maturity estimate</code>") == 5      # and the summary's leaderboard
    for chart in ("latency", "response-volume", "posting-heatmap", "coverage"):
        assert f"data-chart='{chart}'" in page


def test_cli_report_html_exports_and_exit_codes(airlines_db, tmp_path):
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--db", str(airlines_db), "--group", "airlines", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count("data-chart=") == len(CHARTS)
    result = runner.invoke(app, ["report", "--db", str(airlines_db), "--org", "delta", "--org", "jetblue",
                                 "--format", "csv", "--out", str(tmp_path / "tables"), "--quiet"])
    assert result.exit_code == 0 and result.output == ""
    assert set(pd.read_csv(tmp_path / "tables" / "stage_matrix.csv")["org"]) == {"delta", "jetblue"}
    result = runner.invoke(app, ["report", "--db", str(airlines_db), "--group", "airlines", "--format", "xlsx",
                                 "--out", str(tmp_path / "tables.xlsx"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "stage_matrix" in pd.ExcelFile(tmp_path / "tables.xlsx").sheet_names
    bad_format = runner.invoke(app, ["report", "--db", str(airlines_db), "--format", "xls", "--out", "x"])
    assert bad_format.exit_code == 2
    unknown = runner.invoke(app, ["report", "--db", str(airlines_db), "--group", "shipping", "--out",
                                  str(tmp_path / "r.html")])
    assert unknown.exit_code == 1 and "no configured organisation" in unknown.output
    for orgs in (["--org", "delta", "--org", "nobody"], ["--org", "nobody"]):
        unknown_org = runner.invoke(app, ["report", "--db", str(airlines_db), *orgs,
                                          "--out", str(tmp_path / "u.html")])
        assert unknown_org.exit_code == 1, unknown_org.output
        assert re.search(r"unknown organisation 'nobody' \(known: activision, .* … and \d+ more\)",
                         unknown_org.output)
    assert not (tmp_path / "u.html").exists()
    missing_db = runner.invoke(app, ["report", "--db", str(tmp_path / "nope.duckdb"), "--out", str(out)])
    assert missing_db.exit_code == 1 and "does not exist" in missing_db.output


def test_synthetic_group_report_has_every_section(synthetic_db):
    """Without the shared data too: generated organisations get every chart and table."""
    with open_store(synthetic_db) as mi:
        report = build_report(mi, group="synthetic")
    page = render_html(report)
    assert [s.id for s in report.sections if s.missing] == []
    assert page.count("<figure class='chart'") == len(CHARTS) - 1   # one run: no stage-history chart
    assert page.count("class='org-advice'") == len(report.orgs) == 10
    assert "(top stage)" in page or "→" in page


def test_unobserved_separates_signals_no_source_shows_from_bounds(airlines_db, airlines_report):
    """A twcs sample shows some signals only as a lower bound (counts) or an upper bound (the answer
    rate): they are listed as minimums or maximums, not as not observed (models/dimensions.py)."""
    with open_store(airlines_db) as mi:
        explanations = mi.estimates(group="airlines", detail=True)["explanation"]
    kinds: dict[str, set[str]] = {}
    for explanation in explanations:
        for signal, kind in explanation["observation"].items():
            kinds.setdefault(signal, set()).add(kind)
    table = airlines_report.tables["unobserved"]
    listed = lambda why: set(table.loc[table["why"] == why, "signal_or_criterion"])  # noqa: E731
    minimum, maximum = (SHOWN_AS_BOUND[kind] for kind in (D.LOWER_BOUND, D.UPPER_BOUND))
    assert "official_posts" in listed(minimum) and "response_rate" in listed(maximum)
    assert listed(minimum) == {s for s, k in kinds.items() if D.LOWER_BOUND in k}
    assert listed(maximum) == {s for s, k in kinds.items() if D.UPPER_BOUND in k}
    not_observed_signals = listed(NOT_OBSERVED_BY_ESTIMATES) & set(D.SIGNALS)
    assert not_observed_signals == {s for s, k in kinds.items() if D.NOT_OBSERVED in k}
    page = render_html(airlines_report)
    assert "<b>Shown only as a minimum (a sample)</b>" in page
    assert "<b>Shown only as a maximum (a sample that overstates it)</b>" in page
    # the values themselves are marked: the group's answer rate and the competitor table's
    assert "<div class='kpi-value'>≤ " in page
    ranks = airlines_report.tables["percentile_ranks"]
    rate = ranks[(ranks["signal"] == "response_rate") & ranks["value"].notna()]
    assert rate["observed"].eq(D.UPPER_BOUND).all() and not rate.empty
    assert page.count("≤ ") >= len(rate)
