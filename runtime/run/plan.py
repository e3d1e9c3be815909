"""Plan files (YAML or JSON): read, validate, and locate every problem by file, task id and field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from omoi.runtime import input_files
from omoi.runtime.errors import GraphError, PlanError
from omoi.runtime.run.taskgraph import TaskGraph
from omoi.runtime.run.tasks import Generated, TaskSpec


class Budget(BaseModel):
    """The run's model budget: at 80% a warning, at 100% no new model call starts until raised."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    tokens: int | None = Field(default=None, ge=1)
    usd: float | None = Field(default=None, gt=0)


class Plan(BaseModel):
    """A named list of tasks; dependencies may only point at tasks of the same plan."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(default="plan", min_length=1)
    budget: Budget = Budget()
    verify: tuple[str, ...] = Field(
        default=(), description="commands every merge must pass on the merged result (the repository's tests)"
    )
    generated: tuple[Generated, ...] = Field(
        default=(), description="files a command writes: a conflict in them is resolved by running it"
    )
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)

    @field_validator("verify")
    @classmethod
    def _commands(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not c.strip() for c in value):
            raise ValueError("has an empty command")
        if any("\0" in c for c in value):
            raise ValueError("contains a NUL byte, which no shell command can hold")
        return value

    def graph(self) -> TaskGraph:
        g = TaskGraph()
        g.add(self.tasks)
        return g


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan file; every problem raises PlanError naming file, task and field."""
    p = Path(path)
    try:
        text = input_files.read_text(p)
    except input_files.InputFileError as exc:
        raise PlanError(str(exc).replace("cannot read it", "cannot read plan"), file=str(p)) from exc
    return parse_plan(text, source=str(p), is_json=p.suffix.lower() == ".json")


def parse_plan(text: str, *, source: str = "<plan>", is_json: bool = False) -> Plan:
    try:
        data = input_files.parse(text, is_json=is_json)
    except input_files.InputFileError as exc:
        raise PlanError(str(exc), file=source) from exc
    if not isinstance(data, dict):
        raise PlanError("a plan is a mapping with 'name' and 'tasks'", file=source)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        raise _locate(exc, data, source) from exc
    try:
        plan.graph()
    except GraphError as exc:
        raise PlanError(
            str(exc),
            file=source,
            task_id=exc.task_id,
            field="deps" if "depend" in str(exc) or "cycle" in str(exc) else "id",
        ) from exc
    return plan


class _Tasks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tasks: tuple[TaskSpec, ...] = Field(min_length=1)


def load_tasks(path: str | Path) -> tuple[TaskSpec, ...]:
    """Tasks to add to a live run: one task (a mapping, as a plan writes it) or `tasks: [...]`.
    Checked like a plan's, naming file, task and field; their dependencies are the run's to check."""
    p = Path(path)
    try:
        data = input_files.parse(input_files.read_text(p), is_json=p.suffix.lower() == ".json")
    except input_files.InputFileError as exc:
        raise PlanError(str(exc).replace("cannot read it", "cannot read task file"), file=str(p)) from exc
    if isinstance(data, dict) and "tasks" not in data:
        data = {"tasks": [data]}
    if not isinstance(data, dict):
        raise PlanError("a task file is one task (a mapping) or a mapping with 'tasks'", file=str(p))
    try:
        return _Tasks.model_validate(data).tasks
    except ValidationError as exc:
        raise _locate(exc, data, str(p)) from exc


def _locate(exc: ValidationError, data: dict[str, Any], source: str) -> PlanError:
    errors = exc.errors()
    # Drop errors that only echo a deeper one (an invalid item makes its list "too short"): every
    # proper prefix of a location is collected once, so this stays linear in the errors.
    echoed = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    errors = [e for e in errors if tuple(e["loc"]) not in echoed]
    err = errors[0]
    loc = list(err["loc"])
    task_id = None
    if len(loc) >= 2 and loc[0] == "tasks" and isinstance(loc[1], int):
        tasks = data.get("tasks") or []
        raw = tasks[loc[1]] if loc[1] < len(tasks) else None
        task_id = str(raw.get("id")) if isinstance(raw, dict) and raw.get("id") else f"#{loc[1] + 1}"
        loc = loc[2:]
    field = ".".join(str(x) for x in loc) or None
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = len(errors) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return PlanError(msg, file=source, task_id=task_id, field=field)


def check_categories(plan: Plan, routes: dict[str, str], plan_file: str = "") -> None:
    """Every agent task's category has a model: refused here, naming the file and the task, before
    a cluster is joined."""
    for t in plan.tasks:
        if t.agent is not None and t.agent.category not in routes:
            raise PlanError(
                f"unknown category '{t.agent.category}' (known: {', '.join(sorted(routes))}; "
                "add it to OMOI_MODEL_ROUTES)",
                file=plan_file or None,
                task_id=t.id,
                field="agent.category",
            )
