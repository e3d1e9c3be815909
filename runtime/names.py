"""Every name omoi builds from a run id, in one place: actors, branches, the spec's conversations.

    omoi/<run>/<role>[/<part>...]   an actor (graph, bus, budget, spec, integrator, slot/<n>, ...)
    omoi/<run>/<task>               a task's branch
    omoi/<run>/_merged              the run's integration branch (task ids never start with '_')
    omoi/<run>/_spec                the spec's branch
    omoi/<run>/_verify              where the merge queue checks a candidate head
    spec-<phase>                    a spec conversation's task id: reserved, no plan task may use it

A name is one string in the log, in git and in Ray at once, so building it anywhere else is how
two of them drift apart."""

from __future__ import annotations

import re

ROOT = "omoi"
MERGED = "_merged"
SPEC = "_spec"
VERIFY = "_verify"  # the merge queue's checks run on a tree of this name
SPEC_CONVERSATION = "spec-"  # the prefix of the spec's conversations; plan task ids cannot start with it


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_id(value: str) -> str:
    """Task and run ids become git branch names (`omoi/<run>/<task>`), so they must be ref-safe."""
    if not value:
        raise ValueError("must not be empty")
    if not _ID.match(value) or ".." in value or value.endswith((".", ".lock")):
        raise ValueError(
            f"'{value}' is not a valid id: use letters, digits, '.', '_' and '-' "
            "(start with a letter or digit, at most 100 characters, no '..', not ending in '.' or '.lock')"
        )
    return value


def run_prefix(run_id: str) -> str:
    return f"{ROOT}/{run_id}/"


def actor(run_id: str, role: str, *parts: str) -> str:
    return "/".join([ROOT, run_id, role, *parts])


def task_branch(run_id: str, task_id: str) -> str:
    return f"{ROOT}/{run_id}/{task_id}"


def run_branch(run_id: str) -> str:
    """Not `omoi/<run-id>`: git cannot hold that ref next to `omoi/<run-id>/<task-id>` (a ref is a
    file or a directory, not both)."""
    return task_branch(run_id, MERGED)


def spec_branch(run_id: str) -> str:
    return task_branch(run_id, SPEC)


def spec_conversation(step: str) -> str:
    """The task id of the spec's conversation for `step` (a phase, `intent`, `review-<phase>`)."""
    return f"{SPEC_CONVERSATION}{step}"


def is_spec_conversation(task_id: str) -> bool:
    return task_id.startswith(SPEC_CONVERSATION)


def check_plan_task_id(task_id: str) -> str:
    """A plan's task may not take a name the spec's conversations use: its spend would be counted
    as the spec's, and its agent would be handed the spec's script."""
    if is_spec_conversation(task_id):
        raise ValueError(
            f"'{task_id}' starts with '{SPEC_CONVERSATION}', which is reserved for the spec's own "
            "conversations: choose another task id"
        )
    return task_id
