"""What supervision knows about a run, as a fold over its log: each running agent attempt's
trajectory and what the guardian did about it, which tasks are paused, and the notes waiting to go
into an agent's next model request.

`apply` is the only way it changes, live or replayed, so a guardian that restarts rebuilds the
same state and never repeats an intervention it already published. A step costs what changed:
`take_changed` names the attempts that moved since the last look."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from omoi.runtime.log.events import Event, GuardianAction, GuardianAssessed
from omoi.runtime.supervision.trajectory import Trajectory

Attempt = tuple[str, int]


@dataclass(frozen=True)
class Note:
    """Text for an agent's next model request; `ref` is the seq of the event that wrote it."""

    ref: int
    text: str


@dataclass
class Pending:
    """An intervention whose outcome is not judged yet."""

    seq: int
    signals: tuple[str, ...]
    turn: int


@dataclass(frozen=True)
class Replan:
    """A replan decided for a task: its next attempt waits for the planner's rewrite."""

    intervention: int  # seq of the guardian.intervened event
    last: Trajectory  # the stopped attempt's
    why: str


@dataclass
class Watch:
    """One agent attempt under a guardian."""

    trajectory: Trajectory
    taken: list[GuardianAction] = field(default_factory=list)
    last_at: datetime | None = None
    mark: int = 0  # seq of the latest intervention: signals judge what came after it
    unread: Note | None = None  # a steer not yet in a model request
    pending: list[Pending] = field(default_factory=list)
    stopping: bool = False  # restarted or cancelled: nothing more to decide about it
    finished: bool = False
    assessed_turn: int = 0  # the turn a model last assessed (asked again only after new turns)
    assessment: GuardianAssessed | None = None  # the newest one


MESSAGE_TAG = "[omoi message]"  # what a person's or a program's message to an agent starts with


@dataclass
class SupervisionState:
    run_id: str
    watches: dict[Attempt, Watch] = field(default_factory=dict)
    declared: dict[str, tuple[str, ...]] = field(default_factory=dict)  # task -> files it names
    goals: dict[str, str] = field(default_factory=dict)  # task -> its agent's prompt
    budgets: dict[str, tuple[int | None, float | None]] = field(default_factory=dict)  # tokens, USD
    paused: dict[str, str] = field(default_factory=dict)  # task -> why
    carried: dict[Attempt, Note] = field(default_factory=dict)  # a note for an attempt not started yet
    messages: dict[str, list[Note]] = field(default_factory=dict)  # task -> conductor's and people's, unread
    ladder: dict[str, list[GuardianAction]] = field(default_factory=dict)  # task -> rungs, all attempts
    replans: dict[Attempt, Replan] = field(default_factory=dict)  # next attempt -> rewrite awaited
    blocking: dict[int, str] = field(default_factory=dict)  # undecided blocking report seq -> its task
    last_seq: int = 0
    changed: set[Attempt] = field(default_factory=set)
    _decided: set[str] = field(default_factory=set)  # ids of guardian events applied already

    def apply(self, ev: Event) -> None:
        """The guardian applies what it publishes at once, and meets it again in the log: an
        event of its own is applied once."""
        if ev.kind in ("guardian.intervened", "guardian.outcome", "guardian.assessed", "guardian.replanned"):
            if ev.id in self._decided:
                return
            self._decided.add(ev.id)
        if ev.seq is not None:
            self.last_seq = max(self.last_seq, ev.seq)
        task = getattr(ev, "task_id", "")
        key = (task, getattr(ev, "attempt", 0))
        match ev.kind:
            case "task.added" if ev.spec.agent is not None:
                self.declared[task] = ev.spec.agent.context
                self.goals[task] = ev.spec.agent.prompt
                self.budgets[task] = (ev.spec.agent.budget_tokens, ev.spec.agent.budget_usd)
            case "agent.started" if ev.role != "oracle" and key not in self.watches:
                self.watches[key] = Watch(Trajectory(task, key[1], self.declared.get(task, ())))
                self.watches[key].trajectory.apply(ev)
            case "agent.turn" | "agent.tool_called" | "agent.acceptance" if (
                key in self.watches and ev.role != "oracle"  # an oracle's advice is not the agent's work
            ):
                self.watches[key].trajectory.apply(ev)
                self.changed.add(key)
            case "agent.heartbeat" if key in self.watches and ev.role != "oracle":
                self.watches[key].trajectory.apply(ev)  # a sign of life, judged on the timer
            case "agent.finished" if key in self.watches and ev.role != "oracle":
                self.watches[key].finished = True
                self.changed.discard(key)
            case "task.succeeded" | "task.failed" | "task.cancelled" | "task.retrying" | "task.skipped":
                self._ended(task)
            case "task.restart_requested" | "task.cancel_requested":  # by anyone: no more model calls
                for (t, n), w in self.watches.items():
                    if t == task and ev.attempt in (0, n):
                        w.stopping = True
            case "agent.discovery" if ev.blocks_current and ev.seq is not None:
                self.blocking[ev.seq] = task  # held until the discovery actor decided it
            case "discovery.recorded" | "discovery.rejected":
                self.blocking.pop(ev.discovery, None)
            case "agent.paused":
                self.paused[task] = ev.reason
            case "agent.resumed":
                self.paused.pop(task, None)
            case "guardian.intervened" if key in self.watches:
                names = tuple(s.name for s in ev.signals if s.level == "act")
                w = self.watches[key]
                self._intervened(w, ev.seq or 0, ev.action, ev.message, ev.ts, names)
                self.ladder.setdefault(task, []).append(ev.action)
                if ev.action in ("restart", "replan"):
                    self.carried[(task, key[1] + 1)] = Note(ev.seq or 0, ev.message)
                if ev.action == "replan":
                    why = "; ".join(s.evidence for s in ev.signals)
                    self.replans[(task, key[1] + 1)] = Replan(ev.seq or 0, w.trajectory, why)
            case "guardian.replanned":
                self.replans.pop(key, None)
                if ev.note:
                    self.carried[key] = Note(ev.seq or 0, ev.note)
            case "conductor.acted" if ev.action == "message" and ev.seq is not None:
                self.messages.setdefault(task, []).append(Note(ev.seq, ev.reason))
            case "agent.message" if ev.seq is not None:
                self.messages.setdefault(task, []).append(Note(ev.seq, f"{MESSAGE_TAG} {ev.text}"))
            case "guardian.delivered":
                unread = [n for n in self.messages.get(task, []) if n.ref != ev.intervention]
                self.messages[task] = unread
                watch = self.watches.get(key)
                if watch is not None and watch.unread is not None and watch.unread.ref == ev.intervention:
                    watch.unread = None
                self.carried.pop(key, None)
            case "guardian.assessed" if key in self.watches:
                w = self.watches[key]
                w.assessed_turn, w.assessment = max(w.assessed_turn, ev.turn), ev
                self.changed.add(key)
            case "guardian.outcome" if key in self.watches:
                w = self.watches[key]
                w.pending = [p for p in w.pending if p.seq != ev.intervention]
            case _:
                pass

    def _intervened(
        self, w: Watch, seq: int, action: GuardianAction, message: str, ts: datetime, names: tuple[str, ...]
    ) -> None:
        w.taken.append(action)
        w.last_at, w.mark = ts, seq
        if action == "steer":  # judged once the agent has read it and taken a few turns
            w.unread = Note(seq, message)
            w.pending.append(Pending(seq, names, w.trajectory.turns))
        elif action != "ask_human":
            w.stopping = True

    def _ended(self, task: str) -> None:
        """An attempt that ended is no longer watched: its successor gets a fresh guardian."""
        for key in [k for k in self.watches if k[0] == task]:
            del self.watches[key]
            self.changed.discard(key)

    # ---- queries -------------------------------------------------------------------------------

    def take_changed(self) -> list[Attempt]:
        keys, self.changed = self.changed, set()
        return sorted(k for k in keys if k in self.watches)

    def holds(self, task: str, attempt: int) -> bool:
        """Whether the attempt must not make a model call now: paused, being stopped, waiting
        for the decision on a discovery it said blocks it (then paused, or let go), or for the
        planner's rewrite of its task."""
        w = self.watches.get((task, attempt))
        return (
            task in self.paused
            or task in self.blocking.values()
            or (w is not None and w.stopping)
            or (task, attempt) in self.replans  # the planner's rewrite is not in yet
        )

    def notes(self, task: str, attempt: int) -> list[Note]:
        """What the attempt's next model request must carry."""
        w = self.watches.get((task, attempt))
        out = [n for n in (self.carried.get((task, attempt)), w.unread if w else None) if n is not None]
        return out + self.messages.get(task, [])
