"""The bundled examples, each a small repository and a plan over it: `agents` (agent tasks with a
scripted model, what `omoi demo` runs) and `hello` (command tasks only)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from omoi.runtime.git.repo import git

EXAMPLES = Path(__file__).parent


DEMO_GOAL = (
    "Add a histogram command to tools/wordstats.py, document every command in README.md, "
    "and add a unit test for the longest command"
)


def demo_script() -> Path:
    """The scripted model's answers for the `agents` example's tasks."""
    return EXAMPLES / "agents" / "script.yaml"


def demo_scripts() -> list[Path]:
    """The scripts of the whole pipeline: the spec's phases, then the tasks it writes."""
    return [EXAMPLES / "agents" / "spec_script.yaml", demo_script()]


def make_example_repo(target: Path | None = None, example: str = "hello") -> tuple[Path, Path]:
    """Copy an example into `target` (or a new temp dir) as a fresh git repo; return (repo, plan)."""
    source = EXAMPLES / example
    root = Path(tempfile.mkdtemp(prefix="omoi-demo-")) if target is None else target
    repo = root / "repo"
    if repo.exists():
        raise FileExistsError(f"{repo} already exists; choose another --dir")
    shutil.copytree(source / "repo", repo)
    git(["init", "--quiet", "--initial-branch=main"], repo)
    git(["add", "-A"], repo)
    git(["commit", "--quiet", "-m", "example project"], repo)
    plan = root / "plan.yaml"
    shutil.copyfile(source / "plan.yaml", plan)
    return repo, plan
