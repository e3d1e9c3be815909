"""What a guardian decides about the agent attempts it watches, as events: outcomes of earlier
steers, then at most one new intervention per attempt. Pure over a SupervisionState, with the time
passed in; the guardian actor publishes what this returns (the graph carries out restarts and
cancels, the agent reads steers before its next model call)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from omoi.policies.supervision import assessment, interventions
from omoi.policies.supervision.assessment import AssessRules
from omoi.policies.supervision.signals import Budget, Signal, Thresholds, evaluate, liveness
from omoi.runtime.log.events import (
    AgentPaused,
    Event,
    GuardianIntervened,
    GuardianOutcome,
    SignalSeen,
    TaskCancelRequested,
    TaskRestartRequested,
)
from omoi.runtime.supervision.state import Attempt, SupervisionState, Watch


@dataclass(frozen=True)
class GuardianRules:
    thresholds: Thresholds = field(default_factory=Thresholds)
    cooldown_s: float = interventions.COOLDOWN_S
    max_turns: int = 60  # an attempt's turn limit: the horizon of the burn-rate projection
    assess: AssessRules = field(default_factory=AssessRules)


@dataclass(frozen=True)
class Ask:
    """A model assessment to ask for: about which attempt, at which turn, why, and what to show."""

    attempt: Attempt
    turn: int
    reason: str
    prompt: str


def review(
    state: SupervisionState, attempts: Iterable[Attempt], now: datetime, rules: GuardianRules, source: str
) -> list[Event]:
    """Events for the attempts that moved (or, on a timer, all of them)."""
    out: list[Event] = []
    for key in attempts:
        w = state.watches.get(key)
        if w is None or w.finished or w.stopping:
            continue
        alive = liveness(w.trajectory, rules.thresholds, now)
        if alive is not None and alive.level == "act":  # no use steering it: restart it now
            out += _restart(state.run_id, key, w, alive, state.last_seq, source)
            continue
        if not w.trajectory.settled:
            continue
        signals = _signals(state, key, w, now, rules) + _advice(w)
        out += _outcomes(state.run_id, key, w, signals, source)
        taken = tuple(state.ladder.get(key[0], ()))  # the ladder climbs across a task's attempts
        out += _intervention(state.run_id, key, w, taken, signals, now, rules, state.last_seq, source)
    return out


def to_assess(state: SupervisionState, now: datetime, rules: GuardianRules) -> list[Ask]:
    """The attempts worth a model's look now (the guardian's timer asks): those the signals or
    the cheap filter flag, that moved since their last assessment and are past their grace."""
    out: list[Ask] = []
    for key, w in sorted(state.watches.items()):
        if w.finished or w.stopping:
            continue
        signals = _signals(state, key, w, now, rules)
        reason = assessment.wanted(w.trajectory, signals, now, w.assessed_turn, rules.assess)
        if reason is not None:
            goal = state.goals.get(key[0], "")
            prompt = assessment.excerpts(w.trajectory, goal, signals)
            out.append(Ask(key, w.trajectory.turns, reason, prompt))
    return out


def _signals(
    state: SupervisionState, key: Attempt, w: Watch, now: datetime, rules: GuardianRules
) -> list[Signal]:
    budget = Budget(*state.budgets.get(key[0], (None, None)), max_turns=rules.max_turns)
    return evaluate(w.trajectory.since(w.mark), now, rules.thresholds, budget)


def _advice(w: Watch) -> list[Signal]:
    """The newest assessment, if it came after the last intervention and asks for steering."""
    a = w.assessment
    if a is None or (a.seq or 0) <= w.mark:
        return []
    s = assessment.as_signal(a.verdict, a.needs_steering, a.recommendation, a.score)
    return [s] if s is not None else []


def _restart(run_id: str, key: Attempt, w: Watch, gone: Signal, seen: int, source: str) -> list[Event]:
    """An unresponsive attempt is restarted at once, whatever rung the ladder is on."""
    common = {"run_id": run_id, "task_id": key[0], "attempt": key[1], "source": source}
    text = (
        f"{interventions.TAG} This is a new attempt. The previous one stopped showing signs of life "
        f"({gone.evidence}) and was stopped. Its files are as its last checkpoint left them: "
        "read the files you had changed before you go on."
    )
    signal = SignalSeen(name=gone.name, level=gone.level, evidence=gone.evidence)
    return [
        GuardianIntervened(
            **common, action="restart", signals=(signal,), message=text, turn=w.trajectory.turns, seen=seen
        ),
        TaskRestartRequested(**common, reason=f"by the guardian: {gone.evidence}", keep_work=True),
    ]


def _outcomes(run_id: str, key: Attempt, w: Watch, signals: list[Signal], source: str) -> list[Event]:
    out: list[Event] = []
    for p in w.pending:
        since = w.trajectory.turns - p.turn
        if w.unread is not None and w.unread.ref == p.seq:
            continue  # not read yet: too early to judge
        triggered = [Signal(n, "act", "") for n in p.signals]
        worked = interventions.outcome(triggered, signals, since)
        if worked is None:
            continue
        still = tuple(s.name for s in signals if s.name in p.signals and s.level == "act")
        out.append(
            GuardianOutcome(
                run_id=run_id,
                task_id=key[0],
                attempt=key[1],
                intervention=p.seq,
                worked=worked,
                turns=since,
                still=still,
                source=source,
            )
        )
    return out


def _intervention(
    run_id: str,
    key: Attempt,
    w: Watch,
    taken: tuple[interventions.Action, ...],
    signals: list[Signal],
    now: datetime,
    rules: GuardianRules,
    seen: int,
    source: str,
) -> list[Event]:
    history = interventions.History(taken, w.last_at, w.unread is not None)
    decision = interventions.decide(signals, history, now, rules.cooldown_s)
    if decision is None:
        return []
    task, attempt = key
    common = {"run_id": run_id, "task_id": task, "attempt": attempt, "source": source}
    out: list[Event] = [
        GuardianIntervened(
            **common,
            action=decision.action,
            signals=tuple(
                SignalSeen(name=s.name, level=s.level, evidence=s.evidence) for s in decision.signals
            ),
            message=decision.message,
            turn=w.trajectory.turns,
            seen=seen,
        )
    ]
    why = "; ".join(s.evidence for s in decision.signals)
    match decision.action:
        case "restart" | "replan":
            out.append(TaskRestartRequested(**common, reason=f"by the guardian: {why}"))
        case "cancel":
            out.append(TaskCancelRequested(**common, reason=f"cancelled by the guardian: {why}"))
        case "ask_human":
            out.append(AgentPaused(**common, reason=decision.message))
        case "steer":
            pass
    return out
