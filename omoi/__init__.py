"""omoi: orchestrate many AI coding agents on a real codebase, in parallel, on Ray.

The public API is re-exported here; `omoi.runtime`, `omoi.policies`, `omoi.actors` and
`omoi.cluster` are the rooms behind it (see ARCHITECTURE.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "add_tasks",
    "answer",
    "cancel",
    "decide_discovery",
    "decide_gate",
    "events",
    "exec_plan",
    "inject",
    "inject_kind",
    "message",
    "pause",
    "raise_budget",
    "resume",
    "resume_task",
    "schedule",
    "schedules",
    "start",
    "start_from_spec",
    "start_goal",
    "status",
    "unschedule",
]

if TYPE_CHECKING:
    from omoi.api import (
        add_tasks,
        answer,
        cancel,
        decide_discovery,
        decide_gate,
        events,
        exec_plan,
        inject,
        inject_kind,
        message,
        pause,
        raise_budget,
        resume,
        resume_task,
        schedule,
        schedules,
        start,
        start_from_spec,
        start_goal,
        status,
        unschedule,
    )


def __getattr__(name: str) -> Any:
    # Importing the API imports Ray; keep `import omoi` (and `omoi --help`) fast.
    if name in __all__:
        from omoi import api

        return getattr(api, name)
    raise AttributeError(name)
