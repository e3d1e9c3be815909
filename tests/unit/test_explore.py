"""The static Explore on real git repositories: this project's own, and small ones made to order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omoi.runtime.errors import RepoError
from omoi.runtime.explore import static as ex
from omoi.runtime.explore.pyparse import scan_files, scan_lines, scan_source
from omoi.runtime.explore.repo_facts import program_of
from omoi.runtime.explore.scan_cache import ScanCache
from tests.conftest import RepoFactory, run_git

PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own() -> ex.Exploration:
    return ex.explore(PROJECT)


def test_this_projects_modules_import_edges_and_test_command_are_found(own: ex.Exploration) -> None:
    modules = {m.name: m.path for m in own.python.modules}
    # The folders install under other names (package-dir): the names are the ones code imports.
    assert modules["omoi.runtime.explore.static"] == "runtime/explore/static.py"
    assert modules["omoi.cluster.runner"] == "cluster/runner.py"
    edges = set(own.python.edges)
    assert ("omoi.runtime.explore.static", "omoi.runtime.explore.pyscan") in edges
    assert ("omoi.cli", "omoi.api") in edges  # a lazy import inside a function counts
    assert ("omoi.actors.graph", "omoi.policies.progression") in edges
    assert not any(b.startswith("ray") for _, b in edges)  # third-party imports are not modules
    assert own.python.external_imports["ray"] > 0
    assert [c.command for c in own.commands.test] == ["python -m pytest -q"]
    assert "ruff check ." in [c.command for c in own.commands.lint]
    assert any(e.name == "omoi" and e.target == "omoi.cli:main" for e in own.entry_points)
    assert "omoi.runtime.errors" in [d.module for d in own.python.most_depended_on[:5]]
    assert "runtime/explore/static.py" in own.paths
    assert own.languages["Python"].files > 50
    assert any(s.name == "Exploration.summary" and s.path == "runtime/explore/static.py" for s in own.symbols)
    assert own.python.cycles == ()


def test_an_import_cycle_is_reported_closed(make_repo: RepoFactory) -> None:
    repo = make_repo(
        {
            "app/__init__.py": "",
            "app/models.py": "from app import views\n",
            "app/views.py": "from . import urls\n",
            "app/urls.py": "import app.models\n",
            "app/util.py": "import os\n",
        }
    )
    found = ex.explore(repo)
    (cycle,) = found.python.cycles
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == ["app.models", "app.urls", "app.views"]
    assert found.python.external_imports == {"os": 1}


def test_declared_commands_dependencies_and_programs(make_repo: RepoFactory) -> None:
    package = {
        "name": "web",
        "scripts": {"test": "jest", "lint": "eslint ."},
        "devDependencies": {"jest": "1"},
    }
    repo = make_repo(
        {
            "package.json": json.dumps(package),
            "Makefile": "build:\n\tcc -o x x.c\ncheck:\n\t./run.sh\n",
            "requirements-dev.txt": "pytest>=8\n# a comment\nhypothesis\n",
            "docs/guide.md": "# guide\n",
            "README.md": "hi\n",
        }
    )
    found = ex.explore(repo)
    assert [c.command for c in found.commands.test] == ["npm test", "make check"]
    assert [c.command for c in found.commands.lint] == ["npm run lint"]
    assert [c.command for c in found.commands.build] == ["npm run build", "make build"][1:]
    dev = next(m for m in found.manifests if m.kind == "requirements")
    assert dev.dev_dependencies == ("pytest", "hypothesis")
    assert {"npm", "jest", "pytest", "make"} <= set(found.programs)
    assert found.docs == ("README.md", "docs/guide.md")


def test_the_line_scanner_reads_what_ast_reads() -> None:
    source = b"""import os, a.b as ab
from . import c
from ..d import (e,  # why
    f as g)
class K:
    x = 1
    def m(self):
        import lazy
        def inner(): pass
    async def n(self): pass
def f():
    class Inner: pass
if __name__ == "__main__":
    f()
try:
    import fast
except ImportError:
    import slow
"""
    by_ast, by_lines = scan_source("m.py", source), scan_lines("m.py", source)
    assert by_ast.parser == "ast"
    assert by_lines.symbols == by_ast.symbols
    assert by_lines.imports == by_ast.imports
    assert by_lines.main_guard
    assert by_ast.main_guard


def test_python_2_is_read_line_by_line_and_says_so(tmp_path: Path) -> None:
    scan = scan_source("old.py", b"import urllib2\nprint 'hi'\ndef main():\n    pass\n")
    assert scan.parser == "lines"
    assert scan.error is not None
    assert "not valid Python 3" in scan.error
    assert [i.module for i in scan.imports] == ["urllib2"]
    assert [s.name for s in scan.symbols] == ["main"]


def test_worker_processes_scan_the_same_as_this_one(make_repo: RepoFactory) -> None:
    files = {f"pkg/m{i}.py": f"import pkg.m{(i + 1) % 400}\ndef f{i}(): pass\n" for i in range(400)}
    repo = make_repo({"pkg/__init__.py": "", **files})
    paths = sorted(files)
    assert scan_files(repo, paths, workers=2) == scan_files(repo, paths, workers=1)


def test_explore_json_round_trips_and_a_non_repository_is_refused(
    own: ex.Exploration, tmp_path: Path
) -> None:
    target = tmp_path / "explore.json"
    ex.write(own, target)
    assert ex.load(target) == own
    assert len(own.summary(limit=800)) <= 800
    with pytest.raises(RepoError, match="not a git checkout"):
        ex.explore(tmp_path)


def test_the_program_of_a_command() -> None:
    assert program_of("python -m pytest -q tests/") == "pytest"
    assert program_of("CI=1 env npm test") == "npm"
    assert program_of("/usr/bin/make check") == "make"
    assert program_of("./run.sh") == "./run.sh"


def test_a_committed_link_to_a_host_file_is_never_read(make_repo: RepoFactory, tmp_path: Path) -> None:
    """Links in the tree are data: host-side Explore reads regular tracked files only, and explores
    a task tree through its named git directory (the tree has no `.git` to discover)."""
    from omoi.runtime.git.repo import TaskTree, inspect_repo
    from tests.conftest import run_git

    secret = tmp_path / "host-secret.py"
    secret.write_text("HOST_SECRET = 'never read'\n")
    repo = make_repo({"app.py": "import os\n"})
    (repo / "pyproject.toml").symlink_to(secret)
    (repo / "leak.py").symlink_to(secret)
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "links")
    info = inspect_repo(repo)
    tree = TaskTree(info.git_dir, tmp_path / "trees" / "spec", "omoi/x/_spec")
    tree.checkout(info.head_commit)
    for found in (ex.explore(repo), ex.explore(tree.workspace, tree=tree)):
        dumped = found.model_dump_json()
        assert "HOST_SECRET" not in dumped
        assert "never read" not in dumped
        assert found.paths == ("app.py",)
        assert found.head == info.head_commit


def test_scans_kept_by_blob_id_give_the_same_exploration_and_follow_changes(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    files = {f"pkg/m{i}.py": f"import pkg.m{(i + 1) % 3}\n\ndef f{i}():\n    pass\n" for i in range(3)}
    repo = make_repo({**files, "pkg/__init__.py": ""})
    cache = tmp_path / "cache" / "scans.json"
    first = ex.explore(repo, cache=cache)
    again = ex.explore(repo, cache=cache)
    assert cache.exists()
    for field in ("python", "symbols"):
        assert getattr(again, field) == getattr(first, field)
    assert ScanCache(cache).get("pkg/m0.py", ex.tracked_blobs(repo)["pkg/m0.py"]) is not None

    (repo / "pkg/m0.py").write_text("def g():\n    pass\n")  # not committed: read, not cached
    assert "g" in {s.name for s in ex.explore(repo, cache=cache).symbols}
    run_git(repo, "commit", "-qam", "m0 changes")
    changed = ex.explore(repo, cache=cache)
    assert {s.name for s in changed.symbols} == {"g", "f1", "f2"}
    assert ("pkg.m0", "pkg.m1") not in changed.python.edges

    cache.write_text("not json")  # a damaged cache is ignored and written again
    assert ex.explore(repo, cache=cache).symbols == changed.symbols
    assert json.loads(cache.read_text())["version"] == 1


def test_hotspots_leave_out_the_root_commit(make_repo: RepoFactory) -> None:
    repo = make_repo({"a.py": "x = 1\n", "b.py": "y = 1\n"})
    assert ex.explore(repo).hotspots == ()  # how the files arrived says nothing about churn
    (repo / "a.py").write_text("x = 2\n")
    run_git(repo, "commit", "-qam", "a changes")
    assert [(h.path, h.commits) for h in ex.explore(repo).hotspots] == [("a.py", 1)]
