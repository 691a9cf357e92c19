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
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401  (log-axis formatters)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.runner import FeatureError  # noqa: E402
from models import dimensions as D  # noqa: E402
from models.evaluate import stage_bounds  # noqa: E402
from pipeline.api import WEEKDAYS, Analyst, NoEstimatesError  # noqa: E402

# Every chart the report can draw (figure ids in the HTML, data-chart attributes).
CHARTS = ["smi-quadrant", "latency", "response-volume", "posting-heatmap", "coverage", "stage-history"]
# Every table section (HTML tables; also the export names, see TABLES).
TABLE_SECTIONS = ["summary", "data-coverage", "stage-matrix", "percentiles", "advice", "methodology"]
EXPORT_FORMATS = ("csv", "parquet", "xlsx")
NO_ESTIMATES = "no estimates yet — run `maturity estimate` (or `maturity run`) to compute stages"
NO_FEATURES = "no features yet — run `maturity features` (or `maturity run`) first"


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    body: str = ""                       # HTML
    chart: str | None = None             # base64 PNG
    chart_text: str = ""                 # the chart's words (titles, axis labels, ticks, annotations): alt text
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
    builders = [_summary, _data_coverage, _stage_matrix, _smi_quadrant, _latency, _response_volume, _heatmap,
                _coverage, _stage_history, _percentiles, _advice, _methodology]
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
                "Stage under each of the five maturity models, with the estimate's confidence (how often the stage "
                "holds when the organisation's conversations are resampled, combined with the classifier's "
                "probability of it). Where the sources cannot separate stages the "
                "cell says so plainly (\"at least Early Majority; higher stages not assessable from these "
                "sources\"). Darker = later stage within that model (an interval: its lowest stage); SMI's "
                "quadrants are no ordered scale and are not shaded.")

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
                elif specs[m].kind == "quadrant":   # no ordered scale: no shade, no "stage k of n"
                    cells.append(f"<td class='quadrant'>{html.escape(r['estimate'].iloc[0])}"
                                 f" <small>({r['confidence'].iloc[0]:.2f})</small></td>")
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
        points = []
        for i, r in enumerate(q.itertuples(index=False)):
            x = 0.0 if pd.isna(r.investment) else r.investment
            y = 0.0 if pd.isna(r.innovation) else r.innovation
            ok = r.status != "insufficient_evidence"
            ax.scatter([x], [y], s=90, color=colors(i % 10), edgecolor=colors(i % 10),
                       facecolor=colors(i % 10) if ok else "none", lw=2, zorder=3)
            points.append((ctx.name(r.org), x, y))
        # close points share one label; at most QUADRANT_LABELS labels, the rest are in the table below
        for k, (x, y, text) in enumerate(_quadrant_labels(points)):
            dx, dy = ((8, 6), (8, -12), (-8, 6), (-8, -12))[k % 4]
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=8,
                        ha="left" if dx > 0 else "right", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
        s.body = _quadrant_key(ctx, q)
        ax.set_xlim(-0.03, 1.03)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("Investment (dimension score)")
        ax.set_ylabel("Innovation (dimension score)")
        ax.grid(alpha=0.2)
        _chart(s, fig)
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
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ticks = [60, 600, 3600, 6 * 3600, 86400, 3 * 86400]
        ax.set_xticks(ticks, ["1 min", "10 min", "1 h", "6 h", "1 d", "3 d"])
        ax.set_xlim(1, 3 * 86400 * 1.2)
        counts = lat.groupby("org")["answered"].agg(["sum", "count"])
        ax.set_yticks(positions, [f"{ctx.name(o)} ({int(counts['sum'].get(o, 0))}/{int(counts['count'].get(o, 0))})"
                                  for o in order])
        ax.invert_yaxis()
        ax.set_xlabel("first-reply time (answered / inbound mentions in brackets)")
        ax.grid(axis="x", alpha=0.3)
        _chart(s, fig)
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
        _log_ticks(ax.xaxis, max(float(r["mentions"].max() or 1), 1.0))
        ax.set_ylim(-0.05, 1.08)
        ax.set_xlabel("inbound mentions (log scale)")
        ax.set_ylabel("response rate")
        ax.grid(alpha=0.25)
        _chart(s, fig)
    return _guard(s, fill)


def _heatmap(ctx: _Ctx) -> Section:
    s = Section("posting-heatmap", "When organisations post (weekday × hour)",
                "Posts by each organisation's accounts per weekday and hour of day, in the organisation's "
                "configured time zone. One colour scale for every organisation (legend at the right).")

    def fill():
        h = ctx.mi.posting_heatmap(orgs=ctx.ids)
        s.tables["posting_heatmap"] = h
        n = len(ctx.ids)
        cols = min(4, n)
        rows = math.ceil(n / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 1, 2.2 * rows + 0.4), squeeze=False,
                                 layout="constrained")
        vmax = max(float(h.groupby("org")["posts"].max().max()) if len(h) else 1.0, 1.0)  # shared scale
        image = None
        for k, org in enumerate(ctx.ids):
            ax = axes[k // cols][k % cols]
            grid = np.zeros((7, 24))
            for row in h[h["org"] == org].itertuples(index=False):
                grid[int(row.weekday), int(row.hour)] = row.posts
            image = ax.imshow(grid, aspect="auto", cmap="YlOrRd", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{ctx.name(org)} ({int(grid.sum())} posts)", fontsize=9)
            ax.set_yticks(range(7), WEEKDAYS, fontsize=6)
            ax.set_xticks([0, 6, 12, 18, 23], ["0h", "6h", "12h", "18h", "23h"], fontsize=6)
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].axis("off")
        if image is not None:
            fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, pad=0.02,
                         label="posts in the weekday-hour slot (same scale for all)")
        _chart(s, fig)
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
        _chart(s, fig)
    return _guard(s, fill)


def _stage_history(ctx: _Ctx) -> Section:
    from models.spec import MODEL_IDS, load_models

    s = Section("stage-history", "Stage history over past runs",
                "The stage each stored estimate run gave, per model (gaps: insufficient evidence).")

    def fill():
        hist = ctx.mi.history(orgs=ctx.ids)
        s.tables["stage_history"] = hist
        if hist["as_of"].nunique() < 2:
            s.body = (f"<p class='note' data-note='single-run'>One estimate run so far "
                      f"({pd.Timestamp(hist['as_of'].iloc[0]):%Y-%m-%d}): the history is drawn as lines from the "
                      "second run on.</p>")
            return
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
        _chart(s, fig)
    return _guard(s, fill)


BOUND_MARK = {D.LOWER_BOUND: "≥ ", D.UPPER_BOUND: "≤ "}   # a value a sample shows only as a minimum / maximum


def _percentiles(ctx: _Ctx) -> Section:
    s = Section("percentiles", "Competitor table: signals and percentile rank within the group",
                "Each maturity signal's value and its percentile rank among the selected organisations "
                "(100 = best in the group; for reply time lower is better; ≥ marks a minimum a sample shows, "
                "≤ a maximum, e.g. the answer rate of a sample of the organisation's own threads). "
                "Organisations below the evidence "
                "gate and signals the data does not show (or where every organisation has the same value) are "
                "not ranked. Click a header to sort.")

    def fill():
        p = ctx.mi.percentile_ranks(orgs=ctx.ids, evidence_gate=True)
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
                why = _text(r.get("not_ranked"))
                if pd.isna(r["value"]):
                    cells.append(f"<td class='na' data-sort='-1'>{html.escape(why or 'n/a')}</td>")
                    continue
                shown = html.escape(BOUND_MARK.get(r["observed"], "") + _fmt(r["value"], units[sig]))
                if why or pd.isna(r["percentile"]):
                    cells.append(f"<td class='unranked' data-sort='-1' title='not ranked: {html.escape(why)}'>"
                                 f"{shown}<br><small>not ranked"
                                 f"{': ' + html.escape(why) if why == 'insufficient evidence' else ''}</small></td>")
                    continue
                bg = matplotlib.colors.to_hex(cmap(0.15 + 0.7 * r["percentile"] / 100))
                cells.append(f"<td style='background:{bg}' data-sort='{r['percentile']:.1f}'>"
                             f"{shown}<br><small>p{r['percentile']:.0f}</small></td>")
            rows.append(f"<tr><th data-sort='{html.escape(ctx.name(org))}'>{html.escape(ctx.name(org))}</th>"
                        f"{''.join(cells)}</tr>")
        s.body = (f"<p class='scroll-hint'>Wide table: scroll sideways; the organisation column stays.</p>"
                  f"<div class='scroll'><table class='sortable ranks' data-table='percentiles'><thead><tr>"
                  f"<th>organisation</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
    return _guard(s, fill)


def _advice(ctx: _Ctx) -> Section:
    from models.spec import load_models

    s = Section("advice", "Next-stage advice per organisation",
                "One block per organisation: its stages, then the levers — signals short of what the next stage "
                "expects — most useful first (the one that moves the most models on), and the seed models' "
                "recommendations (quoted, collapsed).")

    def fill():
        a = ctx.mi.advice(orgs=ctx.ids)
        s.tables["advice"] = a
        specs = load_models()
        blocks = []
        for org in ctx.ids:
            sub = a[a["org"] == org]
            gated = sub[sub["status"] == "insufficient_evidence"]
            head = f"<h3>{html.escape(ctx.name(org))}</h3>"
            if len(sub) and len(gated) == len(sub):
                reason = _text(gated["insufficient"].iloc[0]) or "too little data"
                blocks.append(f"<div class='org-advice' data-org='{html.escape(org)}'>{head}<p class='na'>"
                              f"Insufficient evidence — no stage, no advice ({html.escape(reason)}).</p></div>")
                continue
            judged = sub[sub["status"] != "insufficient_evidence"]
            stages = " · ".join(f"<b>{_short(r.model)}</b> {html.escape(_text(r.estimate))}"
                                for r in judged.itertuples(index=False))
            levers = _levers(judged, specs)
            items = "".join(
                f"<li data-models='{len(lv['needs'])}'><b>{html.escape(lv['label'])}</b> {html.escape(lv['value'])}"
                f" — next stage needs {html.escape(', '.join(f'{_short(m)} {need}' for m, need in lv['needs']))}</li>"
                for lv in levers[:3])
            lever_html = (f"<ol class='levers'>{items}</ol>" if items else
                          "<p class='levers'>No measured gap: every judged model is at its top stage or waits on "
                          "criteria the signals cannot show.</p>")
            quotes = list(dict.fromkeys(q for r in judged.itertuples(index=False)
                                        for q in _text(r.advice).split("\n")[:1] if q))
            seed = (f"<details><summary>Seed recommendations ({len(quotes)})</summary>"
                    + "".join(f"<blockquote>{html.escape(q)}</blockquote>" for q in quotes) + "</details>"
                    if quotes else "")
            blocks.append(f"<div class='org-advice' data-org='{html.escape(org)}'>{head}<p class='stages'>{stages}"
                          f"</p>{lever_html}{seed}</div>")
        s.body = "<div class='advice-grid'>" + "".join(blocks) + "</div>"
    return _guard(s, fill)


def _short(model: str) -> str:
    return model.upper() if len(model) <= 4 else model.capitalize()


def _levers(advice: pd.DataFrame, specs) -> list[dict]:
    """Signals short of the next stage, merged across models: label, value, needs [(model, "≥ x")],
    ordered by how many models they hold back (most first), then by model order."""
    from models.dimensions import SCALES

    labels = sorted({sc.label for sc in SCALES}, key=len, reverse=True)
    found: dict[str, dict] = {}
    for r in advice.itertuples(index=False):
        for gap in _text(r.gaps).split("\n"):
            label = next((lb for lb in labels if gap.startswith(lb + " ")), None)
            match = label and re.match(r"(?P<value>[^;]+); the next stage \((?P<stage>[^)]*)\) expects "
                                       r"(?P<need>[<>]=\s*[^(]+?) \(seed", gap[len(label) + 1:])
            if not match:
                continue
            lever = found.setdefault(label, {"label": label, "value": match["value"].strip(), "needs": []})
            if r.model not in [m for m, _ in lever["needs"]]:
                need = match["need"].replace(">=", "≥").replace("<=", "≤").strip()
                lever["needs"].append((r.model, need))
    return sorted(found.values(), key=lambda lv: -len(lv["needs"]))


# -- summary, data coverage, methodology ----------------------------------------------------------
QUADRANT_LABELS = 12        # at most this many labels on the SMI chart; every organisation is in its table
BUSIEST_DAY_WARNING = 0.25  # warn when one day holds at least this share of a source's posts


def _stage_bounds(est: pd.DataFrame) -> pd.DataFrame:
    """Per estimate: org, model, stage, kind (point | interval | insufficient), low, high (stage indexes;
    None where insufficient), possible (the stages still possible, a list; None where not stored)."""
    low, high = stage_bounds(est)
    staged = est["status"].isin(["ok", "interval"]).to_numpy() & ~np.isnan(low)
    kind = np.where(~staged, "insufficient", np.where(est["status"].to_numpy() == "interval", "interval", "point"))
    possible = est["stages_possible"] if "stages_possible" in est.columns else [None] * len(est)
    return pd.DataFrame({"org": est["org"].to_numpy(), "model": est["model"].to_numpy(),
                         "stage": est["stage"].to_numpy(), "kind": kind,
                         "low": [int(e) if s else None for e, s in zip(low.tolist(), staged)],
                         "high": [int(e) if s else None for e, s in zip(high.tolist(), staged)],
                         "possible": [p.split("|") if isinstance(p, str) and p else None for p in possible]})


def _leaderboard(ids: list[str], est: pd.DataFrame, specs) -> pd.DataFrame:
    """Composite maturity score per organisation: the mean over the judged ordinal models of the stage's
    position in its model (0 = first stage, 100 = last), low and high ends for intervals; ranked by the
    low end. SMI's quadrants are no ordered scale and take no part. Organisations no ordinal model
    could judge are listed unranked."""
    bounds = _stage_bounds(est)
    bounds = bounds[[specs[m].kind == "ordinal" for m in bounds["model"]]]
    rows = []
    for org in ids:
        b = bounds[(bounds["org"] == org) & (bounds["kind"] != "insufficient")]
        if b.empty:
            rows.append({"org": org, "rank": None, "score_low": None, "score_high": None, "models_judged": 0})
            continue
        span = [max(len(specs[m].stages) - 1, 1) for m in b["model"]]
        low = float(np.mean([lo / n for lo, n in zip(b["low"], span)]) * 100)
        high = float(np.mean([hi / n for hi, n in zip(b["high"], span)]) * 100)
        rows.append({"org": org, "rank": None, "score_low": round(low, 1), "score_high": round(high, 1),
                     "models_judged": len(b)})
    board = pd.DataFrame(rows)
    ranked = board[board["models_judged"] > 0].sort_values(["score_low", "score_high"], ascending=False)
    board.loc[ranked.index, "rank"] = ranked["score_low"].rank(method="min", ascending=False).to_numpy()
    board["rank"] = board["rank"].astype("Float64")
    return board.sort_values(["rank", "org"], na_position="last").reset_index(drop=True)


def _cell_stage(b: dict, specs) -> str:
    spec = specs[b["model"]]
    n = len(spec.stages)
    if b["kind"] == "insufficient":
        return "<td class='na'>insufficient evidence</td>"
    names = spec.stages
    b = {**b, "low": int(b["low"]), "high": int(b["high"])}
    if spec.kind == "quadrant":
        possible = spec.describe(b["low"], b["high"], b["possible"], compact=True)
        return f"<td class='quadrant'>{html.escape(possible)}</td>"
    if b["kind"] == "interval" and b["high"] != b["low"]:
        return (f"<td class='interval' title='{html.escape(names[b['low']].name)} to "
                f"{html.escape(names[b['high']].name)}'>≥ {html.escape(names[b['low']].name)}"
                f"<br><small>stages {b['low'] + 1}–{b['high'] + 1} of {n}</small></td>")
    return f"<td>{html.escape(names[b['low']].name)}<br><small>stage {b['low'] + 1} of {n}</small></td>"


def _kpis(ctx: _Ctx, as_of) -> dict | None:
    """Group KPIs from the stored features (all data up to as_of): response rate, median first reply,
    posts and inbound mentions. None when no features are stored for that as_of."""
    try:
        r = ctx.mi.responsiveness(orgs=ctx.ids, as_of=as_of)
        lat = ctx.mi.latency_distribution(orgs=ctx.ids, as_of=as_of)
    except (FeatureError, ValueError, LookupError):
        return None
    if r.empty:
        return None
    mentions, answered = float(r["mentions"].fillna(0).sum()), float(r["answered"].fillna(0).sum())
    replies = lat.loc[lat["answered"], "first_reply_s"].dropna()
    return {"response_rate": answered / mentions if mentions else float("nan"),
            "median_reply_s": float(replies.median()) if len(replies) else float("nan"),
            "posts": float(r["posts"].fillna(0).sum()), "mentions": mentions}


def _rate_is_bound(ctx: _Ctx, as_of) -> bool:
    """Whether some organisation's sources show its answer rate only as a maximum at as_of (the KPI
    card marks the group's rate then)."""
    try:
        kinds = ctx.mi.signals(orgs=ctx.ids, as_of=as_of.to_pydatetime() if as_of is not None else None)
    except (FeatureError, ValueError, LookupError):   # no estimation-window features at this as_of
        return False
    return bool((kinds["obs_response_rate"] == D.UPPER_BOUND).any())


def _summary(ctx: _Ctx) -> Section:
    from models.spec import MODEL_IDS, load_models

    s = Section("summary", "Summary",
                "Where each organisation stands, the group's headline numbers and what changed since the "
                "previous estimate run. Methodology and sources at the end of the report.")
    parts = []
    dates = []
    try:
        est = ctx.mi.estimates(orgs=ctx.ids)
        hist = ctx.mi.history(orgs=ctx.ids)
        window = int(est["window_days"].iloc[0])
        hist = hist[hist["window_days"] == window]
        dates = sorted(hist["as_of"].unique())
    except NoEstimatesError:
        est = None
    latest = pd.Timestamp(dates[-1]) if dates else None
    previous = pd.Timestamp(dates[-2]) if len(dates) > 1 else None

    # KPI cards with deltas against the previous run's date
    kpi_now = _kpis(ctx, latest.to_pydatetime() if latest is not None else None)
    kpi_before = _kpis(ctx, previous.to_pydatetime()) if previous is not None else None
    if kpi_now:
        cards = []
        rate_mark = BOUND_MARK[D.UPPER_BOUND] if _rate_is_bound(ctx, latest) else ""
        specs_kpi = (("response_rate", "Response rate", lambda v: f"{rate_mark}{v:.0%}", lambda d: f"{d * 100:+.0f} pts"),
                     ("median_reply_s", "Median first reply", lambda v: _fmt(v, "seconds"),
                      lambda d: ("+" if d >= 0 else "−") + _fmt(abs(d), "seconds")),
                     ("posts", "Posts by the group", lambda v: f"{v:,.0f}", lambda d: f"{d:+,.0f}"),
                     ("mentions", "Inbound mentions", lambda v: f"{v:,.0f}", lambda d: f"{d:+,.0f}"))
        rows = []
        for key, label, show, delta in specs_kpi:
            value = kpi_now[key]
            before = kpi_before[key] if kpi_before else float("nan")
            change = (f"{delta(value - before)} since {previous:%Y-%m-%d}" if kpi_before and pd.notna(value)
                      and pd.notna(before) else "first run" if previous is None else "no previous value")
            cards.append(f"<div class='kpi' data-kpi='{key}'><div class='kpi-label'>{label}</div>"
                         f"<div class='kpi-value'>{html.escape(show(value)) if pd.notna(value) else 'n/a'}</div>"
                         f"<div class='kpi-delta'>{html.escape(change)}</div></div>")
            rows.append({"kpi": key, "label": label, "value": value, "previous": before,
                         "as_of": latest, "previous_as_of": previous})
        parts.append(f"<div class='kpis'>{''.join(cards)}</div>")
        s.tables["kpis"] = pd.DataFrame(rows)
    else:
        parts.append(f"<div class='panel missing'>{_code(NO_FEATURES)}</div>")

    if est is None:
        parts.append(f"<div class='panel missing' data-missing='leaderboard'>{_code(NO_ESTIMATES)}</div>")
        s.body = "".join(parts)
        return s

    specs = load_models()
    board = _leaderboard(ctx.ids, est, specs)
    bounds = _stage_bounds(est)
    prev_board = None
    if previous is not None:
        prev = hist[hist["as_of"] == dates[-2]]
        prev_board = _leaderboard(ctx.ids, prev, specs).set_index("org")
    models = [m for m in MODEL_IDS if m in set(est["model"])]
    ordinal = [m for m in models if specs[m].kind == "ordinal"]
    head = "".join(f"<th>{html.escape(_short(m))}</th>" for m in models)
    rows = []
    export = []
    for r in board.to_dict("records"):
        org = r["org"]
        cells = "".join(_cell_stage(b, specs) for b in bounds[bounds["org"] == org].to_dict("records")
                        if b["model"] in models)
        if r["models_judged"] == 0:
            score, rank = "<td class='na'>not ranked: insufficient evidence</td>", "–"
        else:
            low, high, judged = r["score_low"], r["score_high"], r["models_judged"]
            upper = f"–{high:.0f}" if high != low else ""
            partial = "" if judged == len(ordinal) else f" <small>({judged} of {len(ordinal)} models)</small>"
            score = f"<td data-score='{low}'>{low:.0f}{upper}{partial}</td>"
            rank = f"{int(r['rank'])}"
        delta = ""
        if prev_board is not None and org in prev_board.index and pd.notna(prev_board.at[org, "score_low"]) \
                and r["models_judged"]:
            d = r["score_low"] - prev_board.at[org, "score_low"]
            delta = f"{d:+.0f}" if round(d) else "="
        elif prev_board is not None and r["models_judged"]:
            delta = "newly staged"
        elif prev_board is None:
            delta = "first run"
        rows.append(f"<tr data-org='{html.escape(org)}'><td class='rank'>{rank}</td><th>{html.escape(ctx.name(org))}"
                    f"</th>{score}{cells}<td class='delta'>{html.escape(delta)}</td></tr>")
        export.append({**r, "name": ctx.name(org), "change_since_previous": delta})
    s.tables["leaderboard"] = pd.DataFrame(export)
    parts.append(
        "<h3>Leaderboard</h3><p class='intro'>Maturity score: the mean over the judged models of each stage's "
        "position in its model (0 = first stage, 100 = last); an interval estimate gives a range and "
        "ranks by its lower end (\"≥\"). SMI's quadrants are no ordered scale: its column shows the "
        "quadrants still possible and it takes no part in the score. Organisations below the evidence gate "
        "are not ranked.</p>"
        "<div class='scroll'><table class='leaderboard' data-table='leaderboard'><thead><tr><th>rank</th>"
        f"<th>organisation</th><th>score</th>{head}<th>change</th></tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></div>")

    # what changed between the two latest runs
    if previous is None:
        parts.append(f"<h3>Since the previous run</h3><p class='changes' data-changes='first-run'>First run "
                     f"({latest:%Y-%m-%d}): nothing to compare yet.</p>")
        s.tables["changes"] = pd.DataFrame(columns=["org", "model", "before", "after"])
    else:
        before = hist[hist["as_of"] == dates[-2]].set_index(["org", "model"])
        after = hist[hist["as_of"] == dates[-1]].set_index(["org", "model"])
        changes = []
        for key in after.index:
            if key not in before.index:
                continue
            b, a = before.loc[key], after.loc[key]
            b_stage = b["stage"] if b["status"] != "insufficient_evidence" else "insufficient evidence"
            a_stage = a["stage"] if a["status"] != "insufficient_evidence" else "insufficient evidence"
            if _text(b_stage) != _text(a_stage):
                changes.append({"org": key[0], "model": key[1], "before": _text(b_stage), "after": _text(a_stage)})
        s.tables["changes"] = pd.DataFrame(changes, columns=["org", "model", "before", "after"])
        by_org: dict[str, list[dict]] = {}
        for c in changes:
            by_org.setdefault(c["org"], []).append(c)
        items = ""
        for org, cs in by_org.items():
            if len(cs) > 1 and len({(c["before"], c["after"]) for c in cs if "insufficient" in c["before"]}) \
                    and all("insufficient" in c["before"] for c in cs):
                text = f"first staged in {len(cs)} models (previously insufficient evidence)"
            else:
                text = "; ".join(f"{_short(c['model'])} {html.escape(c['before'])} → {html.escape(c['after'])}"
                                 for c in cs)
            items += f"<li><b>{html.escape(ctx.name(org))}</b>: {text}</li>"
        parts.append(f"<h3>Since the previous run</h3><p class='changes' data-changes='{len(changes)}'>"
                     f"{previous:%Y-%m-%d} → {latest:%Y-%m-%d}: "
                     f"{f'{len(changes)} stage change(s)' if changes else 'no stage changed'}.</p>"
                     + (f"<ul class='changes'>{items}</ul>" if items else ""))
    s.body = "".join(parts)
    return s


def _period_warnings(daily: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per source: first/last day, active days, posts, busiest day and its share, posts far outside the
    bulk (before the 5th or after the 95th percentile day by more than max(3 x that span, 30 days))."""
    rows, warnings = [], []
    for (source, platform), d in daily.groupby(["source", "platform"], sort=True):
        days = pd.to_datetime(d["day"])
        counts = d["posts"].to_numpy()
        total = int(counts.sum())
        ordinal = np.repeat(days.map(pd.Timestamp.toordinal).to_numpy(), counts)
        lo, hi = np.percentile(ordinal, 5), np.percentile(ordinal, 95)
        margin = max(3 * (hi - lo), 30)
        early = d[(days.map(pd.Timestamp.toordinal) < lo - margin).to_numpy()]
        late = d[(days.map(pd.Timestamp.toordinal) > hi + margin).to_numpy()]
        busiest = d.loc[d["posts"].idxmax()]
        share = float(busiest["posts"]) / total if total else 0.0
        label = source.split(":", 1)[0] if ":" in source else source
        rows.append({"source": source, "platform": platform, "first_day": days.min().date(),
                     "last_day": days.max().date(), "active_days": int(len(d)), "posts": total,
                     "busiest_day": pd.Timestamp(busiest["day"]).date(), "busiest_day_share": share,
                     "bulk_from": pd.Timestamp.fromordinal(int(lo)).date(),
                     "bulk_to": pd.Timestamp.fromordinal(int(hi)).date(),
                     "posts_far_before": int(early["posts"].sum()), "posts_far_after": int(late["posts"].sum())})
        if share >= BUSIEST_DAY_WARNING:
            warnings.append(f"{label} ({platform}): {share:.0%} of its {total:,} posts are from one day, "
                            f"{pd.Timestamp(busiest['day']):%Y-%m-%d}; rates and per-day signals mostly describe "
                            "that day.")
        for frame, side in ((early, "before"), (late, "after")):
            if len(frame):
                when = ", ".join(f"{pd.Timestamp(x):%Y-%m-%d}" for x in frame["day"][:3])
                warnings.append(f"{label} ({platform}): {int(frame['posts'].sum())} post(s) far {side} the bulk "
                                f"({pd.Timestamp.fromordinal(int(lo)):%Y-%m-%d} – "
                                f"{pd.Timestamp.fromordinal(int(hi)):%Y-%m-%d}): {when}. The first-to-last span "
                                "overstates the period the data covers.")
    return pd.DataFrame(rows), warnings


NOT_OBSERVED_BY_ESTIMATES = "not observed by the estimates"
SHOWN_AS_BOUND = {D.LOWER_BOUND: "shown only as a minimum (a sample)",
                  D.UPPER_BOUND: "shown only as a maximum (a sample that overstates it)"}


def _observation_from_estimates(est: pd.DataFrame | None) -> dict[str, dict[str, set[str]]]:
    """What the estimates could not see, by why (NOT_OBSERVED_BY_ESTIMATES: the signals no source shows
    (models.dimensions.NOT_OBSERVED) and the criteria resting on them; SHOWN_AS_BOUND: the signals a
    sample shows only a lower or an upper bound of), each name with the models it concerns."""
    found: dict[str, dict[str, set[str]]] = {why: {} for why in (NOT_OBSERVED_BY_ESTIMATES, *SHOWN_AS_BOUND.values())}
    if est is None or "explanation" not in est.columns:
        return found
    for r in est.itertuples(index=False):
        explanation = r.explanation if isinstance(r.explanation, dict) else {}
        for signal, kind in (explanation.get("observation") or {}).items():
            if kind == D.NOT_OBSERVED:
                found[NOT_OBSERVED_BY_ESTIMATES].setdefault(signal, set()).add(r.model)
            elif kind in SHOWN_AS_BOUND:
                found[SHOWN_AS_BOUND[kind]].setdefault(signal, set()).add(r.model)
        for criterion in (explanation.get("rules") or {}).get("unobserved") or []:
            found[NOT_OBSERVED_BY_ESTIMATES].setdefault(criterion["criterion"], set()).add(r.model)
    return found


def _data_coverage(ctx: _Ctx) -> Section:
    s = Section("data-coverage", "Data: period, coverage and warnings",
                "Which period the stored data covers, how evenly, which organisations have enough of it to be "
                "judged, and which signals the sources cannot show.")

    def fill():
        daily = ctx.mi.daily_posts(orgs=ctx.ids)
        parts = []
        warnings: list[str] = []
        if daily.empty:
            parts.append("<p class='na'>No posts stored.</p>")
        else:
            period, warnings = _period_warnings(daily)
            s.tables["data_period"] = period
            rows = "".join(
                f"<tr><td class='source'>{html.escape(r.source)}</td><td>{html.escape(r.platform)}</td><td>{r.first_day} – "
                f"{r.last_day}</td><td>{r.bulk_from} – {r.bulk_to}</td><td>{r.active_days}</td><td>{r.posts:,}</td>"
                f"<td>{r.busiest_day} ({r.busiest_day_share:.0%})</td></tr>" for r in period.itertuples(index=False))
            parts.append("<div class='scroll'><table data-table='data-period'><thead><tr><th>source</th>"
                         "<th>platform</th><th>first – last post</th><th>bulk (5th–95th percentile day)</th>"
                         "<th>days with posts</th><th>posts</th><th>busiest day (share)</th></tr></thead>"
                         f"<tbody>{rows}</tbody></table></div>")
        window = ctx.mi.estimation_window()
        try:
            est = ctx.mi.estimates(orgs=ctx.ids, detail=True)
            as_of = pd.Timestamp(est["as_of"].iloc[0])
            parts.append(f"<p>Stages are read from the last {window} days up to {as_of:%Y-%m-%d %H:%M} UTC; "
                         "the charts and KPIs use all stored data up to the features' as_of.</p>")
        except NoEstimatesError:
            est = None
        # evidence per organisation against the gate
        sig = ctx.mi.signals(orgs=ctx.ids)
        ev = pd.DataFrame({"org": sig["org"], "posts": sig["posts"].fillna(0).astype(int),
                           "mentions": sig["mentions"].fillna(0).astype(int),
                           "completeness": sig["completeness"].astype(float)})
        ev["observations"] = ev["posts"] + ev["mentions"]
        ev["passes_gate"] = ev["org"].isin(ctx.mi.judged_orgs(orgs=ctx.ids))
        s.tables["evidence"] = ev
        below = ev[~ev["passes_gate"]]
        for r in below.itertuples(index=False):
            warnings.append(f"{ctx.name(r.org)}: {r.posts} post(s) and {r.mentions} inbound mention(s) in the "
                            f"{window}-day window: no criterion of any model has the evidence it needs "
                            "(insufficient evidence): not staged and not ranked.")
        # signals the sources cannot show
        ranks = ctx.mi.percentile_ranks(orgs=ctx.ids)
        labels = dict(zip(ranks["signal"], ranks["label"]))
        not_observed = sorted(set(ranks.loc[ranks["not_ranked"] == "not observed", "signal"]))
        constant = sorted(set(ranks.loc[ranks["not_ranked"] == "same value for every organisation", "signal"]))
        from_estimates = _observation_from_estimates(est)
        s.tables["unobserved"] = pd.DataFrame(
            [{"signal_or_criterion": x, "why": "no organisation of the group has a value", "models": ""}
             for x in not_observed]
            + [{"signal_or_criterion": k, "why": why, "models": ", ".join(sorted(v))}
               for why, found in from_estimates.items() for k, v in sorted(found.items())],
            columns=["signal_or_criterion", "why", "models"])
        sources = ", ".join(sorted({f"{x.split(':', 1)[0]} ({p})" for x, p in
                                    zip(daily.get("source", []), daily.get("platform", []))})) or "the data"
        lines = []
        if not_observed:
            lines.append("<li><b>Not observed</b> (no organisation has a value; the source cannot show it): "
                         + ", ".join(html.escape(labels.get(x, x)) for x in not_observed) + "</li>")
        for why, found in from_estimates.items():
            if found:
                lines.append(f"<li><b>{why.capitalize()}</b>: " + ", ".join(
                    f"{html.escape(labels.get(k, k))} <small>({', '.join(_short(m) for m in sorted(v))})</small>"
                    for k, v in sorted(found.items())) + "</li>")
        if constant:
            lines.append("<li><b>Same value for every organisation</b> (nothing to compare; possibly not carried "
                         "by the source): " + ", ".join(html.escape(labels.get(x, x)) for x in constant) + "</li>")
        parts.append(f"<h3>What {html.escape(sources)} cannot show</h3>"
                     + (f"<ul class='unobserved'>{''.join(lines)}</ul>" if lines else
                        "<p class='unobserved'>Every signal has a value for at least one organisation.</p>"))
        if warnings:
            parts.insert(0, "<ul class='warnings' data-warnings='%d'>%s</ul>" % (
                len(warnings), "".join(f"<li>⚠ {html.escape(w)}</li>" for w in warnings)))
        s.body = "".join(parts)
    return _guard(s, fill)


ANCHORS = [
    ("Socialbakers (Socially Devoted)", "brands answering at least 65% of the questions they receive are "
     "\"Socially Devoted\"; the Twitter average response rate was about 40%", "response rate"),
    ("Sprout Social Index", "brands replied in about 10 h on average while people expect a reply within about "
     "4 h; 7 in 8 messages to brands went unanswered within 72 h", "first-reply time, response rate"),
    ("Conversocial 2016 (airlines)", "airlines answered their first reply in about 1 h", "first-reply time"),
]


def _methodology(ctx: _Ctx) -> Section:
    from models.spec import MODEL_IDS, load_models

    s = Section("methodology", "Methodology",
                "How the stages in this report are computed and how to read them.")
    specs = load_models()
    models = "".join(f"<li><b>{html.escape(specs[m].name)}</b> <small>({m})</small>: "
                     + " → ".join(html.escape(st.name) for st in specs[m].stages) + "</li>" for m in MODEL_IDS)
    anchors = "".join(f"<li><b>{html.escape(who)}</b>: {html.escape(what)} <small>(scales: {html.escape(scale)})"
                      f"</small></li>" for who, what, scale in ANCHORS)
    s.tables["methodology_models"] = pd.DataFrame(
        [{"model": m, "name": specs[m].name, "stages": " → ".join(st.name for st in specs[m].stages)}
         for m in MODEL_IDS])
    s.body = f"""
<h3>The five maturity models</h3><ul class='models'>{models}</ul>
<p>Each model is read from its seed document (models/*.toml quote the passages): public activity is turned into
signals (response rate, first-reply time, posting regularity, …), each scored 0..1 on a published scale; a
stage's criteria encode the seed sentence that separates it from the stage below, with the signals that can
show it.</p>
<h3>How to read the results</h3><dl>
<dt>Stage</dt><dd>The step of a model the organisation's public activity shows: the criteria (the seed's
sentences) decide which stages the evidence supports, and a classifier trained on synthetic organisations only
places the point inside what they allow.</dd>
<dt>Interval</dt><dd>When public activity cannot separate stages (a stage no public data can show, or signals
this source does not carry), the estimate is the range the evidence supports ("at least Early Majority;
higher stages not assessable from these sources", or "from public activity" when no public data can show
them); rankings use its lower end.</dd>
<dt>Confidence</dt><dd>How often the stage holds when the organisation's conversation threads are resampled
(a bootstrap of the same size), combined with the classifier's probability, and shrunk when the organisation's
inputs lie far outside the training data (0..1).</dd>
<dt>Evidence gate</dt><dd>Each criterion needs its own minimum evidence (for example 10 judged mentions for a
response-rate criterion); without it the criterion abstains. "Insufficient evidence" means no criterion of the
model reached a verdict: the organisation is left out of rankings.</dd>
<dt>Not observed</dt><dd>A signal the source cannot show (no organisation has a value) is neither scored
against nor ranked.</dd>
<dt>Maturity score</dt><dd>The leaderboard's mean, over the judged models, of the stage's position in its model
(0 = first stage, 100 = last). SMI is left out: its quadrants are no ordered scale.</dd></dl>
<h3>Published anchors of the scales</h3><ul class='anchors'>{anchors}</ul>"""
    return s


def _quadrant_labels(points: list[tuple[str, float, float]], limit: int = QUADRANT_LABELS,
                     radius: float = 0.06) -> list[tuple[float, float, str]]:
    """Labels for the SMI chart: points within `radius` share one label ("A + 3 more"); at most `limit`
    labels, the most advanced (largest x + y) first."""
    clusters: list[list[tuple[str, float, float]]] = []
    for p in sorted(points, key=lambda t: (-(t[1] + t[2]), t[0])):
        for c in clusters:
            if math.hypot(c[0][1] - p[1], c[0][2] - p[2]) <= radius:
                c.append(p)
                break
        else:
            clusters.append([p])
    out = []
    for c in clusters[:limit]:
        text = c[0][0] if len(c) == 1 else f"{c[0][0]}, {c[1][0]}" if len(c) == 2 else f"{c[0][0]} + {len(c) - 1} more"
        out.append((c[0][1], c[0][2], text))
    return out


def _quadrant_key(ctx: _Ctx, q: pd.DataFrame) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(ctx.name(r.org))}</th><td>{html.escape(_text(r.stage)) or 'insufficient evidence'}"
        f"</td><td>{'' if pd.isna(r.investment) else f'{r.investment:.2f}'}</td>"
        f"<td>{'' if pd.isna(r.innovation) else f'{r.innovation:.2f}'}</td></tr>"
        for r in q.sort_values(["investment", "innovation"], ascending=False).itertuples(index=False))
    return (f"<details class='quadrant-key'{' open' if len(q) <= 12 else ''}><summary>Every organisation's "
            f"position ({len(q)})</summary><div class='scroll'><table data-table='smi-key'><thead><tr>"
            "<th>organisation</th><th>quadrant</th><th>investment</th><th>innovation</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div></details>")


def _log_ticks(axis, top: float) -> None:
    """Explicit decade ticks (1, 10, 100, 1k) on a log axis: never mathtext labels."""
    ticks = [10 ** k for k in range(0, max(int(math.ceil(math.log10(max(top, 1) * 1.5))), 1) + 1)]
    axis.set_ticks(ticks, [f"{t:,.0f}" if t < 1000 else f"{t // 1000:,.0f}k" for t in ticks])
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _chart(section: Section, fig) -> None:
    section.chart = _png(fig, section)


def _describe(fig) -> str:
    """The words a figure shows (titles, axis labels, tick labels, annotations, colour-bar scale)."""
    bits = []
    for ax in fig.axes:
        words = [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        words += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        words += [t.get_text() for t in ax.texts]
        for image in ax.images:
            lo, hi = image.get_clim()
            words.append(f"colour scale {lo:g}–{hi:g}")
        bits.append("; ".join(w for w in words if w))
    return " | ".join(b for b in bits if b)


# -- rendering ------------------------------------------------------------------------------------
def _png(fig, section: Section | None = None) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    if section is not None:
        section.chart_text = _describe(fig)
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
section h3{font-size:14px;margin:14px 0 6px}main p,main li,main dt{font-size:14px}td.source{word-break:break-all;min-width:140px}.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:4px 0 10px}
.kpi{flex:1 1 150px;border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;background:#fafbfc}
.kpi-label{font-size:12px;color:#555}.kpi-value{font-size:22px;font-weight:600}.kpi-delta{font-size:12px;color:#555}
.scroll{max-width:100%}.scroll table th:first-child,.scroll table td:first-child{position:sticky;left:0;z-index:1}
table.ranks tbody th,table.leaderboard tbody th{position:sticky;left:0;background:#fff;z-index:1}
table.ranks thead th{min-width:64px;max-width:110px}td.unranked{color:#777;background:#f3f3f3}
.scroll-hint{font-size:12px;color:#777;margin:0 0 4px}td.interval{background:#eef6ee}td.rank{font-weight:600}
ul.warnings{background:#fff7e0;border:1px solid #f0d68a;border-radius:6px;padding:8px 12px 8px 28px;font-size:13px}
.advice-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:10px}
div.org-advice{border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;font-size:13px}
div.org-advice h3{margin:0 0 4px}ol.levers{margin:4px 0;padding-left:20px}p.stages{margin:2px 0;color:#444}
dl dt{font-weight:600;margin-top:6px}dl dd{margin:2px 0 4px 16px;font-size:13px}
@media print{
  @page{size:A4;margin:14mm}
  body{background:#fff}nav,.scroll-hint{display:none}header{background:none;color:#000;padding:0}
  section{box-shadow:none;border-radius:0;padding:0;margin:0;break-before:page;page-break-before:always}
  section:first-of-type{break-before:auto;page-break-before:auto}
  figure,table,div.org-advice,.kpis{break-inside:avoid;page-break-inside:avoid}
  figure img{max-width:100%;max-height:240mm;object-fit:contain}
  .scroll{overflow:visible}table{font-size:9px;width:100%}thead th{position:static}
  .scroll table th:first-child,.scroll table td:first-child,table.ranks tbody th{position:static}
  table.ranks thead th{min-width:0}details>summary{list-style:none}
  footer{padding:0}
}
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
            alt = s.title + (f": {s.chart_text}" if s.chart_text else "")
            content = (f"<figure class='chart' data-chart='{s.id}'><img alt='{html.escape(alt)}' "
                       f"src='data:image/png;base64,{s.chart}'></figure>{s.body}")
        else:
            content = s.body
        parts.append(f"<section id='{s.id}' data-section='{s.id}'><h2>{html.escape(s.title)}</h2>"
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
    """Write every report table as out_dir/<table>.<fmt> (csv or parquet), or with xlsx one workbook with a
    sheet per table (out_dir itself when it ends in .xlsx, else out_dir/report.xlsx); returns the files."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use {', '.join(EXPORT_FORMATS)}")
    if fmt == "xlsx":
        return [_export_xlsx(report, Path(out_dir))]
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


def _export_xlsx(report: Report, out: Path) -> Path:
    """One workbook, one sheet per table (sheet names cut to Excel's 31 characters); times without zone,
    lists and dicts as text, since Excel stores neither."""
    path = out if out.suffix.lower() == ".xlsx" else out / "report.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in report.tables.items():
            frame = frame.copy()
            for column in frame.columns:
                if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                    frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
                elif frame[column].dtype == object:
                    frame[column] = frame[column].map(
                        lambda v: v if v is None or isinstance(v, (str, float, int, bool)) else str(v))
            frame.to_excel(writer, sheet_name=name[:31], index=False)
    return path
