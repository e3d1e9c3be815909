from __future__ import annotations

import pytest

from omoi.policies.scheduling import critical_path_first
from omoi.runtime.errors import CycleError, GraphError, UnknownDependencyError
from omoi.runtime.run.taskgraph import TaskGraph
from omoi.runtime.run.tasks import TaskSpec


def t(task_id: str, *deps: str) -> TaskSpec:
    return TaskSpec(id=task_id, run="true", deps=deps)


def test_cycle_is_named_in_dependency_direction() -> None:
    g = TaskGraph()
    with pytest.raises(CycleError) as info:
        g.add([t("a", "b"), t("b", "c"), t("c", "a")])
    assert str(info.value) == "cycle: a -> b -> c -> a"
    assert len(g) == 0


def test_self_dependency_is_a_cycle() -> None:
    with pytest.raises(CycleError, match=r"cycle: a -> a"):
        TaskGraph().add([t("a", "a")])


def test_unknown_dependency_names_task_and_dependency() -> None:
    with pytest.raises(UnknownDependencyError, match="task 'b' depends on unknown task 'zz'"):
        TaskGraph().add([t("a"), t("b", "zz")])


def test_duplicate_id_is_refused_and_graph_unchanged() -> None:
    g = TaskGraph()
    g.add([t("a")])
    with pytest.raises(GraphError, match="duplicate task id 'a'"):
        g.add([t("b"), t("a")])
    assert g.ids == ["a"]


def test_tasks_can_be_added_later_depending_on_existing_ones() -> None:
    g = TaskGraph()
    g.add([t("a"), t("b", "a")])
    g.add([t("c", "b"), t("d", "c", "a")])
    assert g.topological() == ["a", "b", "c", "d"]
    assert g.dependents("a") == ["b", "d"]
    assert g.sinks() == ["d"]


def test_topological_order_follows_plan_order_where_free() -> None:
    g = TaskGraph()
    g.add([t("z"), t("y"), t("x", "z")])
    assert g.topological() == ["z", "y", "x"]


def test_remaining_depth_and_critical_path_ordering() -> None:
    g = TaskGraph()
    # plan order puts the short chain first; the long chain must still be preferred
    g.add([t("short"), t("long1"), t("long2", "long1"), t("long3", "long2")])
    depth = g.remaining_depth()
    assert depth == {"short": 1, "long1": 3, "long2": 2, "long3": 1}
    order = {i: g.order(i) for i in g.ids}
    assert critical_path_first(["short", "long1"], depth, order) == ["long1", "short"]
    assert critical_path_first(["long3", "short"], depth, order) == ["short", "long3"]  # tie: plan order
