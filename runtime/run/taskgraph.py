"""The dependency DAG, with no Ray and no I/O in it.

Additions are all-or-nothing: a batch that names an unknown dependency, repeats an id or closes a
cycle is refused whole and leaves the graph as it was."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence

from omoi.runtime.errors import CycleError, GraphError, UnknownDependencyError
from omoi.runtime.run.tasks import TaskSpec


class TaskGraph:
    """Tasks as nodes, an edge dep -> task for each dependency; `order` is the plan position.

    Plain dicts, not a networkx graph: a fold adds every task of a run one at a time, and a graph
    library's per-call cost was most of folding (or loading the snapshot of) a 10,000-task run."""

    def __init__(self) -> None:
        self._dependents: dict[str, list[str]] = {}
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
        import networkx as nx  # only here: most processes never add a batch with inner edges

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
            self._dependents[spec.id] = []
        for spec in specs:  # deps may point later into the batch: edges once every node is in
            for dep in dict.fromkeys(spec.deps):
                self._dependents[dep].append(spec.id)
        self._depth_cache = None
        self._topo_cache = None

    def deps(self, task_id: str) -> list[str]:
        return list(self._specs[task_id].deps)

    def dependents(self, task_id: str) -> list[str]:
        return sorted(self._dependents[task_id], key=self._order.__getitem__)

    def topological(self) -> list[str]:
        """A topological order that follows the plan order wherever dependencies allow (cached)."""
        if self._topo_cache is None:
            waiting = {t: len(set(s.deps)) for t, s in self._specs.items()}
            heap = [(self._order[t], t) for t, n in waiting.items() if n == 0]
            heapq.heapify(heap)
            out: list[str] = []
            while heap:  # Kahn's order, the lowest plan position first among the tasks free to go
                task = heapq.heappop(heap)[1]
                out.append(task)
                for nxt in self._dependents[task]:
                    waiting[nxt] -= 1
                    if waiting[nxt] == 0:
                        heapq.heappush(heap, (self._order[nxt], nxt))
            self._topo_cache = out
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
                depth[node] = 1 + max((depth[s] for s in self._dependents[node]), default=0)
            self._depth_cache = depth
        return self._depth_cache

    def sinks(self) -> list[str]:
        """Tasks nothing depends on, in topological (plan-respecting) order."""
        return [t for t in self.topological() if not self._dependents[t]]

    def waves(self) -> list[list[str]]:
        """Tasks grouped by the earliest step they can start in, for display."""
        wave: dict[str, int] = {}
        for t in self.topological():  # a task's wave: one after its latest dependency's
            wave[t] = 1 + max((wave[d] for d in self._specs[t].deps), default=-1)
        out: list[list[str]] = [[] for _ in range(max(wave.values(), default=-1) + 1)]
        for t in self.ids:
            out[wave[t]].append(t)
        return out

    def critical_path(self) -> list[str]:
        """The longest chain of dependent tasks, first to last: it bounds the run's length."""
        depth = self.remaining_depth()
        path: list[str] = []
        candidates = [t for t in self.topological() if not self._specs[t].deps]
        while candidates:
            best = max(candidates, key=lambda t: (depth[t], -self._order[t]))
            path.append(best)
            candidates = list(self._dependents[best])
        return path
