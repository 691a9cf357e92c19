"""Human-readable run summary for the CLI."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from features.runner import features_frame
from pipeline.store import Store


def print_summary(summary: dict, console: Console) -> None:
    sources = Table(title="sources")
    for column in ("source", "status", "read", "loaded", "rejected", "seconds", "note"):
        sources.add_column(column, justify="right" if column in ("read", "loaded", "rejected", "seconds") else "left")
    for s in summary["sources"]:
        sources.add_row(s["name"], s["status"], str(s["read"]), str(s["loaded"]), str(s["rejected"]),
                        f"{s['seconds']:.2f}", s.get("message") or "")
    console.print(sources)
    if "features" in summary:
        with Store(summary["db"], read_only=True) as store:
            frame = features_frame(store.con, summary["as_of"], 0, "account")
        frame = frame[frame["posts"] > 0] if "posts" in frame else frame
        # the core columns fit a terminal; `maturity features` shows every signal
        frame = frame[[c for c in SUMMARY_FEATURE_COLUMNS if c in frame]]
        from pipeline.cli import print_frame
        cached = ", inputs unchanged: cached" if summary["features"].get("cached") else ""
        print_frame(frame, "table", title=f"features as of {summary['as_of']:%Y-%m-%d %H:%M} UTC "
                                          f"({summary['features']['seconds']:.2f} s{cached})")
    if "estimates" in summary:
        print_stage_table(summary["db"], summary["estimates"]["as_of"], console)
    unassigned = summary.get("unassigned_accounts") or []
    if unassigned:
        console.print(f"{len(unassigned)} org accounts in the data are not assigned to a configured "
                      f"organisation: {', '.join(unassigned[:12])}{' …' if len(unassigned) > 12 else ''}",
                      highlight=False)
    for failure in summary.get("failures", []):
        console.print(Text.assemble(("failed: ", "bold red"), describe_failure(failure)))
    console.print(f"run {summary['run_id'][:8]}: {summary['status']}", highlight=False)


SUMMARY_FEATURE_COLUMNS = ["org", "account", "platform", "posts", "mentions", "answered", "response_rate",
                           "first_reply_median_s", "first_reply_p90_s"]


def describe_failure(failure: dict) -> str:
    """One failure of a run summary: step, organisation (when one is to blame) and cause."""
    org = f" [{failure['org']}]" if failure.get("org") else ""
    return f"{failure['step']}{org}: {failure['cause']}"


def print_stage_table(db: str, as_of, console: Console) -> None:
    """Organisation x model stage table (organisations with any estimate that is not thin data first)."""
    from models.estimate import stored_estimates
    from models.spec import MODEL_IDS

    with Store(db, read_only=True) as store:
        frame = stored_estimates(store, as_of)
        without_posts = {org for (org,) in store.con.execute(
            "select o.org_id from organisations o where not exists (select 1 from accounts a join posts p "
            "on p.platform = a.platform and p.author_key = a.handle_key where a.org_id = o.org_id)").fetchall()}
    if frame.empty:
        return
    frame["cell"] = [f"{s} ({c:.2f})" if st == "ok" else "insufficient evidence"
                     for s, c, st in zip(frame["stage"], frame["confidence"].fillna(0), frame["status"])]
    wide = frame.pivot(index="org", columns="model", values="cell").reindex(columns=MODEL_IDS)
    judged = frame[frame["status"] == "ok"]["org"].unique()
    thin = [org for org in wide.index if org not in set(judged)]
    table = Table(title=f"maturity stage (confidence) as of {as_of:%Y-%m-%d %H:%M} UTC")
    table.add_column("organisation")
    for model in MODEL_IDS:
        table.add_column(model)
    for org, row in wide.loc[[o for o in wide.index if o in set(judged)]].iterrows():
        table.add_row(org, *(row[m] if isinstance(row[m], str) else "-" for m in MODEL_IDS))
    console.print(table)
    for orgs, what in (([o for o in thin if o in without_posts], "have no posts stored yet (configured, no data)"),
                       ([o for o in thin if o not in without_posts],
                        "have too little data to judge (insufficient evidence)")):
        if orgs:
            console.print(f"{len(orgs)} organisations {what}: {', '.join(orgs[:10])}{' …' if len(orgs) > 10 else ''}",
                          highlight=False)
