"""Attacks on the host from inside real Docker sandboxes: each runs as a task's command (or through
the file tools an agent has), then checks the host and the user's repository afterwards.

The promise under test: a task cannot make host-side code run its programs (git config, hooks,
filters, drivers), read or write host files (links, races, special files), touch the user's
checkout, or make host-side git do unbounded work; and a task whose commit did not happen is never
reported as succeeded."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from omoi.actors import merging
from omoi.actors.bus import BusActor
from omoi.actors.sandbox import SandboxActor
from omoi.runtime.errors import SandboxError
from omoi.runtime.git import repo as git
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.run.execution import TaskResult
from omoi.runtime.sandbox.docker import DockerBackend, DockerSandbox
from omoi.runtime.sandbox.tree_quota import TreeLimits
from omoi.runtime.sandbox.workspace import PathEscapeError
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.helpers import task_request

pytestmark = pytest.mark.docker


@dataclass
class Rig:
    repo: Path
    info: git.RepoInfo
    backend: DockerBackend
    actor: SandboxActor
    host: Path  # a directory only the host can see
    marker: Path  # appears if host-side code ran a task's program
    before: str  # the user's checkout fingerprint
    n: int = 0

    async def run(self, command: str) -> TaskResult:
        self.n += 1
        return await self.actor.execute(task_request(self.repo, f"t{self.n}", command, run_id="atk"))

    async def sandbox(self) -> DockerSandbox:
        self.n += 1
        sb = await self.backend.create(task_request(self.repo, f"t{self.n}", run_id="atk"))
        assert isinstance(sb, DockerSandbox)
        return sb

    def assert_host_untouched(self) -> None:
        assert not self.marker.exists(), f"host-side code ran a task's program: {self.marker.read_text()!r}"
        assert checkout_fingerprint(self.repo) == self.before, "the user's checkout changed"
        assert run_git(self.repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
        assert run_git(self.repo, "log", "--format=%s", "main").splitlines() == ["initial"]


@pytest.fixture
async def rig(docker_image: tuple[Any, str], make_repo: RepoFactory, tmp_path: Path) -> AsyncIterator[Rig]:
    repo = make_repo({"README.md": "hi\n", "src/app.py": "x = 1\n"})
    run_git(repo, "add", "-A")
    (repo / "staged.txt").write_text("the user's staged work\n")
    run_git(repo, "add", "staged.txt")
    (repo / "README.md").write_text("the user's unstaged edit\n")
    info = git.inspect_repo(repo)
    host = tmp_path / "host-only"
    host.mkdir()
    (host / "secret.txt").write_text("HOST SECRET\n")
    os.chmod(host / "secret.txt", 0o600)
    limits = TreeLimits(disk=64 << 20, max_file=8 << 20)
    backend = DockerBackend(
        info.path,
        info.git_dir,
        tmp_path / "wt",
        image=docker_image[1],
        run_id="atk",
        pool=0,
        tree_limits=limits,
    )
    actor = SandboxActor("sb/atk", BusActor(MemoryEventStore()), backend)
    r = Rig(repo, info, backend, actor, host, tmp_path / "MARKER", checkout_fingerprint(repo))
    yield r
    await backend.close()
    client = docker_image[0]
    assert client.containers.list(all=True, filters={"label": "omoi.run=atk"}) == []


def _assert_committed(rig: Rig, result: TaskResult) -> str:
    """Succeeded, with a commit that exists in the user's repository and is the branch's head."""
    assert result.status == "succeeded", result.error
    assert result.commit
    run_git(rig.repo, "cat-file", "-e", f"{result.commit}^{{commit}}")
    assert git.branch_head(rig.info.git_dir, f"omoi/atk/t{rig.n}") == result.commit
    return result.commit


# Each plants, in the workspace, git configuration that would run a program on the host if host
# git read it; the task's own work (work.txt) must still be committed.
GIT_PLANTS = {
    "fsmonitor in a fresh .git": "git init -q . && git config core.fsmonitor 'touch {m}; false'",
    "clean filter": "git init -q . && git config filter.x.clean 'touch {m}; cat' && echo '* filter=x' > .gitattributes",
    "hooks": (
        "git init -q . && for h in pre-commit post-commit reference-transaction post-index-change pre-push; do "
        "printf '#!/bin/sh\\ntouch {m}\\n' > .git/hooks/$h && chmod +x .git/hooks/$h; done"
    ),
    "core.hooksPath": (
        "mkdir -p hooks && printf '#!/bin/sh\\ntouch {m}\\n' > hooks/pre-commit && chmod +x hooks/pre-commit && "
        "git init -q . && git config core.hooksPath /workspace/hooks"
    ),
    "aliases": "git init -q . && git config alias.add '!touch {m}' && git config alias.commit '!touch {m}'",
    "include.path": (
        "printf '[core]\\n\\tfsmonitor = touch {m}; false\\n' > evil.cfg && git init -q . && "
        "git config include.path /workspace/evil.cfg"
    ),
    "pager, editor, diff.external": (
        "git init -q . && git config core.pager 'touch {m}' && git config core.editor 'touch {m}' && "
        "git config diff.external 'touch {m}' && git config gpg.program 'touch {m}'"
    ),
    ".git file naming the user's repository": "printf 'gitdir: {repo}/.git\\n' > .git",
}


@pytest.mark.parametrize("plant", sorted(GIT_PLANTS))
async def test_git_configuration_a_task_writes_is_never_run_by_host_git(rig: Rig, plant: str) -> None:
    command = GIT_PLANTS[plant].format(m=rig.marker, repo=rig.repo) + " && echo work > work.txt"
    result = await rig.run(command)
    commit = _assert_committed(rig, result)
    assert run_git(rig.repo, "show", f"{commit}:work.txt") == "work\n"
    assert ".git/" not in run_git(rig.repo, "ls-tree", "-r", "--name-only", commit)
    rig.assert_host_untouched()


async def test_the_file_tools_refuse_to_write_git_metadata(rig: Rig) -> None:
    sb = await rig.sandbox()
    try:
        for path in (".git", ".GIT/config", "sub/.git/config", "/workspace/.git"):
            with pytest.raises(PathEscapeError, match=r"\.git"):
                await sb.write_file(path, f"gitdir: {rig.repo}/.git\n")
        await sb.write_file("ok.txt", "fine\n")
        commit = await sb.commit("work")
    finally:
        await sb.destroy()
    assert run_git(rig.repo, "show", f"{commit}:ok.txt") == "fine\n"
    rig.assert_host_untouched()


async def test_diff_runs_no_driver_the_task_names_and_follows_no_link(rig: Rig) -> None:
    sb = await rig.sandbox()
    try:
        plant = (
            f"git init -q . && git config diff.x.textconv 'touch {rig.marker}; cat' && "
            f"git config diff.x.command 'touch {rig.marker}' && echo '* diff=x' > .gitattributes && "
            f"echo changed >> src/app.py && ln -s {rig.host / 'secret.txt'} leak && ln -s {rig.host} d"
        )
        assert (await sb.exec(plant, 30)).exit_code == 0
        diff = await sb.diff()
    finally:
        await sb.destroy()
    assert "+changed" in diff
    assert f"+{rig.host / 'secret.txt'}" in diff, "a link is shown as its target's path"
    assert "HOST SECRET" not in diff
    rig.assert_host_untouched()


async def test_filters_and_merge_drivers_of_the_users_config_are_not_run_on_task_content(rig: Rig) -> None:
    # A user's own configuration (git-lfs installs such a filter globally) names programs; a task's
    # .gitattributes may name them, and host git must then still not run them on the task's files.
    run_git(rig.repo, "config", "filter.lfs.clean", f"touch {rig.marker}; cat")
    run_git(rig.repo, "config", "filter.lfs.required", "true")
    run_git(rig.repo, "config", "merge.ours.driver", f"touch {rig.marker}; true")
    attrs = "printf '* filter=lfs merge=ours\\n' > .gitattributes"
    first = _assert_committed(rig, await rig.run(f"{attrs} && echo one > src/app.py"))
    second = _assert_committed(rig, await rig.run(f"{attrs} && echo two > src/app.py"))
    # the merge queue's merges: onto the head, a rung's tree, a person's --take
    onto = merging.onto(rig.info.git_dir, first, second, "t2")
    assert onto.unresolved == ("src/app.py",), "git's own text merge decided, not the driver"
    tree = merging.rung_tree(rig.info.git_dir, first, second)
    assert "<<<<<<<" in run_git(rig.repo, "show", f"{tree}:src/app.py")
    merging.take(rig.info.git_dir, first, second, "theirs", "t2")
    assert not rig.marker.exists()
    run_git(rig.repo, "config", "--remove-section", "filter.lfs")
    run_git(rig.repo, "config", "--remove-section", "merge.ours")
    rig.before = checkout_fingerprint(rig.repo)
    rig.assert_host_untouched()


async def test_committed_links_are_links_and_host_files_never_enter_the_branch(rig: Rig) -> None:
    secret = rig.host / "secret.txt"
    result = await rig.run(
        f"ln -s {secret} leak && ln -s {rig.host} leakdir && ln -s / root && echo w > w.txt"
    )
    commit = _assert_committed(rig, result)
    assert run_git(rig.repo, "cat-file", "-p", f"{commit}:leak") == str(secret)
    assert run_git_rc(rig.repo, "grep", "-q", "HOST SECRET", commit) != 0, "a host file reached the branch"
    rig.assert_host_untouched()


def run_git_rc(repo: Path, *args: str) -> int:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False).returncode


async def test_search_list_and_read_never_follow_links_out(rig: Rig) -> None:
    sb = await rig.sandbox()
    try:
        secret = rig.host / "secret.txt"
        res = await sb.exec(f"ln -s {secret} ro && ln -s {rig.host} hostdir && ln -s /dev/zero zero", 30)
        assert res.exit_code == 0, res.output
        assert await sb.search("SECRET") == []
        assert "hostdir/secret.txt" not in await sb.list_files()
        for path in ("ro", "hostdir/secret.txt", "zero"):
            with pytest.raises(PathEscapeError, match="symlink"):
                await sb.read_file(path)
        with pytest.raises(PathEscapeError):
            await sb.write_file("hostdir/planted.txt", "x")
    finally:
        await sb.destroy()
    assert sorted(p.name for p in rig.host.iterdir()) == ["secret.txt"]
    rig.assert_host_untouched()


async def test_fifos_neither_hang_nor_block_the_tools_or_the_commit(rig: Rig) -> None:
    sb = await rig.sandbox()
    try:
        assert (
            await sb.exec("mkfifo pipe && mkdir d && mkfifo d/p2 && echo findme > f.txt", 30)
        ).exit_code == 0
        hits = await asyncio.wait_for(sb.search("findme"), 20)
        assert [h.path for h in hits] == ["f.txt"]
        for op in (sb.read_file("pipe"), sb.write_file("pipe", "x"), sb.read_file("d/p2", 1, 2)):
            with pytest.raises(SandboxError, match="FIFO"):
                await asyncio.wait_for(op, 20)
        diff = await asyncio.wait_for(sb.diff(), 20)
        assert "+findme" in diff
        commit = await asyncio.wait_for(sb.commit("work"), 60)
    finally:
        await sb.destroy()
    names = run_git(rig.repo, "ls-tree", "-r", "--name-only", commit).split()
    assert "f.txt" in names
    assert "pipe" not in names
    assert "pipe (a FIFO)" in run_git(rig.repo, "log", "-1", "--format=%B", commit)
    rig.assert_host_untouched()


async def test_a_path_swap_race_never_reaches_host_files(rig: Rig) -> None:
    """A detached process swaps a directory and a link to a host directory as fast as it can."""
    racer = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "os.makedirs('real', exist_ok=True)\n"
        "open('real/x', 'w').write('inside\\n')\n"
        f"os.symlink({str(rig.host)!r}, 'evil')\n"
        "open('ready', 'w').close()\n"
        "while True:\n"
        "    libc.renameat2(-100, b'real', -100, b'evil', 2)\n"
    )
    sb = await rig.sandbox()
    try:
        await sb.write_file("race.py", racer)
        res = await sb.exec(
            "nohup python3 race.py >/dev/null 2>&1 & while [ ! -e ready ]; do sleep 0.05; done", 30
        )
        assert res.exit_code == 0, res.output
        outcomes: dict[str, int] = {}
        for i in range(1500):  # at least 150 tries, and until the race was seen both ways
            if i >= 150 and outcomes.get("inside\n", 0) and outcomes.get("refused", 0):
                break
            try:
                text = await sb.read_file("real/x")
                outcomes[text] = outcomes.get(text, 0) + 1
                assert "HOST SECRET" not in text
            except SandboxError:
                outcomes["refused"] = outcomes.get("refused", 0) + 1
            with contextlib.suppress(SandboxError):
                await sb.write_file(f"real/planted{i}", "x")
        assert outcomes.get("inside\n", 0) > 0, outcomes  # the race really ran against a readable file
        alive = await sb.exec("cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -q race.py", 30)
        assert alive.exit_code == 0, "the racer ran throughout"
        assert outcomes.get("refused", 0) > 0, outcomes  # ...and really swapped the link in
        commit = await sb.commit("after the race")
    finally:
        await sb.destroy()
    assert sorted(p.name for p in rig.host.iterdir()) == ["secret.txt"], "a write reached the host"
    assert run_git_rc(rig.repo, "grep", "-q", "HOST SECRET", commit) != 0
    rig.assert_host_untouched()


async def test_a_sparse_file_bomb_is_refused_before_host_git_reads_it(rig: Rig) -> None:
    result = await rig.run("truncate -s 2G sparse.bin && echo w > w.txt")
    assert result.status == "failed"
    assert "sparse.bin" in (result.error or "")
    assert "OMOI_SANDBOX_MAX_FILE" in (result.error or "")
    assert git.branch_head(rig.info.git_dir, f"omoi/atk/t{rig.n}") == rig.info.head_commit
    rig.assert_host_untouched()


async def test_a_workspace_over_its_quota_is_refused_naming_the_largest_files(rig: Rig) -> None:
    result = await rig.run("for i in $(seq 1 12); do head -c 7000000 /dev/urandom > blob$i; done")
    assert result.status == "failed"
    assert "OMOI_SANDBOX_DISK" in (result.error or "")
    assert "blob" in (result.error or "")
    rig.assert_host_untouched()


async def test_nested_repositories_and_git_metadata_in_any_case_are_left_out(rig: Rig) -> None:
    result = await rig.run(
        "mkdir -p sub .GIT && echo x > .GIT/config && cd sub && git init -q && echo nested > f && git add f && "
        "git -c user.email=a@b -c user.name=a commit -qm x && printf 'gitdir: /root\\n' > ../other.git"
    )
    commit = _assert_committed(rig, result)
    tree = run_git(rig.repo, "ls-tree", "-r", commit)
    assert "160000" not in tree, "a gitlink to a commit that exists nowhere"
    assert run_git(rig.repo, "show", f"{commit}:sub/f") == "nested\n"
    assert ".GIT" not in tree
    message = run_git(rig.repo, "log", "-1", "--format=%B", commit)
    assert "sub/.git" in message
    assert ".GIT" in message
    rig.assert_host_untouched()


async def test_file_names_that_are_not_utf8_are_shown_escaped(rig: Rig) -> None:
    from omoi.runtime.agent.tools import ToolBox

    sb = await rig.sandbox()
    try:
        assert (await sb.exec("printf 'needle\\n' > \"$(printf 'bad\\377name.txt')\"", 30)).exit_code == 0
        tools = ToolBox(sb, timeout=30)
        listed = await tools.call("list_files", {})
        found = await tools.call("search", {"pattern": "needle"})
        commit = await sb.commit("names")
    finally:
        await sb.destroy()
    assert "bad\\xffname.txt" in listed.text
    assert "bad\\xffname.txt:1: needle" in found.text
    listed.text.encode("utf-8")  # what goes into events and model requests always encodes
    assert "bad" in run_git(rig.repo, "ls-tree", "--name-only", commit)
    rig.assert_host_untouched()


async def test_a_command_filling_the_disk_is_killed_at_the_quota(rig: Rig) -> None:
    sb = await rig.sandbox()
    try:
        # 1.6 GB at most, should the watchdog ever fail: a test must not fill the disk either
        fill = "for i in $(seq 1 400); do head -c 4000000 /dev/zero >> fill.bin; done; echo FINISHED"
        res = await sb.exec(fill, 120)
        size = (sb.workspace / "fill.bin").stat().st_size
    finally:
        await sb.destroy()
    assert res.exit_code == 137, res.output
    assert not res.timed_out
    assert "FINISHED" not in res.output
    assert "OMOI_SANDBOX_DISK" in res.output
    assert size < 1_600_000_000
    rig.assert_host_untouched()


async def test_a_checkpoint_commits_work_in_progress_and_the_task_goes_on(rig: Rig) -> None:
    """Work in progress reaches the branch while the container is frozen: nothing the task planted
    runs on the host, what git must not see is left out but left in place, and the final commit
    folds the checkpoints into one on top of the base."""
    sb = await rig.sandbox()
    branch = f"omoi/atk/t{rig.n}"
    base = git.branch_head(rig.info.git_dir, branch)
    plant = GIT_PLANTS["hooks"].format(m=rig.marker, repo=rig.repo)
    try:
        setup = f"{plant} && echo one > wip.txt && mkfifo pipe && ln -s {rig.host}/secret.txt link"
        assert (await sb.exec(setup, 30)).exit_code == 0
        wip = await asyncio.wait_for(sb.checkpoint("in progress"), 60)
        assert git.branch_head(rig.info.git_dir, branch) == wip != base
        assert run_git(rig.repo, "show", f"{wip}:wip.txt") == "one\n"
        names = run_git(rig.repo, "ls-tree", "-r", "--name-only", wip).split()
        assert "pipe" not in names
        assert ".git/" not in " ".join(names)
        # the container runs on, its special files still there
        res = await sb.exec("test -p pipe && echo two >> wip.txt", 30)
        assert res.exit_code == 0, res.output
        final = await asyncio.wait_for(sb.commit("final"), 60)
    finally:
        await sb.destroy()
    assert run_git(rig.repo, "show", f"{final}:wip.txt") == "one\ntwo\n"
    assert run_git(rig.repo, "rev-list", "--parents", "-n", "1", final).split()[1:] == [base]
    assert run_git(rig.repo, "cat-file", "-p", f"{final}:link") == f"{rig.host}/secret.txt"
    rig.assert_host_untouched()


async def test_a_sandbox_whose_container_died_is_not_alive(rig: Rig) -> None:
    """What the agent's heartbeat asks: a killed container misses beats (the guardian restarts the
    attempt after three), a running one answers."""
    sb = await rig.sandbox()
    try:
        assert await sb.alive()
        await asyncio.to_thread(sb.container.kill)
        assert not await sb.alive()
    finally:
        await sb.destroy()
