"""What the graph asks a sandbox to do for one task attempt, and what comes back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from omoi.runtime.log.events import Usage
from omoi.runtime.run.tasks import AgentSpec


class TaskRequest(BaseModel):
    """One attempt of one task: start from `base` (the integration head), run `command` (or the
    `agent`, checked by the `acceptance` commands), commit. With `merge_parent` the tree holds
    git's merge of `base` with that commit, conflict markers and all, and the commit has both as
    parents: how the merge queue hands a conflict to an agent."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    task_id: str
    attempt: int
    command: str = ""
    agent: AgentSpec | None = None
    acceptance: tuple[str, ...] = ()
    timeout: float
    env: dict[str, str] = Field(default_factory=dict)
    branch: str
    base: str
    merge_parent: str | None = None  # a merge to resolve: the tree holds `base` merged with it
    merge_tree: str | None = None  # that merge's tree with the rules' resolutions (default: git's)
    keep_work: bool = False  # go on from the work in progress on `branch` (a descendant of `base`)
    network: bool = False


class TaskResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["succeeded", "failed", "cancelled"]
    exit_code: int | None = None
    output_tail: str = ""
    truncated: bool = False
    commit: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    node: str = ""


class AgentResult(BaseModel):
    """How an agent attempt ended: complete (its acceptance passed) or failed, with the why."""

    model_config = ConfigDict(frozen=True)

    status: Literal["complete", "failed"]
    summary: str = ""
    turns: int = 0
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
