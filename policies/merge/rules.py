"""Deterministic resolutions of one conflicted file, from its three versions as bytes.

Each rule keeps every side's work or declines: identical sides; one side unchanged (the other
side's version stands); both sides only appended to the file (the base is a prefix of both:
keep the base, then ours, then theirs, in merge order; a file both sides created counts as
appended to an empty one). Never "newest wins": a file that both sides changed in place is left
to the next rung of the ladder."""

from __future__ import annotations

from dataclasses import dataclass


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
