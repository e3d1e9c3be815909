"""The integrator's git work, synchronous (it runs in a thread): one branch onto a head with the
deterministic rules applied, a person's `--take`, and the radar's predictions. Merges are git
objects only (runtime/merge/trees.py); no branch moves here."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from omoi.policies.merge import rules
from omoi.runtime import names
from omoi.runtime.git import repo as git
from omoi.runtime.merge import trees


@dataclass(frozen=True)
class Onto:
    """One branch merged onto a head: the new head, the files git could not merge and the rules
    resolved (with the rule), and those left for the ladder."""

    head: str
    resolved: tuple[tuple[str, str], ...] = ()  # (file, rule)
    unresolved: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.unresolved


def onto(git_dir: Path, head: str, tip: str, task_id: str) -> Onto:
    """`tip` merged onto `head`: a fast-forward when `tip` holds `head`, nothing when `head`
    holds `tip`, else a merge commit whose conflicts the rules resolved (or none made)."""
    common = git.merge_base(git_dir, head, tip)
    if common == tip:
        return Onto(head)
    if common == head:
        return Onto(tip, changed=trees.changed(git_dir, head, tip))
    tree, used, left = _ruled(git_dir, head, tip)
    if left:
        return Onto(head, used, left)
    new = trees.commit(git_dir, tree, [head, tip], f"omoi: merge task {task_id}")
    return Onto(new, used, changed=trees.changed(git_dir, head, new))


def _ruled(git_dir: Path, head: str, tip: str) -> tuple[str, tuple[tuple[str, str], ...], tuple[str, ...]]:
    """git's merge of `tip` into `head` with every conflict a rule resolves resolved: its tree,
    the (file, rule) pairs used, and the files left with markers."""
    m = trees.merge(git_dir, head, tip)
    resolved: dict[str, tuple[str, bytes] | None] = {}
    used: list[tuple[str, str]] = []
    left: list[str] = []
    for c in m.conflicts:
        found = by_rule(git_dir, c)
        if found is None:
            left.append(c.path)
            continue
        resolved[c.path] = found[1]
        used.append((c.path, found[0]))
    tree = trees.replace(git_dir, m.tree, resolved) if resolved else m.tree
    return tree, tuple(used), tuple(left)


def by_rule(git_dir: Path, c: trees.Conflict) -> tuple[str, tuple[str, bytes]] | None:
    """(the rule, (mode, content)) when a deterministic rule resolves the conflicted file."""
    if c.ours is None or c.theirs is None or c.ours.mode != c.theirs.mode:
        return None
    base = trees.blob(git_dir, c.base)
    found = rules.resolve(base, trees.blob(git_dir, c.ours), trees.blob(git_dir, c.theirs))
    return None if found is None else (found.rule, (c.ours.mode, found.content))


def rung_tree(git_dir: Path, head: str, tip: str) -> str:
    """What a rung's attempt starts from: the merge of `tip` onto `head` with every conflict the
    rules can resolve resolved, so markers are left only where the rung has work to do."""
    return _ruled(git_dir, head, tip)[0]


def take(git_dir: Path, head: str, tip: str, side: str, task_id: str) -> str:
    """The merge of `tip` onto `head` with every conflicting hunk taken from `side` (ours: the
    integration head; theirs: the task's branch), as a commit on top of both. Files a rule
    resolves keep both sides' work (a person's --take is about the rest)."""
    m = trees.merge(git_dir, head, tip)
    chosen: Mapping[str, tuple[str, bytes] | None] = {
        c.path: ruled[1] if (ruled := by_rule(git_dir, c)) else trees.take_side(git_dir, c, side)
        for c in m.conflicts
    }
    tree = trees.replace(git_dir, m.tree, chosen) if chosen else m.tree
    return trees.commit(git_dir, tree, [head, tip], f"omoi: merge task {task_id} (a person took {side})")


def predict(
    git_dir: Path, head: str, tips: Mapping[str, str], limit: int = 200
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Conflicts the radar predicts: each running branch against the head, then pairwise (at most
    `limit` merges a sweep), as {tasks: files}; branches with nothing committed yet are left out."""
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    pairs: list[tuple[str, ...]] = [(t,) for t in sorted(tips)]
    pairs += list(itertools.combinations(sorted(tips), 2))
    for tasks in pairs[:limit]:
        a, b = (head, tips[tasks[0]]) if len(tasks) == 1 else (tips[tasks[0]], tips[tasks[1]])
        if git.is_ancestor(git_dir, a, b) or git.is_ancestor(git_dir, b, a):
            continue
        m = trees.merge(git_dir, a, b)
        if m.conflicts:
            out[tasks] = m.files
    return out


class ConflictCounts:
    """The merge order's prediction: how many files a branch tip conflicts in, counted once per
    tip against the head of the moment it is first asked about. The head moves with every batch;
    recounting every ready branch against each new head would cost merges in the square of the
    queue's length, and the merge itself finds the real conflicts anyway."""

    def __init__(self) -> None:
        self._known: dict[str, int] = {}

    def __call__(self, git_dir: Path, head: str, tips: Mapping[str, str]) -> dict[str, int]:
        for tip in tips.values():
            if tip and tip not in self._known:
                self._known[tip] = len(trees.merge(git_dir, head, tip).conflicts)
        return {tid: self._known.get(tip, 0) for tid, tip in tips.items()}


def radar(
    git_dir: Path, run_id: str, head: str, running: Mapping[str, str]
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """The radar's sweep: running tasks' branches (their work in progress, committed after each
    turn that changed files) that moved past the head they started from, predicted."""
    tips = {}
    for tid, base in running.items():
        tip = git.branch_head(git_dir, names.task_branch(run_id, tid))
        if tip and tip != base:
            tips[tid] = tip
    return predict(git_dir, head, tips) if tips else {}
