"""A spec's progress as a fold over the run's `spec.*` events: what a restarted spec actor needs
to resume at the first unfinished phase, with the attempts, rejections and feedback so far."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from omoi.runtime.log.events import (
    Event,
    Intent,
    RunStarted,
    SpecFinished,
    SpecIntent,
    SpecPhaseCompleted,
)


@dataclass
class SpecState:
    started: RunStarted | None = None
    intent: SpecIntent | None = None
    completed: dict[str, SpecPhaseCompleted] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)  # phase -> last attempt started
    rejections: dict[str, int] = field(default_factory=dict)
    feedback: dict[str, str] = field(default_factory=dict)  # phase -> why its last attempt was redone
    waiting: dict[str, int] = field(default_factory=dict)  # phase -> attempt whose gate opened
    finished: SpecFinished | None = None

    def gate_open(self, phase: str) -> int | None:
        """The attempt whose documents are written and committed and wait at the gate: a resumed
        spec goes back to that gate instead of writing them again."""
        attempt = self.attempts.get(phase, 0)
        return attempt if attempt and self.waiting.get(phase) == attempt else None

    @property
    def intent_kind(self) -> Intent | None:
        return self.intent.intent if self.intent is not None else None

    def apply(self, ev: Event) -> None:
        match ev.kind:
            case "run.started":
                self.started = self.started or ev
            case "spec.intent":
                self.intent = self.intent or ev
            case "spec.phase_started":
                self.attempts[ev.phase] = max(self.attempts.get(ev.phase, 0), ev.attempt)
            case "spec.gate_waiting":
                self.waiting[ev.phase] = max(self.waiting.get(ev.phase, 0), ev.attempt)
            case "spec.gate_decided" if ev.decision == "reject":
                self.rejections[ev.phase] = self.rejections.get(ev.phase, 0) + 1
                self.feedback[ev.phase] = ev.reason
            case "spec.phase_completed":
                self.completed.setdefault(ev.phase, ev)
            case "spec.finished":
                self.finished = self.finished or ev


def fold_spec(events: Iterable[Event]) -> SpecState:
    state = SpecState()
    for ev in events:
        state.apply(ev)
    return state
