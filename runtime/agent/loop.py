"""The agent loop: model turns whose tool calls run in the task's sandbox, under the runtime's rules.

The loop is a mechanism. What a role may do, when a stopped agent is reminded, when acceptance
failures are repaired or escalated, all come from `rules` (see policies/). Every model turn and
tool call is published as an event: the trajectory that supervision reads. A turn goes on the log
with its tool calls when they are file operations (one publish per turn), before them when one
runs a command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from omoi.runtime.agent import prompts
from omoi.runtime.agent.tools import SLOW_TOOLS, ToolBox, cap, tool_definitions
from omoi.runtime.config import AgentSettings
from omoi.runtime.errors import OmoiError
from omoi.runtime.log.events import (
    AgentAcceptance,
    AgentAnswered,
    AgentDiscovery,
    AgentEscalated,
    AgentFinished,
    AgentHeartbeat,
    AgentNeedsInput,
    AgentStarted,
    AgentToolCalled,
    AgentToolDenied,
    AgentTurn,
    Event,
    GuardianDelivered,
    ModelRetried,
    Usage,
)
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.model.client import CallTag, ModelPort, ModelReply, Retry
from omoi.runtime.ports import BudgetPort, BusPort, SupervisionPort, SupervisorPort
from omoi.runtime.run.execution import AgentResult, TaskRequest
from omoi.runtime.sandbox.seam import Sandbox
from omoi.runtime.supervision.state import Note

Claim = Literal["complete", "blocked", "need_input"]
Action = Literal["remind", "check", "ask", "fail"]
log = structlog.get_logger("omoi.agent")

_MARKERS = re.compile(
    r"\[(?:(?P<complete>TASK COMPLETE)|BLOCKED:\s*(?P<blocked>.*?)|NEED INPUT:\s*(?P<need_input>.*?))\]\s*\Z",
    re.DOTALL,
)


@dataclass(frozen=True)
class Verdict:
    """What a submission check says: the tool result the model sees, whether the work stands,
    and `final` when the work is refused for good (the loop then ends failed with `text`)."""

    accepted: bool
    text: str
    final: bool = False


@dataclass(frozen=True)
class Submission:
    """A tool through which the agent hands in its work as data (a spec phase's document) rather
    than as files. `check` judges each call; an accepted call ends the loop complete. A refused
    one comes back to the model as the tool's error result, so its next turn sees the feedback."""

    name: str
    description: str
    schema: dict[str, Any]
    check: Callable[[dict[str, Any]], Awaitable[Verdict]]

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


class AgentRules(Protocol):
    """The decisions the loop asks for (policies.completion.RoleRules implements them)."""

    @property
    def role(self) -> str: ...

    def tools(self) -> frozenset[str]: ...

    def denial(self, tool: str, arguments: dict[str, Any]) -> str | None: ...

    def after_turn(self, claim: Claim | None, open_todos: int, continuations: int) -> tuple[Action, str]: ...

    def after_failed_acceptance(self, failed_rounds: int, streak: int) -> tuple[bool, bool, str]:
        """(try again, consult the oracle first, why not)."""
        ...

    def checkpoints(self, tools_run: Sequence[str]) -> bool:
        """Whether a turn that ran these tools may have changed files (its work in progress is
        then committed to the task's branch, where the merge queue's radar reads it)."""
        ...


def marker(text: str) -> tuple[Claim, str] | None:
    """A claim written as a marker at the very end of a message, and its reason or question."""
    m = _MARKERS.search(text.rstrip())
    if m is None:
        return None
    if m.group("complete"):
        return "complete", text[: m.start()].strip()
    if m.group("blocked") is not None:
        return "blocked", m.group("blocked").strip()
    return "need_input", m.group("need_input").strip()


@dataclass
class AgentLoop:
    """One conversation of one role about one task attempt."""

    request: TaskRequest
    model_name: str
    rules: AgentRules
    model: ModelPort
    sandbox: Sandbox
    bus: BusPort
    settings: AgentSettings = field(default_factory=AgentSettings)
    budget: BudgetPort | None = None
    oracle: tuple[str, AgentRules] | None = None  # (model, rules) to consult after failed rounds
    prompt: str | None = None  # the first message; default: the task's own
    holder: str = ""  # the actor whose death gives back this loop's concurrency leases
    actor: str = ""  # the actor that runs it, named in `agent.started` (default: the holder)
    node: str = ""  # the cluster node it runs on, for the status tree
    submission: Submission | None = None  # the work is handed in through this tool, not by finish
    supervision: SupervisionPort | None = None  # holds a paused agent; hands it the guardian's steers
    name: str = ""
    turns: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0

    def __post_init__(self) -> None:
        assert self.request.agent is not None, "an agent loop needs an agent task"
        self.spec = self.request.agent
        self.name = self.name or f"{self.request.task_id}/{self.request.attempt}/{self.rules.role}"
        self.tools = ToolBox(self.sandbox, self.request.timeout, self.settings.output_cap)
        self._consults = 0
        self._last_turn_seq = 0  # budgets are judged on a log that holds at least our own last turn
        self._last_seq = 0  # and supervision on one that holds all our events so far
        self._handed_in: Verdict | None = None  # the submission verdict that ended the work
        self._unrecorded: list[Event] = []  # this turn's record, published with its quick tool calls

    async def run(self) -> AgentResult:
        beat = asyncio.create_task(self._heartbeat())
        try:
            return await self._work()
        finally:
            # Cancelled until it is done: Python 3.11's `wait_for` can swallow a cancel that lands
            # as its timeout fires, and the beat would then go on forever (an attempt that never
            # ended, seen under load in CI).
            while not beat.done():
                beat.cancel()
                await asyncio.wait({beat}, timeout=1.0)

    async def _heartbeat(self) -> None:
        """While the agent waits (a long model call or command, a pause, a question), say the
        attempt is alive, at most one interval after its last event; a busy agent's events say so
        already. Only when its sandbox answers that it is alive too: a dead container or a hung
        sandbox actor misses beats, and three missed get the attempt restarted."""
        seen, wait = 0, self.settings.heartbeat_interval / 2
        while True:
            await asyncio.sleep(wait)
            if self._last_seq and self._last_seq == seen:
                try:
                    if await asyncio.wait_for(self.sandbox.alive(), wait):
                        await self._publish(AgentHeartbeat(**self._common()))
                    else:
                        log.warning("agent.sandbox_down", task_id=self.request.task_id)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a sandbox that does not answer, or the bus restarting: a beat missed
                    log.warning("agent.heartbeat_missed", task_id=self.request.task_id, exc_info=True)
            seen = self._last_seq

    async def _work(self) -> AgentResult:
        req = self.request
        actor = self.actor or self.holder
        started = AgentStarted(**self._common(), model=self.model_name, actor=actor, node=self.node)
        await self._publish(started)
        first = self.prompt or prompts.task_message(self.spec.prompt, req.acceptance, self.spec.context)
        messages: list[dict[str, Any]] = [{"role": "user", "content": first}]
        continuations = failed_rounds = streak = 0
        failures: list[str] = []
        while True:
            if self.turns >= self.settings.max_turns:
                return await self._end("failed", f"no result after {self.turns} model turns (the limit)")
            reply = await self._turn(messages)
            results, claim, ran = await self._tools(reply)
            if self.submission is None and self.rules.checkpoints(ran):
                await self._checkpoint()
            if (handed := self._handed_in) is not None:
                return await self._end("complete" if handed.accepted else "failed", handed.text)
            if claim is None:
                claim = marker(reply.text)
            if self.submission is not None and claim is not None and claim[0] == "complete":
                claim = None  # only an accepted submission completes this work
            if reply.tool_uses and claim is None:
                messages.append({"role": "user", "content": results})
                continue
            status, summary = claim if claim else (None, reply.text)
            action, reason = self.rules.after_turn(status, len(self.tools.open_todos()), continuations)
            if action == "fail":
                return await self._end("failed", f"blocked: {summary}" if status == "blocked" else reason)
            if action == "ask":
                follow = prompts.answer(await self._ask(summary))
            elif action == "remind":
                continuations += 1
                submit = self.submission.name if self.submission is not None else None
                follow = prompts.reminder(self.tools.open_todos(), status == "complete", submit)
            else:
                failure = await self._accept(failed_rounds + 1)
                if failure is None:
                    return await self._end("complete", summary)
                failed_rounds += 1
                streak += 1
                failures.append(failure[1])
                again, escalate, why = self.rules.after_failed_acceptance(failed_rounds, streak)
                if not again:
                    return await self._end("failed", why)
                advice = None
                if escalate and self.oracle is not None:
                    advice, streak = await self._consult(failures), 0
                follow = prompts.repair(*failure[0], failed_rounds, self.spec.repairs, advice)
            messages.append({"role": "user", "content": [*results, {"type": "text", "text": follow}]})

    # -- one model turn ----------------------------------------------------------------------------

    async def _turn(self, messages: list[dict[str, Any]]) -> ModelReply:
        notes = await self._notes(messages)
        tools = sorted(self.rules.tools())

        async def retried(r: Retry) -> None:
            await self._publish(
                ModelRetried(
                    **self._common(),
                    model=self.model_name,
                    status=r.status,
                    try_no=r.try_no,
                    delay_s=r.delay_s,
                    error=r.error,
                )
            )

        definitions = tool_definitions(self.rules.tools())
        if self.submission is not None:
            tools.append(self.submission.name)
            definitions = [*definitions, self.submission.definition()]
        reply = await self.model.complete(
            model=self.model_name,
            system=prompts.system_prompt(self.rules.role, tools),
            tools=definitions,
            messages=messages,
            tag=CallTag(self.request.task_id, self.rules.role, self.name, self.holder),
            on_retry=retried,
        )
        self.turns += 1
        self.usage += reply.usage
        self.cost_usd += reply.cost_usd
        messages.append(
            {"role": "assistant", "content": reply.content or [{"type": "text", "text": "(empty)"}]}
        )
        delivered = [  # acknowledged only now: the notes went into a request that was answered
            GuardianDelivered(**self._common(), intervention=n.ref, turn=self.turns) for n in notes
        ]
        self._unrecorded = [
            AgentTurn(
                **self._common(),
                turn=self.turns,
                model=self.model_name,
                text=cap(reply.text, self.settings.event_cap),
                tool_calls=tuple(t["name"] for t in reply.tool_uses),
                stop_reason=reply.stop_reason,
                usage=reply.usage,
                cost_usd=reply.cost_usd,
                latency_s=reply.latency_s,
                tries=reply.tries,
            ),
            *delivered,
        ]
        if any(self._submits(t["name"]) or t["name"] in SLOW_TOOLS for t in reply.tool_uses):
            await self._record([])  # on the log before a command that may run for minutes
        return reply

    async def _record(self, events: Sequence[Event]) -> list[int]:
        """Publish the turn not yet on the log, if any, then `events`, in one call; every publish
        of the loop goes through here, so our last seqs stay current. A turn whose tool calls are
        all quick is recorded with them: one publish per turn, not two, while its record waits
        only on milliseconds of file operations."""
        batch: list[Event] = [*self._unrecorded, *events]
        self._unrecorded = []
        if not batch:
            return []
        seqs = await self.bus.publish(batch)
        for ev, seq in zip(batch, seqs, strict=True):
            if isinstance(ev, AgentTurn):
                self._last_turn_seq = seq
        self._last_seq = max(self._last_seq, *seqs)
        return seqs

    async def _notes(self, messages: list[dict[str, Any]]) -> list[Note]:
        """Wait for the budget to admit the call and while the task is paused (one round trip when
        one peer does both); put what supervision has to say into the coming request, as text
        after the tool results (the Messages API wants those first)."""
        req, sup = self.request, self.supervision
        both = self.budget if isinstance(self.budget, SupervisorPort) else None
        if both is not None and both is sup:
            notes = await both.admit_and_judge(req.task_id, req.attempt, self._last_turn_seq, self._last_seq)
        else:
            if self.budget is not None:
                await self.budget.admit(req.task_id, self._last_turn_seq)
            if sup is None:
                return []
            notes = await sup.before_turn(req.task_id, req.attempt, self._last_seq)
        if notes:
            last = messages[-1]
            content = last["content"]
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
            last["content"] = [*blocks, *({"type": "text", "text": n.text} for n in notes)]
        return notes

    async def _tools(
        self, reply: ModelReply
    ) -> tuple[list[dict[str, Any]], tuple[Claim, str] | None, list[str]]:
        """Run the turn's tool calls in order; returns the tool results, a finish claim if any,
        and the names of the tools that ran (not denied)."""
        results: list[dict[str, Any]] = []
        events: list[Event] = []
        claim: tuple[Claim, str] | None = None
        ran: list[str] = []
        try:
            for use in reply.tool_uses:
                name, args = use["name"], use.get("input") or {}
                started = time.monotonic()
                if self._submits(name):
                    assert self.submission is not None
                    verdict = await self.submission.check(args)
                    text, is_error = verdict.text, not verdict.accepted
                    if verdict.accepted or verdict.final:
                        self._handed_in = verdict
                elif (denied := self.rules.denial(name, args)) is not None:
                    events.append(
                        AgentToolDenied(**self._common(), turn=self.turns, tool=name, reason=denied)
                    )
                    text, is_error = f"denied: {denied}", True
                else:
                    outcome = await self.tools.call(name, args)
                    text, is_error = outcome.text, outcome.is_error
                    ran.append(name)
                    if outcome.finish is not None:
                        claim = (outcome.finish.status, outcome.finish.summary)
                    if (d := outcome.discovery) is not None:
                        events.append(AgentDiscovery(**self._common(), **d.model_dump()))
                events.append(
                    AgentToolCalled(
                        **self._common(),
                        turn=self.turns,
                        tool=name,
                        arguments=cap(json.dumps(args, ensure_ascii=False), self.settings.event_cap),
                        result=cap(text, self.settings.event_cap),
                        is_error=is_error,
                        duration_s=time.monotonic() - started,
                    )
                )
                results.append(
                    {"type": "tool_result", "tool_use_id": use["id"], "content": text, "is_error": is_error}
                )
        except (
            BaseException
        ):  # a lost sandbox, a cancelled attempt: the turn's cost is on the log all the same
            if self._unrecorded:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(self._record([]))
            raise
        await self._record(events)
        return results, claim, ran

    async def _checkpoint(self) -> None:
        """Work in progress onto the branch. A checkpoint that cannot be made (the workspace over
        its quota, say) costs the radar a look, not the task: the final commit reports it."""
        try:
            await self.sandbox.checkpoint(
                f"omoi: task {self.request.task_id}, turn {self.turns} (in progress)"
            )
        except OmoiError as exc:
            log.warning("agent.checkpoint_skipped", task_id=self.request.task_id, error=str(exc))

    def _submits(self, tool: str) -> bool:
        return self.submission is not None and tool == self.submission.name and self._handed_in is None

    # -- completion discipline ---------------------------------------------------------------------

    async def _accept(self, round_no: int) -> tuple[tuple[str, int | None, str], str] | None:
        """Run the acceptance commands in order; None when all pass, else the failure (for the
        repair prompt) and a line of history (for the oracle)."""
        for command in self.request.acceptance:
            res = await self.sandbox.exec(command, self.request.timeout)
            if res.exit_code != 0:
                tail = cap(res.output, self.settings.output_cap)
                await self._publish(
                    AgentAcceptance(
                        **self._common(),
                        round=round_no,
                        passed=False,
                        command=command,
                        exit_code=res.exit_code,
                        output_tail=cap(res.output, self.settings.event_cap),
                    )
                )
                return (command, res.exit_code, tail), f"`{command}` exited {res.exit_code}:\n{tail}"
        await self._publish(AgentAcceptance(**self._common(), round=round_no, passed=True))
        return None

    async def _consult(self, failures: Sequence[str]) -> str:
        assert self.oracle is not None
        model, rules = self.oracle
        self._consults += 1
        oracle = AgentLoop(
            self.request.model_copy(update={"acceptance": ()}),
            model,
            rules,
            self.model,
            self.sandbox,
            self.bus,
            self.settings,
            self.budget,
            prompt=prompts.consultation(self.spec.prompt, failures),
            holder=self.holder,
            actor=self.actor,
            name=f"{self.request.task_id}/{self.request.attempt}/oracle-{self._consults}",
        )
        result = await oracle.run()
        self.usage += oracle.usage
        self.cost_usd += oracle.cost_usd
        advice = result.summary or "(the oracle gave no advice)"
        await self._publish(
            AgentEscalated(
                **self._common(), failed_rounds=len(failures), advice=cap(advice, self.settings.event_cap)
            )
        )
        return advice

    async def _ask(self, question: str) -> str:
        """Publish the question and wait for an `agent.answered` event for this task."""
        *_, after = await self._record([AgentNeedsInput(**self._common(), question=question)])
        async for event in Subscription(self.bus, ("agent.answered",), after=after, poll=30.0):
            if isinstance(event, AgentAnswered) and event.task_id == self.request.task_id:
                return event.answer
        raise AssertionError("a subscription never ends")

    # -- events ------------------------------------------------------------------------------------

    def _common(self) -> dict[str, Any]:
        r = self.request
        return {
            "run_id": r.run_id,
            "task_id": r.task_id,
            "attempt": r.attempt,
            "agent": self.name,
            "role": self.rules.role,
            "source": self.name,
        }

    async def _publish(self, event: Event) -> None:
        await self._record([event])

    async def _end(self, status: Literal["complete", "failed"], summary: str) -> AgentResult:
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        await self._publish(
            AgentFinished(
                **self._common(),
                status=status,
                summary=cap(summary, self.settings.event_cap),
                turns=self.turns,
                usage=self.usage,
                cost_usd=self.cost_usd,
                rss_mb=round(rss_mb, 1),
            )
        )
        return AgentResult(
            status=status, summary=summary, turns=self.turns, usage=self.usage, cost_usd=self.cost_usd
        )
