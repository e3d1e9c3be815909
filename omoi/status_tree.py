"""A run as a tree, from its log alone (no cluster needed): run → spec phases → tasks → attempts →
the attempt's agent, guardian and sandbox (with its node). `omoi status --tree` draws it with box
characters, `omoi watch` redraws it as the log grows, and `GET /v1/runs/{id}` returns it as JSON."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from omoi.runtime.log.events import Event
from omoi.runtime.run.state import fold


@dataclass
class Node:
    label: str
    status: str = ""
    detail: str = ""
    children: list[Node] = field(default_factory=list)

    def add(self, label: str, status: str = "", detail: str = "") -> Node:
        self.children.append(Node(label, status, detail))
        return self.children[-1]

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "status": self.status,
            "detail": self.detail,
            "children": [c.as_json() for c in self.children],
        }

    def render(self) -> list[str]:
        """Box-drawn, one node per line."""
        lines = [_line(self)]
        for i, child in enumerate(self.children):
            last = i == len(self.children) - 1
            sub = child.render()
            lines.append(("└── " if last else "├── ") + sub[0])
            lines += [("    " if last else "│   ") + s for s in sub[1:]]
        return lines


def _line(n: Node) -> str:
    return " ".join(x for x in (n.label, f"[{n.status}]" if n.status else "", n.detail) if x)


@dataclass
class _Attempt:
    sandbox: str = ""
    status: str = "running"
    why: str = ""
    node: str = ""
    model: str = ""
    actor: str = ""
    turns: int = 0
    tokens: int = 0
    agent: str = ""  # the agent's last word: finished, waiting on a question, paused
    guardian: Counter[str] = field(default_factory=Counter)
    guardian_last: str = ""


def run_tree(run_id: str, events: Iterable[Event]) -> Node:
    log = list(events)
    state = fold(run_id, log)
    attempts: dict[tuple[str, int], _Attempt] = {}
    phases: dict[str, tuple[str, str]] = {}  # phase -> status, detail
    for ev in log:
        key = (getattr(ev, "task_id", ""), getattr(ev, "attempt", 0))
        a = attempts.get(key)
        match ev.kind:
            case "task.started":
                attempts[key] = _Attempt(sandbox=ev.sandbox)
            case "task.succeeded" if a:
                a.status, a.node = "succeeded", ev.node or a.node
            case "task.failed" if a:
                a.status, a.why = "failed", ev.error
            case "task.cancelled" if a:
                a.status, a.why = "cancelled", ev.reason
            case "task.retrying":
                prev = attempts.get((key[0], key[1] - 1))
                if prev and prev.status == "running":
                    prev.status, prev.why = "stopped", ev.reason
            case "agent.started" if a and ev.role != "oracle":
                a.model, a.actor, a.node = ev.model, ev.actor, ev.node or a.node
            case "agent.turn" if a:
                a.turns, a.tokens = a.turns + 1, a.tokens + ev.usage.total
            case "agent.needs_input" if a:
                a.agent = f"asks: {ev.question[:80]}"
            case "agent.answered" | "agent.resumed" if a:
                a.agent = ""
            case "agent.paused":
                latest = max((k for k in attempts if k[0] == key[0]), default=None, key=lambda k: k[1])
                if latest is not None:
                    attempts[latest].agent = f"paused: {ev.reason[:80]}"
            case "agent.finished" if a and ev.role != "oracle":
                a.agent = f"{ev.status}: {ev.summary[:80]}" if ev.summary else ev.status
            case "guardian.intervened" if a:
                a.guardian[ev.action] += 1
                a.guardian_last = ev.message[:80]
            case "spec.phase_started":
                phases[ev.phase] = ("running", f"attempt {ev.attempt}")
            case "spec.gate_waiting":
                phases[ev.phase] = ("waiting", f"at its gate (omoi approve {run_id} --phase {ev.phase})")
            case "spec.phase_completed":
                phases[ev.phase] = ("completed", f"attempt {ev.attempt}")
            case "spec.phase_failed":
                phases[ev.phase] = ("failed", "; ".join(ev.reasons)[:100])
            case _:
                pass
    status = state.finished.status if state.finished else ("running" if state.started else "unknown")
    started = state.started
    about = (started.goal[:80] if started and started.goal else started.plan_name if started else "") or ""
    root = Node(f"run {run_id}", status, about)
    if phases:
        spec = root.add("spec", state.spec.status if state.spec else "running")
        for phase, (st, detail) in phases.items():
            spec.add(phase, st, detail)
    tasks = root.add("tasks", "", _counts(state.counts()))
    for t in state.in_order():
        kind = "agent" if t.spec.agent is not None else "command"
        merged = " merged" if t.id in state.merged else ""
        node = tasks.add(t.id, t.status, f"{kind}{merged}" + (f": {t.error[:80]}" if t.error else ""))
        for n in range(1, t.attempt + 1):
            a = attempts.get((t.id, n))
            if a is None:
                continue
            att = node.add(f"attempt {n}", a.status, a.why[:80])
            if t.spec.agent is not None:
                spent = f"{a.turns} turns, {a.tokens:,} tokens" if a.turns else "no turn yet"
                said = f"; {a.agent}" if a.agent else ""
                att.add("agent", "", f"{a.model or '?'} ({a.actor or 'not started'}): {spent}{said}")
                acts = ", ".join(f"{k} x{v}" for k, v in sorted(a.guardian.items()))
                att.add("guardian", "", f"{acts}; last: {a.guardian_last}" if acts else "no intervention")
            att.add("sandbox", "", f"{a.sandbox}" + (f" on node {a.node[:12]}" if a.node else ""))
    return root


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)
