"""Every message omoi exchanges, as frozen pydantic models gathered in one discriminated union.

The bus gives each event its run's next `seq`; everything else is set by the publisher. Kinds are
dotted lower case, and a subscriber filters on a kind prefix (`task.`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from omoi.runtime.errors import EventError, InputError
from omoi.runtime.run.tasks import Generated, TaskSpec

RunStatus = Literal["succeeded", "failed", "cancelled"]
Phase = Literal["intent", "explore", "requirements", "design", "tasks"]
Gate = Literal["auto", "review", "human"]
Intent = Literal["trivial", "explicit", "open_ended"]


def _now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class EventBase(BaseModel):
    """Fields every event has. `id` makes publishing idempotent: the log stores an id once."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

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
    budget_tokens: int | None = Field(default=None, ge=1, description="token budget of the run")
    budget_usd: float | None = Field(default=None, gt=0, description="dollar budget of the run")
    goal: str = Field(default="", description="a run from a goal: the spec writes its tasks")
    gate: Gate = Field(default="auto", description="who approves each spec phase")
    gate_timeout_s: float | None = Field(default=None, gt=0, description="human gate: wait at most this")
    on_gate_timeout: Literal["approve", "reject", "fail"] = "fail"
    plan_only: bool = Field(default=False, description="stop once the spec has written the tasks")
    verify: tuple[str, ...] = Field(default=(), description="commands every merge must pass (plan's verify)")
    merge_timeout_s: float | None = Field(default=None, gt=0, description="a person's merge: wait this long")
    generated: tuple[Generated, ...] = Field(default=(), description="files a command regenerates (plan)")


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
    base: str = Field(default="", description="the integration head the attempt starts from")
    keep_work: bool = Field(
        default=False, description="it goes on from the work-in-progress its branch holds on top of base"
    )


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


class Usage(BaseModel):
    """Tokens of one model call (or a sum of calls), as the provider counted them."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cache_write_tokens: int = Field(default=0, ge=0)
    cache_read_tokens: int = Field(default=0, ge=0)

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
        )


class AgentEvent(TaskEvent):
    """Something one agent did; `agent` names the conversation (the task's worker, or an oracle)."""

    agent: str
    role: str


class AgentStarted(AgentEvent):
    kind: Literal["agent.started"] = "agent.started"
    model: str
    actor: str = Field(default="", description="the Ray actor running the agent, for the dashboard")
    node: str = Field(default="", description="the cluster node the agent and its sandbox slot run on")


class AgentTurn(AgentEvent):
    """One model call and its answer: the trajectory supervision reads, and what budgets count."""

    kind: Literal["agent.turn"] = "agent.turn"
    turn: int = Field(ge=1)
    model: str
    text: str = ""
    tool_calls: tuple[str, ...] = ()
    stop_reason: str = ""
    usage: Usage = Usage()
    cost_usd: float = Field(default=0.0, ge=0)
    latency_s: float = 0.0
    tries: int = Field(default=1, ge=1, description="HTTP tries the call took (retries after 429/5xx)")


class AgentHeartbeat(AgentEvent):
    """The agent is alive though it published nothing for a while (a long model call or command,
    a pause, a question): the guardian restarts an attempt that misses three in a row."""

    kind: Literal["agent.heartbeat"] = "agent.heartbeat"


class AgentToolCalled(AgentEvent):
    kind: Literal["agent.tool_called"] = "agent.tool_called"
    turn: int = Field(ge=1)
    tool: str
    arguments: str = Field(description="JSON of the arguments, capped")
    result: str = Field(description="what the model was told, capped")
    is_error: bool = False
    duration_s: float = 0.0


class AgentToolDenied(AgentEvent):
    kind: Literal["agent.tool_denied"] = "agent.tool_denied"
    turn: int = Field(ge=1)
    tool: str
    reason: str


class AgentAcceptance(AgentEvent):
    """One round of the task's acceptance commands after the agent said it was complete."""

    kind: Literal["agent.acceptance"] = "agent.acceptance"
    round: int = Field(ge=1)
    passed: bool
    command: str = Field(default="", description="the first command that failed")
    exit_code: int | None = None
    output_tail: str = ""


class AgentEscalated(AgentEvent):
    """An oracle was consulted after a streak of failed rounds; its advice goes to the worker."""

    kind: Literal["agent.escalated"] = "agent.escalated"
    failed_rounds: int
    advice: str


class AgentNeedsInput(AgentEvent):
    """The task is paused until an `agent.answered` event for it arrives."""

    kind: Literal["agent.needs_input"] = "agent.needs_input"
    question: str


class AgentAnswered(TaskEvent):
    """Injected by a person (`omoi answer`) or a program: the answer to an agent's question."""

    kind: Literal["agent.answered"] = "agent.answered"
    answer: str = Field(min_length=1)


class AgentMessage(TaskEvent):
    """Text for the task's agent from a person or a program (`omoi message`, the HTTP API, a
    schedule): it goes into the agent's next model request, tagged `[omoi message]`, and is
    acknowledged (`guardian.delivered`, naming this event's seq) once it did."""

    kind: Literal["agent.message"] = "agent.message"
    text: str = Field(min_length=1, max_length=20_000)


Priority = Literal["low", "medium", "high", "critical"]


class AgentDiscovery(AgentEvent):
    """Work an agent found beyond its task; the discovery actor decides whether it becomes a task."""

    kind: Literal["agent.discovery"] = "agent.discovery"
    type: str
    title: str
    description: str = ""
    evidence: str = ""
    priority: Priority = "medium"
    blocks_current: bool = False


class AgentFinished(AgentEvent):
    kind: Literal["agent.finished"] = "agent.finished"
    status: Literal["complete", "failed", "cancelled"]
    summary: str = ""
    turns: int = 0
    usage: Usage = Usage()
    cost_usd: float = 0.0
    rss_mb: float = Field(default=0.0, description="resident memory of the agent's process at the end")


class ModelRetried(AgentEvent):
    """A model call failed with a retryable answer; it is tried again after `delay_s`."""

    kind: Literal["model.retried"] = "model.retried"
    model: str
    status: int | None = Field(description="HTTP status; None for a connection failure or timeout")
    try_no: int = Field(ge=1)
    delay_s: float
    error: str = ""


class BudgetEvent(EventBase):
    scope: str = Field(description="'run', or the id of the task whose budget it is")
    tokens: int = 0
    usd: float = 0.0
    limit_tokens: int | None = None
    limit_usd: float | None = None


class BudgetWarning(BudgetEvent):
    kind: Literal["budget.warning"] = "budget.warning"


class BudgetExhausted(BudgetEvent):
    """No new model call starts in this scope until a `budget.raised` lifts the limit."""

    kind: Literal["budget.exhausted"] = "budget.exhausted"


class BudgetRaised(EventBase):
    """Injected: lift a limit by these amounts, and the agents waiting on it go on."""

    kind: Literal["budget.raised"] = "budget.raised"
    scope: str = "run"
    add_tokens: int = Field(default=0, ge=0)
    add_usd: float = Field(default=0.0, ge=0)


class SpecIntent(EventBase):
    """The intent gate's decision: how much spec the goal needs, and why."""

    kind: Literal["spec.intent"] = "spec.intent"
    intent: Intent
    reason: str
    by: Literal["model", "rules"]


class SpecEvent(EventBase):
    phase: Phase
    attempt: int = Field(default=1, ge=1)


class SpecPhaseStarted(SpecEvent):
    kind: Literal["spec.phase_started"] = "spec.phase_started"
    feedback: str = Field(default="", description="what the previous attempt was told to fix")


class SpecPhaseEvaluated(SpecEvent):
    """The structural checks of one submission: below the threshold it is sent back with `issues`."""

    kind: Literal["spec.phase_evaluated"] = "spec.phase_evaluated"
    score: float = Field(ge=0, le=1)
    threshold: float
    passed: bool
    issues: tuple[str, ...] = ()


class SpecGateWaiting(SpecEvent):
    """A human must decide: `omoi approve` / `omoi reject`, or an injected `spec.gate_decided`."""

    kind: Literal["spec.gate_waiting"] = "spec.gate_waiting"
    artifacts: tuple[str, ...] = ()
    timeout_s: float | None = None


class SpecGateDecided(SpecEvent):
    kind: Literal["spec.gate_decided"] = "spec.gate_decided"
    decision: Literal["approve", "reject"]
    reason: str = ""
    by: Literal["auto", "reviewer", "human", "timeout"] = "human"


class SpecPhaseCompleted(SpecEvent):
    kind: Literal["spec.phase_completed"] = "spec.phase_completed"
    artifacts: tuple[str, ...] = ()
    commit: str


class SpecPhaseFailed(SpecEvent):
    kind: Literal["spec.phase_failed"] = "spec.phase_failed"
    reasons: tuple[str, ...]


class SpecFinished(EventBase):
    """The spec is done: its tasks were published as `task.added`, based on `commit`."""

    kind: Literal["spec.finished"] = "spec.finished"
    status: Literal["succeeded", "failed"]
    spec_dir: str = ""
    branch: str = ""
    commit: str | None = None
    tasks: int = 0
    error: str | None = None


MergeHow = Literal["rule", "rerun", "agent", "resolver", "human"]
Rung = Literal["rerun", "agent", "resolver", "human"]


class MergeEvent(TaskEvent):
    """Something the integrator (the run's merge queue) did with a task's branch."""


class MergeQueued(MergeEvent):
    kind: Literal["merge.queued"] = "merge.queued"
    commit: str = Field(description="the branch tip that is to be merged")


class MergeStarted(EventBase):
    """A batch of queued branches is merged onto the integration head, then verified."""

    kind: Literal["merge.started"] = "merge.started"
    tasks: tuple[str, ...]
    head: str


class MergeConflicted(MergeEvent):
    """git could not merge the branch by itself; `next` is the rung of the ladder that takes it."""

    kind: Literal["merge.conflicted"] = "merge.conflicted"
    files: tuple[str, ...]
    head: str
    next: Literal["rule", "regenerate", "rerun", "agent", "resolver", "human", "fail"]
    detail: str = ""


class MergeResolved(MergeEvent):
    kind: Literal["merge.resolved"] = "merge.resolved"
    files: tuple[str, ...]
    how: MergeHow
    detail: str = ""


class MergeSucceeded(MergeEvent):
    """The branch is on the integration branch: `head` is its new commit (verified)."""

    kind: Literal["merge.succeeded"] = "merge.succeeded"
    head: str
    files: tuple[str, ...] = Field(default=(), description="files the merge changed on the head")


class MergeFailed(MergeEvent):
    """The branch will not be merged: its dependents are skipped and the run fails."""

    kind: Literal["merge.failed"] = "merge.failed"
    reason: str
    output_tail: str = ""


class MergeNeedsHuman(MergeEvent):
    """A person resolves it: `omoi resolve RUN_ID TASK_ID` (optionally `--take ours|theirs`)."""

    kind: Literal["merge.needs_human"] = "merge.needs_human"
    files: tuple[str, ...]
    head: str
    timeout_s: float | None = None


class MergeHumanResolved(MergeEvent):
    """Injected by `omoi resolve`: `branch` merges the task branch as the person left it."""

    kind: Literal["merge.human_resolved"] = "merge.human_resolved"
    take: Literal["branch", "ours", "theirs"] = "branch"


class MergeConflictPredicted(EventBase):
    """The radar: these running branches (or one, against the head) would conflict in `files`."""

    kind: Literal["merge.conflict_predicted"] = "merge.conflict_predicted"
    tasks: tuple[str, ...]
    files: tuple[str, ...]
    head: str


class VerifyEvent(EventBase):
    tasks: tuple[str, ...]
    commit: str = Field(description="the candidate head the checks ran on")
    round: int = Field(default=1, ge=1, description="2 for the retry that filters a flaky failure")


class VerifyStarted(VerifyEvent):
    kind: Literal["verify.started"] = "verify.started"
    commands: tuple[str, ...]


class VerifyPassed(VerifyEvent):
    kind: Literal["verify.passed"] = "verify.passed"
    duration_s: float = 0.0


class VerifyFailed(VerifyEvent):
    kind: Literal["verify.failed"] = "verify.failed"
    command: str = ""
    exit_code: int | None = None
    output_tail: str = ""


class TaskRestartRequested(TaskEvent):
    """Stop this attempt and start the task again from the integration head (its last good
    commit): a retry that does not count as a failure. Asked by the guardian."""

    kind: Literal["task.restart_requested"] = "task.restart_requested"
    reason: str
    keep_work: bool = Field(
        default=False,
        description="the next attempt goes on from the work the branch holds (its last checkpoint)",
    )


class AgentPaused(TaskEvent):
    """The task's agent waits before its next model call until an `agent.resumed` for the task."""

    kind: Literal["agent.paused"] = "agent.paused"
    reason: str = "paused by user"


class AgentResumed(TaskEvent):
    kind: Literal["agent.resumed"] = "agent.resumed"


class DiscoveryRecorded(TaskEvent):
    """A discovery the discovery actor accepted; `task_id` is the reporter."""

    kind: Literal["discovery.recorded"] = "discovery.recorded"
    discovery: int = Field(description="seq of the agent.discovery event")
    title: str


class DiscoveryTaskSpawned(TaskEvent):
    """The task a discovery became, added to the live DAG; `task_id` is the reporter."""

    kind: Literal["discovery.task_spawned"] = "discovery.task_spawned"
    discovery: int
    spec: TaskSpec
    depth: int = Field(
        ge=1, description="1 when a planned task reported it, one more per discovered reporter"
    )
    blocks: bool = Field(default=False, description="the reporter waits for it to merge, then starts again")


class DiscoveryRejected(TaskEvent):
    kind: Literal["discovery.rejected"] = "discovery.rejected"
    discovery: int
    reason: str
    duplicate_of: str | None = Field(default=None, description="the task or discovery it repeats")


class DiscoveryAwaiting(TaskEvent):
    """A discovery waits at its gate (`OMOI_DISCOVERY_GATE`): for a reviewer model (`review`) or
    for `omoi approve|reject RUN_ID --discovery SEQ` (`human`, and a review that failed, `note`
    says why); a reporter it blocks waits with it."""

    kind: Literal["discovery.awaiting"] = "discovery.awaiting"
    discovery: int = Field(description="seq of the agent.discovery event")
    title: str
    gate: Literal["human", "review"] = "human"
    note: str = ""


class DiscoveryDecided(TaskEvent):
    """The decision on a discovery waiting at its gate: a person's (`by: human`) or a reviewer
    model's (`by: reviewer`)."""

    kind: Literal["discovery.decided"] = "discovery.decided"
    discovery: int = Field(description="seq of the agent.discovery event")
    decision: Literal["approve", "reject"]
    reason: str = ""
    by: str = "human"


class ConductorActed(TaskEvent):
    """Something the conductor did about the run as a whole; `task_id` is the task it acted on.
    `order`: that task waits for `kept` to be merged (both change `files`), then restarts from the
    integration head. `pause_duplicate`: the same, because it does the same work as `kept`.
    `message`: `reason` goes into that task's agent's next model request. `diagnose`: the run
    stalled on that task's question (or pause) for too long; the conductor asked the discovery
    actor for a diagnostic task (the `agent.discovery` it wrote with this event)."""

    kind: Literal["conductor.acted"] = "conductor.acted"
    action: Literal["order", "pause_duplicate", "message", "diagnose"]
    kept: str = Field(default="", description="the task that goes on")
    prediction: int = Field(default=0, description="seq of the event it answers")
    files: tuple[str, ...] = ()
    reason: str


class GuardianReplanned(TaskEvent):
    """The ladder's replan rung: a planner's rewrite of the task for `attempt` (the new one), or
    why there is none (`error`; the attempt then goes on with the rung's fixed words)."""

    kind: Literal["guardian.replanned"] = "guardian.replanned"
    intervention: int = Field(description="seq of the guardian.intervened event (action replan)")
    prompt: str = ""
    rationale: str = ""
    note: str = Field(default="", description="what the attempt's first request carries")
    error: str = ""
    model: str = ""
    usage: Usage = Usage()
    cost_usd: float = Field(default=0.0, ge=0)


class ConductorAssessed(EventBase):
    """The conductor's look at the whole run, on its timer, written when what it sees changed.
    When two or more agents run, or the run is stalled or over its budget pace, a model judges the
    run's coherence from excerpts first (`coherence`, `score`, `issues`; "unknown" with `error`
    when the call failed or its answer was unusable; "not asked" otherwise)."""

    kind: Literal["conductor.assessed"] = "conductor.assessed"
    running: tuple[str, ...] = ()
    waiting: tuple[str, ...] = Field(default=(), description="what waits on a person, and since when")
    overlaps: tuple[str, ...] = Field(default=(), description="running tasks that name the same files")
    stalled: bool = Field(default=False, description="tasks are left, none runs, none can start")
    spent_usd: float = 0.0
    spent_tokens: int = 0
    done: float = Field(default=0.0, ge=0, le=1, description="share of the agent tasks finished")
    pace: Literal["ok", "over", "no budget"] = "no budget"
    summary: str
    coherence: Literal["coherent", "incoherent", "unknown", "not asked"] = "not asked"
    score: float | None = Field(default=None, ge=0, le=1, description="coherence, 0 (at odds) to 1")
    issues: tuple[str, ...] = Field(default=(), description="what the model found at odds, one per line")
    error: str = ""
    model: str = ""
    usage: Usage = Usage()
    cost_usd: float = Field(default=0.0, ge=0)


GuardianAction = Literal["steer", "restart", "replan", "cancel", "ask_human"]


class SignalSeen(BaseModel):
    """A deterministic signal as the guardian saw it (policies.supervision.signals)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    level: Literal["warn", "act"]
    evidence: str


class GuardianIntervened(TaskEvent):
    """A guardian's decision about one agent attempt, made on the log up to `seen`."""

    kind: Literal["guardian.intervened"] = "guardian.intervened"
    action: GuardianAction
    signals: tuple[SignalSeen, ...]
    message: str = Field(description="what the agent (or a person) is told")
    turn: int = Field(ge=0, description="the agent's last turn when it was decided")
    seen: int = Field(ge=0, description="the seq of the last event the decision read")


class GuardianDelivered(AgentEvent):
    """A steer went into a model request: the acknowledgement, written by the agent itself."""

    kind: Literal["guardian.delivered"] = "guardian.delivered"
    intervention: int = Field(description="seq of the guardian.intervened event")
    turn: int = Field(ge=1, description="the model turn whose request carried it")


class GuardianOutcome(TaskEvent):
    """Whether an intervention worked: the signals it acted on cleared within a few turns."""

    kind: Literal["guardian.outcome"] = "guardian.outcome"
    intervention: int
    worked: bool
    turns: int = Field(ge=0, description="turns between the intervention and this judgement")
    still: tuple[str, ...] = Field(default=(), description="the signals still firing")


class GuardianAssessed(TaskEvent):
    """A model's assessment of one agent attempt, asked for on a timer when a signal or the cheap
    filter said so (`reason`). `verdict` is "unknown" when the call failed or the answer was not
    usable (`error` says why): never "aligned" by default."""

    kind: Literal["guardian.assessed"] = "guardian.assessed"
    turn: int = Field(ge=0, description="the agent's last turn when it was asked")
    reason: str = Field(description="why the model was asked (the signal or filter that said so)")
    verdict: Literal["aligned", "drifting", "unknown"]
    score: float | None = Field(default=None, ge=0, le=1, description="alignment, 0 (lost) to 1")
    needs_steering: bool = False
    steering_type: Literal["guidance", "correction", "emergency"] | None = None
    recommendation: str = ""
    summary: str = ""
    error: str = ""
    model: str = ""
    usage: Usage = Usage()
    cost_usd: float = Field(default=0.0, ge=0)


class ScheduleSpec(BaseModel):
    """When a schedule fires (`at` once, or `every` seconds from `start`, until `until` or `count`
    fires) and what it injects: an `event` (`{"kind": ..., "data": {...}}`, an allowed kind) or a
    `message` to a task's agent (`{"task_id": ..., "text": ...}`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: str = Field(default_factory=lambda: "s-" + uuid.uuid4().hex[:8], pattern=r"^[A-Za-z0-9._-]{1,64}$")
    at: AwareDatetime | None = None
    every: float | None = Field(default=None, ge=1, le=366 * 86400, description="seconds between fires")
    start: AwareDatetime | None = Field(
        default=None, description="the first fire of `every` (default: one interval on)"
    )
    until: AwareDatetime | None = None
    count: int | None = Field(default=None, ge=1, description="fires at most this many times")
    event: dict[str, Any] | None = None
    message: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_of_each(self) -> ScheduleSpec:
        if (self.at is None) == (self.every is None):
            raise ValueError("give exactly one of `at` (once) and `every` (seconds)")
        if (self.event is None) == (self.message is None):
            raise ValueError("give exactly one of `event` and `message`")
        if self.at is not None and (self.start or self.until or self.count):
            raise ValueError("`start`, `until` and `count` are for `every`")
        return self


class ScheduleCreated(EventBase):
    """A schedule of the run (`omoi schedule`, `POST /v1/runs/{id}/schedules`); the run's
    scheduler fires it on the clock, and rebuilds it from the log after a restart."""

    kind: Literal["schedule.created"] = "schedule.created"
    schedule: ScheduleSpec


class ScheduleFired(EventBase):
    """The `n`-th fire of a schedule, due at `due`; its payload event (id `<this id>-payload`)
    is in the same batch, unless `skipped`: the previous message is not read yet (overlap skip)."""

    kind: Literal["schedule.fired"] = "schedule.fired"
    schedule_id: str
    n: int = Field(ge=1)
    due: AwareDatetime
    skipped: bool = False
    reason: str = ""


class ScheduleCancelled(EventBase):
    kind: Literal["schedule.cancelled"] = "schedule.cancelled"
    schedule_id: str
    reason: str = "cancelled by user"


class DeliveryReady(EventBase):
    """`omoi pr` wrote the pull request's text (and pushed, or opened it, when asked)."""

    kind: Literal["delivery.ready"] = "delivery.ready"
    branch: str
    commit: str
    description: str = Field(description="path of the Markdown file")
    pushed_to: str = ""
    pull_request: str = ""


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
    | TaskCancelRequested
    | AgentStarted
    | AgentTurn
    | AgentToolCalled
    | AgentHeartbeat
    | AgentToolDenied
    | AgentAcceptance
    | AgentEscalated
    | AgentNeedsInput
    | AgentAnswered
    | AgentMessage
    | ScheduleCreated
    | ScheduleFired
    | ScheduleCancelled
    | AgentDiscovery
    | AgentFinished
    | ModelRetried
    | BudgetWarning
    | BudgetExhausted
    | BudgetRaised
    | SpecIntent
    | SpecPhaseStarted
    | SpecPhaseEvaluated
    | SpecGateWaiting
    | SpecGateDecided
    | SpecPhaseCompleted
    | SpecPhaseFailed
    | SpecFinished
    | MergeQueued
    | MergeStarted
    | MergeConflicted
    | MergeResolved
    | MergeSucceeded
    | MergeFailed
    | MergeNeedsHuman
    | MergeHumanResolved
    | MergeConflictPredicted
    | VerifyStarted
    | VerifyPassed
    | VerifyFailed
    | DeliveryReady
    | TaskRestartRequested
    | AgentPaused
    | AgentResumed
    | GuardianIntervened
    | GuardianDelivered
    | GuardianOutcome
    | GuardianAssessed
    | GuardianReplanned
    | ConductorAssessed
    | DiscoveryRecorded
    | DiscoveryTaskSpawned
    | DiscoveryRejected
    | DiscoveryAwaiting
    | DiscoveryDecided
    | ConductorActed,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_kinds() -> frozenset[str]:
    """Every kind the log knows."""
    return frozenset(cls.model_fields["kind"].default for cls in get_args(get_args(Event)[0]))


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    """Parse one event from JSON or a dict; an unknown kind or a bad field raises EventError."""
    try:
        if isinstance(data, dict):
            return EVENT_ADAPTER.validate_python(data)
        return EVENT_ADAPTER.validate_json(data)
    except ValidationError as exc:
        raise EventError(f"invalid event: {_describe(exc)}") from exc


def check_readable(events: Sequence[Event]) -> None:
    """Each event, written as the log writes it and read back as the log reads it: what someone
    injects can never make a log unreadable. InputError names the kind and the field."""
    for ev in events:
        try:
            parse_event(ev.model_dump_json())
        except (EventError, ValueError) as exc:
            raise InputError(f"event {ev.kind} is refused, nothing was written: {exc}") from exc


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
