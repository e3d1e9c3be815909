"""The API's bearer token: `OMOI_API_TOKEN`, or one generated on first start into the state
directory (mode 0600) and printed once. A server reachable from other machines needs a token
somebody chose on purpose: binding to a non-loopback address without `OMOI_API_TOKEN` is refused."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

from omoi.runtime.errors import InputError

TOKEN_ENV = "OMOI_API_TOKEN"
TOKEN_FILE = "api_token"


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_token(state_root: Path, host: str) -> tuple[str, bool]:
    """The token, and whether it was generated just now (print it once, then)."""
    given = os.environ.get(TOKEN_ENV)
    if given is not None:
        if len(given.strip()) < 16:
            raise InputError(f"{TOKEN_ENV} must be at least 16 characters (it guards every endpoint)")
        return given.strip(), False
    if not loopback(host):
        raise InputError(
            f"--host {host} is reachable from other machines: set {TOKEN_ENV} to a secret of your own "
            "first (a generated token is only for a server on 127.0.0.1)"
        )
    path = state_root / TOKEN_FILE
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise InputError(f"{path} is readable by others; `chmod 600 {path}` or delete it for a new one")
        return path.read_text().strip(), False
    state_root.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def matches(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    if not header or not header.startswith("Bearer "):
        return False
    return secrets.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode())
