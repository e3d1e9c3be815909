"""Where a run lives on disk: its state directory and its log. Light on purpose: `omoi status` and
`omoi events` find a run's log with nothing else loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omoi.runtime.errors import InputError, RunNotFoundError
from omoi.runtime.git.repo import RepoInfo, inspect_repo
from omoi.runtime.names import check_id

EVENTS_FILE = "events.db"


@dataclass(frozen=True)
class RunPaths:
    """`<state>/runs/<run-id>/` holds the event log and the run's worktrees. The default state
    directory is `<git-common-dir>/omoi`, so the user's working tree never sees a file of ours."""

    repo: RepoInfo
    run_id: str
    state_root: Path

    @property
    def run_dir(self) -> Path:
        return self.state_root / "runs" / self.run_id

    @property
    def events_db(self) -> Path:
        return self.run_dir / EVENTS_FILE

    @property
    def worktrees(self) -> Path:
        return self.run_dir / "worktrees"

    def exists(self) -> bool:
        return self.events_db.exists()


def state_root(repo: RepoInfo, state_dir: str | Path | None) -> Path:
    """Where runs live; InputError if that (or a folder on the way) is a file."""
    root = Path(state_dir).expanduser().resolve() if state_dir else repo.git_dir / "omoi"
    for p in (root / "runs", root, *root.parents):
        if p.exists():
            if not p.is_dir():
                what = "--state-dir" if state_dir else "omoi's state directory"
                raise InputError(f"{what} {root}: {p} is a file, not a directory")
            break
    return root


def validate_run_id(run_id: str) -> str:
    try:
        return check_id(run_id)
    except ValueError as exc:
        raise InputError(f"--run-id: {exc}") from exc


def locate(repo_path: str | Path, run_id: str, state_dir: str | Path | None = None) -> RunPaths:
    """Paths of an existing run; RunNotFoundError if its log is not there."""
    repo = inspect_repo(repo_path)
    paths = RunPaths(repo, validate_run_id(run_id), state_root(repo, state_dir))
    if not paths.exists():
        raise RunNotFoundError(run_id, str(paths.state_root / "runs"))
    return paths
