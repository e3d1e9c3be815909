"""Files beneath a root directory, opened so that nothing a task does can lead outside it.

Checking a path and then opening it by name again is a race: a task's process can swap a
directory for a symbolic link in between (`renameat2(RENAME_EXCHANGE)` in a loop). So nothing here
opens a path by name from the top. Each component is opened relative to its parent's descriptor with
`O_NOFOLLOW`, starting from a descriptor of the root. A symbolic link is never followed by the
kernel. Its target is read and resolved lexically against the components walked so far, and the
walk starts again from the root descriptor, so a race can at worst land somewhere else beneath the
root, never outside. `..` never reaches the kernel. Only regular files are read or written: a FIFO,
a device or a socket is refused before a byte moves (opens use `O_NONBLOCK`, so a FIFO cannot hang
the caller)."""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from omoi.runtime.errors import SandboxError

MAX_LINKS = 40
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
}


class PathEscapeError(SandboxError):
    """A path that would leave the workspace, or that names what file tools never touch."""

    def __init__(self, path: str, why: str, root: str = "/workspace") -> None:
        self.path, self.why = path, why
        super().__init__(f"path '{path}' is refused: {why}; paths must stay inside {root}")


def shown(name: str) -> str:
    """A file name as text that always encodes: bytes that are not UTF-8 become `\\xNN`."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def is_git_metadata(name: str) -> bool:
    """`.git` in any case: git refuses to track it, and host git must never read one a task made."""
    return name.casefold() == ".git"


def components(path: str, mount: str) -> list[str]:
    """The path's components beneath the root, `..` resolved lexically; PathEscapeError if it
    leaves the root, is empty, or holds a NUL byte. Absolute paths must be under `mount`."""
    if not path or "\0" in path:
        raise PathEscapeError(path, "empty or contains a NUL byte", mount)
    rel = path
    if path.startswith("/"):
        if path != mount and not path.startswith(mount + "/"):
            raise PathEscapeError(path, "absolute path outside the workspace", mount)
        rel = path[len(mount) :]
    parts: list[str] = []
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise PathEscapeError(path, "'..' escapes", mount)
            parts.pop()
        else:
            parts.append(part)
    return parts


@dataclass(frozen=True)
class Beneath:
    """Opens paths beneath `root` (`mount` is what the task calls that directory)."""

    root: str
    mount: str = "/workspace"

    @contextlib.contextmanager
    def root_fd(self) -> Iterator[int]:
        fd = os.open(self.root, _DIR)
        try:
            yield fd
        finally:
            os.close(fd)

    def open(
        self, path: str, flags: int = os.O_RDONLY, *, create_dirs: bool = False, owner: int | None = None
    ) -> int:
        """A descriptor of `path` opened with `flags` (never following a link out of the root)."""
        parts = components(path, self.mount)
        if any(is_git_metadata(p) for p in parts):
            raise PathEscapeError(path, "'.git' is git's metadata, which file tools do not touch", self.mount)
        for _ in range(MAX_LINKS):
            with self.root_fd() as root:
                target = self._walk(root, parts, flags, path, create_dirs, owner)
            if isinstance(target, int):
                return target
            parts = target
        raise PathEscapeError(
            path, f"more than {MAX_LINKS} symbolic links, or it kept changing while it was opened", self.mount
        )

    def _walk(
        self, root: int, parts: list[str], flags: int, path: str, create_dirs: bool, owner: int | None
    ) -> int | list[str]:
        """The opened descriptor, or the components to walk instead (a link was met, or an entry
        changed while it was being opened)."""
        fd = os.dup(root)
        try:
            for i, part in enumerate(parts):
                last = i == len(parts) - 1
                try:
                    if last:
                        extra = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY
                        return os.open(part, flags | extra, 0o644, dir_fd=fd)
                    nxt = os.open(part, _DIR, dir_fd=fd)
                except OSError as exc:
                    if exc.errno == errno.ENOENT and create_dirs and not last:
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(part, 0o755, dir_fd=fd)
                            if owner is not None:
                                os.chown(part, owner, owner, dir_fd=fd, follow_symlinks=False)
                        return parts  # walk again: what is there now is opened like anything else
                    if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK, errno.ENXIO):
                        raise
                    return self._odd(path, parts, i, fd, exc)
                os.close(fd)
                fd = nxt
            return os.dup(fd)  # the root itself
        finally:
            os.close(fd)

    def _odd(self, path: str, parts: list[str], i: int, fd: int, exc: OSError) -> list[str]:
        """Component i did not open as asked: a link (resolve it), something that is not a
        directory or a FIFO opened for writing with no reader (refuse, naming it), or an entry
        that changed in between (walk again)."""
        part, where = parts[i], "/".join(parts[: i + 1])
        try:
            st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            link = os.readlink(part, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
        except OSError:
            return parts  # changed since the open: walk again
        if link is not None:
            return self._through_link(path, parts, i, link)
        if stat.S_ISDIR(st.st_mode) and exc.errno != errno.ENXIO:
            return parts  # a link when opened, a directory now: walk again
        what = "it" if i == len(parts) - 1 else f"'{where}'"
        raise SandboxError(f"'{path}' is not a file in the workspace ({what} is {kind(st.st_mode)})") from exc

    def _through_link(self, path: str, parts: list[str], i: int, link: str) -> list[str]:
        if link.startswith("/"):
            if link != self.mount and not link.startswith(self.mount + "/"):
                raise PathEscapeError(path, "it leaves the workspace through a symlink", self.mount)
            joined = link
        else:
            joined = posixpath.join(self.mount, *parts[:i], link)
        try:
            resolved = components(posixpath.join(joined, *parts[i + 1 :]), self.mount)
        except PathEscapeError:
            raise PathEscapeError(path, "it leaves the workspace through a symlink", self.mount) from None
        if any(is_git_metadata(p) for p in resolved):
            raise PathEscapeError(path, "it leads into '.git' through a symlink", self.mount)
        return resolved

    def open_regular(
        self, path: str, flags: int = os.O_RDONLY, *, create_dirs: bool = False, owner: int | None = None
    ) -> tuple[int, os.stat_result]:
        """Like `open`, refusing anything but a regular file, and, to write, one with a single name
        (a hard link would change another file too)."""
        fd = self.open(path, flags | os.O_NONBLOCK, create_dirs=create_dirs, owner=owner)
        st = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(st.st_mode):
            problem = f"is not a file in the workspace (it is {kind(st.st_mode)}); tools use regular files"
        elif st.st_nlink > 1 and flags & (os.O_WRONLY | os.O_RDWR):
            problem = f"is refused: it has {st.st_nlink} hard links, so writing it would change another file"
        if problem:
            os.close(fd)
            raise SandboxError(f"'{path}' {problem}")
        return fd, st


@dataclass(frozen=True)
class Entry:
    rel: str  # path below the walked directory, as the file system spells it
    name: str
    dir_fd: int  # valid only while the walk is at this entry
    st: os.stat_result


def walk(
    dir_fd: int, prefix: str = "", *, skip_git: bool = True, limit: int | None = None, depth: int = 256
) -> Iterator[Entry]:
    """Every entry beneath `dir_fd`, depth first in name order, without following links:
    directories are descended through descriptors (one held per level), so a swapped-in link is
    seen as a link, never entered. `.git` entries are skipped unless asked for, and never
    entered. SandboxError past `limit` entries or `depth` levels: the walk itself is bounded."""
    seen = 0
    first = os.dup(dir_fd)
    stack: list[tuple[int, str, Iterator[str]]] = [(first, prefix, _names(first))]
    try:
        while stack:
            fd, rel, names = stack[-1]
            name = next(names, None)
            if name is None:
                os.close(fd)
                stack.pop()
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            seen += 1
            if limit is not None and seen > limit:
                raise SandboxError(f"more than {limit} files and directories in the workspace")
            if skip_git and is_git_metadata(name):
                continue
            path = f"{rel}{name}"
            yield Entry(path, name, fd, st)
            if stat.S_ISDIR(st.st_mode) and not is_git_metadata(name):
                if len(stack) > depth:
                    raise SandboxError(f"'{shown(path)}' is more than {depth} directories deep")
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except OSError:
                    continue  # replaced by a link or removed since: not entered
                stack.append((sub, f"{path}/", _names(sub)))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _names(fd: int) -> Iterator[str]:
    with os.scandir(fd) as it:
        return iter(sorted(e.name for e in it))
