"""A scripted platform API on 127.0.0.1 (http.server in a thread) for fault injection.

Serves an X-like v2 API (newest-first pages with next_token / since_id) and a Mastodon-like API
(min_id pages, lookup, context, notifications) from in-memory posts. Faults are queued per route
and consumed one per request: ("status", code, headers), ("malformed",), ("reset",) closes the
connection without an answer, ("slow", seconds) answers after the client's timeout,
("empty_next",) answers an empty page that still carries a next token.
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer, mastodon_account, mastodon_status

X_EPOCH_MS = 1288834974657
BASE_TIME = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)


def x_id(moment: datetime, seq: int) -> str:
    return str(((int(moment.timestamp() * 1000) - X_EPOCH_MS) << 22) + seq)


def masto_id(moment: datetime, seq: int) -> str:
    return str((int(moment.timestamp() * 1000) << 16) + seq)


class FakeAPI(LoopbackServer):
    def __init__(self, page_size: int = 3):
        self.page_size = page_size
        self.faults: dict[str, deque] = defaultdict(deque)
        self.requests: list[tuple[str, str]] = []   # (route, full path) in order
        self.tweets: dict[str, list[dict]] = {"timeline": [], "mentions": [], "replies": []}
        self.statuses: list[dict] = []
        self.notifications: list[dict] = []
        self.contexts: dict[str, dict] = {}
        self.lock = threading.Lock()
        super().__init__(self._handler())

    def fault(self, route: str, *faults: tuple) -> None:
        self.faults[route].extend(faults)

    def count(self, route: str) -> int:
        return sum(1 for r, _ in self.requests if r == route)

    # data -------------------------------------------------------------------------------------
    def add_tweets(self, stream: str, n: int, author_id: str, username: str, start: int = 0,
                   reply_to: str | None = None) -> list[str]:
        ids = []
        for i in range(start, start + n):
            moment = BASE_TIME + timedelta(minutes=i)
            tid = x_id(moment, i % 4096)
            self.tweets[stream].append({
                "id": tid, "edit_history_tweet_ids": [tid], "text": f"{'@brand ' if stream != 'timeline' else ''}post {stream} {i}",
                "author_id": author_id, "created_at": moment.isoformat().replace("+00:00", ".000Z"),
                "conversation_id": tid if reply_to is None else reply_to,
                "referenced_tweets": [{"type": "replied_to", "id": reply_to}] if reply_to else None,
                "public_metrics": {"like_count": i, "retweet_count": 0, "reply_count": 0, "quote_count": 0},
                "_username": username})
            ids.append(tid)
        return ids

    def add_statuses(self, n: int, acct: str, start: int = 0) -> list[str]:
        ids = []
        for i in range(start, start + n):
            moment = BASE_TIME + timedelta(minutes=i)
            sid = masto_id(moment, i)
            self.statuses.append(mastodon_status(sid, moment, acct, f"<p>status {i}</p>"))
            ids.append(sid)
        return ids

    def add_mentions(self, n: int, acct: str, start: int = 0) -> list[str]:
        ids = []
        for i in range(start, start + n):
            moment = BASE_TIME + timedelta(minutes=i, seconds=30)
            sid = masto_id(moment, 1000 + i)
            status = mastodon_status(sid, moment, acct, f"<p>@brand question {i}?</p>")
            self.notifications.append({"id": str(500 + i), "type": "mention",
                                       "created_at": status["created_at"], "account": status["account"],
                                       "status": status})
            ids.append(sid)
        return ids

    # serving ----------------------------------------------------------------------------------
    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                route, answer = api.route(parsed.path, query)
                with api.lock:
                    api.requests.append((route, self.path))
                    fault = api.faults[route].popleft() if api.faults[route] else None
                if fault is not None:
                    kind = fault[0]
                    if kind == "status":
                        return self.reply(fault[1], {"error": f"injected {fault[1]}"}, fault[2] if len(fault) > 2 else {})
                    if kind == "malformed":
                        return self.reply(200, None, raw=b'{"data": [{"id": "1", "te')
                    if kind == "reset":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return None
                    if kind == "slow":
                        time.sleep(fault[1])
                    if kind == "empty_next":
                        return self.reply(200, {"meta": {"result_count": 0, "next_token": query.get(
                            "pagination_token", query.get("next_token", "")) or "start"}})
                    if kind == "headers":   # a normal answer with extra headers (remaining: 0)
                        status, body, headers = answer()
                        return self.reply(status, body, {**headers, **fault[1]})
                status, body, headers = answer()
                self.reply(status, body, headers)

            def reply(self, status, body, headers=None, raw=None):
                payload = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def route(self, path: str, query: dict):
        if m := re.fullmatch(r"/2/users/by/username/(\w+)", path):
            name = m.group(1)
            if name == "ghost":
                return "x.user", lambda: (200, {"errors": [{"detail": "Could not find user with username: [ghost].",
                                                            "title": "Not Found Error"}]}, {})
            if name == "suspended":
                return "x.user", lambda: (403, {"title": "Forbidden", "detail": "User has been suspended."}, {})
            return "x.user", lambda: (200, {"data": {"id": "100", "username": name, "name": name}}, {})
        if m := re.fullmatch(r"/2/users/100/(tweets|mentions)", path):
            stream = "timeline" if m.group(1) == "tweets" else "mentions"
            return f"x.{stream}", lambda: self.x_page(self.tweets[stream], query, "pagination_token")
        if path == "/2/tweets/search/recent":
            return "x.replies", lambda: self.x_page(self.tweets["replies"], query, "next_token")
        if path == "/api/v1/accounts/lookup":
            if query.get("acct") == "ghost":
                return "m.lookup", lambda: (404, {"error": "Record not found"}, {})
            return "m.lookup", lambda: (200, mastodon_account(query["acct"]), {})
        if m := re.fullmatch(r"/api/v1/accounts/(\d+)/statuses", path):
            # the account's own statuses (and malformed ones without an account, on every timeline)
            return "m.statuses", lambda: self.min_id_page(
                [s for s in self.statuses if s.get("account", {}).get("id", m.group(1)) == m.group(1)], query)
        if path == "/api/v2/search":   # status search without a token: refused, as on most servers
            return "m.search", lambda: (401, {"error": "Search queries require authentication"}, {})
        if path == "/api/v1/notifications":
            return "m.notifications", lambda: self.min_id_page(self.notifications, query)
        if m := re.fullmatch(r"/api/v1/statuses/(\d+)/context", path):
            return "m.context", lambda: (200, self.contexts.get(m.group(1), {"ancestors": [], "descendants": []}), {})
        return "unknown", lambda: (404, {"error": f"no route {path}"}, {})

    def x_page(self, tweets: list[dict], query: dict, token_param: str):
        newer = [t for t in tweets if "since_id" not in query or int(t["id"]) > int(query["since_id"])]
        newer.sort(key=lambda t: -int(t["id"]))
        offset = int(query.get(token_param, "p0")[1:]) if query.get(token_param, "").startswith("p") else 0
        size = min(self.page_size, int(query.get("max_results", 100)))
        page = newer[offset:offset + size]
        users = {t["author_id"]: t["_username"] for t in page}
        body: dict = {"meta": {"result_count": len(page)}}
        if page:
            body["data"] = [{k: v for k, v in t.items() if not k.startswith("_") and v is not None} for t in page]
            body["includes"] = {"users": [{"id": i, "username": u, "name": u} for i, u in users.items()]}
            body["meta"].update(newest_id=page[0]["id"], oldest_id=page[-1]["id"])
        if offset + size < len(newer):
            body["meta"]["next_token"] = f"p{offset + size}"
        return 200, body, {"x-rate-limit-remaining": "100", "x-rate-limit-reset": "9999999999"}

    def min_id_page(self, items: list[dict], query: dict):
        min_id = int(query.get("min_id", 0))
        newer = sorted((i for i in items if int(i["id"]) > min_id), key=lambda i: int(i["id"]))
        page = newer[:min(self.page_size, int(query.get("limit", 40)))]
        return 200, sorted(page, key=lambda i: -int(i["id"])), {}

