"""The kinds a person or a program may inject into a run, each with what it does. A module of its
own so that the CLI's help can name them without loading the event models (`injection` checks
them)."""

from __future__ import annotations

ALLOWED: dict[str, str] = {
    "run.cancel_requested": "stop the run: every task not done is cancelled",
    "task.cancel_requested": "stop one task (data.task_id); its dependents are skipped",
    "agent.answered": "answer the open question of a task's agent (data.task_id, data.answer)",
    "agent.message": "text for a task's agent, in its next model request (data.task_id, data.text)",
    "agent.paused": "hold a task's agent before its next model call (data.task_id)",
    "agent.resumed": "let a paused agent go on (data.task_id)",
    "spec.gate_decided": "approve or reject the spec phase waiting at a gate (data.phase, data.decision)",
    "discovery.decided": "approve or reject a discovery at its gate (data.discovery, data.decision)",
    "budget.raised": "lift the run's (or data.scope task's) budget (data.add_tokens, data.add_usd)",
    "task.added": "add a task to the live DAG (data.spec: a task as a plan writes it)",
    "schedule.created": "a one-shot or recurring schedule (data.schedule: at|every, event|message)",
    "schedule.cancelled": "stop a schedule (data.schedule_id)",
}
