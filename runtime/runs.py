"""Where a run lives on disk and how it begins: everything checked before anything is written."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from omoi.runtime.errors import InputError, PlanError, RunNotFoundError
from omoi.runtime.events import Event, RunStarted, TaskAdded
from omoi.runtime.git import RepoInfo, inspect_repo
from omoi.runtime.plan import Plan
from omoi.runtime.sandbox import SANDBOX_KINDS
from omoi.runtime.store import SqliteEventStore
from omoi.runtime.tasks import check_id

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
    return Path(state_dir).expanduser().resolve() if state_dir else repo.git_dir / "omoi"


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


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


def plan_new_run(
    plan: Plan,
    repo_path: str | Path,
    *,
    run_id: str | None = None,
    state_dir: str | Path | None = None,
    max_parallel: int = 4,
    sandbox: str = "local",
    plan_file: str = "",
) -> tuple[RunPaths, list[Event]]:
    """Check everything and return where the run will live and its first events. Writes nothing."""
    if sandbox not in SANDBOX_KINDS:
        raise InputError(f"--sandbox: unknown backend '{sandbox}' (choose from {', '.join(SANDBOX_KINDS)})")
    if max_parallel < 1:
        raise InputError(f"--max-parallel must be at least 1, got {max_parallel}")
    repo = inspect_repo(repo_path)
    rid = validate_run_id(run_id) if run_id else new_run_id()
    paths = RunPaths(repo, rid, state_root(repo, state_dir))
    if paths.exists():
        raise InputError(
            f"run '{rid}' already exists under {paths.state_root / 'runs'}; "
            f"use `omoi resume {rid}` to continue it"
        )
    if not plan.tasks:
        raise PlanError("a plan needs at least one task", file=plan_file or None, field="tasks")
    events: list[Event] = [
        RunStarted(
            run_id=rid,
            repo=str(repo.path),
            base_commit=repo.head_commit,
            base_ref=repo.head_ref,
            plan_name=plan.name,
            plan_file=plan_file,
            max_parallel=max_parallel,
            sandbox=sandbox,
            source="omoi",
        )
    ]
    events += [
        TaskAdded(run_id=rid, task_id=t.id, spec=t, order=i, source="omoi") for i, t in enumerate(plan.tasks)
    ]
    return paths, events


def open_log(paths: RunPaths, *, create: bool = False) -> SqliteEventStore:
    return SqliteEventStore(paths.events_db, create=create)
