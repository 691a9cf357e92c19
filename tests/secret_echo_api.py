"""A loopback stand-in for X, Reddit, Mastodon and Bluesky that rejects credentials and echoes
them back, for the secrets sentinel scan (tests/test_security_secrets.py).

Every rejection body quotes what the client sent (Authorization header, form or JSON body), as a
careless or hostile server might, so any code path that puts a library's error text into a log, a
message, the database or a report would carry the credential with it. Mastodon also serves a few
statuses, so the run loads real rows before its token is refused.

`redirect_platform_hosts(url)` is imported by the CLI subprocess before the CLI starts: it points
the fixed https hosts of tweepy, praw and atproto at this server (requests and httpx transports);
nothing else in the product is changed.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlparse

from loopback import LoopbackServer, mastodon_account, mastodon_status

PLATFORM_HOSTS = ("https://api.twitter.com", "https://www.reddit.com", "https://oauth.reddit.com",
                  "https://public.api.bsky.app", "https://bsky.social")
STATUS_TIME = datetime(2017, 10, 3, 10, tzinfo=timezone.utc)


class SecretEchoAPI(LoopbackServer):
    def __init__(self):
        self.requests: list[str] = []        # "METHOD path <what was sent>" in order
        super().__init__(self._handler())

    def answer(self, method: str, path: str, query: dict, sent: str) -> tuple[int, dict | list]:
        """(status, JSON body) for one request; `sent` is everything the client sent that could
        carry a credential."""
        if path.startswith("/2/users/by/username/"):                      # X: bearer token refused
            return 401, {"title": "Unauthorized", "type": "about:blank", "status": 401,
                         "detail": f"Unauthorized: {sent}"}
        if path == "/api/v1/access_token":                                 # Reddit OAuth: grant refused
            return 200, {"error": f"invalid_grant: {sent}"}
        if path == "/api/v1/accounts/lookup":
            return 200, mastodon_account("brand")
        if path.endswith("/statuses"):                                      # min_id pages, newest first
            statuses = [mastodon_status("109000000000000002", STATUS_TIME, "brand", "<p>@carol thanks, sorted</p>"),
                        mastodon_status("109000000000000001", STATUS_TIME, "brand", "<p>Morning all</p>")]
            return 200, [s for s in statuses if int(s["id"]) > int(query.get("min_id", ["0"])[-1])]
        if path.endswith("/context"):
            return 200, {"ancestors": [], "descendants": []}
        if path == "/api/v1/notifications":                               # Mastodon: token refused
            return 401, {"error": f"The access token is invalid: {sent}"}
        if path.endswith("com.atproto.server.createSession"):              # Bluesky: login refused
            return 401, {"error": "AuthenticationRequired", "message": f"Invalid identifier or password: {sent}"}
        return 404, {"error": f"no route {method} {path}: {sent}"}

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                parsed = urlparse(self.path)
                sent = (f"Authorization: {self.headers.get('Authorization', '')} "
                        f"User-Agent: {self.headers.get('User-Agent', '')} body: {body} url: {self.path}")
                api.requests.append(f"{method} {parsed.path} {sent}")
                status, answer = api.answer(method, parsed.path, parse_qs(parsed.query), sent)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        return Handler


def redirect_platform_hosts(fake_url: str) -> None:
    """Send requests to the platforms' fixed https hosts to `fake_url` instead (requests: tweepy,
    praw, Mastodon.py; httpx: atproto)."""
    import httpx
    from requests.adapters import HTTPAdapter

    def rewrite(url: str) -> str:
        for host in PLATFORM_HOSTS:
            if url.startswith(host):
                return fake_url + url[len(host):]
        return url

    send = HTTPAdapter.send

    def redirected_send(self, request, *args, **kwargs):
        request.url = rewrite(request.url)
        return send(self, request, *args, **kwargs)

    HTTPAdapter.send = redirected_send

    handle = httpx.HTTPTransport.handle_request

    def redirected_handle(self, request):
        request.url = httpx.URL(rewrite(str(request.url)))
        return handle(self, request)

    httpx.HTTPTransport.handle_request = redirected_handle
