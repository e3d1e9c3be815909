"""The bundled example: a small repository and a plan over it, for `omoi demo` and the README."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from omoi.runtime.git import git

HERE = Path(__file__).parent / "hello"


def make_example_repo(target: Path | None = None) -> tuple[Path, Path]:
    """Copy the example into `target` (or a new temp dir) as a fresh git repo; return (repo, plan)."""
    root = Path(tempfile.mkdtemp(prefix="omoi-demo-")) if target is None else target
    repo = root / "repo"
    if repo.exists():
        raise FileExistsError(f"{repo} already exists; choose another --dir")
    shutil.copytree(HERE / "repo", repo)
    git(["init", "--quiet", "--initial-branch=main"], repo)
    git(["add", "-A"], repo)
    git(["commit", "--quiet", "-m", "example project"], repo)
    plan = root / "plan.yaml"
    shutil.copyfile(HERE / "plan.yaml", plan)
    return repo, plan
