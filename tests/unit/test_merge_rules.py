"""The merge queue's deterministic rules and its radar, over real git objects."""

from __future__ import annotations

import asyncio
from pathlib import Path

from omoi.actors import merging
from omoi.policies.merge.ladder import next_rung
from omoi.policies.merge.rules import regenerating, resolve
from omoi.runtime.git.repo import inspect_repo
from omoi.runtime.run.tasks import Generated
from tests.conftest import RepoFactory, run_git


def test_rules_keep_both_sides_or_decline() -> None:
    assert resolve(b"a\n", b"a\nx\n", b"a\ny\n").content == b"a\nx\ny\n"  # type: ignore[union-attr]
    assert resolve(None, b"x\n", b"y\n").rule == "append"  # type: ignore[union-attr]
    assert resolve(b"a\n", b"b\n", b"b\n").rule == "identical"  # type: ignore[union-attr]
    assert resolve(b"a\n", b"a\n", b"c\n").content == b"c\n"  # type: ignore[union-attr]
    assert resolve(b"a\n", b"b\n", b"c\n") is None, "both changed the same line: never newest-wins"
    assert resolve(b"a\n", None, b"c\n") is None, "a deletion is not a textual question"
    assert resolve(b"a", b"ab", b"ac") is None, "an unfinished last line is edited, not appended to"


def test_the_ladder_climbs_by_kind_of_task() -> None:
    assert [next_rung(False, t, 1) for t in ([], ["rerun"], ["rerun", "rerun"])] == [
        "rerun",
        "rerun",
        "human",
    ]
    assert [next_rung(True, t, 1) for t in ([], ["agent"], ["agent", "resolver"])] == [
        "agent",
        "resolver",
        "human",
    ]
    assert next_rung(True, [], 50) == "human", "too many files for a model"
    assert next_rung(False, [], 1, generated=True) == "regenerate"
    assert next_rung(True, ["regenerate"], 1, generated=True) == "agent", "the generator failed: go on"


def test_only_files_all_marked_generated_are_regenerated_by_their_commands() -> None:
    plan = (Generated(files=("*.lock",), run="make lock"), Generated(files=("docs/api.md",), run="make doc"))
    assert regenerating(["a.lock", "sub/b.lock"], plan) == ("make lock",)
    assert regenerating(["docs/api.md", "a.lock"], plan) == ("make lock", "make doc"), "plan order"
    assert regenerating(["a.lock", "src/app.py"], plan) is None, "hand-written code is never the generator's"
    assert regenerating([], plan) is None
    assert next_rung(False, [], 0, semantic=True) == "fail"
    assert next_rung(True, [], 0, semantic=True) == "agent"


def branch(repo: Path, name: str, base: str, files: dict[str, str]) -> str:
    run_git(repo, "checkout", "-q", "-b", name, base)
    for f, text in files.items():
        (repo / f).write_text(text)
    run_git(repo, "commit", "-qam", name)
    tip = run_git(repo, "rev-parse", "HEAD").strip()
    run_git(repo, "checkout", "-q", "main")
    return tip


def test_onto_resolves_appends_and_leaves_rewrites(make_repo: RepoFactory) -> None:
    repo = make_repo({"log.txt": "start\n", "v.txt": "1\n"})
    info = inspect_repo(repo)
    base = info.head_commit
    a = branch(repo, "omoi/r/a", base, {"log.txt": "start\na\n", "v.txt": "2\n"})
    b = branch(repo, "omoi/r/b", base, {"log.txt": "start\nb\n"})
    c = branch(repo, "omoi/r/c", base, {"v.txt": "3\n"})
    first = merging.onto(info.git_dir, base, a, "a")
    assert first.head == a
    assert first.clean
    second = merging.onto(info.git_dir, first.head, b, "b")
    assert second.resolved == (("log.txt", "append"),)
    assert second.clean
    assert run_git(repo, "show", f"{second.head}:log.txt") == "start\na\nb\n"
    third = merging.onto(info.git_dir, second.head, c, "c")
    assert third.unresolved == ("v.txt",)
    assert third.head == second.head, "no half merge"


def test_a_rung_starts_from_the_rules_resolutions_and_take_keeps_appends(make_repo: RepoFactory) -> None:
    repo = make_repo({"log.txt": "start\n", "v.txt": "1\n"})
    info = inspect_repo(repo)
    base = info.head_commit
    a = branch(repo, "omoi/r/a", base, {"log.txt": "start\na\n", "v.txt": "2\n"})
    b = branch(repo, "omoi/r/b", base, {"log.txt": "start\nb\n", "v.txt": "3\n"})
    tree = merging.rung_tree(info.git_dir, a, b)
    assert run_git(repo, "show", f"{tree}:log.txt") == "start\na\nb\n", "resolved by rule, no markers"
    assert "<<<<<<<" in run_git(repo, "show", f"{tree}:v.txt"), "markers only where the rung has work"
    took = merging.take(info.git_dir, a, b, "theirs", "b")
    assert run_git(repo, "show", f"{took}:v.txt") == "3\n"
    assert run_git(repo, "show", f"{took}:log.txt") == "start\na\nb\n", "--take never drops an append"


def test_the_radar_predicts_a_conflict_between_running_branches(make_repo: RepoFactory) -> None:
    repo = make_repo({"app.py": "def f():\n    return 1\n"})
    info = inspect_repo(repo)
    base = info.head_commit
    branch(repo, "omoi/r/x", base, {"app.py": "def f():\n    return 2\n"})
    branch(repo, "omoi/r/y", base, {"app.py": "def f():\n    return 3\n"})
    found = merging.radar(info.git_dir, "r", base, {"x": base, "y": base, "idle": base})
    assert found == {("x", "y"): ("app.py",)}, "each against the head is clean; the pair is not"


async def test_more_ready_branches_than_a_batch_all_merge_with_no_other_event(tmp_path: Path) -> None:
    """Ten branches succeed at once and nothing else happens in the run: the queue goes on batch
    after batch by itself (it once slept until the radar's next tick), and keeps every append."""
    from omoi.bench import merge as bench
    from omoi.bench.common import scratch_repo

    with scratch_repo({"README.md": "x\n", "LOG.md": "# log\n"}) as repo:
        branches = bench.make_branches(repo, 10, 3)
        _took, ruled = await asyncio.wait_for(bench.through_queue(repo, branches, tmp_path / "e.db"), 60)
        bench.check_merged(repo, branches)
    assert branches.appends == 4
    assert ruled == 3, "every append after the first is resolved by rule"
