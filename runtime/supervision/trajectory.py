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
    digest: str = ""  # of the content a write_file wrote


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
    bounces: list[int] = field(default_factory=list)  # seqs of the acceptance rounds that failed
    started_at: datetime | None = None
    last_work: datetime | None = None  # the newest turn or tool call
    last_seen: datetime | None = None  # the newest sign of life: any event of the attempt
    turns: int = 0
    owed: int = 0  # tool calls the newest turn asked for whose results are not in yet
    tokens: int = 0
    cost_usd: float = 0.0

    def apply(self, ev: Event) -> None:
        if getattr(ev, "task_id", None) != self.task_id or getattr(ev, "attempt", None) != self.attempt:
            return
        self.last_seen = max(self.last_seen or ev.ts, ev.ts)
        match ev.kind:
            case "agent.started":
                self.started_at = self.started_at or ev.ts
                self.last_work = ev.ts
            case "agent.turn":
                self.turns, self.last_work, self.owed = ev.turn, ev.ts, len(ev.tool_calls)
                self.tokens += ev.usage.total
                self.cost_usd += ev.cost_usd
            case "agent.tool_called":
                self.last_work, self.owed = ev.ts, max(0, self.owed - 1)
                self._call(ev.seq or 0, ev.turn, ev.tool, ev.arguments, ev.result, ev.is_error)
            case "agent.acceptance" if not ev.passed:
                self.bounces.append(ev.seq or 0)
            case _:
                pass

    def _call(self, seq: int, turn: int, tool: str, arguments: str, result: str, is_error: bool) -> None:
        args = _parse(arguments)
        path = str(args.get("path", "")) if tool in FILE_TOOLS else ""
        malformed = is_error and result.startswith(MALFORMED)
        key = f"{tool} {json.dumps(args, sort_keys=True)}"
        error = result[:400] if is_error else None
        digest = ""
        if tool == "write_file" and not is_error:
            digest = hashlib.sha256(str(args.get("content", "")).encode()).hexdigest()[:16]
        call = Call(seq, turn, tool, key, path, error, result.startswith("timed out"), malformed, digest)
        self.calls.append(call)
        self._effects(call, args)

    def _effects(self, call: Call, args: dict[str, Any]) -> None:
        tool, path, seq = call.tool, call.path, call.seq
        if call.error is not None:
            return
        if tool == "read_file":
            self.reads.add(path)
        elif tool in EDITS:
            if tool == "write_file" and path not in self.reads:
                self.created.add(path)
            if call.digest:
                self.contents.setdefault(path, []).append(call.digest)
            self.last_edit = seq
        elif tool == "run":
            self.last_run = seq
        elif tool == "finish" and args.get("status") == "complete":
            self.finished_untested = self.last_edit > self.last_run

    @property
    def settled(self) -> bool:
        """Every tool call of the newest turn is in: signals are judged at turn boundaries, so
        what they say does not depend on how the log's reader happened to batch events."""
        return self.owed == 0

    @property
    def bounced(self) -> int:
        return len(self.bounces)

    def since(self, seq: int) -> Trajectory:
        """The trajectory as signals should judge it after an intervention made at `seq`: what
        came before it was already acted on. What the agent read and wrote stays known."""
        if seq == 0:
            return self
        later = Trajectory(self.task_id, self.attempt, self.declared, reads=set(self.reads))
        later.created = set(self.created)
        later.started_at, later.last_work, later.last_seen = self.started_at, self.last_work, self.last_seen
        later.turns, later.tokens, later.cost_usd = self.turns, self.tokens, self.cost_usd
        later.owed = self.owed
        later.bounces = [b for b in self.bounces if b > seq]
        for call in self.calls:
            if call.seq > seq:
                later.calls.append(call)
                later._effects(call, {"status": "complete"} if self._finished(call) else {})
        return later

    def _finished(self, call: Call) -> bool:
        return call.tool == "finish" and '"status": "complete"' in call.key


def _parse(arguments: str) -> dict[str, Any]:
    """The call's arguments; an argument string cut short by the event cap is kept as it is."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"(capped)": arguments}
    return value if isinstance(value, dict) else {"(value)": value}
