"""File access confined to the workspace, on a real worktree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omoi.runtime.errors import SandboxError
from omoi.runtime.git import repo as git
from omoi.runtime.sandbox.local import LocalBackend, LocalSandbox
from omoi.runtime.sandbox.workspace import PathEscapeError, Workspace
from tests.conftest import RepoFactory
from tests.helpers import task_request


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("line 1\nline 2\nline 3\n")
    (tmp_path / "outside.txt").write_text("host secret\n")
    return Workspace(root)


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("../outside.txt", "'..' escapes"),
        ("src/../../outside.txt", "'..' escapes"),
        ("/etc/passwd", "absolute path outside the workspace"),
        ("/workspace/../etc/passwd", "'..' escapes"),
        ("", "empty"),
    ],
)
def test_escapes_are_refused_with_the_reason(ws: Workspace, path: str, why: str) -> None:
    with pytest.raises(PathEscapeError, match=why):
        ws.read_file(path)
    with pytest.raises(PathEscapeError):
        ws.write_file(path, "x")


def test_symlinks_pointing_outside_are_refused(ws: Workspace, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.txt", ws.root / "leak.txt")
    os.symlink(tmp_path, ws.root / "leakdir")
    os.symlink("src/app.py", ws.root / "inside.txt")
    with pytest.raises(PathEscapeError, match="symlink"):
        ws.read_file("leak.txt")
    with pytest.raises(PathEscapeError, match="symlink"):
        ws.write_file("leakdir/planted.txt", "x")
    assert not (tmp_path / "planted.txt").exists()
    assert ws.read_file("inside.txt") == "line 1\nline 2\nline 3\n"


def test_reading_and_writing_inside(ws: Workspace) -> None:
    assert ws.read_file("/workspace/src/app.py", 2, 3) == "line 2\nline 3\n"
    ws.write_file("new/deep/file.txt", "hello\n")
    assert (ws.root / "new" / "deep" / "file.txt").read_text() == "hello\n"
    assert ws.list_files() == ["new/deep/file.txt", "src/app.py"]
    assert [(h.path, h.line) for h in ws.search(r"line [23]")] == [("src/app.py", 2), ("src/app.py", 3)]
    with pytest.raises(SandboxError, match="not a valid regular expression"):
        ws.search("(")
    with pytest.raises(SandboxError, match="not a file"):
        ws.read_file("src")


async def test_a_sandbox_diff_shows_changed_and_new_files(make_repo: RepoFactory, tmp_path: Path) -> None:
    repo = make_repo({"a.txt": "old\n"})
    info = git.inspect_repo(repo)
    req = task_request(repo, "t")
    sb = await LocalBackend(info.path, info.git_dir, tmp_path / "wt").create(req)
    assert isinstance(sb, LocalSandbox)
    await sb.write_file("a.txt", "new\n")
    await sb.write_file("b.txt", "added\n")
    diff = await sb.diff()
    assert "-old" in diff
    assert "+new" in diff
    assert "+added" in diff
    assert (await sb.list_files()) == ["a.txt", "b.txt"]
    await sb.destroy()


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_devices_fifos_and_hard_links_are_not_files_the_tools_touch(ws: Workspace, tmp_path: Path) -> None:
    import stat

    os.mknod(ws.root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mkfifo(ws.root / "pipe")
    os.link(tmp_path / "outside.txt", ws.root / "hard.txt")
    (ws.root / "src" / "needle.txt").write_text("needle\n")
    for path, what in (("null", "character device"), ("pipe", "FIFO")):
        with pytest.raises(SandboxError, match=what):
            ws.read_file(path)
        with pytest.raises(SandboxError, match=what):
            ws.write_file(path, "x")
    with pytest.raises(SandboxError, match="hard links"):
        ws.write_file("hard.txt", "planted")
    assert (tmp_path / "outside.txt").read_text() == "host secret\n"
    assert [h.path for h in ws.search("needle")] == ["src/needle.txt"]


def test_a_non_utf8_name_is_listed_escaped(ws: Workspace) -> None:
    (ws.root / os.fsdecode(b"bad\xffname.txt")).write_text("x\n")
    assert "bad\\xffname.txt" in ws.list_files()
