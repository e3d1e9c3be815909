"""A local fake of the GitHub REST endpoints `omoi pr` uses (list, create and update pull requests),
on 127.0.0.1: real HTTP for the real client, and a record of what it was asked."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]
    authorization: str


@dataclass
class FakeGitHub:
    token: str = "ghp_fake"
    branches: set[str] = field(default_factory=lambda: {"main"})  # what `base` may name
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._answer(self, "GET")

            def do_POST(self) -> None:
                fake._answer(self, "POST")

            def do_PATCH(self) -> None:
                fake._answer(self, "PATCH")

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `seen` is the log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        size = int(h.headers.get("content-length") or 0)
        body = json.loads(h.rfile.read(size) or b"{}") if size else {}
        auth = h.headers.get("authorization", "")
        self.seen.append(Seen(method, url.path, parse_qs(url.query), body, auth))
        status, data = self._route(method, url.path.strip("/").split("/"), parse_qs(url.query), body, auth)
        payload = json.dumps(data).encode()
        h.send_response(status)
        h.send_header("content-type", "application/json; charset=utf-8")
        h.send_header("content-length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _route(
        self, method: str, parts: list[str], query: dict[str, list[str]], body: dict[str, Any], auth: str
    ) -> tuple[int, Any]:
        if auth not in (f"token {self.token}", f"Bearer {self.token}"):
            return 401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
        if len(parts) < 4 or parts[0] != "repos" or parts[3] != "pulls":
            return 404, {"message": "Not Found"}
        owner, repo = parts[1], parts[2]
        if method == "GET" and len(parts) == 4:
            head = query.get("head", [""])[0]
            state = query.get("state", ["open"])[0]
            found = [p for p in self.pulls.values() if f"{owner}:{p['head']['ref']}" == head or not head]
            return 200, [p for p in found if state in ("all", p["state"])]
        if method in ("POST", "PATCH") and "base" in body and body["base"] not in self.branches:
            error = {"resource": "PullRequest", "field": "base", "code": "invalid"}
            return 422, {"message": "Validation Failed", "errors": [error]}
        if method == "POST" and len(parts) == 4:
            if body.get("base") not in self.branches:
                error = {"resource": "PullRequest", "field": "base", "code": "invalid"}
                return 422, {"message": "Validation Failed", "errors": [error]}
            n = len(self.pulls) + 1
            self.pulls[n] = {
                "number": n,
                "state": "open",
                "title": body["title"],
                "body": body.get("body", ""),
                "head": {"ref": body["head"]},
                "base": {"ref": body["base"]},
                "html_url": f"https://github.example/{owner}/{repo}/pull/{n}",
            }
            return 201, self.pulls[n]
        if method == "PATCH" and len(parts) == 5 and parts[4].isdigit() and int(parts[4]) in self.pulls:
            pull = self.pulls[int(parts[4])]
            pull.update({k: body[k] for k in ("title", "body") if k in body})
            if "base" in body:
                pull["base"] = {"ref": body["base"]}
            return 200, pull
        return 404, {"message": "Not Found"}
