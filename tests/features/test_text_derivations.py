"""Text derivations live in features/text.py and run at build time over the stored text: a changed
definition changes the next build without reloading posts; customers' dropped text keeps the flag the
features need, so their question features do not depend on whether the text is kept."""
from datetime import datetime, timedelta

import pytest

from connectors.records import Post, posts_to_batch
from features import text
from features.runner import build_features, features_frame
from pipeline.store import writer

T0 = datetime(2024, 3, 4, 12, 0, 0)
AS_OF = T0 + timedelta(days=4)


def tw(pid, author, minutes, reply=None, words=""):
    return Post("twitter", pid, author, not author.isdigit(), T0 + timedelta(minutes=minutes),
                in_reply_to=reply, text=words)


POSTS = [
    tw("1", "100", 0, None, "@acme my order is late?"),
    tw("2", "acme", 10, "1", "Sorry! Please DM us your order number"),
    tw("3", "101", 20, None, "@acme where is my parcel?"),
    tw("4", "acme", 30, "3", "Send us an email and we will check"),
    tw("5", "102", 40, None, "@acme thanks for the help"),
    tw("6", "acme", 50, "5", "Glad we could help"),
    tw("7", "103", 60, None, "@acme hello"),
]


def load(store, posts):
    with store.transaction():
        store.load_posts(posts_to_batch(posts), source="test", run_id=None)


def acme_features(store):
    return features_frame(store.con, AS_OF, 0).set_index("account").loc["acme"]


def test_a_changed_derivation_changes_the_next_build_without_reloading(store, monkeypatch):
    load(store, POSTS)
    build_features(store.con, AS_OF)
    assert acme_features(store).private_channel_share == pytest.approx(1 / 3)   # reply 2 of 2, 4, 6
    posts = store.df("select * from posts order by post_id")

    monkeypatch.setattr(text, "PRIVATE_CHANNEL", text.PRIVATE_CHANNEL.replace("|inbox)", "|inbox|email)"))
    build_features(store.con, AS_OF)
    assert acme_features(store).private_channel_share == pytest.approx(2 / 3)   # reply 4 counts now
    assert store.df("select * from posts order by post_id").equals(posts)         # nothing reloaded


@pytest.mark.parametrize("feature, expected", [("question_share", 2 / 4), ("question_response_rate", 1.0)])
def test_question_features_do_not_depend_on_keeping_customer_text(tmp_path, feature, expected):
    values = {}
    for keep in (False, True):
        with writer(tmp_path / f"keep-{keep}.duckdb", keep_customer_text=keep) as store:
            load(store, POSTS)
            stored = store.con.execute("select count(text) from posts where not is_org_author").fetchone()[0]
            assert stored == (4 if keep else 0)
            build_features(store.con, AS_OF)
            values[keep] = acme_features(store)[feature]
    assert values[False] == pytest.approx(expected) and values[True] == pytest.approx(expected)
