"""How a run begins: everything checked before anything is written (where it lives: `paths`)."""

from __future__ import annotations

import fcntl
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from omoi.runtime.errors import InputError, PlanError
from omoi.runtime.git.repo import RepoInfo, inspect_repo
from omoi.runtime.log.events import Event, RunStarted, TaskAdded
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.run.options import LOCAL, RunOptions
from omoi.runtime.run.paths import RunPaths, state_root
from omoi.runtime.run.plan import Plan
from omoi.runtime.run.tasks import TaskSpec


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def check_branch_room(repo: RepoInfo, run_id: str) -> None:
    """The run's branches are `omoi/<run-id>/<task>`: git cannot hold them next to a branch named
    `omoi` or `omoi/<run-id>`, so such a branch of the user's refuses the run before it starts."""
    from omoi.runtime.git.repo import branch_head

    for name in ("omoi", f"omoi/{run_id}"):
        if branch_head(repo.git_dir, name) is not None:
            raise InputError(
                f"--run-id {run_id}: the repository has a branch '{name}', and git cannot hold the "
                f"run's branches omoi/{run_id}/<task> next to it; choose another run id or rename it"
            )


def plan_new_run(
    plan: Plan, repo_path: str | Path, options: RunOptions = LOCAL
) -> tuple[RunPaths, list[Event]]:
    """Check the repository and the plan and return where the run will live and its first
    events. Writes nothing. The options were checked when they were made."""
    repo = inspect_repo(repo_path)
    rid = options.run_id if options.run_id is not None else new_run_id()
    paths = RunPaths(repo, rid, state_root(repo, options.state_dir))
    if paths.exists():
        raise InputError(
            f"run '{rid}' already exists under {paths.state_root / 'runs'}; "
            f"use `omoi resume {rid}` to continue it"
        )
    check_branch_room(repo, rid)
    if not plan.tasks:
        raise PlanError("a plan needs at least one task", file=options.plan_file or None, field="tasks")
    budget = options.budget or plan.budget
    events: list[Event] = [
        RunStarted(
            run_id=rid,
            repo=str(repo.path),
            base_commit=options.base or repo.head_commit,
            base_ref="" if options.base else repo.head_ref,
            plan_name=plan.name,
            verify=plan.verify,
            generated=plan.generated,
            budget_tokens=budget.tokens,
            budget_usd=budget.usd,
            source="omoi",
            **options.started_fields(),
        )
    ]
    events += [
        TaskAdded(run_id=rid, task_id=t.id, spec=t, order=i, source="omoi") for i, t in enumerate(plan.tasks)
    ]
    return paths, events


def goal_new_run(
    goal: str, repo_path: str | Path, options: RunOptions = LOCAL
) -> tuple[RunPaths, list[Event]]:
    """A run from a goal: its first event carries the goal and the gate, and no task: the spec
    writes them. Checks everything and writes nothing, like plan_new_run."""
    goal = goal.strip()
    if not goal:
        raise InputError('the goal is empty: say what the change should do, e.g. "add JWT authentication"')
    placeholder = Plan(name="goal", tasks=(TaskSpec(id="placeholder", run="true"),))
    paths, events = plan_new_run(placeholder, repo_path, options)
    started = events[0].model_copy(update={"plan_name": "goal", "goal": goal})
    return paths, [RunStarted.model_validate(started.model_dump())]


def open_log(paths: RunPaths, *, create: bool = False) -> SqliteEventStore:
    return SqliteEventStore(paths.events_db, create=create)


LOCK_FILE = "driver.lock"


class RunLock:
    """Held by the process driving a run, for as long as it does. The kernel drops it when that
    process dies, so a run whose lock is free is finished or dead: `omoi gc` may clean up after it,
    and a second driver (two `omoi resume` at once) is refused instead of fighting over the log."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.path.read_text().strip() or "?"
            os.close(fd)
            raise InputError(
                f"run '{self.path.parent.name}' is being driven by another process "
                f"(pid {holder}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def is_live(run_dir: Path) -> bool:
    """Whether some process is driving the run in `run_dir` right now."""
    path = run_dir / LOCK_FILE
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def collect_worktrees(repo: RepoInfo, run_dir: Path) -> int:
    """Remove what a finished or dead run left in its worktree directory; branches stay."""
    root = run_dir / "worktrees"
    if not root.exists():
        return 0
    from omoi.runtime.git import repo as git
    from omoi.runtime.sandbox import processes

    processes.reap_all(root)
    removed = 0
    for entry in sorted(root.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            git.TaskTree(repo.git_dir, entry, "").remove()
            removed += 1
        elif entry.name.endswith((".index", ".index.pathspec", ".index.lock")):
            entry.unlink(missing_ok=True)  # of trees removed above, or left by a git that was killed
    git.in_repo(repo.git_dir, ["worktree", "prune"], check=False)  # worktrees of runs before task trees
    return removed
