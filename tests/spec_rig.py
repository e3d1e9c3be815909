"""Driving the spec actor in-process: a real repository and worktree, a real (in-memory) bus, and
the real model client talking over HTTP to the scripted server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omoi.actors.bus import BusActor
from omoi.actors.spec import SpecActor
from omoi.policies.model_calls import ModelRules
from omoi.runtime.config import AgentSettings, model_settings
from omoi.runtime.git.repo import inspect_repo
from omoi.runtime.log.events import Event, RunStarted, SpecFinished, SpecGateDecided, SpecGateWaiting
from omoi.runtime.log.store import MemoryEventStore
from omoi.runtime.model.client import AnthropicModel
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script
from omoi.runtime.spec.workspace import SpecWorkspace
from omoi.runtime.spec.writer import DocumentWriter
from omoi.runtime.testing import FakeClock
from tests.helpers import first_event

RUN = "r1"


@dataclass
class SpecRig:
    repo: Path
    script: dict[str, Any]
    gate: str = "auto"
    timeout_s: float | None = None
    on_timeout: str = "fail"
    bus: BusActor = field(default_factory=lambda: BusActor(MemoryEventStore()))
    clock: FakeClock = field(default_factory=FakeClock)

    def __post_init__(self) -> None:
        self.server = ScriptedModelServer(parse_script(self.script)).start()
        info = inspect_repo(self.repo)
        self.workspace = SpecWorkspace(
            info.path, info.git_dir, info.git_dir / "omoi-test-wt", RUN, info.head_commit
        )
        self.started = RunStarted(
            run_id=RUN,
            repo=str(info.path),
            base_commit=info.head_commit,
            goal="add a greeting command",
            gate=self.gate,  # type: ignore[arg-type]
            gate_timeout_s=self.timeout_s,
            on_gate_timeout=self.on_timeout,  # type: ignore[arg-type]
        )

    def actor(self) -> SpecActor:
        models = model_settings(base_url=self.server.url)
        model = AnthropicModel(models, ModelRules(backoff=0.01, backoff_cap=0.05))
        writer = DocumentWriter(RUN, model, self.bus, self.workspace.sandbox(), AgentSettings())
        return SpecActor(RUN, self.bus, writer, models, self.workspace, self.clock)

    async def run(self) -> SpecFinished:
        await self.bus.publish([self.started])
        return await self.actor().run()

    def events(self, kind: str | None = None) -> list[Event]:
        return [e for e in self.bus._store.read(0) if kind is None or e.kind == kind]

    async def wait_for(self, kind: str, timeout: float = 30.0) -> Event:
        return await first_event(self.bus, kind, timeout)

    def stop(self) -> None:
        self.server.stop()

    async def decide_gates(
        self, decide: Callable[[SpecGateWaiting], SpecGateDecided | None], timeout: float = 60.0
    ) -> SpecFinished:
        """Answer every gate as it opens (long-polling the bus) until the spec finishes."""
        after = 0
        async with asyncio.timeout(timeout):
            while True:
                for e in await self.bus.read(after, ("spec.gate_waiting", "spec.finished"), timeout=5.0):
                    after = e.seq or after
                    if isinstance(e, SpecFinished):
                        return e
                    if isinstance(e, SpecGateWaiting) and (decision := decide(e)) is not None:
                        await self.bus.publish([decision])


def approve(w: SpecGateWaiting) -> SpecGateDecided:
    return SpecGateDecided(run_id=RUN, phase=w.phase, attempt=w.attempt, decision="approve")


async def until(condition: Callable[[], bool], turns: int = 10_000) -> None:
    """Let the event loop run until `condition` holds: yields to other tasks, never sleeps."""
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")
