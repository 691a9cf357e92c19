"""Pieces the loopback test servers share: a threaded HTTP server on 127.0.0.1 used as a context
manager, and Mastodon API payloads (accounts and statuses) shaped as Mastodon.py expects them."""
from __future__ import annotations

import threading
from datetime import datetime
from http.server import ThreadingHTTPServer


class LoopbackServer:
    """Serves `handler` on a free 127.0.0.1 port in a daemon thread between __enter__ and __exit__."""

    def __init__(self, handler):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def mastodon_account(acct: str) -> dict:
    return {"id": "9" if acct == "brand" else str(abs(hash(acct)) % 10**8), "username": acct, "acct": acct,
            "display_name": acct, "locked": False, "bot": False, "group": False,
            "created_at": "2020-01-01T00:00:00.000Z", "note": "", "url": f"http://x/@{acct}",
            "followers_count": 0, "following_count": 0, "statuses_count": 0, "fields": [], "emojis": []}


def mastodon_status(sid: str, moment: datetime, acct: str, content: str, reply_to: str | None = None) -> dict:
    return {"id": sid, "created_at": moment.isoformat().replace("+00:00", ".000Z"),
            "in_reply_to_id": reply_to, "in_reply_to_account_id": None, "sensitive": False,
            "spoiler_text": "", "visibility": "public", "language": "en", "uri": f"http://x/{sid}",
            "url": f"http://x/{sid}", "replies_count": 0, "reblogs_count": 1, "favourites_count": 2,
            "content": content, "reblog": None, "account": mastodon_account(acct), "media_attachments": [],
            "mentions": [], "tags": [], "emojis": []}
