"""omoi's exception tree. Every error says what is wrong, where, and carries the data to fix it.

    OmoiError                      base of everything omoi raises on purpose
    ├── InputError                 bad user input: the CLI exits 2 and no run state is created
    │   ├── PlanError              a plan file is unreadable, malformed or inconsistent (file, task, field)
    │   ├── RepoError              the target is not a git repository, or has no commits
    │   ├── RunNotFoundError       no run with that id under the state directory
    │   ├── InjectionRefused       an event injected into a run was refused (kind or field, and why)
    │   └── ScriptError            a scripted-model script is malformed (file, task, role, turn)
    ├── GraphError                 a task graph change was refused (duplicate id, unknown dependency, cycle)
    │   ├── CycleError             names the cycle: ``cycle: a -> b -> c -> a``
    │   └── UnknownDependencyError names the task and the dependency it cannot find
    ├── EventError                 an event could not be parsed (unknown kind, malformed field)
    ├── StoreError                 the durable log cannot be opened or written
    ├── GitError                   a git operation failed (command, exit code, stderr)
    ├── SandboxError               a sandbox could not be prepared or used
    │   └── SandboxLostError       the sandbox that ran a task attempt is gone (actor died, node lost)
    │       └── SandboxUnplaceableError  a slot found no node to run on within the bound
    ├── AgentLostError             the agent actor of a task attempt died mid-conversation
    ├── SpecError                  a spec cannot go on (a phase failed, its branch lost a document)
    ├── ModelError                 a model call failed for good (status, tries, the provider's words)
    └── DeliveryError              the pull request could not be opened (repository, step, the host's words)

GraphError subclasses are also InputErrors when they come from a plan file: the plan loader wraps them
in a PlanError naming the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self


class OmoiError(Exception):
    """Base class of every error omoi raises on purpose.

    Errors cross process boundaries (Ray pickles them from an actor to its caller), so each one
    remembers its constructor arguments and is rebuilt from them, keeping every field."""

    _init: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args)
        self._init = (args, kwargs)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        args, kwargs = self._init
        return (_rebuild, (type(self), args, kwargs))


def _rebuild(cls: type[OmoiError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> OmoiError:
    return cls(*args, **kwargs)


class InputError(OmoiError):
    """Bad input from the user; reported with exit code 2 and no state written."""


class PlanError(InputError):
    """A plan file problem, located by file, task id and field."""

    def __init__(
        self, message: str, *, file: str | None = None, task_id: str | None = None, field: str | None = None
    ) -> None:
        self.file, self.task_id, self.field, self.reason = file, task_id, field, message
        where = [
            p
            for p in (file, f"task '{task_id}'" if task_id else None, f"field '{field}'" if field else None)
            if p
        ]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class RepoError(InputError):
    """The repository path cannot be used as a run target."""

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class InjectionRefused(InputError):
    """An injected event was refused and nothing was written. `why`: `invalid` (a bad kind or
    field), `forbidden` (a kind only the run writes), `not_found` (no such task), `conflict` (the
    run is not in a state that takes it: the question is not open, the run has finished, ...);
    `field` names what to fix (`kind`, `data.task_id`, ...)."""

    STATUS = {"invalid": 422, "forbidden": 403, "not_found": 404, "conflict": 409}

    def __init__(self, message: str, *, why: str = "invalid", field: str | None = None) -> None:
        super().__init__(message)
        self.why, self.field = why, field

    @property
    def status(self) -> int:
        return self.STATUS.get(self.why, 422)


class RunNotFoundError(InputError):
    """No run with this id exists under the state directory."""

    def __init__(self, run_id: str, where: str) -> None:
        self.run_id, self.where = run_id, where
        super().__init__(f"no run '{run_id}' under {where}")


class GraphError(OmoiError):
    """A change to the task graph was refused; the graph is left as it was."""

    def __init__(self, message: str, *, task_id: str | None = None) -> None:
        self.task_id = task_id
        super().__init__(message)


class CycleError(GraphError):
    """Adding the tasks would close a dependency cycle."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = list(cycle)
        super().__init__("cycle: " + " -> ".join([*self.cycle, self.cycle[0]]), task_id=self.cycle[0])


class UnknownDependencyError(GraphError):
    """A task depends on an id that is neither in the graph nor in the same batch."""

    def __init__(self, task_id: str, dependency: str) -> None:
        self.dependency = dependency
        super().__init__(f"task '{task_id}' depends on unknown task '{dependency}'", task_id=task_id)


class EventError(OmoiError):
    """An event could not be parsed or validated."""


class StoreError(OmoiError):
    """The durable event log cannot be opened or written."""


class GitError(OmoiError):
    """A git command failed; carries the command and git's own words."""

    def __init__(self, command: Sequence[str], returncode: int, stderr: str, cwd: str = "") -> None:
        self.command, self.returncode, self.stderr, self.cwd = list(command), returncode, stderr, cwd
        super().__init__(f"git {' '.join(self.command)} failed ({returncode}) in {cwd}: {stderr.strip()}")


class SandboxError(OmoiError):
    """A sandbox could not be prepared or used."""


class SandboxLostError(SandboxError):
    """The sandbox that was running a task attempt no longer exists."""

    def __init__(self, sandbox: str, task_id: str, attempt: int) -> None:
        self.sandbox, self.task_id, self.attempt = sandbox, task_id, attempt
        super().__init__(f"sandbox {sandbox} lost task '{task_id}' attempt {attempt}")


class SandboxUnplaceableError(SandboxLostError):
    """A sandbox slot (re)started for an attempt found no node to run on within the bound: a node
    that held it is gone, and the slots left are all taken."""

    def __init__(self, sandbox: str, task_id: str, attempt: int, waited_s: float) -> None:
        self.waited_s = waited_s
        SandboxError.__init__(
            self,
            f"sandbox {sandbox} cannot be placed: no node had a free 'omoi_sandbox' slot for it within "
            f"{waited_s:g}s (task '{task_id}' attempt {attempt} runs again on another slot)",
        )
        self.sandbox, self.task_id, self.attempt = sandbox, task_id, attempt


class ScriptError(InputError):
    """A scripted-model script is malformed; names the file and where in it."""


class SpecError(OmoiError):
    """A spec cannot go on: a phase failed its checks or gate, or its branch lost a document."""


class ModelError(OmoiError):
    """A model call failed and will not be retried: the status (None for a connection failure),
    how many tries were made, and what the provider said."""

    def __init__(self, message: str, *, status: int | None = None, tries: int = 1, model: str = "") -> None:
        self.status, self.tries, self.model = status, tries, model
        super().__init__(message)


class AgentLostError(OmoiError):
    """The agent actor of a task attempt died; the attempt fails and its work is not committed."""

    def __init__(self, agent: str, task_id: str, attempt: int) -> None:
        self.agent, self.task_id, self.attempt = agent, task_id, attempt
        super().__init__(f"agent {agent} of task '{task_id}' attempt {attempt} died")


class DeliveryError(OmoiError):
    """The hosting service refused or failed a pull request step: which repository, which step,
    and what it answered (a token without access, a base branch that does not exist, ...)."""

    def __init__(self, repository: str, step: str, answer: str) -> None:
        self.repository, self.step, self.answer = repository, step, answer
        super().__init__(f"{repository}: could not {step}: {answer}")
