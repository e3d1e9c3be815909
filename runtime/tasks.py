"""The task specification: what a plan file declares and what a `task.added` event carries."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_id(value: str) -> str:
    """Task and run ids become git branch names (`omoi/<run>/<task>`), so they must be ref-safe."""
    if not value:
        raise ValueError("must not be empty")
    if not _ID.match(value) or ".." in value or value.endswith((".", ".lock")):
        raise ValueError(
            f"'{value}' is not a valid id: use letters, digits, '.', '_' and '-' "
            "(start with a letter or digit, at most 100 characters, no '..', not ending in '.' or '.lock')"
        )
    return value


Identifier = Annotated[str, AfterValidator(check_id)]


class TaskSpec(BaseModel):
    """One task of a plan. `run` is a shell command executed in the task's own worktree."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Identifier
    run: str = Field(min_length=1, description="shell command run in the task's worktree; exit 0 is success")
    deps: tuple[Identifier, ...] = Field(default=(), description="ids of tasks that must succeed first")
    retries: int = Field(default=0, ge=0, le=100, description="extra attempts after a failure")
    backoff: float = Field(default=1.0, ge=0, le=3600, description="seconds before the first retry; doubles")
    timeout: float = Field(
        default=600.0, gt=0, le=7 * 24 * 3600, description="seconds before the command is killed"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the command")
    network: bool = Field(default=False, description="let the Docker sandbox reach the network")
    description: str = ""
