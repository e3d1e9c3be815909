"""Deterministic resolutions of one conflicted file, from its three versions as bytes.

Each rule keeps every side's work or declines: identical sides; one side unchanged (the other
side's version stands); both sides only appended to the file (the base is a prefix of both:
keep the base, then ours, then theirs, in merge order; a file both sides created counts as
appended to an empty one). Never "newest wins": a file that both sides changed in place is left
to the next rung of the ladder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from omoi.runtime.run.tasks import Generated


@dataclass(frozen=True)
class Resolution:
    rule: str  # identical | unchanged | append
    content: bytes


def resolve(base: bytes | None, ours: bytes | None, theirs: bytes | None) -> Resolution | None:
    """A resolution by rule, or None. A deletion on one side is never resolved here: whether the
    other side's edits should survive a deletion is not a textual question."""
    if ours is None or theirs is None:
        return None
    if ours == theirs:
        return Resolution("identical", ours)
    if base is not None and base == ours:
        return Resolution("unchanged", theirs)
    if base is not None and base == theirs:
        return Resolution("unchanged", ours)
    prefix = base or b""
    if prefix and not prefix.endswith(b"\n"):
        return None  # an append to an unfinished last line edits that line
    if ours.startswith(prefix) and theirs.startswith(prefix):
        mine, other = ours[len(prefix) :], theirs[len(prefix) :]
        joint = mine if mine.endswith(b"\n") or not other else mine + b"\n"
        return Resolution("append", prefix + joint + other)
    return None


def regenerating(files: Sequence[str], generated: Sequence[Generated]) -> tuple[str, ...] | None:
    """The commands (in plan order, each once) that rewrite every one of `files`, or None when a
    file is not marked generated: a conflict in hand-written code is never the generator's."""
    if not files:
        return None
    needed: set[str] = set()
    for path in files:
        owner = next((g for g in generated if any(fnmatchcase(path, p) for p in g.files)), None)
        if owner is None:
            return None
        needed.add(owner.run)
    return tuple(dict.fromkeys(g.run for g in generated if g.run in needed))
