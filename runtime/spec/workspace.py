"""Where a spec lives: its own task tree on branch `omoi/<run-id>/_spec`, made from the run's base.

Spec agents read the repository there, and each phase's documents are written under
`.omoi/specs/<spec-id>/` and committed there, so they travel on the branch. The tasks start
from the spec's last commit, which puts the spec on every task branch and on the merged branch,
never in the user's checkout. A resumed spec opens its branch again, committed phases included."""

from __future__ import annotations

from pathlib import Path

from omoi.runtime import names
from omoi.runtime.errors import SpecError
from omoi.runtime.git import repo as git
from omoi.runtime.sandbox.local import LocalSandbox
from omoi.runtime.sandbox.workspace import Workspace
from omoi.runtime.spec.documents import file_names

SPEC_TASK = names.SPEC  # task ids cannot start with '_', so neither branch nor worktree collide


class SpecWorkspace:
    def __init__(self, repo: Path, git_dir: Path, worktrees: Path, run_id: str, base: str) -> None:
        self.repo, self.git_dir, self.base = repo, git_dir, base
        self.path = worktrees / SPEC_TASK
        self.branch = names.spec_branch(run_id)
        self.spec_dir = f".omoi/specs/{run_id}"
        self.tree = git.TaskTree(git_dir, self.path, self.branch)

    def open(self) -> str:
        """The tree at the branch's head (created from the base the first time); returns it."""
        start = git.branch_head(self.git_dir, self.branch) or self.base
        self.tree.checkout(start)
        return start

    def write(self, files: dict[str, str]) -> tuple[str, ...]:
        """Write documents into the spec folder; returns their paths relative to the repository."""
        ws = Workspace(self.path)
        out = []
        for name, text in files.items():
            rel = f"{self.spec_dir}/{name}"
            ws.write_file(rel, text)
            out.append(rel)
        return tuple(out)

    def read(self, name: str) -> str | None:
        path = self.path / self.spec_dir / name
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def document(self, phase: str) -> str:
        """The JSON a phase left in the spec folder; SpecError if the branch does not have it."""
        name = file_names(phase)[0]
        text = self.read(name)
        if text is None:
            raise SpecError(f"{self.spec_dir}/{name} is missing from branch {self.branch}")
        return text

    def head(self) -> str:
        return self.tree.head()

    def commit(self, message: str) -> str:
        return self.tree.commit(message)

    def sandbox(self) -> LocalSandbox:
        """Read access for the spec's agents. Their roles cannot write or run commands, so the
        tree on the host is enough: files are still confined to it (no `..`, no links out)."""
        return LocalSandbox(self.tree, output_cap=8000)

    def close(self) -> None:
        self.tree.remove()
