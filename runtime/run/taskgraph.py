"""The dependency DAG, with no Ray and no I/O in it.

Additions are all-or-nothing: a batch that names an unknown dependency, repeats an id or closes a
cycle is refused whole and leaves the graph as it was."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import networkx as nx

from omoi.runtime.errors import CycleError, GraphError, UnknownDependencyError
from omoi.runtime.run.tasks import TaskSpec


class TaskGraph:
    """Tasks as nodes, an edge dep -> task for each dependency; `order` is the plan position."""

    def __init__(self) -> None:
        self._g: nx.DiGraph[str] = nx.DiGraph()
        self._specs: dict[str, TaskSpec] = {}
        self._order: dict[str, int] = {}
        self._depth_cache: dict[str, int] | None = None
        self._topo_cache: list[str] | None = None
        self._topo_index: dict[str, int] = {}

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def spec(self, task_id: str) -> TaskSpec:
        return self._specs[task_id]

    def order(self, task_id: str) -> int:
        return self._order[task_id]

    @property
    def ids(self) -> list[str]:
        """Task ids in plan order."""
        return sorted(self._specs, key=self._order.__getitem__)

    def check(self, specs: Sequence[TaskSpec]) -> None:
        """Raise the GraphError that adding `specs` would cause, without changing anything."""
        seen: set[str] = set()
        for spec in specs:
            if spec.id in self._specs or spec.id in seen:
                raise GraphError(f"duplicate task id '{spec.id}'", task_id=spec.id)
            seen.add(spec.id)
        for spec in specs:
            for dep in spec.deps:
                if dep not in self._specs and dep not in seen:
                    raise UnknownDependencyError(spec.id, dep)
                if dep == spec.id:
                    raise CycleError([spec.id])
        # A new task's edges all point into new tasks (deps are declared by the dependent), so a
        # cycle can only run through the batch: checking the batch alone is enough, and cheap.
        inside = [(dep, s.id) for s in specs for dep in s.deps if dep in seen]
        if not inside:  # no edge between new tasks (a fold adds them one by one): no cycle
            return
        trial: nx.DiGraph[str] = nx.DiGraph()
        trial.add_nodes_from(seen)
        trial.add_edges_from(inside)
        try:
            cycle = nx.find_cycle(trial)
        except nx.NetworkXNoCycle:
            return
        # Edges point dep -> task; users read "a depends on b", so report the cycle that way round,
        # starting from the first task of the batch that is on it.
        nodes = [edge[0] for edge in cycle][::-1]
        first = min(nodes, key=lambda n: next((i for i, s in enumerate(specs) if s.id == n), len(specs)))
        start = nodes.index(first)
        raise CycleError(nodes[start:] + nodes[:start])

    def add(self, specs: Sequence[TaskSpec], orders: Iterable[int] | None = None) -> None:
        """Add a batch of tasks (deps may point inside the batch); all or nothing."""
        self.check(specs)
        start = len(self._specs)
        for spec, order in zip(
            specs, orders if orders is not None else range(start, start + len(specs)), strict=True
        ):
            self._specs[spec.id] = spec
            self._order[spec.id] = order
            self._g.add_node(spec.id)
            self._g.add_edges_from((dep, spec.id) for dep in spec.deps)
        self._depth_cache = None
        self._topo_cache = None

    def deps(self, task_id: str) -> list[str]:
        return list(self._specs[task_id].deps)

    def dependents(self, task_id: str) -> list[str]:
        return sorted(self._g.successors(task_id), key=self._order.__getitem__)

    def topological(self) -> list[str]:
        """A topological order that follows the plan order wherever dependencies allow (cached)."""
        if self._topo_cache is None:
            self._topo_cache = list(nx.lexicographical_topological_sort(self._g, key=self._order.__getitem__))
            self._topo_index = {t: i for i, t in enumerate(self._topo_cache)}
        return self._topo_cache

    def topo_index(self, task_id: str) -> int:
        self.topological()
        return self._topo_index[task_id]

    def remaining_depth(self) -> dict[str, int]:
        """Tasks on the longest path from each task to a sink, the task itself included."""
        if self._depth_cache is None:
            depth: dict[str, int] = {}
            for node in reversed(self.topological()):
                depth[node] = 1 + max((depth[s] for s in self._g.successors(node)), default=0)
            self._depth_cache = depth
        return self._depth_cache

    def sinks(self) -> list[str]:
        """Tasks nothing depends on, in topological (plan-respecting) order."""
        return [t for t in self.topological() if self._g.out_degree(t) == 0]

    def waves(self) -> list[list[str]]:
        """Tasks grouped by the earliest step they can start in, for display."""
        return [sorted(w, key=self._order.__getitem__) for w in nx.topological_generations(self._g)]

    def critical_path(self) -> list[str]:
        """The longest chain of dependent tasks, first to last: it bounds the run's length."""
        depth = self.remaining_depth()
        path: list[str] = []
        candidates = [t for t in self.topological() if self._g.in_degree(t) == 0]
        while candidates:
            best = max(candidates, key=lambda t: (depth[t], -self._order[t]))
            path.append(best)
            candidates = list(self._g.successors(best))
        return path
