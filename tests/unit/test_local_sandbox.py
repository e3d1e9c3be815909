"""The local backend and git mechanics, on real repositories and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from omoi.actors.bus import BusActor
from omoi.actors.sandbox import SandboxActor
from omoi.runtime.errors import RepoError
from omoi.runtime.git import repo as git
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.sandbox.local import LocalBackend, TailBuffer, run_process_group
from tests.conftest import RepoFactory, checkout_fingerprint, run_git
from tests.helpers import task_request


def _alive(pid: int) -> bool:
    """A zombie waiting to be reaped by init counts as dead."""
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # 2 s leaves a loaded machine time to start the child and write its pid before the kill
    res = await run_process_group(f"sleep 300 & echo $! > {pidfile}; wait", tmp_path, dict(os.environ), 2.0)
    assert res.timed_out
    assert res.exit_code is None
    child = int(pidfile.read_text())
    assert not _alive(child), "the background child survived the timeout"


async def test_output_tail_is_capped_and_truncation_flagged(tmp_path: Path) -> None:
    res = await run_process_group("seq 1 100000", tmp_path, dict(os.environ), 30, cap=1000)
    assert res.exit_code == 0
    assert res.truncated
    assert len(res.output.encode()) == 1000
    assert res.output.rstrip().endswith("100000")


def test_tail_buffer_keeps_the_end() -> None:
    buf = TailBuffer(4)
    for chunk in (b"ab", b"cd", b"ef"):
        buf.feed(chunk)
    assert buf.text() == "cdef"
    assert buf.truncated
    assert buf.total == 6


async def test_sandbox_starts_from_its_base_and_commits_on_its_branch(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo({"base.txt": "base\n"})
    info = git.inspect_repo(repo)
    backend = LocalBackend(info.path, info.git_dir, tmp_path / "wt")
    before = checkout_fingerprint(repo)
    sb = await backend.create(task_request(repo, "a"))
    assert (await sb.exec("echo a > a.txt", 30)).exit_code == 0
    a = await sb.commit("task a")
    await sb.destroy()
    sb = await backend.create(task_request(repo, "c", base=a))  # the head that holds a's work
    res = await sb.exec("cat base.txt a.txt > c.txt && cat c.txt", 30)
    assert res.exit_code == 0
    assert res.output.split() == ["base", "a"]
    head = await sb.commit("task c")
    await sb.destroy()
    assert not (tmp_path / "wt" / "c").exists()
    assert git.branch_head(info.git_dir, "omoi/r/c") == head
    assert run_git(repo, "show", "omoi/r/c:c.txt").split() == ["base", "a"]
    assert checkout_fingerprint(repo) == before
    assert "omoi/r" not in run_git(repo, "worktree", "list")


async def test_a_restart_that_keeps_work_goes_on_from_the_last_checkpoint(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    """An unresponsive attempt restarted on its own branch: the next one finds the files the last
    checkpoint holds, its diff shows the whole attempt's work, and its final commit folds every
    checkpoint onto the base. Without `keep_work`, or with no work in progress, it starts over."""
    repo = make_repo({"base.txt": "base\n"})
    info = git.inspect_repo(repo)
    backend = LocalBackend(info.path, info.git_dir, tmp_path / "wt")
    first = task_request(repo, "a")
    sb = await backend.create(first)
    assert (await sb.exec("echo one > wip.txt", 30)).exit_code == 0
    wip = await sb.checkpoint("in progress")
    assert (await sb.exec("echo lost > unsaved.txt", 30)).exit_code == 0  # never checkpointed
    await sb.destroy()  # the attempt is stopped, its branch keeps the checkpoint

    again = first.model_copy(update={"attempt": 2, "keep_work": True})
    sb = await backend.create(again)
    res = await sb.exec("cat wip.txt; test -e unsaved.txt || echo no-unsaved", 30)
    assert res.output.split() == ["one", "no-unsaved"]
    assert (await sb.exec("echo two >> wip.txt", 30)).exit_code == 0
    assert "+one" in await sb.diff(), "the diff is the attempt's work since the base"
    final = await sb.commit("task a")
    await sb.destroy()
    assert final != wip
    assert run_git(repo, "show", f"{final}:wip.txt").split() == ["one", "two"]
    assert run_git(repo, "rev-list", "--parents", "-n", "1", final).split()[1:] == [first.base]

    fresh = first.model_copy(update={"attempt": 3})  # a rollback: from the base, the work dropped
    sb = await backend.create(fresh)
    assert (await sb.exec("test -e wip.txt", 30)).exit_code != 0
    await sb.destroy()
    assert git.branch_head(info.git_dir, "omoi/r/a") == first.base
    nothing = first.model_copy(update={"attempt": 4, "keep_work": True})  # nothing to keep
    sb = await backend.create(nothing)
    assert (await sb.exec("test -e wip.txt", 30)).exit_code != 0
    assert await sb.commit("task a") == first.base
    await sb.destroy()


async def test_sandbox_actor_commits_on_success_and_reports_failures(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    info = git.inspect_repo(repo)
    bus = BusActor(MemoryEventStore())
    actor = SandboxActor("sb/0", bus, LocalBackend(info.path, info.git_dir, tmp_path / "wt"))
    ok = await actor.execute(task_request(repo, "a", command="echo hi > hi.txt; echo done"))
    assert ok.status == "succeeded"
    assert ok.commit == git.branch_head(info.git_dir, "omoi/r/a")
    assert await actor.execute(task_request(repo, "a", command="exit 99")) == ok, "same attempt: same result"
    bad = await actor.execute(task_request(repo, "b", command="echo broken >&2; exit 3"))
    assert bad.status == "failed"
    assert bad.exit_code == 3
    assert "broken" in bad.output_tail
    assert bad.error == "command failed: exit code 3"
    assert git.branch_head(info.git_dir, "omoi/r/b") == run_git(repo, "rev-parse", "HEAD").strip()
    outputs = [e for e in await bus.read(0) if e.kind == "task.output"]
    assert [(e.task_id, e.tail.strip()) for e in outputs] == [("a", "done"), ("b", "broken")]  # type: ignore[union-attr]


async def test_a_command_orphaned_by_a_dead_actor_is_reaped_before_the_next_attempt(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    from omoi.runtime.sandbox import processes
    from omoi.runtime.sandbox.local import process_marker

    repo = make_repo()
    info = git.inspect_repo(repo)
    backend = LocalBackend(info.path, info.git_dir, tmp_path / "wt")
    (tmp_path / "wt").mkdir()
    orphan = subprocess.Popen(["sleep", "300"], start_new_session=True)
    processes.mark(process_marker(tmp_path / "wt" / "a"), orphan.pid)
    sb = await backend.create(task_request(repo, "a"))
    assert orphan.wait(timeout=10) == -signal.SIGKILL
    assert not process_marker(tmp_path / "wt" / "a").exists()
    await sb.destroy()


def test_reaping_never_kills_a_recycled_pid(tmp_path: Path) -> None:
    from omoi.runtime.sandbox import processes

    marker = tmp_path / ".x.pgid"
    marker.write_text(f"{os.getpid()} 1\n")  # our own pid, but not the process that was recorded
    assert processes.reap(marker) is False
    assert not marker.exists()


def test_repo_problems_are_named(make_repo: RepoFactory, tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="does not exist"):
        git.inspect_repo(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(RepoError, match="not a git repository"):
        git.inspect_repo(tmp_path / "plain")
    with pytest.raises(RepoError, match="has no commits"):
        git.inspect_repo(make_repo(commit=False))
