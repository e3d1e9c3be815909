"""The spec's pure decisions: structural checks and scores, the flow between phases, the intent
fallback. No I/O: documents in, evaluations out."""

from __future__ import annotations

from typing import Any

from omoi.policies.spec import checks as spec_checks
from omoi.policies.spec import flow as spec_flow
from omoi.policies.spec.checks import Grounding
from omoi.runtime.spec.documents import Design, Requirements, Tasks, to_plan

GROUND = Grounding(
    paths=frozenset({"app/cli.py", "tests/test_cli.py", "run.sh"}),
    symbols=frozenset({"main", "Parser", "Parser.parse"}),
    programs=frozenset({"python", "pytest", "sh"}),
)


def tasks(*items: dict[str, Any]) -> Tasks:
    base = {"title": "t", "description": "d", "acceptance": ["python -m pytest -q"]}
    return Tasks.model_validate({"tasks": [{**base, **i} for i in items]})


def test_a_file_created_by_an_earlier_task_may_be_used_but_not_one_from_an_unrelated_task() -> None:
    ok = tasks(
        {"id": "a", "creates": ["app/new.py"], "requirements": ["REQ-1"]},
        {"id": "b", "deps": ["a"], "files": ["app/new.py"], "requirements": ["REQ-1"]},
    )
    assert spec_checks.tasks(ok, GROUND, ["REQ-1"]).passed
    unrelated = tasks(
        {"id": "a", "creates": ["app/new.py"], "requirements": ["REQ-1"]},
        {"id": "b", "files": ["app/new.py"], "requirements": ["REQ-1"]},
    )
    ev = spec_checks.tasks(unrelated, GROUND, ["REQ-1"])
    assert ev.score < 1
    assert any("'app/new.py' does not exist and no earlier task creates it" in i for i in ev.issues)


def test_a_repository_script_is_a_runnable_acceptance_command() -> None:
    doc = tasks({"id": "a", "acceptance": ["./run.sh --quick"], "requirements": ["REQ-1"]})
    assert spec_checks.tasks(doc, GROUND, ["REQ-1"]).passed


def test_a_design_naming_missing_files_and_symbols_scores_lower_and_says_which() -> None:
    def design(files: list[dict[str, str]], symbols: list[str]) -> Design:
        component = {"name": "cli", "responsibility": "r", "files": ["app/cli.py"], "symbols": symbols}
        return Design.model_validate({"overview": "o", "components": [component], "files": files})

    new = {"path": "app/x.py", "change": "create"}
    good = design([{"path": "app/cli.py", "change": "modify"}, new], ["Parser.parse"])
    assert spec_checks.design(good, GROUND).score == 1.0
    bad = design([{"path": "lib/gone.py", "change": "modify"}, new], ["Parser.parse", "Lexer"])
    ev = spec_checks.design(bad, GROUND)
    assert ev.score < spec_checks.THRESHOLD
    assert ev.issues == (
        "files: 'lib/gone.py' does not exist (mark it change: create if it is new)",
        "component 'cli': symbol 'Lexer' does not exist in the repository",
    )


def test_repeated_requirement_ids_block_and_vague_criteria_lower_the_score() -> None:
    doc = Requirements.model_validate(
        {
            "summary": "s",
            "requirements": [
                {"id": "REQ-1", "title": "one", "acceptance_criteria": ["works"]},
                {"id": "REQ-1", "title": "two", "acceptance_criteria": ["prints the greeting"]},
            ],
        }
    )
    ev = spec_checks.requirements(doc)
    assert not ev.passed
    assert ev.blocking == ("requirement ids repeat: REQ-1",)


def test_retries_and_rejections_are_bounded_but_a_person_may_always_reject() -> None:
    assert spec_flow.after_evaluation(False, 2, "x").action == "retry"
    assert spec_flow.after_evaluation(False, 3, "x").action == "fail"
    assert spec_flow.after_gate("reject", 2, "reviewer", "r").action == "redo"
    assert spec_flow.after_gate("reject", 3, "reviewer", "r").action == "fail"
    assert spec_flow.after_gate("reject", 30, "human", "r").action == "redo"
    assert spec_flow.next_phase("explicit", ["explore", "requirements"]) == "tasks"
    assert spec_flow.next_phase("open_ended", ["explore", "requirements"]) == "design"


def test_the_intent_fallback() -> None:
    paths = ["tools/wordstats.py", "README.md"]
    assert spec_flow.classify("fix a typo in README.md", paths)[0] == "trivial"
    assert spec_flow.classify("Add a histogram command to tools/wordstats.py", paths)[0] == "explicit"
    assert spec_flow.classify("1. parse flags\n2. print help", paths)[0] == "explicit"
    assert spec_flow.classify("add JWT authentication", paths)[0] == "open_ended"


def test_spec_tasks_become_agent_tasks_told_to_read_the_spec() -> None:
    plan = to_plan(
        tasks({"id": "a", "files": ["app/cli.py"], "requirements": ["REQ-2"]}), "p", ["s/design.md"]
    )
    (t,) = plan.tasks
    assert t.agent is not None
    assert t.agent.context == ("app/cli.py", "s/design.md")
    assert "read s/design.md first" in t.agent.prompt
    assert "REQ-2" in t.agent.prompt
    assert t.acceptance == ("python -m pytest -q",)
