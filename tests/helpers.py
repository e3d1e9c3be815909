"""Test helpers: reading runs back from their logs, waiting on events with a deadline."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from omoi.runtime.log.events import Event
from omoi.runtime.ports import BusPort
from omoi.runtime.run.execution import TaskRequest

Predicate = Callable[[list[Event]], bool]


def wait_for_events(
    read: Callable[[], list[Event]], predicate: Predicate, timeout: float = 60.0
) -> list[Event]:
    """Poll `read` (a long-poll or log read) until the events so far satisfy `predicate`.

    This waits on events, never on time: the deadline only bounds a hung test."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.extend(read())
        if predicate(seen):
            return seen
    raise AssertionError(
        f"events never satisfied the condition within {timeout}s; saw "
        f"{[(e.kind, getattr(e, 'task_id', '')) for e in seen][-20:]}"
    )


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a condition on the outside world (a file a command writes) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


def has(kind: str, task_id: str | None = None, attempt: int | None = None) -> Predicate:
    def check(events: list[Event]) -> bool:
        return any(
            e.kind == kind
            and (task_id is None or getattr(e, "task_id", None) == task_id)
            and (attempt is None or getattr(e, "attempt", None) == attempt)
            for e in events
        )

    return check


def of(events: list[Event], kind: str, task_id: str | None = None) -> list[Event]:
    return [
        e for e in events if e.kind == kind and (task_id is None or getattr(e, "task_id", None) == task_id)
    ]


def interval(events: list[Event], task_id: str) -> tuple[datetime, datetime]:
    """When the task's (last) attempt started and when it succeeded."""
    start = of(events, "task.started", task_id)[-1].ts
    end = of(events, "task.succeeded", task_id)[-1].ts
    return start, end


def write_plan(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def gate_cmd(gate: Path, then: str) -> str:
    """A command that waits (bounded) until `gate` exists, then runs `then`: the test decides when
    a task may finish, so nothing depends on how fast the machine is."""
    return f"for i in $(seq 1 600); do [ -e {gate} ] && break; sleep 0.1; done; [ -e {gate} ] && {then}"


def task_request(
    repo: Path | None,
    task: str,
    command: str = "true",
    *,
    run_id: str = "r",
    base: str = "",
    **fields: object,
) -> TaskRequest:
    """Attempt 1 of `task` on branch `omoi/<run_id>/<task>`, from `base` or else `repo`'s HEAD."""
    if not base and repo is not None:
        import subprocess

        base = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
    return TaskRequest(
        run_id=run_id,
        task_id=task,
        attempt=1,
        command=command,
        timeout=60,
        branch=f"omoi/{run_id}/{task}",
        base=base,
        **fields,
    )  # type: ignore[arg-type]


OMOI = [sys.executable, "-m", "omoi.cli"]


def omoi(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `omoi` command as a user runs it, in its own process."""
    return subprocess.run(
        [*OMOI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "RAY_AUTH_MODE": "token", **(env or {})},
    )


async def first_event(
    bus: BusPort, kind: str, timeout: float = 30.0, where: Callable[[Event], bool] | None = None
) -> Event:
    """The first event of `kind` (that `where` accepts) in the bus's log, waiting on it
    (long-poll), never on time."""
    after = 0
    async with asyncio.timeout(timeout):
        while True:
            for e in await bus.read(after, None, timeout=5.0):
                after = e.seq or after
                if e.kind == kind and (where is None or where(e)):
                    return e


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Poll an async condition on the world outside the test's control (a process doing real I/O)
    until it holds; the deadline only bounds a hung test."""
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110 - there is no event to wait on for this state
            await asyncio.sleep(0.01)
