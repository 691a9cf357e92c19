"""Loading generated organisations through the normal path: one ingest run, the organisations and
their accounts, the posts in batches, all in one transaction."""
from __future__ import annotations

from connectors.records import Post, posts_to_batch
from connectors.sink import LoadCounts
from pipeline.config import Organisation, write_organisations
from pipeline.store import Store

BATCH_POSTS = 100_000


def load_generated(store: Store, organisations: list[Organisation], posts: list[Post],
                   source: str, kind: str = "synthetic") -> tuple[int, LoadCounts]:
    """Returns (run_id, counts); the run is marked failed (and nothing stored) when the load raises.
    `kind`: the source kind the store observes the posts as (connectors/observation.py)."""
    run_id = store.start_run(source, kind)
    counts = LoadCounts(read=len(posts))
    try:
        with store.transaction():
            write_organisations(store.con, organisations)
            for begin in range(0, len(posts), BATCH_POSTS):
                counts.loaded += store.load_posts(posts_to_batch(posts[begin:begin + BATCH_POSTS]),
                                                  source=source, run_id=run_id)
    except BaseException as exc:
        store.fail_run(run_id, counts, f"{type(exc).__name__}: {exc}")
        raise
    store.finish_run(run_id, counts)
    return run_id, counts
