"""One agent attempt's trajectory, folded from its events: what the guardian's signals read.

Every change comes through `apply`, live or replayed, so a guardian that restarts rebuilds the
same trajectory from the log. It keeps what the signals need (each call's identity, errors, the
files read and written, when work last happened, spend), not the whole conversation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from omoi.runtime.log.events import Event

FILE_TOOLS = frozenset({"read_file", "write_file", "edit_file"})
EDITS = frozenset({"write_file", "edit_file"})
MALFORMED = ("invalid arguments for ", "there is no tool ")


@dataclass(frozen=True)
class Call:
    """One tool call: `key` is its identity (the tool and its arguments, normalised), `error`
    what the model was told when the call failed (None when it did not)."""

    seq: int
    turn: int
    tool: str
    key: str
    path: str = ""
    error: str | None = None
    timed_out: bool = False
    malformed: bool = False


@dataclass
class Trajectory:
    task_id: str
    attempt: int
    declared: tuple[str, ...] = ()  # the files the task names (its agent's context)
    calls: list[Call] = field(default_factory=list)
    reads: set[str] = field(default_factory=set)
    created: set[str] = field(default_factory=set)  # written whole before any read: the agent's own
    contents: dict[str, list[str]] = field(default_factory=dict)  # path -> hashes of what was written
    last_edit: int = 0  # seq of the newest edit
    last_run: int = 0  # seq of the newest command run
    finished_untested: bool = False  # a finish came with no command run since the last edit
    bounced: int = 0  # acceptance rounds that failed
    started_at: datetime | None = None
    last_work: datetime | None = None  # the newest turn or tool call
    turns: int = 0
    tokens: int = 0
    cost_usd: float = 0.0

    def apply(self, ev: Event) -> None:
        if getattr(ev, "task_id", None) != self.task_id or getattr(ev, "attempt", None) != self.attempt:
            return
        match ev.kind:
            case "agent.started":
                self.started_at = self.started_at or ev.ts
                self.last_work = ev.ts
            case "agent.turn":
                self.turns, self.last_work = ev.turn, ev.ts
                self.tokens += ev.usage.total
                self.cost_usd += ev.cost_usd
            case "agent.tool_called":
                self.last_work = ev.ts
                self._call(ev.seq or 0, ev.turn, ev.tool, ev.arguments, ev.result, ev.is_error)
            case "agent.acceptance" if not ev.passed:
                self.bounced += 1
            case _:
                pass

    def _call(self, seq: int, turn: int, tool: str, arguments: str, result: str, is_error: bool) -> None:
        args = _parse(arguments)
        path = str(args.get("path", "")) if tool in FILE_TOOLS else ""
        malformed = is_error and result.startswith(MALFORMED)
        key = f"{tool} {json.dumps(args, sort_keys=True)}"
        error = result[:400] if is_error else None
        self.calls.append(Call(seq, turn, tool, key, path, error, result.startswith("timed out"), malformed))
        if is_error:
            return
        if tool == "read_file":
            self.reads.add(path)
        elif tool in EDITS:
            if tool == "write_file" and path not in self.reads:
                self.created.add(path)
            if tool == "write_file":
                digest = hashlib.sha256(str(args.get("content", "")).encode()).hexdigest()[:16]
                self.contents.setdefault(path, []).append(digest)
            self.last_edit = seq
        elif tool == "run":
            self.last_run = seq
        elif tool == "finish" and args.get("status") == "complete":
            self.finished_untested = self.last_edit > self.last_run


def _parse(arguments: str) -> dict[str, Any]:
    """The call's arguments; an argument string cut short by the event cap is kept as it is."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"(capped)": arguments}
    return value if isinstance(value, dict) else {"(value)": value}
