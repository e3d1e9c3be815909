"""The task specification: what a plan file declares and what a `task.added` event carries."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from omoi.runtime import names

Role = Literal["explorer", "librarian", "planner", "worker", "oracle", "reviewer", "resolver"]
ROLES: tuple[str, ...] = get_args(Role)

_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


Identifier = Annotated[str, AfterValidator(names.check_id)]


class AgentSpec(BaseModel):
    """A coding agent doing the task: its role (what it may do), its category (which model), its
    instructions, and how far the runtime lets it go."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    role: Role = "worker"
    category: str = Field(
        default="default", min_length=1, description="model route, e.g. quick, default, deep"
    )
    prompt: str = Field(min_length=1, description="what the agent is asked to do")
    context: tuple[str, ...] = Field(default=(), description="files the agent should read first")
    repairs: int = Field(default=5, ge=0, le=100, description="rounds after failed acceptance")
    budget_tokens: int | None = Field(default=None, ge=1, description="token budget of the task")
    budget_usd: float | None = Field(default=None, gt=0, description="dollar budget of the task")


class TaskSpec(BaseModel):
    """One task of a plan: a shell command (`run`) or a coding agent (`agent`), in its own worktree."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    id: Identifier
    run: str | None = Field(
        default=None, min_length=1, description="shell command run in the task's worktree; exit 0 is success"
    )
    agent: AgentSpec | None = Field(default=None, description="a coding agent does the task")
    acceptance: tuple[str, ...] = Field(
        default=(), description="commands that must exit 0 before an agent's work counts as done"
    )
    deps: tuple[Identifier, ...] = Field(default=(), description="ids of tasks that must succeed first")
    retries: int = Field(default=0, ge=0, le=100, description="extra attempts after a failure")
    backoff: float = Field(default=1.0, ge=0, le=3600, description="seconds before the first retry; doubles")
    timeout: float = Field(
        default=600.0, gt=0, le=7 * 24 * 3600, description="seconds before the command is killed"
    )
    env: dict[str, str] = Field(default_factory=dict, description="extra environment for the command")
    network: bool = Field(default=False, description="let the Docker sandbox reach the network")
    description: str = ""

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        return names.check_plan_task_id(value)

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            if not _ENV_KEY.match(key):
                raise ValueError(f"'{key}' is not a variable name (letters, digits, '_'; not first a digit)")
            if "\0" in value:
                raise ValueError(f"the value of {key} contains a NUL byte")
        return env

    @field_validator("run", "acceptance")
    @classmethod
    def _no_nul(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        texts = (value,) if isinstance(value, str) else value or ()
        if any("\0" in t for t in texts):
            raise ValueError("contains a NUL byte, which no shell command can hold")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TaskSpec:
        if (self.run is None) == (self.agent is None):
            raise ValueError(
                "a task has either 'run' (a command) or 'agent' (a coding agent), not both or neither"
            )
        if self.acceptance and self.agent is None:
            raise ValueError(
                "'acceptance' belongs to agent tasks; a command task succeeds when 'run' exits 0"
            )
        if any(not c.strip() for c in self.acceptance):
            raise ValueError("'acceptance' has an empty command")
        return self


class Generated(BaseModel):
    """Files a command writes (a lock file, generated code). When a merge conflicts only in such
    files, the merge queue runs the command on the merged result instead of asking anyone to
    edit them: their content is the command's, not a person's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    files: tuple[str, ...] = Field(
        min_length=1, description="paths or fnmatch patterns (`*` crosses `/`), from the repository's root"
    )
    run: str = Field(min_length=1, description="the shell command that writes them, run at the root")

    @field_validator("files", "run")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        texts = value if isinstance(value, tuple) else (value,)
        if any("\0" in t or not t.strip() for t in texts):
            raise ValueError("is empty or contains a NUL byte")
        return value
