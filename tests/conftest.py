"""Shared fixtures: real git repositories, one real local Ray cluster per test session, and the
Docker sandbox image. With OMOI_REQUIRE_DOCKER=1 (CI) a missing engine or image fails the Docker
tests instead of skipping them, so the sandbox tests can never silently stop running."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "token")  # Ray 2.60 turns token auth on; say so explicitly
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def run_git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout


RepoFactory = Callable[..., Path]


@pytest.fixture
def make_repo(tmp_path: Path) -> RepoFactory:
    """A git repository with the given files committed on `main`."""
    counter = iter(range(1000))

    def make(files: dict[str, str] | None = None, *, commit: bool = True) -> Path:
        repo = tmp_path / f"repo{next(counter)}"
        repo.mkdir()
        run_git(repo, "init", "--quiet", "--initial-branch=main")
        for name, text in (files if files is not None else {"README.md": "hello\n"}).items():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(text)
        if commit:
            run_git(repo, "add", "-A")
            run_git(repo, "commit", "--quiet", "-m", "initial")
        return repo

    return make


def checkout_fingerprint(repo: Path) -> str:
    """Hash of everything of the user's that a run must not touch: working tree files (tracked,
    modified and untracked), the index, HEAD and the user's own branches."""
    h = hashlib.sha256()
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if rel.parts[0] == ".git" or not path.is_file():
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    git_dir = repo / ".git"
    for name in ("index", "HEAD"):
        if (git_dir / name).exists():
            h.update(name.encode() + (git_dir / name).read_bytes())
    refs = run_git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    h.update("\n".join(r for r in refs.splitlines() if not r.startswith("refs/heads/omoi/")).encode())
    return h.hexdigest()


@pytest.fixture(scope="session")
def metrics_port() -> int:
    """Where the shared cluster exports its Prometheus metrics (a free port on 127.0.0.1)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def ray_address(metrics_port: int) -> Iterator[str]:
    """One embedded Ray cluster for the whole session (2 CPUs, no dashboard, metrics exported
    every second on `metrics_port`)."""
    import ray

    from omoi.cluster.connect import connect

    os.environ.setdefault("RAY_metrics_report_interval_ms", "1000")
    address = connect(None, num_cpus=2, include_dashboard=False, metrics_export_port=metrics_port)
    yield address
    ray.shutdown()


@pytest.fixture(scope="session")
def docker_image() -> tuple[Any, str]:
    from omoi.runtime.errors import SandboxError
    from omoi.runtime.sandbox.docker import connect_engine
    from omoi.runtime.sandbox.image import build_image, default_tag, image_exists

    required = os.environ.get("OMOI_REQUIRE_DOCKER") == "1"
    try:
        client = connect_engine()
    except SandboxError as exc:
        if required:
            pytest.fail(f"OMOI_REQUIRE_DOCKER=1 but {exc}")
        pytest.skip(str(exc))
    tag = default_tag()
    if not image_exists(client, tag):
        if not required:
            pytest.skip(f"{tag} is not built (omoi sandbox build-image)")
        build_image(client, tag=tag)
    return client, tag


@pytest.fixture
def model_server() -> Iterator[Any]:
    """Starts scripted model servers on 127.0.0.1 (`model_server(script)`); stops them after."""
    from omoi.runtime.model.scripted import ScriptedModelServer, parse_script

    servers: list[Any] = []

    def start(script: dict[str, Any]) -> ScriptedModelServer:
        server = ScriptedModelServer(parse_script(script)).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()
