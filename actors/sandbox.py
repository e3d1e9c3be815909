"""A sandbox slot: runs task attempts one after another, each in a fresh workspace."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog

from omoi.runtime.errors import AgentLostError, OmoiError, SandboxError
from omoi.runtime.log.events import TaskOutput
from omoi.runtime.ports import AgentsPort, BusPort
from omoi.runtime.run.execution import TaskRequest, TaskResult
from omoi.runtime.sandbox.seam import Sandbox, SandboxBackend

log = structlog.get_logger("omoi.sandbox")
_MEMO = 16
# What an agent may ask of its task's sandbox: the file and command API, a work-in-progress
# checkpoint and whether it is alive (for its heartbeat), never the final commit or destroy.
TOOL_OPS = frozenset(
    {"exec", "read_file", "write_file", "list_files", "search", "diff", "checkpoint", "alive"}
)


class SandboxActor:
    """Owns: the attempts it is running or ran recently, keyed (task id, attempt), with their results,
    and those cancelled before they arrived.

    Handles `execute` (idempotent: a repeated call for the same attempt joins the running one or gets
    its result, which is how a restarted graph re-attaches), `reattach` and `cancel`. An agent task
    is handed to an agent (via `agents`), which calls back with `tool` to work in the attempt's
    sandbox; its work is committed only when it ends complete. Emits `task.output` with the capped
    tail of the command's output; the graph emits the task's status.
    If it dies, or an attempt's agent dies: the attempt is lost; the graph sees that (an error
    from the call, or `reattach` returning None) and retries the task without counting a failure.
    Work is only on the task branch once committed, so nothing half-done survives to be merged."""

    def __init__(
        self,
        name: str,
        bus: BusPort,
        backend: SandboxBackend,
        node: str = "",
        agents: AgentsPort | None = None,
    ) -> None:
        self._name, self._bus, self._backend, self._node, self._agents = name, bus, backend, node, agents
        self._runs: dict[tuple[str, int], asyncio.Task[TaskResult]] = {}
        self._live: dict[tuple[str, int], Sandbox] = {}  # attempts whose agent may call `tool`
        self._cancelled: set[tuple[str, int]] = set()  # cancelled before they arrived

    async def tool(self, task_id: str, attempt: int, op: str, args: dict[str, Any]) -> Any:
        """One file or command operation for the agent of a running attempt."""
        sandbox = self._live.get((task_id, attempt))
        if sandbox is None:
            raise SandboxError(f"{self._name} has no running agent attempt {attempt} of task '{task_id}'")
        if op not in TOOL_OPS:
            raise SandboxError(f"'{op}' is not a sandbox operation an agent may use")
        return await getattr(sandbox, op)(**args)

    async def execute(self, request: TaskRequest) -> TaskResult:
        key = (request.task_id, request.attempt)
        if key in self._cancelled and key not in self._runs:  # the cancel came first
            return TaskResult(status="cancelled", error="cancelled before it started", node=self._node)
        if key not in self._runs:
            self._forget_finished()
            self._runs[key] = asyncio.create_task(self._execute(request))
        return await asyncio.shield(self._runs[key])

    async def prepare(self, agents: bool = False) -> None:
        """Get the backend ready before the first task arrives (a warm container, ...), and an
        agent too when agent tasks are expected."""
        await self._backend.warm()
        if agents and self._agents is not None:
            await self._agents.warm()

    async def reattach(self, task_id: str, attempt: int) -> TaskResult | None:
        run = self._runs.get((task_id, attempt))
        return None if run is None else await asyncio.shield(run)

    async def cancel(self, task_id: str, attempt: int) -> bool:
        """Stop the attempt. One not started here yet is remembered: a cancel can overtake the
        `execute` it is about (the graph may still be waiting for this slot to be placed)."""
        run = self._runs.get((task_id, attempt))
        if run is None:
            self._cancelled.add((task_id, attempt))
            while len(self._cancelled) > _MEMO:
                self._cancelled.pop()
            return False
        if run.done():
            return False
        run.cancel()
        return True

    def _forget_finished(self) -> None:
        done = [k for k, t in self._runs.items() if t.done()]
        for k in done[: max(0, len(done) - _MEMO)]:
            del self._runs[k]

    async def _execute(self, req: TaskRequest) -> TaskResult:
        log.debug(
            "attempt.start", run_id=req.run_id, task_id=req.task_id, attempt=req.attempt, actor=self._name
        )
        started = asyncio.get_running_loop().time()

        def result(**fields: Any) -> TaskResult:
            elapsed = asyncio.get_running_loop().time() - started
            return TaskResult(duration_s=elapsed, node=self._node, **fields)

        # Preparing runs git in a thread that a cancel cannot stop: wait for it, then clean up,
        # or the workspace it makes would be left behind.
        preparing = asyncio.ensure_future(self._backend.create(req))
        try:
            sandbox = await asyncio.shield(preparing)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await (await preparing).destroy()
            return result(status="cancelled", error="cancelled while preparing")
        except OmoiError as exc:
            return result(status="failed", error=f"cannot prepare sandbox: {exc}")
        try:
            if req.agent is not None:
                return await self._run_agent(req, sandbox, result)
            res = await sandbox.exec(req.command, req.timeout, req.env)
            if res.output:
                await self._bus.publish(
                    [
                        TaskOutput(
                            run_id=req.run_id,
                            task_id=req.task_id,
                            attempt=req.attempt,
                            source=self._name,
                            tail=res.output,
                            truncated=res.truncated,
                        )
                    ]
                )
            if res.exit_code != 0:
                why = f"timed out after {req.timeout:g}s" if res.timed_out else f"exit code {res.exit_code}"
                why += f" (killed: {res.killed_for})" if res.killed_for else ""
                return result(
                    status="failed",
                    exit_code=res.exit_code,
                    output_tail=res.output,
                    truncated=res.truncated,
                    error=f"command failed: {why}",
                )
            commit = await sandbox.commit(f"omoi: task {req.task_id}\n\n{req.command}\n")
            return result(
                status="succeeded",
                exit_code=0,
                output_tail=res.output,
                truncated=res.truncated,
                commit=commit or None,
            )
        except asyncio.CancelledError:
            return result(status="cancelled", error="cancelled")
        except AgentLostError:
            raise  # a dead agent process is an interruption (the graph retries it), not a failure
        except OmoiError as exc:
            return result(status="failed", error=str(exc))
        finally:
            await asyncio.shield(sandbox.destroy())

    async def _run_agent(
        self, req: TaskRequest, sandbox: Sandbox, result: Callable[..., TaskResult]
    ) -> TaskResult:
        if self._agents is None:
            return result(status="failed", error="this sandbox slot cannot start agents")
        key = (req.task_id, req.attempt)
        self._live[key] = sandbox
        try:
            outcome = await self._agents.run(req, self._name)
        finally:
            del self._live[key]
        if outcome.status != "complete":
            return result(status="failed", output_tail=outcome.summary, error=f"agent: {outcome.summary}")
        commit = await sandbox.commit(f"omoi: task {req.task_id}\n\n{outcome.summary}\n")
        return result(status="succeeded", exit_code=0, output_tail=outcome.summary, commit=commit or None)
