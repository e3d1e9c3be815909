"""`omoi serve`: the HTTP API on uvicorn, in the foreground, or in a thread of this process (for
notebooks, benchmarks and tests) with `Background`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import uvicorn

from omoi.http.app import create_app
from omoi.http.auth import TOKEN_FILE, load_token
from omoi.runtime.errors import InputError
from omoi.runtime.git.repo import inspect_repo
from omoi.runtime.run.paths import state_root


def _token(repo: str | Path, state_dir: str | Path | None, host: str, say: Callable[[str], None]) -> str:
    """The API's token for this repository's state directory; a new one is shown once."""
    root = state_root(inspect_repo(repo), state_dir)
    token, fresh = load_token(root, host)
    if fresh:
        say(f"generated an API token (kept in {root / TOKEN_FILE}, mode 0600; shown once):\n{token}")
    return token


def serve(
    repo: str | Path,
    host: str,
    port: int,
    *,
    state_dir: str | Path | None = None,
    say: Callable[[str], None] = print,
) -> None:
    token = _token(repo, state_dir, host, say)
    app = create_app(repo, token, state_dir=state_dir)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    say(f"serving the runs of {repo} on http://{host}:{port}/v1 (Authorization: Bearer <token>)")
    server.run()


def alongside(
    repo: str | Path, port: int, *, state_dir: str | Path | None = None, say: Callable[[str], None] = print
) -> Background:
    """The API on 127.0.0.1:`port` next to a run this process drives (`omoi exec|run --serve`)."""
    server = Background(repo, _token(repo, state_dir, "127.0.0.1", say), state_dir=state_dir, port=port)
    say(f"serving the HTTP API on http://127.0.0.1:{port}/v1 while the run goes")
    return server


class Background:
    """The API on 127.0.0.1 (a free port, unless given) in a thread of this process, until the
    block ends."""

    def __init__(
        self,
        repo: str | Path,
        token: str,
        *,
        state_dir: str | Path | None = None,
        port: int = 0,
        poll: float = 0.2,
        keepalive: float = 15.0,
        queue: int = 1000,
    ) -> None:
        self.app = create_app(repo, token, state_dir=state_dir, poll=poll, keepalive=keepalive, queue=queue)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="omoi-api", daemon=True)
        self.url = ""

    def __enter__(self) -> Background:
        self.thread.start()
        for _ in range(600):
            if self.server.started or not self.thread.is_alive():
                break
            self.thread.join(0.05)  # waiting for uvicorn's thread to bind, bounded
        if not self.server.started:
            port = self.server.config.port
            raise InputError(f"cannot serve the HTTP API on 127.0.0.1:{port} (in use, or not allowed)")
        (sock,) = self.server.servers[0].sockets
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(30)
