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
            frame = features_frame(store, summary["as_of"], 0, "account")
        frame = frame[frame["posts"] > 0] if "posts" in frame else frame
        from pipeline.cli import print_frame
        print_frame(frame, "table", title=f"features as of {summary['as_of']:%Y-%m-%d %H:%M} UTC "
                                          f"({summary['features']['seconds']:.2f} s)")
    unassigned = summary.get("unassigned_accounts") or []
    if unassigned:
        console.print(f"{len(unassigned)} org accounts in the data are not assigned to a configured "
                      f"organisation: {', '.join(unassigned[:12])}{' …' if len(unassigned) > 12 else ''}",
                      highlight=False)
    for failure in summary.get("failures", []):
        console.print(Text.assemble(("failed: ", "bold red"), failure))
    console.print(f"run {summary['run_id'][:8]}: {summary['status']}", highlight=False)
