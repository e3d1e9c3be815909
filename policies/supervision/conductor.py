"""What the conductor does about the run as a whole. Pure over a ConductorState, the time passed in.

- Two running agents the radar says will conflict are ordered: the later one is paused, then
  restarted from the integration head once the earlier one's work is merged.
- Two running agents whose prompts describe the same work (word-set Jaccard similarity at least
  `DUPLICATE`, as discovery de-duplicates, over prompts of at least `MIN_WORDS` content words) are
  ordered the same way: the duplicate waits, and restarts on top of the kept task's work, where it
  finds little or nothing left to do. Pausing, not cancelling: a cancelled task would take the
  tasks that depend on it down with it.
- Two running agents whose tasks name the same files (omoi's own, the spec's documents, aside)
  are each told about the other once, as an `[omoi conductor]` message in their next model
  request.
- On its timer it assesses the run (`conductor.assessed`): what runs, what waits on a person and
  for how long, overlaps, whether the run is stalled, and its budget pace (spend against the share
  of agent tasks done), written only when the picture changed (a model may judge its coherence
  first: `policies.supervision.coherence`).
- A run stalled on a person for `stall_s` gets one diagnostic task per stall: the conductor
  writes an `agent.discovery` for the discovery actor (bounded, de-duplicated and gated like any
  other), whose agent investigates what the run waits on and suggests answers a person can give."""

from __future__ import annotations

from datetime import datetime

from omoi.policies.supervision.discovery import DUPLICATE, similarity, words
from omoi.policies.supervision.holds import releases
from omoi.runtime.log.events import AgentDiscovery, AgentPaused, ConductorActed, ConductorAssessed, Event
from omoi.runtime.supervision.conduct import ConductorState

TAG = "[omoi conductor]"
MIN_WORDS = 4  # shorter prompts say too little to call two of them the same work


def same_work(a: str, b: str) -> bool:
    return min(len(words(a)), len(words(b))) >= MIN_WORDS and similarity(a, b) >= DUPLICATE


def decide(state: ConductorState, source: str) -> list[Event]:
    out: list[Event] = []
    for seq, o in sorted(state.orders.items()):
        files = ", ".join(o.files[:5])
        if o.why == "order":
            why = f"{TAG} {o.held} waits for {o.kept} to be merged: both change {files}"
        else:
            why = f"{TAG} {o.held} does the same work as {o.kept}: it waits for {o.kept} to be merged"
        common = {"run_id": state.run_id, "task_id": o.held, "attempt": o.attempt, "source": source}
        key = f"conductor-{state.run_id}-{seq}"
        out += [
            ConductorActed(
                **common,
                id=f"{key}-acted",
                action=o.why,
                kept=o.kept,
                prediction=seq,
                files=o.files,
                reason=why,
            ),
            AgentPaused(**common, id=f"{key}-paused", reason=why),
        ]
    for (seq, task, other), ov in sorted(state.overlaps.items()):
        files = ", ".join(ov.files[:5])
        text = (
            f"{TAG} Task {other} runs at the same time as yours and names the same files: {files}. "
            "If you change them, change only what your task needs, keep your edits small and local, "
            "and do not reformat or move code there: both changes will be merged."
        )
        out.append(
            ConductorActed(
                id=f"conductor-{state.run_id}-{seq}-{task}-{other}-message", run_id=state.run_id,
                task_id=task,
                attempt=ov.attempt, source=source, action="message", kept=ov.other, prediction=seq,
                files=ov.files, reason=text,
            )
        )  # fmt: skip
    return out + releases(state.run_id, state.holds, source)


def assess(state: ConductorState, now: datetime, source: str) -> list[Event]:
    """The run as a whole, when it changed since the last assessment."""
    waiting = _waits(state, now)
    done = len(state.ended) / len(state.agents) if state.agents else 0.0
    pace = _pace(state, done)
    overlaps = tuple(sorted({" + ".join(sorted((t, o))) for t, o in state.told}))
    running = tuple(sorted(state.running))
    summary = (
        f"{len(running)} running, {len(waiting)} waiting on a person, {len(state.ended)} of "
        f"{len(state.agents)} agent tasks done; "
        f"{'STALLED: every running task waits on a person; ' if state.stalled else ''}budget pace {pace}"
    )
    if summary == state.last_summary:
        return []
    return [
        ConductorAssessed(
            id=f"conductor-{state.run_id}-assessed-{state.assessed}", run_id=state.run_id, source=source,
            ts=now, running=running, waiting=waiting, overlaps=overlaps, stalled=state.stalled,
            spent_tokens=state.spent[0], spent_usd=state.spent[1], done=done, pace=pace, summary=summary,
        )
    ]  # fmt: skip


def diagnose(state: ConductorState, now: datetime, stall_s: float, source: str) -> list[Event]:
    """A diagnostic task for a run stalled on a person for `stall_s` seconds, once per stall."""
    found = state.stall()
    if found is None:
        return []
    task, wait = found
    quiet = (now - wait.since).total_seconds()
    if wait.seq in state.diagnosed or quiet < stall_s:
        return []
    questions = [f"{t} asks: {w.question}" for t, w in sorted(state.waiting.items()) if w.question]
    common = {"run_id": state.run_id, "task_id": task, "attempt": wait.attempt, "source": source}
    key = f"conductor-{state.run_id}-{wait.seq}-diagnose"
    waits = "\n".join(f"- {w}" for w in _waits(state, now))
    report = AgentDiscovery(
        **common, id=f"{key}-report", agent="conductor", role="conductor", type="clarification",
        priority="high", title=f"Diagnose why the run stalled waiting on {task}",
        description=(
            f"Every running task of this run waits on a person:\n{waits}\n"
            "Do not change the project's code. Read the code each wait is about, then write "
            f"`.omoi/diagnosis/{task}.md`: for each wait, what it blocks, the evidence from the code "
            "(files and lines), and the answer you suggest a person give, with why."
        ),
        evidence="\n".join(questions),
    )  # fmt: skip
    why = (
        f"{TAG} the run has waited on a person for {quiet:.0f}s with nothing else running: "
        "asked for a diagnostic task"
    )
    acted = ConductorActed(**common, id=f"{key}-acted", action="diagnose", prediction=wait.seq, reason=why)
    return [acted, report]


def _waits(state: ConductorState, now: datetime) -> tuple[str, ...]:
    return tuple(
        f"{t} waits for {w.what} since {(now - w.since).total_seconds():.0f}s"
        for t, w in sorted(state.waiting.items())
    )


def _pace(state: ConductorState, done: float) -> str:
    """`over` when the spend so far, projected over the agent tasks left, passes a limit."""
    (tokens, usd), (spent_tokens, spent_usd) = state.budget, state.spent
    if tokens is None and usd is None:
        return "no budget"
    if done <= 0:
        spent_share = max(spent_tokens / tokens if tokens else 0.0, spent_usd / usd if usd else 0.0)
        return "over" if spent_share >= 0.5 else "ok"  # half the budget gone and nothing done
    over_tokens = tokens is not None and spent_tokens / done > tokens
    over_usd = usd is not None and spent_usd / done > usd
    return "over" if over_tokens or over_usd else "ok"
