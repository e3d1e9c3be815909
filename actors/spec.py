"""The spec actor: turns a run's goal into its tasks, phase by phase, grounded in the code."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import structlog
from pydantic import BaseModel

from omoi.policies.spec import checks as spec_checks
from omoi.policies.spec import flow as spec_flow
from omoi.policies.spec.checks import Grounding
from omoi.runtime import names
from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.config import ModelSettings
from omoi.runtime.errors import SpecError
from omoi.runtime.explore.static import Exploration, explore
from omoi.runtime.log import events as E
from omoi.runtime.log.events import Event, Intent, Phase, RunStarted, SpecFinished
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.ports import BusPort
from omoi.runtime.spec import documents as docs
from omoi.runtime.spec import gates
from omoi.runtime.spec import prompts as spec_prompts
from omoi.runtime.spec.announce import SpecEvents
from omoi.runtime.spec.evaluation import Evaluation
from omoi.runtime.spec.state import SpecState, fold_spec
from omoi.runtime.spec.workspace import SpecWorkspace
from omoi.runtime.spec.writer import DocumentWriter

log = structlog.get_logger("omoi.spec")
Decision = tuple[
    Literal["approve", "reject"], Literal["auto", "reviewer", "human", "timeout"], str
]  # (decision, by, reason)


class _Failed(Exception):
    def __init__(self, phase: Phase, attempt: int, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.phase, self.attempt, self.reasons = phase, attempt, reasons


class SpecActor:
    """Owns: one run's spec (its progress is a fold over the log's `spec.*` events; its documents
    are committed on the spec branch) and the conversations of the spec's agents.

    Handles `run` (drive the spec to `spec.finished` and return it; a repeated call joins it).
    Emits `spec.intent`, `spec.phase_started`, `spec.phase_evaluated`, `spec.gate_waiting`,
    `spec.gate_decided` (auto, reviewer, timeout), `spec.phase_completed` or `spec.phase_failed`,
    then a `task.added` per task and `spec.finished`. Reads `spec.gate_decided` from people.
    Event ids derive from (run, phase, attempt, step), so a replayed step publishes nothing twice.
    If it dies: Ray restarts it and re-sends `run`; it folds the log, reopens the spec branch
    (completed phases are committed there) and resumes at the first unfinished phase, whose
    conversation starts over. Nothing reaches the graph before `spec.finished`."""

    def __init__(
        self,
        run_id: str,
        bus: BusPort,
        writer: DocumentWriter,
        models: ModelSettings,
        workspace: SpecWorkspace,
        clock: Clock | None = None,
    ) -> None:
        self._run_id, self._bus, self._writer, self._models = run_id, bus, writer, models
        self._ws, self._clock = workspace, clock or SystemClock()
        self._main: asyncio.Task[SpecFinished] | None = None
        self._events = SpecEvents(run_id)

    async def run(self) -> SpecFinished:
        if self._main is None:
            self._main = asyncio.create_task(self._drive())
        return await asyncio.shield(self._main)

    async def stop(self) -> None:
        """Stop driving the spec (shutdown, or a test standing in for a crash); the log and the
        spec branch have everything a successor needs."""
        if self._main is not None and not self._main.done():
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main

    # ---- the phases --------------------------------------------------------------------------------

    async def _drive(self) -> SpecFinished:
        state = fold_spec(await Subscription(self._bus, None, batch=5000).so_far())
        if state.finished is not None:
            return state.finished
        started = state.started
        if started is None or not started.goal:
            raise SpecError(f"run {self._run_id}: a spec needs a run.started event with a goal")
        await asyncio.to_thread(self._ws.open)
        if "explore" in state.completed:  # the exploration the earlier phases were grounded on
            exploration = Exploration.model_validate_json(self._ws.document("explore"))
        else:
            cache = self._ws.tree.git_dir / "omoi" / "explore-scans.json"  # host-side: no task reaches it
            exploration = await asyncio.to_thread(explore, self._ws.path, tree=self._ws.tree, cache=cache)
        intent = state.intent_kind or await self._classify(started.goal, exploration)
        documents: dict[str, BaseModel] = {}
        try:
            for phase in spec_flow.phases(intent):
                if phase in state.completed:
                    documents[phase] = self._load(phase)
                else:
                    documents[phase] = await self._phase(phase, started, state, exploration, documents)
                found = documents[phase]
                if isinstance(found, docs.Findings):
                    exploration = exploration.model_copy(update={"findings": found.findings})
        except _Failed as exc:
            await self._publish(
                E.SpecPhaseFailed(
                    **self._events.ids(exc.phase, exc.attempt, "failed"), reasons=tuple(exc.reasons)
                )
            )
            return await self._finish("failed", error=f"phase {exc.phase}: {exc}")
        tasks = documents["tasks"]
        assert isinstance(tasks, docs.Tasks), "the tasks phase writes a Tasks document"
        return await self._publish_tasks(tasks)

    async def _phase(
        self,
        phase: Phase,
        started: RunStarted,
        state: SpecState,
        exploration: Exploration,
        done: dict[str, BaseModel],
    ) -> BaseModel:
        reopened = state.gate_open(phase)
        attempt = reopened or state.attempts.get(phase, 0) + 1
        feedback, rejections = state.feedback.get(phase, ""), state.rejections.get(phase, 0)
        while True:
            if reopened:  # resumed at an open gate: its documents are committed
                doc, reopened = self._load(phase), None
                artifacts = tuple(f"{self._ws.spec_dir}/{name}" for name in docs.file_names(phase))
                commit = await asyncio.to_thread(self._ws.head)
            else:
                await self._publish(
                    E.SpecPhaseStarted(**self._events.ids(phase, attempt, "started"), feedback=feedback)
                )
                produced = await self._produce(phase, attempt, started.goal, exploration, done, feedback)
                if isinstance(produced, str):
                    raise _Failed(phase, attempt, [produced])
                doc = produced
                artifacts = await asyncio.to_thread(
                    self._ws.write, docs.render(phase, doc, started.goal, exploration)
                )
                commit = await asyncio.to_thread(self._ws.commit, f"omoi spec: {phase} (attempt {attempt})")
            gate: Decision = ("approve", "auto", "")
            if phase in spec_flow.GATED:
                gate = await self._gate(phase, attempt, started, artifacts, {**done, phase: doc})
            decision, by, reason = gate
            if phase in spec_flow.GATED and by != "human":  # a person's decision is in the log already
                await self._publish(
                    E.SpecGateDecided(
                        **self._events.ids(phase, attempt, "gate"), decision=decision, reason=reason, by=by
                    )
                )
            rejections += decision == "reject"
            after = spec_flow.after_gate(decision, rejections, by, reason)
            if after.action == "proceed":
                await self._publish(
                    E.SpecPhaseCompleted(
                        **self._events.ids(phase, attempt, "completed"), artifacts=artifacts, commit=commit
                    )
                )
                return doc
            if after.action == "fail":
                raise _Failed(phase, attempt, [after.reason])
            attempt, feedback = attempt + 1, after.reason

    async def _produce(
        self,
        phase: Phase,
        attempt: int,
        goal: str,
        exploration: Exploration,
        done: dict[str, BaseModel],
        feedback: str,
    ) -> BaseModel | str:
        if not spec_flow.needs_model(phase, done):
            return docs.Tasks(tasks=[docs.single_task(goal, exploration)])

        async def evaluated(submission: int, ev: Evaluation) -> None:
            await self._publish(self._events.evaluated(phase, attempt, submission, ev))

        prompt = spec_prompts.phase_message(phase, goal, exploration, docs.texts(done, goal), feedback)
        doc = await self._writer.write(
            task_id=names.spec_conversation(phase),
            attempt=attempt,
            role=spec_flow.role(phase),
            model_name=self._models.model_for(spec_flow.category(phase)),
            tool=spec_prompts.SUBMIT_TOOLS[phase],
            document=docs.DOCUMENTS[phase],
            prompt=prompt,
            evaluate=spec_checks.evaluator(Grounding.of(exploration), done),
            on_evaluated=evaluated,
            judgement=self._judgement(phase),
        )
        if isinstance(doc, str) and spec_flow.explorer_failed_stands(phase):
            log.warning("spec.explorer_failed", run_id=self._run_id, reason=doc)
            return docs.Findings.model_construct(findings=())
        return doc

    # ---- gates and the intent gate -----------------------------------------------------------------

    async def _gate(
        self,
        phase: Phase,
        attempt: int,
        started: RunStarted,
        artifacts: tuple[str, ...],
        done: dict[str, BaseModel],
    ) -> Decision:
        if started.gate == "auto":
            return "approve", "auto", ""
        if started.gate == "review":
            texts = {name: docs.markdown(d, started.goal) for name, d in done.items() if name != "explore"}
            model = self._models.model_for(spec_flow.category("review"))
            verdict = await gates.review(
                self._writer,
                model,
                phase,
                attempt,
                started.goal,
                texts,
                self._ws.spec_dir,
                self._judgement("review"),
            )
            if isinstance(verdict, str):
                raise _Failed(phase, attempt, [f"the reviewer gave no verdict: {verdict}"])
            decision, reason = spec_flow.review_decision(verdict.verdict, verdict.issues)
            return decision, "reviewer", reason
        timeout = started.gate_timeout_s
        await self._publish(
            E.SpecGateWaiting(
                **self._events.ids(phase, attempt, "waiting"), artifacts=artifacts, timeout_s=timeout
            )
        )
        decided = await gates.human_decision(self._bus, self._clock, phase, attempt, timeout)
        if decided is not None:
            return decided.decision, "human", decided.reason
        policy, why = spec_flow.on_timeout(started.on_gate_timeout, timeout or 0)
        if policy == "fail":
            raise _Failed(phase, attempt, [why])
        return ("approve" if policy == "approve" else "reject"), "timeout", why

    async def _classify(self, goal: str, exploration: Exploration) -> Intent:
        model = self._models.model_for(spec_flow.category("intent"))
        judged = self._judgement("intent", spec_flow.INTENT_RETRIES)
        decision = await gates.classify_intent(self._writer, model, goal, exploration, judged)
        intent, reason, by = spec_flow.intent_of(decision, goal, exploration.paths)
        await self._publish(self._events.intent(intent, reason, by))
        return intent

    def _judgement(self, step: str, retries: int = spec_flow.MAX_RETRIES) -> spec_flow.Judgement:
        return spec_flow.judgement(spec_flow.role(step), self._writer.settings.continuations, retries)

    def _load(self, phase: Phase) -> BaseModel:
        try:
            return docs.parse(phase, self._ws.document(phase))
        except SpecError as exc:
            raise _Failed(phase, 1, [str(exc)]) from exc

    async def _publish_tasks(self, tasks: docs.Tasks) -> SpecFinished:
        present = [n for n in ("requirements.md", "design.md") if self._ws.read(n) is not None]
        plan = docs.to_plan(tasks, f"spec {self._run_id}", [f"{self._ws.spec_dir}/{n}" for n in present])
        return await self._finish("succeeded", tasks=self._events.tasks_added(plan))

    async def _finish(
        self,
        status: Literal["succeeded", "failed"],
        *,
        tasks: list[Event] | None = None,
        error: str | None = None,
    ) -> SpecFinished:
        """The tasks and `spec.finished` go out in one append: the graph sees both or neither, so
        no task can start before the commit it must start from is known."""
        commit = (
            await asyncio.to_thread(self._ws.commit, "omoi spec: done") if status == "succeeded" else None
        )
        finished = self._events.finished(
            status,
            spec_dir=self._ws.spec_dir,
            branch=self._ws.branch,
            commit=commit,
            tasks=len(tasks or ()),
            error=error,
        )
        await self._bus.publish([*(tasks or ()), finished])
        await asyncio.to_thread(self._ws.close)  # the branch holds everything; gc would remove it too
        log.info("spec.finished", run_id=self._run_id, status=status, tasks=finished.tasks, error=error)
        return finished

    async def _publish(self, event: Event) -> None:
        await self._bus.publish([event])
