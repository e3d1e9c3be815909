"""The sandbox attempts the merge queue asks for: checks on a candidate head, and each rung's
attempt on a task's branch (a re-run of its command, its agent or the resolver on the conflict)."""

from __future__ import annotations

from omoi.runtime import names
from omoi.runtime.merge import prompts
from omoi.runtime.merge.state import Entry, MergeState
from omoi.runtime.run.execution import TaskRequest

VERIFY_TIMEOUT_S = 1800.0


class RungRequests:
    def __init__(self, state: MergeState, run_id: str) -> None:
        self.st, self.run_id = state, run_id

    def checks(self, tasks: list[str]) -> tuple[str, ...]:
        """The run's `verify` commands, then each merged task's acceptance commands, each once."""
        out: list[str] = list(self.st.verify)
        for tid in tasks:
            out += [c for c in self.st.specs[tid].acceptance if c not in out]
        return tuple(dict.fromkeys(out))

    def verify(self, candidate: str, commands: tuple[str, ...], attempt: int) -> TaskRequest:
        return TaskRequest(
            run_id=self.run_id,
            task_id=names.VERIFY,
            attempt=attempt,
            command=prompts.verify_script(commands),
            timeout=VERIFY_TIMEOUT_S,
            branch=names.task_branch(self.run_id, names.VERIFY),
            base=candidate,
        )

    def rung(self, e: Entry) -> TaskRequest:
        """A rung's attempt: numbered after every attempt the task had, so its events and its
        sandbox's bookkeeping never mix with an earlier one's."""
        spec = self.st.specs[e.task_id]
        attempt = self.st.attempts.get(e.task_id, 0) + 1
        self.st.attempts[e.task_id] = attempt
        common = {
            "run_id": self.run_id,
            "task_id": e.task_id,
            "attempt": attempt,
            "timeout": spec.timeout,
            "env": spec.env,
            "branch": names.task_branch(self.run_id, e.task_id),
            "base": self.st.integration_head,
            "network": spec.network,
        }
        if spec.agent is None:  # rerun: the command again, on top of the integration head
            return TaskRequest(**common, command=spec.run or "")
        if not e.files:  # a semantic conflict: the agent repairs the merged result
            prompt = prompts.repair_message(e.task_id, spec.agent.prompt, *self._failure(e.detail))
            acceptance = (*self.st.verify, *spec.acceptance)
        else:
            others = {t: self._intent(t) for t in self._merged_touching(e.files)}
            prompt = prompts.resolve_message(
                e.task_id,
                spec.agent.prompt,
                self.st.summaries.get(e.task_id, ""),
                e.files,
                others,
                neutral=e.rung == "resolver",
            )
            acceptance = (*spec.acceptance, prompts.marker_check(e.files))
        role = "resolver" if e.rung == "resolver" else spec.agent.role
        agent = spec.agent.model_copy(update={"prompt": prompt, "role": role, "context": tuple(e.files)})
        return TaskRequest(
            **common, agent=agent, acceptance=tuple(dict.fromkeys(acceptance)), merge_parent=e.tip
        )

    def _merged_touching(self, files: tuple[str, ...]) -> list[str]:
        return [t for t, m in self.st.changed.items() if set(m) & set(files)]

    def _intent(self, task_id: str) -> str:
        spec = self.st.specs[task_id]
        said = self.st.summaries.get(task_id, "")
        what = spec.agent.prompt if spec.agent is not None else f"runs `{spec.run}`"
        return f"{what}" + (f" — it reported: {said}" if said else "")

    @staticmethod
    def _failure(detail: str) -> tuple[str, str]:
        first, _, rest = detail.partition("\n")
        command = first.split("`")[1] if first.count("`") >= 2 else first
        return command, rest
