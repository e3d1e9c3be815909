"""What the conductor does about the run as a whole: two running agents that the radar says will
conflict are ordered (the later one is paused, then restarted from the integration head once the
earlier one's work is merged), and held tasks are released. Pure over a ConductorState."""

from __future__ import annotations

from omoi.policies.supervision.holds import releases
from omoi.runtime.log.events import AgentPaused, ConductorActed, Event
from omoi.runtime.supervision.conduct import ConductorState

TAG = "[omoi conductor]"


def decide(state: ConductorState, source: str) -> list[Event]:
    out: list[Event] = []
    for seq, o in sorted(state.orders.items()):
        files = ", ".join(o.files[:5])
        why = f"{TAG} {o.held} waits for {o.kept} to be merged: both change {files}"
        common = {"run_id": state.run_id, "task_id": o.held, "attempt": o.attempt, "source": source}
        key = f"conductor-{state.run_id}-{seq}"
        out += [
            ConductorActed(
                **common,
                id=f"{key}-acted",
                action="order",
                kept=o.kept,
                prediction=seq,
                files=o.files,
                reason=why,
            ),
            AgentPaused(**common, id=f"{key}-paused", reason=why),
        ]
    return out + releases(state.run_id, state.holds, source)
