"""Competitor benchmarking report: one self-contained HTML file (or the same tables as CSV/Parquet).

`build_report(analyst, group=..., orgs=...)` collects every table through the Python API
(pipeline/api.py) and draws the charts with matplotlib; `render_html(report)` inlines them as base64 PNG
with the stylesheet and a small sort script, so the file works offline (no CDN, no external asset).
Sections that need something not stored yet (features, estimates) render a panel saying which command
produces it instead of failing.
"""
from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.runner import FeatureError  # noqa: E402
from pipeline.api import WEEKDAYS, Analyst, NoEstimatesError  # noqa: E402

# Every chart the report can draw (figure ids in the HTML, data-chart attributes).
CHARTS = ["smi-quadrant", "latency", "response-volume", "posting-heatmap", "coverage", "stage-history"]
# Every table section (HTML tables; also the export names, see TABLES).
TABLE_SECTIONS = ["stage-matrix", "percentiles", "advice"]
EXPORT_FORMATS = ("csv", "parquet")
NO_ESTIMATES = "no estimates yet — run `maturity estimate` (or `maturity run`) to compute stages"
NO_FEATURES = "no features yet — run `maturity features` (or `maturity run`) first"


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    body: str = ""                       # HTML
    chart: str | None = None             # base64 PNG
    missing: str | None = None           # why the section has no content
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


@dataclass
class Report:
    title: str
    group: str | None
    orgs: list[str]
    names: dict[str, str]
    generated_at: datetime
    features_as_of: datetime | None
    estimates_as_of: datetime | None
    estimation_window: int | None        # days of activity the stages were read from
    sections: list[Section]
    provisional: list[str] = field(default_factory=list)   # organisations standing in for a config (pipeline/orgs.py)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for section in self.sections:
            out.update(section.tables)
        return out


# -- building -------------------------------------------------------------------------------------
def build_report(analyst: Analyst, group: str | None = None, orgs: Iterable[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Collect every table and chart for the selected organisations (a competitor group and/or ids)."""
    ids = analyst.org_ids(group, orgs)
    selected = analyst.organisations(orgs=ids)
    names = dict(zip(selected["org"], selected["name"]))
    try:
        latest = analyst.estimates(orgs=ids)
        estimates_as_of, estimation_window = latest["as_of"].iloc[0], int(latest["window_days"].iloc[0])
    except NoEstimatesError:
        estimates_as_of = estimation_window = None
    ctx = _Ctx(analyst, ids, names)
    builders = [_stage_matrix, _smi_quadrant, _latency, _response_volume, _heatmap, _coverage,
                _stage_history, _percentiles, _advice]
    sections = []
    # names are data: "$...$" in an organisation name is drawn as typed, never parsed as mathtext
    with matplotlib.rc_context({"text.parse_math": False}):
        for builder in builders:
            section = builder(ctx)
            if progress:
                progress(section.title)
            sections.append(section)
    title = f"Competitor benchmark: {group}" if group else "Competitor benchmark"
    return Report(title, group, ids, names, datetime.now().replace(microsecond=0), analyst.as_of(0),
                  estimates_as_of, estimation_window, sections,
                  list(selected.loc[selected["provisional"], "org"]))


@dataclass
class _Ctx:
    mi: Analyst
    ids: list[str]
    names: dict[str, str]

    def name(self, org: str) -> str:
        return self.names.get(org) or org


def _guard(section: Section, fn: Callable[[], None]) -> Section:
    try:
        fn()
    except NoEstimatesError:
        section.missing = NO_ESTIMATES
    except FeatureError as exc:
        section.missing = NO_FEATURES if "features" in str(exc) else str(exc)
    return section


def _stage_matrix(ctx: _Ctx) -> Section:
    from models.spec import MODEL_IDS, load_models

    s = Section("stage-matrix", "Maturity stage by model",
                "Stage under each of the five maturity models, with the estimate's confidence (the classifier's "
                "probability of the reported stage or interval). Where public activity cannot separate stages the "
                "cell says so plainly (\"at least Early Majority; higher stages not assessable from public "
                "activity\"). Darker = later stage within that model (an interval: its lowest stage).")

    def fill():
        est = ctx.mi.estimates(orgs=ctx.ids)
        s.tables["stage_matrix"] = ctx.mi.stage_matrix(orgs=ctx.ids)
        specs = load_models()
        cmap = plt.get_cmap("Greens")
        head = "".join(f"<th>{html.escape(specs[m].name)}<br><small>{m}</small></th>" for m in MODEL_IDS)
        rows = []
        for org in ctx.ids:
            cells = []
            for m in MODEL_IDS:
                r = est[(est["org"] == org) & (est["model"] == m)]
                if r.empty:
                    cells.append("<td class='na'>-</td>")
                elif r["status"].iloc[0] == "insufficient_evidence":
                    cells.append("<td class='na' title='nothing can be said from this evidence'>insufficient "
                                 "evidence</td>")
                else:
                    low, high = int(r["stage_low_index"].iloc[0]), int(r["stage_high_index"].iloc[0])
                    n = len(specs[m].stages)
                    share = low / max(n - 1, 1)
                    bg = matplotlib.colors.to_hex(cmap(0.12 + 0.7 * share))
                    fg = "#fff" if share > 0.55 else "#111"
                    where = f"stage {low + 1} of {n}" if low == high else f"stages {low + 1}–{high + 1} of {n}"
                    cells.append(f"<td style='background:{bg};color:{fg}'>{html.escape(r['estimate'].iloc[0])}"
                                 f" <small>({r['confidence'].iloc[0]:.2f})</small><br><small>{where}"
                                 f"</small></td>")
            rows.append(f"<tr><th>{html.escape(ctx.name(org))}</th>{''.join(cells)}</tr>")
        s.body = (f"<table class='matrix' data-table='stage-matrix'><thead><tr><th>organisation</th>{head}</tr>"
                  f"</thead><tbody>{''.join(rows)}</tbody></table>")
    return _guard(s, fill)


def _smi_quadrant(ctx: _Ctx) -> Section:
    s = Section("smi-quadrant", "SMI quadrant: investment vs innovation",
                "Conversocial Social Maturity Index: the investment and innovation dimension scores (0..1), split "
                "at 0.5 for orientation; the quadrant itself is read from the axes' criteria (table: each axis "
                "high, low or unknown and the quadrants still possible). Hollow markers: more than one quadrant "
                "still possible, or too little data to judge.")

    def fill():
        q = ctx.mi.smi_quadrant(orgs=ctx.ids)
        s.tables["smi_quadrant"] = q
        fig, ax = plt.subplots(figsize=(7.5, 6))
        tx = ty = 0.5
        ax.axvline(tx, color="#888", lw=1, ls="--")
        ax.axhline(ty, color="#888", lw=1, ls="--")
        # quadrant names at the top of each quadrant (organisations cluster near the axes)
        for (x, y, label) in ((tx / 2, ty, "Observers"), ((1 + tx) / 2, ty, "Conservative"),
                              (tx / 2, 1.02, "Contenders"), ((1 + tx) / 2, 1.02, "#SocialFirst")):
            ax.text(x, y - 0.03, label, ha="center", va="top", color="#777", fontsize=11, style="italic")
        colors = plt.get_cmap("tab10")
        for i, r in enumerate(q.itertuples(index=False)):
            x = 0.0 if pd.isna(r.investment) else r.investment
            y = 0.0 if pd.isna(r.innovation) else r.innovation
            ok = r.status == "ok"
            ax.scatter([x], [y], s=90, color=colors(i % 10), edgecolor=colors(i % 10),
                       facecolor=colors(i % 10) if ok else "none", lw=2, zorder=3)
            ax.annotate(ctx.name(r.org), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("Investment (dimension score)")
        ax.set_ylabel("Innovation (dimension score)")
        ax.grid(alpha=0.2)
        s.chart = _png(fig)
    return _guard(s, fill)


def _latency(ctx: _Ctx) -> Section:
    s = Section("latency", "First-reply latency per organisation",
                "Every answered inbound mention's first-reply time (log scale; box = quartiles, whiskers = 5th-95th "
                "percentile, dots = mentions). Same definition as the first_reply_median_s feature.")

    def fill():
        lat = ctx.mi.latency_distribution(orgs=ctx.ids)
        s.tables["latency"] = lat
        answered = lat[lat["answered"]]
        order = answered.groupby("org")["first_reply_s"].median().sort_values().index.tolist()
        order += [o for o in ctx.ids if o not in order]
        fig, ax = plt.subplots(figsize=(9, 0.55 * len(order) + 1.5))
        data = [answered.loc[answered["org"] == o, "first_reply_s"].clip(lower=1).to_numpy() for o in order]
        positions = np.arange(len(order))
        present = [i for i, d in enumerate(data) if len(d)]
        if present:
            ax.boxplot([data[i] for i in present], positions=positions[present], orientation="horizontal", whis=(5, 95),
                       showfliers=False, widths=0.6, patch_artist=True,
                       boxprops={"facecolor": "#cfe3f5", "edgecolor": "#3b6e99"},
                       medianprops={"color": "#c0392b", "lw": 2})
        rng = np.random.default_rng(0)
        for i, d in enumerate(data):
            if len(d):
                ax.scatter(d, i + rng.uniform(-0.18, 0.18, len(d)), s=6, color="#333", alpha=0.35, zorder=3)
            else:
                ax.text(1.5, i, "no answered mentions", va="center", fontsize=8, color="#888")
        ax.set_xscale("log")
        ticks = [60, 600, 3600, 6 * 3600, 86400, 3 * 86400]
        ax.set_xticks(ticks, ["1 min", "10 min", "1 h", "6 h", "1 d", "3 d"])
        ax.set_xlim(1, 3 * 86400 * 1.2)
        counts = lat.groupby("org")["answered"].agg(["sum", "count"])
        ax.set_yticks(positions, [f"{ctx.name(o)} ({int(counts['sum'].get(o, 0))}/{int(counts['count'].get(o, 0))})"
                                  for o in order])
        ax.invert_yaxis()
        ax.set_xlabel("first-reply time (answered / inbound mentions in brackets)")
        ax.grid(axis="x", alpha=0.3)
        s.chart = _png(fig)
    return _guard(s, fill)


def _response_volume(ctx: _Ctx) -> Section:
    s = Section("response-volume", "Response rate vs mention volume",
                "Share of inbound mentions answered within 72 h against how many mentions came in (log scale); "
                "marker area = posts by the organisation.")

    def fill():
        r = ctx.mi.responsiveness(orgs=ctx.ids)
        s.tables["response_volume"] = r
        fig, ax = plt.subplots(figsize=(8, 5.5))
        colors = plt.get_cmap("tab10")
        for i, row in enumerate(r.itertuples(index=False)):
            mentions = max(float(row.mentions or 0), 0.8)
            rate = 0.0 if pd.isna(row.response_rate) else row.response_rate
            size = 30 + 4 * math.sqrt(max(float(row.posts or 0), 0)) * 4
            ax.scatter([mentions], [rate], s=size, color=colors(i % 10), alpha=0.75, edgecolor="#222", zorder=3)
            ax.annotate(ctx.name(row.org), (mentions, rate), textcoords="offset points", xytext=(7, 3), fontsize=8)
        ax.set_xscale("log")
        ax.set_ylim(-0.05, 1.08)
        ax.set_xlabel("inbound mentions (log scale)")
        ax.set_ylabel("response rate")
        ax.grid(alpha=0.25)
        s.chart = _png(fig)
    return _guard(s, fill)


def _heatmap(ctx: _Ctx) -> Section:
    s = Section("posting-heatmap", "When organisations post (weekday × hour)",
                "Posts by each organisation's accounts per weekday and hour of day, in the organisation's "
                "configured time zone. Colour scale per organisation.")

    def fill():
        h = ctx.mi.posting_heatmap(orgs=ctx.ids)
        s.tables["posting_heatmap"] = h
        n = len(ctx.ids)
        cols = min(4, n)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.2 * rows + 0.4), squeeze=False)
        for k, org in enumerate(ctx.ids):
            ax = axes[k // cols][k % cols]
            grid = np.zeros((7, 24))
            for row in h[h["org"] == org].itertuples(index=False):
                grid[int(row.weekday), int(row.hour)] = row.posts
            ax.imshow(grid, aspect="auto", cmap="YlOrRd", vmin=0, vmax=max(grid.max(), 1), interpolation="nearest")
            ax.set_title(f"{ctx.name(org)} ({int(grid.sum())} posts)", fontsize=9)
            ax.set_yticks(range(7), WEEKDAYS, fontsize=6)
            ax.set_xticks([0, 6, 12, 18, 23], ["0h", "6h", "12h", "18h", "23h"], fontsize=6)
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].axis("off")
        fig.tight_layout()
        s.chart = _png(fig)
    return _guard(s, fill)


def _coverage(ctx: _Ctx) -> Section:
    s = Section("coverage", "Department and platform coverage",
                "Left: posts per account role (department). Right: configured accounts per platform "
                "(darker = active in the period).")

    def fill():
        c = ctx.mi.coverage(orgs=ctx.ids)
        s.tables["coverage"] = c
        labels = [ctx.name(o) for o in ctx.ids]
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(ctx.ids) + 1.8), sharey=True)
        roles = sorted(c["role"].unique())
        by_role = c.pivot_table(index="org", columns="role", values="posts", aggfunc="sum").reindex(ctx.ids).fillna(0)
        y = np.arange(len(ctx.ids))
        base = np.zeros(len(ctx.ids))
        palette = plt.get_cmap("Set2")
        for i, role in enumerate(roles):
            vals = by_role[role].to_numpy() if role in by_role else np.zeros(len(ctx.ids))
            left.barh(y, vals, left=base, color=palette(i % 8), label=role)
            base += vals
        left.set_yticks(y, labels)
        left.invert_yaxis()
        left.set_xlabel("posts by role")
        left.legend(fontsize=7, loc="lower right")
        platforms = sorted(c["platform"].unique())
        base = np.zeros(len(ctx.ids))
        for i, platform in enumerate(platforms):
            sub = c[c["platform"] == platform].groupby("org")[["accounts", "active_accounts"]].sum().reindex(ctx.ids).fillna(0)
            right.barh(y, sub["active_accounts"], left=base, color=palette(i % 8), label=f"{platform} (active)")
            right.barh(y, sub["accounts"] - sub["active_accounts"], left=base + sub["active_accounts"],
                       color=palette(i % 8), alpha=0.35, label=f"{platform} (no posts)")
            base += sub["accounts"].to_numpy()
        right.set_xlabel("accounts per platform")
        right.xaxis.get_major_locator().set_params(integer=True)
        right.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        s.chart = _png(fig)
    return _guard(s, fill)


def _stage_history(ctx: _Ctx) -> Section:
    from models.spec import MODEL_IDS, load_models

    s = Section("stage-history", "Stage history over past runs",
                "The stage each stored estimate run gave, per model (gaps: insufficient evidence).")

    def fill():
        hist = ctx.mi.history(orgs=ctx.ids)
        s.tables["stage_history"] = hist
        specs = load_models()
        fig, axes = plt.subplots(1, len(MODEL_IDS), figsize=(3.3 * len(MODEL_IDS), 4.2), squeeze=False)
        colors = plt.get_cmap("tab10")
        dates = sorted(hist["as_of"].unique())
        for j, m in enumerate(MODEL_IDS):
            ax = axes[0][j]
            sub = hist[hist["model"] == m]
            for i, org in enumerate(ctx.ids):
                o = sub[sub["org"] == org].set_index("as_of").reindex(dates)
                yv = o["stage_index"].astype(float) + (i - len(ctx.ids) / 2) * 0.025
                ax.plot(range(len(dates)), yv, marker="o", ms=4, color=colors(i % 10),
                        label=ctx.name(org) if j == 0 else None)
            n = len(specs[m].stages)
            ax.set_yticks(range(n), [st.name for st in specs[m].stages], fontsize=7)
            ax.set_ylim(-0.4, n - 0.6)
            ax.set_xticks(range(len(dates)), [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates],
                          fontsize=7, rotation=30)
            ax.set_xlim(-0.4, len(dates) - 0.6)
            ax.set_title(specs[m].name, fontsize=8)
            ax.grid(alpha=0.25)
        fig.legend(loc="lower center", ncol=min(len(ctx.ids), 6), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        s.chart = _png(fig)
    return _guard(s, fill)


def _percentiles(ctx: _Ctx) -> Section:
    s = Section("percentiles", "Competitor table: signals and percentile rank within the group",
                "Each maturity signal's value and its percentile rank among the selected organisations "
                "(100 = best in the group; for reply time lower is better). Click a header to sort.")

    def fill():
        p = ctx.mi.percentile_ranks(orgs=ctx.ids)
        s.tables["percentile_ranks"] = p
        signals = list(dict.fromkeys(p["signal"]))
        labels = dict(zip(p["signal"], p["label"]))
        units = dict(zip(p["signal"], p["unit"]))
        cmap = plt.get_cmap("RdYlGn")
        head = "".join(f"<th title='{html.escape(labels[x])}'>{html.escape(labels[x])}</th>" for x in signals)
        rows = []
        for org in ctx.ids:
            cells = []
            for sig in signals:
                r = p[(p["org"] == org) & (p["signal"] == sig)].iloc[0]
                if pd.isna(r["value"]):
                    cells.append("<td class='na' data-sort='-1'>n/a</td>")
                    continue
                bg = matplotlib.colors.to_hex(cmap(0.15 + 0.7 * r["percentile"] / 100))
                cells.append(f"<td style='background:{bg}' data-sort='{r['percentile']:.1f}'>"
                             f"{html.escape(_fmt(r['value'], units[sig]))}<br><small>p{r['percentile']:.0f}</small></td>")
            rows.append(f"<tr><th data-sort='{html.escape(ctx.name(org))}'>{html.escape(ctx.name(org))}</th>"
                        f"{''.join(cells)}</tr>")
        s.body = (f"<div class='scroll'><table class='sortable ranks' data-table='percentiles'><thead><tr>"
                  f"<th>organisation</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return _guard(s, fill)


def _advice(ctx: _Ctx) -> Section:
    s = Section("advice", "Next-stage advice per organisation",
                "What the seed model recommends for moving on from the current stage (quoted), and the measured "
                "gaps to what the next stage expects.")

    def fill():
        a = ctx.mi.advice(orgs=ctx.ids)
        s.tables["advice"] = a
        blocks = []
        for org in ctx.ids:
            sub = a[a["org"] == org]
            items = []
            for r in sub.itertuples(index=False):
                if r.status == "insufficient_evidence":
                    items.append(f"<li><b>{html.escape(r.model)}</b>: insufficient evidence "
                                 f"({html.escape(_text(r.insufficient))})</li>")
                    continue
                target = f"→ {html.escape(_text(r.next_stage))}" if _text(r.next_stage) else "(top stage)"
                quotes = "".join(f"<blockquote>{html.escape(q)}</blockquote>" for q in _text(r.advice).split("\n") if q)
                gaps = "".join(f"<li>{html.escape(g)}</li>" for g in _text(r.gaps).split("\n") if g)
                items.append(f"<li><b>{html.escape(r.model)}</b>: {html.escape(_text(r.estimate))} {target}{quotes}"
                             f"{f'<ul class=gaps>{gaps}</ul>' if gaps else ''}</li>")
            blocks.append(f"<details class='org-advice' open><summary>{html.escape(ctx.name(org))}</summary>"
                          f"<ul>{''.join(items)}</ul></details>")
        s.body = "".join(blocks)
    return _guard(s, fill)


# -- rendering ------------------------------------------------------------------------------------
def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _text(value) -> str:
    """A string cell as text: missing values (None, NaN, pd.NA) become ''."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _fmt(value: float, unit: str) -> str:
    if unit == "seconds":
        return f"{value / 3600:.1f} h" if value >= 3600 else f"{value / 60:.1f} min" if value >= 60 else f"{value:.0f} s"
    if unit == "share" or unit == "replies/mention":
        return f"{value:.0%}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;opacity:.85;font-size:13px}
nav{padding:8px 28px;background:#e8edf3;font-size:13px}nav a{margin-right:14px;color:#1f3a5f}
main{padding:12px 28px 40px}section{background:#fff;border-radius:8px;padding:14px 18px;margin:14px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}section h2{margin:0 0 6px;font-size:17px}.intro{color:#555;font-size:13px;
margin:0 0 10px}figure{margin:0}figure img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #dde2e8;padding:4px 7px;text-align:left;
vertical-align:top}thead th{background:#eef2f6;position:sticky;top:0}td.na{color:#999;font-style:italic}
.scroll{overflow-x:auto}table.sortable thead th{cursor:pointer}.panel.missing{background:#fff7e0;
border:1px solid #f0d68a;padding:12px;border-radius:6px;font-size:14px}code{background:#f1f1f1;padding:1px 4px}
blockquote{margin:4px 0 4px 12px;padding-left:8px;border-left:3px solid #9bb7d4;color:#334;font-style:italic}
details.org-advice{margin:6px 0}details summary{font-weight:600;cursor:pointer}ul.gaps{color:#7a3b00}
footer{font-size:12px;color:#666;padding:0 28px 24px}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('thead th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var desc = th.dataset.dir !== 'desc'; th.dataset.dir = desc ? 'desc' : 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.body.dataset.ready = 'yes';
"""


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (inline CSS, script and PNG charts)."""
    def when(value):
        return "none stored" if value is None else f"{pd.Timestamp(value):%Y-%m-%d %H:%M} UTC"

    nav = "".join(f"<a href='#{s.id}'>{html.escape(s.title.split(':')[0])}</a>" for s in report.sections)
    parts = []
    for s in report.sections:
        if s.missing:
            content = f"<div class='panel missing' data-missing='{s.id}'>{_code(s.missing)}</div>"
        elif s.chart:
            content = (f"<figure class='chart' data-chart='{s.id}'><img alt='{html.escape(s.title)}' "
                       f"src='data:image/png;base64,{s.chart}'></figure>")
        else:
            content = s.body
        parts.append(f"<section id='{s.id}'><h2>{html.escape(s.title)}</h2>"
                     f"<p class='intro'>{html.escape(s.intro)}</p>{content}</section>")
    orgs = ", ".join(html.escape(report.names.get(o, o)) for o in report.orgs)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(report.title)}</title><style>{_CSS}</style></head>
<body><header><h1>{html.escape(report.title)}</h1>
<p>{len(report.orgs)} organisations: {orgs}</p>{_provisional_note(report)}
<p>features as of {when(report.features_as_of)} · estimates as of {when(report.estimates_as_of)}{
    f" on the last {report.estimation_window} days" if report.estimation_window else ""} ·
generated {report.generated_at:%Y-%m-%d %H:%M}</p></header>
<nav>{nav}</nav><main>{''.join(parts)}</main>
<footer>social-maturity report. Signal definitions: docs/features.md; models: models/*.toml (each criterion
quotes its seed document).</footer>
<script>{_JS}</script></body></html>
"""


def _code(text: str) -> str:
    """Escape, then show `command` spans as code."""
    escaped = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(escaped))


def _provisional_note(report: Report) -> str:
    if not report.provisional:
        return ""
    return (f"<p class='provisional'><strong>Provisional organisations</strong>: {len(report.provisional)} of "
            f"{len(report.orgs)} organisations are provisional: no organisation config was applied, so each "
            "account found in the data stands as its own organisation, without a competitor group. Write a "
            "config with <code>maturity orgs suggest &gt; orgs.toml</code>, edit it, then <code>maturity orgs "
            "apply orgs.toml</code> and <code>maturity estimate</code>.</p>")


def write_html(report: Report, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def export_tables(report: Report, out_dir: str | Path, fmt: str) -> list[Path]:
    """Write every report table as out_dir/<table>.<fmt> (csv or parquet); returns the files written."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use csv or parquet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in report.tables.items():
        path = out_dir / f"{name}.{fmt}"
        frame = frame.copy()
        for column in frame.columns:  # time-of-day and mixed columns as text for portable files
            if frame[column].dtype == object:
                frame[column] = frame[column].map(lambda v: v if v is None or isinstance(v, (str, float, int, bool))
                                                  else str(v))
        if fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        written.append(path)
    return written
