"""Which ready tasks start first, and how many may start now. Pure functions over plain data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def critical_path_first(
    ready: Sequence[str], depth: Mapping[str, int], order: Mapping[str, int]
) -> list[str]:
    """Longest remaining chain of work first (it bounds the run's length); ties keep plan order."""
    return sorted(ready, key=lambda t: (-depth.get(t, 1), order.get(t, 0)))


def plan_order(ready: Sequence[str], depth: Mapping[str, int], order: Mapping[str, int]) -> list[str]:
    """Plain plan order, for users who want the file to decide."""
    return sorted(ready, key=lambda t: order.get(t, 0))


ORDERINGS = {"critical-path": critical_path_first, "plan": plan_order}


def free_slots(max_parallel: int, running: int) -> int:
    return max(0, max_parallel - running)
