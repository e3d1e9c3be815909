from __future__ import annotations

from pathlib import Path

import pytest

from omoi.runtime.errors import PlanError
from omoi.runtime.run.plan import load_plan, parse_plan

GOOD = """
name: hello
tasks:
  - id: a
    run: "echo a > a.txt"
  - id: b
    deps: [a]
    run: "cat a.txt > b.txt"
    retries: 2
    timeout: 60
"""


def test_readme_plan_parses(tmp_path: Path) -> None:
    p = tmp_path / "plan.yaml"
    p.write_text(GOOD)
    plan = load_plan(p)
    assert [t.id for t in plan.tasks] == ["a", "b"]
    assert plan.tasks[1].retries == 2
    assert plan.tasks[1].timeout == 60
    assert plan.tasks[1].deps == ("a",)


def test_json_plan_parses(tmp_path: Path) -> None:
    p = tmp_path / "plan.json"
    p.write_text('{"name": "j", "tasks": [{"id": "a", "run": "true"}]}')
    assert load_plan(p).name == "j"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tasks: [", "not valid YAML"),
        ("- a\n- b\n", "a plan is a mapping"),
        ("name: x\n", "field 'tasks': required field is missing"),
        ("tasks: [{id: a, run: x, colour: red}]", "task 'a': field 'colour': unknown field"),
        ("tasks: [{id: a, run: x}, {id: a, run: y}]", "task 'a': field 'id': duplicate task id 'a'"),
        ("tasks: [{id: '', run: x}]", "task '#1': field 'id': must not be empty"),
        ("tasks: [{id: 'a b', run: x}]", "field 'id': 'a b' is not a valid id"),
        ("tasks: [{id: a}]", "task 'a': a task has either 'run' (a command) or 'agent' (a coding agent)"),
        ("tasks: [{id: a, run: x, agent: {prompt: p}}]", "task 'a': a task has either 'run'"),
        ("tasks: [{id: a, run: x, acceptance: [t]}]", "task 'a': 'acceptance' belongs to agent tasks"),
        ("tasks: [{id: a, agent: {prompt: p, role: boss}}]", "task 'a': field 'agent.role': Input should be"),
        ("tasks: [{id: a, agent: {role: worker}}]", "field 'agent.prompt': required field is missing"),
        ("tasks: [{id: a, agent: {prompt: p, repairs: 101}}]", "task 'a': field 'agent.repairs'"),
        (
            "tasks: [{id: a, run: x, deps: [ghost]}]",
            "task 'a': field 'deps': task 'a' depends on unknown task 'ghost'",
        ),
        (
            "tasks: [{id: a, run: x, deps: [b]}, {id: b, run: y, deps: [a]}]",
            "field 'deps': cycle: a -> b -> a",
        ),
        ("tasks: [{id: a, run: x, retries: -1}]", "task 'a': field 'retries'"),
        ("tasks: [{id: a, run: x, timeout: 0}]", "task 'a': field 'timeout'"),
        ("tasks: []", "field 'tasks'"),
        ("generated: [{files: [], run: make}]\ntasks: [{id: a, run: x}]", "field 'generated.0.files'"),
        ("generated: [{files: [a.lock]}]\ntasks: [{id: a, run: x}]", "field 'generated.0.run'"),
        ("generated: [{files: [a.lock], run: ' '}]\ntasks: [{id: a, run: x}]", "field 'generated.0.run'"),
        (
            "tasks: [{id: spec-intent, run: x}]",
            "task 'spec-intent': field 'id': 'spec-intent' starts with 'spec-'",
        ),
    ],
)
def test_bad_plans_name_file_task_and_field(text: str, expected: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(text, source="plans/p.yaml")
    assert str(info.value).startswith("plans/p.yaml: ")
    assert expected in str(info.value)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"missing\.yaml: cannot read plan"):
        load_plan(tmp_path / "missing.yaml")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PlanError, match=r"bin\.yaml: cannot read plan"):
        load_plan(bad)


def test_plan_error_survives_pickling() -> None:
    import pickle

    err = PlanError("unknown field", file="p.yaml", task_id="a", field="x")
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.task_id, again.field, str(again)) == ("p.yaml", "a", "x", str(err))


def test_agent_tasks_sit_next_to_command_tasks() -> None:
    plan = parse_plan(
        """
tasks:
  - id: user-model
    run: "touch user.py"
  - id: auth-middleware
    deps: [user-model]
    agent:
      role: worker
      category: default
      prompt: "Add JWT middleware ..."
    acceptance: ["python -m pytest tests/test_auth.py -q"]
"""
    )
    cmd, agent = plan.tasks
    assert cmd.run == "touch user.py"
    assert cmd.agent is None
    assert agent.agent is not None
    assert (agent.agent.role, agent.agent.category, agent.agent.repairs) == ("worker", "default", 5)
    assert agent.acceptance == ("python -m pytest tests/test_auth.py -q",)
    assert agent.deps == ("user-model",)
