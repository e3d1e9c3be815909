"""Every message omoi exchanges, as frozen pydantic models gathered in one discriminated union.

The bus gives each event its run's next `seq`; everything else is set by the publisher. Kinds are
dotted lower case, and a subscriber filters on a kind prefix (`task.`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from omoi.runtime.errors import EventError
from omoi.runtime.tasks import TaskSpec

RunStatus = Literal["succeeded", "failed", "cancelled"]


def _now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class EventBase(BaseModel):
    """Fields every event has. `id` makes publishing idempotent: the log stores an id once."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=new_id)
    run_id: str
    ts: AwareDatetime = Field(default_factory=_now)
    source: str = "omoi"
    seq: int | None = Field(default=None, description="position in the run's log, set by the bus")


class TaskEvent(EventBase):
    task_id: str
    attempt: int = Field(default=0, ge=0, description="1 for the first start; 0 before any start")


class RunStarted(EventBase):
    kind: Literal["run.started"] = "run.started"
    repo: str
    base_commit: str
    base_ref: str = ""
    plan_name: str = ""
    plan_file: str = ""
    max_parallel: int = Field(default=4, ge=1)
    sandbox: str = "local"


class RunFinished(EventBase):
    kind: Literal["run.finished"] = "run.finished"
    status: RunStatus
    branch: str | None = None
    commit: str | None = None
    error: str | None = None
    counts: dict[str, int] = Field(default_factory=dict)


class RunCancelRequested(EventBase):
    """Injected by a user or a supervisor; the graph cancels every unfinished task."""

    kind: Literal["run.cancel_requested"] = "run.cancel_requested"
    reason: str = "cancelled by user"


class TaskAdded(TaskEvent):
    kind: Literal["task.added"] = "task.added"
    spec: TaskSpec
    order: int = Field(ge=0, description="position in the plan, the scheduling tie-breaker")


class TaskReady(TaskEvent):
    kind: Literal["task.ready"] = "task.ready"


class TaskStarted(TaskEvent):
    kind: Literal["task.started"] = "task.started"
    sandbox: str


class TaskOutput(TaskEvent):
    kind: Literal["task.output"] = "task.output"
    tail: str
    truncated: bool = False


class TaskSucceeded(TaskEvent):
    kind: Literal["task.succeeded"] = "task.succeeded"
    branch: str = ""
    commit: str | None = None
    duration_s: float = 0.0
    node: str = Field(default="", description="the cluster node whose sandbox ran the attempt")


class TaskFailed(TaskEvent):
    kind: Literal["task.failed"] = "task.failed"
    error: str
    exit_code: int | None = None
    output_tail: str = ""
    final: bool = Field(description="true when no retry follows")


class TaskRetrying(TaskEvent):
    """The task goes back to pending; `attempt` is the attempt that will run next."""

    kind: Literal["task.retrying"] = "task.retrying"
    delay_s: float = 0.0
    reason: str = ""
    counts_as_failure: bool = True


class TaskSkipped(TaskEvent):
    kind: Literal["task.skipped"] = "task.skipped"
    reason: str
    blocked_by: str


class TaskCancelled(TaskEvent):
    kind: Literal["task.cancelled"] = "task.cancelled"
    reason: str = ""


class TaskCancelRequested(TaskEvent):
    kind: Literal["task.cancel_requested"] = "task.cancel_requested"
    reason: str = "cancelled by user"


Event = Annotated[
    RunStarted
    | RunFinished
    | RunCancelRequested
    | TaskAdded
    | TaskReady
    | TaskStarted
    | TaskOutput
    | TaskSucceeded
    | TaskFailed
    | TaskRetrying
    | TaskSkipped
    | TaskCancelled
    | TaskCancelRequested,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Parse one event from JSON or a dict; an unknown kind or a bad field raises EventError."""
    try:
        if isinstance(data, dict):
            return EVENT_ADAPTER.validate_python(data)
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise EventError(f"invalid event: {_describe(exc)}") from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def event_schema() -> dict[str, Any]:
    """JSON Schema of the event union, for `omoi schema events` and for other-language consumers."""
    return EVENT_ADAPTER.json_schema()


def schema_json() -> str:
    return json.dumps(event_schema(), indent=2)


def kinds() -> list[str]:
    return sorted(m.model_fields["kind"].default for m in _MODELS)


# The members of the union, read from it: a kind added there can never be missing here.
_MODELS: tuple[type[EventBase], ...] = get_args(get_args(Event)[0])


def matches(kind: str, prefixes: tuple[str, ...] | None) -> bool:
    """A subscription with no prefixes sees everything."""
    return prefixes is None or kind.startswith(prefixes)
