"""How a run is to go, as one frozen value: built and checked once where the run comes in (the
Python API, which the CLI calls), carried into the run's `run.started` event, and from there
read by every actor. Nothing downstream checks an option again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from omoi.runtime.errors import InputError
from omoi.runtime.run.paths import validate_run_id
from omoi.runtime.run.plan import Budget
from omoi.runtime.sandbox.seam import SANDBOX_KINDS

MAX_PARALLEL = 256  # slots of one run: each is an actor process, 45-90 MB even when idle
GATES = ("auto", "review", "human")
TIMEOUT_POLICIES = ("approve", "reject", "fail")


class RunOptions(BaseModel):
    """`sandbox` may be `auto` until the run is launched, which resolves it (see api._sandbox)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    run_id: str | None = None
    max_parallel: int = 4
    sandbox: str = "auto"
    state_dir: Path | None = None
    budget: Budget | None = None  # overrides the plan's
    base: str | None = None  # the commit tasks start from (default: the repository's HEAD)
    plan_file: str = ""
    gate: str = "auto"
    gate_timeout_s: float | None = None
    on_gate_timeout: str = "fail"
    plan_only: bool = False
    merge_timeout_s: float | None = None

    @model_validator(mode="after")
    def _check(self) -> RunOptions:
        """Each problem is named by the command-line option a user would change."""
        if self.run_id is not None:
            validate_run_id(self.run_id)
        if self.sandbox not in SANDBOX_KINDS:
            kinds = ", ".join(SANDBOX_KINDS)
            raise ValueError(f"--sandbox: unknown backend '{self.sandbox}' (choose from {kinds})")
        if not 1 <= self.max_parallel <= MAX_PARALLEL:
            raise ValueError(f"--max-parallel must be from 1 to {MAX_PARALLEL}, got {self.max_parallel}")
        if self.gate not in GATES:
            raise ValueError(f"--gate: unknown gate '{self.gate}' (choose from {', '.join(GATES)})")
        if self.on_gate_timeout not in TIMEOUT_POLICIES:
            raise ValueError(f"--on-gate-timeout: '{self.on_gate_timeout}' is not approve, reject or fail")
        if self.gate_timeout_s is not None and self.gate_timeout_s <= 0:
            raise ValueError(f"--gate-timeout must be positive, got {self.gate_timeout_s:g}")
        if self.merge_timeout_s is not None and self.merge_timeout_s <= 0:
            raise ValueError(f"--merge-timeout must be positive, got {self.merge_timeout_s:g}")
        return self

    @classmethod
    def of(cls, **given: Any) -> RunOptions:
        """The options, or an InputError naming the one that is wrong (nothing is written)."""
        try:
            return cls(**given)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            text = str(first["msg"]).removeprefix("Value error, ")
            raise InputError(text if not where else f"{where}: {text}") from None

    def started_fields(self) -> dict[str, Any]:
        """What `run.started` records of these options (the budget is the plan's, overridden)."""
        return {
            "max_parallel": self.max_parallel,
            "sandbox": self.sandbox,
            "gate": self.gate,
            "gate_timeout_s": self.gate_timeout_s,
            "on_gate_timeout": self.on_gate_timeout,
            "plan_only": self.plan_only,
            "plan_file": self.plan_file,
            "merge_timeout_s": self.merge_timeout_s,
        }


LOCAL = RunOptions(sandbox="local")  # what a run made without options gets: nothing probed
