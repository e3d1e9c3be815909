"""The Docker sandbox, attacked from inside real containers. Every network attempt targets this
machine only (its own address, the docker bridge); a control from the host shows it was reachable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from omoi.actors.bus import BusActor
from omoi.actors.sandbox import SandboxActor
from omoi.runtime.git import repo as git
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.run.execution import TaskRequest
from omoi.runtime.sandbox.docker import DockerBackend, DockerLimits, DockerSandbox, remove_run_containers
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.helpers import task_request

pytestmark = pytest.mark.docker


def _request(repo: Path, task: str, command: str = "true", **fields: Any) -> TaskRequest:
    return task_request(repo, task, command, run_id="dk", **fields)


@pytest.fixture
async def sandbox(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path
) -> AsyncIterator[DockerSandbox]:
    repo = make_repo({"README.md": "hi\n"})
    info = git.inspect_repo(repo)
    backend = DockerBackend(
        info.path,
        info.git_dir,
        tmp_path / "wt",
        image=docker_image[1],
        limits=DockerLimits(memory="256m", pids=64),
    )
    sb = await backend.create(_request(repo, "probe"))
    assert isinstance(sb, DockerSandbox)
    yield sb
    await sb.destroy()
    await backend.close()


def _host_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # UDP connect sends nothing; it only picks the outgoing address
        return str(s.getsockname()[0])


def _connect_cmd(host: str, port: int) -> str:
    return (
        f"python3 -c \"import socket; s=socket.socket(); s.settimeout(3); s.connect(('{host}', {port})); "
        f"print('CONNECTED')\""
    )


async def test_no_network_to_this_machine_or_its_docker_bridge(sandbox: DockerSandbox) -> None:
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]
    try:
        for target in (_host_ip(), "172.17.0.1"):
            with socket.create_connection((target, port), timeout=3):  # control: reachable from the host
                pass
            res = await sandbox.exec(_connect_cmd(target, port), 30)
            assert res.exit_code != 0, (target, res.output)
            assert "CONNECTED" not in res.output
            assert "unreachable" in res.output.lower()
    finally:
        server.close()


async def test_host_files_outside_the_workspace_are_invisible(sandbox: DockerSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("top secret\n")
    res = await sandbox.exec(f"cat {secret}; ls /root; cat /etc/shadow", 30)
    assert res.exit_code != 0
    assert "top secret" not in res.output


async def test_the_root_filesystem_is_read_only(sandbox: DockerSandbox) -> None:
    res = await sandbox.exec("echo x > /etc/evil", 30)
    assert res.exit_code != 0
    assert "Read-only file system" in res.output
    ok = await sandbox.exec("echo fine > /tmp/t && echo fine > /workspace/w.txt && cat /tmp/t", 30)
    assert ok.exit_code == 0
    assert ok.output.strip() == "fine"


async def test_a_fork_bomb_hits_the_pids_limit_and_the_host_is_fine(sandbox: DockerSandbox) -> None:
    res = await sandbox.exec("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", 20)
    assert "fork" in res.output.lower() or "resource" in res.output.lower(), res.output[-500:]
    pids = Path(f"/sys/fs/cgroup/pids/docker/{sandbox.container.id}/pids.current")
    if pids.exists():  # cgroup v1 (this engine): the bomb is held at the limit
        assert int(pids.read_text()) <= 64
    host = await asyncio.create_subprocess_exec("true")  # the host can still start processes
    assert await asyncio.wait_for(host.wait(), 10) == 0


async def test_a_memory_hog_is_killed_and_reported_as_out_of_memory(sandbox: DockerSandbox) -> None:
    res = await sandbox.exec("python3 -c 'x = bytearray(1024 * 1024 * 1024)'", 60)
    assert res.oom_killed
    assert res.exit_code == 137
    assert not res.timed_out


async def test_no_host_secret_reaches_the_container(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-host-secret")
    monkeypatch.setenv("OMOI_TEST_SECRET", "also-secret")
    repo = make_repo()
    info = git.inspect_repo(repo)
    backend = DockerBackend(info.path, info.git_dir, tmp_path / "wt", image=docker_image[1], pool=0)
    sb = await backend.create(_request(repo, "env"))
    try:
        res = await sb.exec("env; cat /proc/1/environ | tr '\\0' '\\n'", 30)
    finally:
        await sb.destroy()
    assert res.exit_code == 0
    assert "secret" not in res.output
    assert "ANTHROPIC" not in res.output


async def test_a_timeout_kills_the_command_and_its_children(sandbox: DockerSandbox) -> None:
    res = await sandbox.exec("sleep 300 & echo $! > /tmp/child; sleep 300", 3)
    assert res.timed_out
    assert res.exit_code is None
    check = await sandbox.exec(
        "test -s /tmp/child || echo NO-PID; kill -0 $(cat /tmp/child) 2>/dev/null && echo ALIVE || echo GONE",
        30,
    )
    assert check.output.strip() == "GONE", "the child must have been started, and be gone"


async def test_committed_work_is_on_the_branch_after_the_sandbox_is_gone(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "hi\n"})
    (repo / "README.md").write_text("the user's uncommitted edit\n")
    before = checkout_fingerprint(repo)
    info = git.inspect_repo(repo)
    client = docker_image[0]
    actor = SandboxActor(
        "sb/0",
        BusActor(MemoryEventStore()),
        DockerBackend(info.path, info.git_dir, tmp_path / "wt", image=docker_image[1], run_id="dk", pool=0),
    )
    result = await actor.execute(_request(repo, "work", "id -u > uid.txt && echo made in a box > out.txt"))
    assert result.status == "succeeded", result.error
    assert run_git(repo, "show", "omoi/dk/work:out.txt") == "made in a box\n"
    assert run_git(repo, "show", "omoi/dk/work:uid.txt").strip() == "1000", "commands must not run as root"
    assert not (tmp_path / "wt" / "work").exists()
    assert client.containers.list(all=True, filters={"label": "omoi.run=dk"}) == []
    assert checkout_fingerprint(repo) == before


def test_leftover_containers_are_collected(docker_image: tuple[Any, str]) -> None:
    client, tag = docker_image
    client.containers.run(
        tag, ["sleep", "infinity"], detach=True, labels={"omoi.run": "gc-test"}, network_mode="none"
    )
    assert remove_run_containers(client, "gc-test") == 1
    assert client.containers.list(all=True, filters={"label": "omoi.run=gc-test"}) == []


def test_the_docker_tests_ran_for_real_in_ci() -> None:
    if os.environ.get("OMOI_REQUIRE_DOCKER") == "1":
        from omoi.runtime.sandbox.docker import engine_answers

        assert engine_answers()


async def test_files_written_for_the_sandbox_belong_to_it_and_links_out_are_refused(
    sandbox: DockerSandbox,
) -> None:
    from omoi.runtime.sandbox.workspace import PathEscapeError

    await sandbox.write_file("pkg/mod.py", "x = 1\n")
    res = await sandbox.exec("echo 'y = 2' >> pkg/mod.py && ln -s /etc/shadow shadow && ln -s / root", 30)
    assert res.exit_code == 0, res.output
    assert await sandbox.read_file("/workspace/pkg/mod.py") == "x = 1\ny = 2\n"
    with pytest.raises(PathEscapeError):
        await sandbox.read_file("shadow")
    with pytest.raises(PathEscapeError):
        await sandbox.read_file("root/etc/hostname")


async def test_a_warm_container_is_used_then_replaced(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path
) -> None:
    client, tag = docker_image
    repo = make_repo()
    info = git.inspect_repo(repo)
    backend = DockerBackend(info.path, info.git_dir, tmp_path / "wt", image=tag, run_id="warm", pool=1)

    def spares() -> list[str]:
        return [c.id for c in client.containers.list(filters={"label": ["omoi.run=warm", "omoi.task=spare"]})]

    await backend.warm()
    (ready,) = spares()
    sb = await backend.create(_request(repo, "t1", "echo hi > hi.txt"))
    assert isinstance(sb, DockerSandbox)
    assert sb.container.id == ready, "acquiring did not use the warm container"
    assert (await sb.exec("cat /workspace/README.md && echo x > hi.txt", 30)).exit_code == 0
    await backend.warm()  # the replacement is being started in the background: wait for it
    assert len(spares()) == 2  # the one in use (still labelled spare) and its replacement
    online = await backend.create(_request(repo, "t2", network=True))  # needs its own container
    assert isinstance(online, DockerSandbox)
    assert online.container.id not in spares()
    for s in (sb, online):
        await s.destroy()
    await backend.close()
    assert client.containers.list(all=True, filters={"label": "omoi.run=warm"}) == []


def test_gc_removes_what_dead_runs_left_and_spares_live_ones(
    docker_image: tuple[Any, str], make_repo: RepoFactory
) -> None:
    from click.testing import CliRunner

    from omoi.cli import main
    from omoi.runtime.run.begin import RunLock

    client, tag = docker_image
    repo = make_repo()
    runs = repo / ".git" / "omoi" / "runs"
    live_lock = RunLock(runs / "live-run")
    live_lock.acquire()
    (runs / "dead-run" / "worktrees").mkdir(parents=True)
    git.TaskTree(repo / ".git", runs / "dead-run" / "worktrees" / "t", "omoi/dead-run/t").checkout("HEAD")
    for run in ("live-run", "dead-run"):
        client.containers.run(
            tag,
            ["sleep", "infinity"],
            detach=True,
            network_mode="none",
            labels={"omoi.run": run, "omoi.rundir": str(runs / run)},
        )
    try:
        result = CliRunner().invoke(main, ["gc", "--repo", str(repo)])
        assert result.exit_code == 0, result.output
        assert "removed 0 actors, 1 container, 1 task tree; 1 live run(s) left alone" in result.output
        assert client.containers.list(all=True, filters={"label": "omoi.run=dead-run"}) == []
        assert len(client.containers.list(filters={"label": "omoi.run=live-run"})) == 1
        assert not (runs / "dead-run" / "worktrees" / "t").exists()
        assert run_git(repo, "rev-parse", "--verify", "omoi/dead-run/t").strip(), "branches stay"
    finally:
        live_lock.release()
        remove_run_containers(client, "live-run")


async def test_a_missing_image_is_an_error_never_a_pull(
    make_repo: RepoFactory, tmp_path: Path, docker_image: tuple[Any, str]
) -> None:
    from omoi.runtime.errors import SandboxError

    repo = make_repo()
    info = git.inspect_repo(repo)
    backend = DockerBackend(
        info.path, info.git_dir, tmp_path / "wt", image="omoi-sandbox:does-not-exist", pool=0
    )
    with pytest.raises(SandboxError, match="No such image"):
        await backend.create(_request(repo, "t"))
    assert not (tmp_path / "wt" / "t").exists()


async def test_a_restarted_slot_removes_what_its_dead_predecessor_left(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path
) -> None:
    client, tag = docker_image
    repo = make_repo()
    info = git.inspect_repo(repo)
    labels = {"omoi.run": "slotrun", "omoi.slot": "omoi/slotrun/sandbox/0"}
    orphan = client.containers.run(
        tag, ["sleep", "infinity"], detach=True, network_mode="none", labels=labels
    )
    backend = DockerBackend(
        info.path,
        info.git_dir,
        tmp_path / "wt",
        image=tag,
        run_id="slotrun",
        slot="omoi/slotrun/sandbox/0",
        pool=1,
    )
    await backend.warm()
    left = client.containers.list(
        all=True, filters={"label": ["omoi.run=slotrun", "omoi.slot=omoi/slotrun/sandbox/0"]}
    )
    assert orphan.id not in [c.id for c in left]
    assert len(left) == 1, "the new slot's own warm container"
    await backend.close()
    assert client.containers.list(all=True, filters={"label": "omoi.run=slotrun"}) == []


def test_a_users_dockerfile_builds_without_pulling(docker_image: tuple[Any, str], tmp_path: Path) -> None:
    from omoi.runtime.sandbox.image import build_image

    client, tag = docker_image
    (tmp_path / "Dockerfile").write_text(f"FROM {tag}\nLABEL org.omoi.test=dockerfile\n")
    built = build_image(
        client,
        tag="omoi-sandbox:test-dockerfile",
        dockerfile=tmp_path / "Dockerfile",
        force=True,
        say=lambda _: None,
    )
    try:
        assert client.images.get(built).labels.get("org.omoi.test") == "dockerfile"
    finally:
        client.images.remove(built, force=True)


async def test_a_path_with_a_colon_mounts(
    docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo({"README.md": "hi\n"})
    info = git.inspect_repo(repo)
    backend = DockerBackend(info.path, info.git_dir, tmp_path / "a:b" / "wt", image=docker_image[1], pool=0)
    sb = await backend.create(_request(repo, "colon"))
    try:
        res = await sb.exec("cat README.md && echo made > out.txt", 30)
        commit = await sb.commit("colon")
    finally:
        await sb.destroy()
    assert res.exit_code == 0, res.output
    assert run_git(repo, "show", f"{commit}:out.txt") == "made\n"


def test_gc_of_one_repository_leaves_another_repositorys_runs_alone(
    docker_image: tuple[Any, str], make_repo: RepoFactory
) -> None:
    from click.testing import CliRunner

    from omoi.cli import main

    client, tag = docker_image
    mine, theirs = make_repo(), make_repo()
    for repo in (mine, theirs):  # dead runs of the same id in both
        run_dir = repo / ".git" / "omoi" / "runs" / "same-id"
        (run_dir / "worktrees" / ".slot-x").mkdir(parents=True)
        client.containers.run(
            tag, ["sleep", "infinity"], detach=True, network_mode="none",
            labels={"omoi.run": "same-id", "omoi.rundir": str(run_dir)},
        )  # fmt: skip
    try:
        result = CliRunner().invoke(main, ["gc", "--repo", str(mine)])
        assert result.exit_code == 0, result.output
        assert "removed 0 actors, 1 container, 1 task tree" in result.output
        left = client.containers.list(all=True, filters={"label": "omoi.run=same-id"})
        assert [c.labels["omoi.rundir"] for c in left] == [str(theirs / ".git" / "omoi" / "runs" / "same-id")]
        assert (theirs / ".git" / "omoi" / "runs" / "same-id" / "worktrees" / ".slot-x").exists()
    finally:
        remove_run_containers(client, "same-id")


def test_a_first_run_without_debootstrap_builds_its_image_on_a_local_base(
    docker_image: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--sandbox auto` with an engine but no image and no debootstrap (a stock machine with Docker):
    the image is built from a Dockerfile over a usable local image, offline, and the run is isolated."""
    import shutil

    from omoi.cluster.runner import choose_sandbox

    client, _ = docker_image
    tag = "omoi-sandbox:first-run-test"
    monkeypatch.setenv("OMOI_SANDBOX_IMAGE", tag)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # debootstrap lives in /usr/sbin
    assert shutil.which("debootstrap") is None
    said: list[str] = []
    try:
        assert choose_sandbox("auto", say=said.append) == ("docker", None)
        assert any("building omoi-sandbox:first-run-test from the local image" in s for s in said), said
        out = client.containers.run(
            tag, ["sh", "-c", "id -u && git --version"], network_mode="none", remove=True
        )
        assert out.decode().splitlines()[0] == "1000"
    finally:
        with contextlib.suppress(Exception):
            client.images.remove(tag, force=True)
