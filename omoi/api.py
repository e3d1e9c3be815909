"""The public Python API: what the CLI does, callable from a program or a notebook."""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import structlog

from omoi.cluster.agents import AgentEnv
from omoi.cluster.connect import connect
from omoi.cluster.runner import (
    Cleared,
    EventSink,
    RunHandle,
    check_sandbox,
    choose_sandbox,
    clear_run,
    launch,
)
from omoi.run_log import read_log, read_state
from omoi.runtime.config import check_settings, model_settings
from omoi.runtime.errors import InputError
from omoi.runtime.git.repo import commit_of, git, inspect_repo
from omoi.runtime.log.events import (
    Event,
    MergeHumanResolved,
    RunFinished,
    ScheduleSpec,
    check_readable,
)
from omoi.runtime.merge import github as gh
from omoi.runtime.run import injection
from omoi.runtime.run.begin import goal_new_run, is_live, open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.paths import RunPaths, locate, state_root
from omoi.runtime.run.plan import Budget, Plan, check_categories, load_plan
from omoi.runtime.run.state import RunState, fold
from omoi.runtime.run.submit import submit
from omoi.runtime.run.tasks import TaskSpec
from omoi.runtime.sandbox.docker import engine_or_none, remove_run_containers

log = structlog.get_logger("omoi")


def _say(message: str) -> None:
    """What a first run must tell its user (an image being built, a run that is not isolated):
    on stderr, from the CLI and from Python alike."""
    print(message, file=sys.stderr, flush=True)


def _sandbox(requested: str, *, check: bool = True) -> str:
    """The backend a run uses (`auto` resolved: the image is built on first use), checked before
    anything is written and after every input check, so the input's own errors come first."""
    sandbox, warning = choose_sandbox(requested, say=_say)
    if warning:
        log.warning("sandbox.not_isolated", detail=warning)
        _say(f"WARNING: {warning}")
    if check:
        check_sandbox(sandbox)
    return sandbox


def start(
    plan: Plan | str | Path,
    repo: str | Path,
    *,
    run_id: str | None = None,
    max_parallel: int = 4,
    address: str | None = None,
    state_dir: str | Path | None = None,
    sandbox: str = "auto",
    budget: Budget | None = None,
    agents: AgentEnv | None = None,
    base: str | None = None,
    merge_timeout_s: float | None = None,
) -> RunHandle:
    """Validate the plan and the repository, then start the run and return at once.

    `sandbox`: `docker`, `local` (on the host, not isolated) or `auto` (docker when an engine
    answers). `budget` overrides the plan's; `agents` the model and agent settings read from the
    environment; `base` the commit tasks start from (default: the repository's HEAD);
    `merge_timeout_s` how long a conflict left to a person waits (default: until resolved). Bad
    input raises an InputError before anything is written."""
    plan_file = "" if isinstance(plan, Plan) else str(plan)
    options = RunOptions.of(
        run_id=run_id,
        merge_timeout_s=merge_timeout_s,
        max_parallel=max_parallel,
        sandbox=sandbox,
        state_dir=state_dir,
        budget=budget,
        base=base,
        plan_file=plan_file,
    )
    plan_obj = plan if isinstance(plan, Plan) else load_plan(plan)
    check_settings()
    check_categories(plan_obj, (agents.models if agents else model_settings()).routes, plan_file)
    paths, first = plan_new_run(plan_obj, repo, options)
    first = _resolved(first, _sandbox(sandbox))  # the environment is probed last: input errors come first
    connect(address)
    return launch(paths, first, agents=agents)


def _resolved(first: list[Event], sandbox: str) -> list[Event]:
    """The run's first events with `auto` resolved to the backend it uses."""
    started, *rest = first
    return [started.model_copy(update={"sandbox": sandbox}), *rest]


def start_goal(
    goal: str,
    repo: str | Path,
    *,
    gate: str = "auto",
    gate_timeout_s: float | None = None,
    on_gate_timeout: str = "fail",
    plan_only: bool = False,
    run_id: str | None = None,
    max_parallel: int = 4,
    address: str | None = None,
    state_dir: str | Path | None = None,
    sandbox: str = "auto",
    budget: Budget | None = None,
    agents: AgentEnv | None = None,
    merge_timeout_s: float | None = None,
) -> RunHandle:
    """Start a run from a goal and return at once: the spec (Explore, Requirements, Design, Tasks,
    with `gate` between phases) writes the tasks, then they run like a plan's. `plan_only` stops
    after the spec (`omoi plan`). Bad input raises an InputError before anything is written."""
    options = RunOptions.of(
        run_id=run_id,
        max_parallel=max_parallel,
        sandbox=sandbox,
        state_dir=state_dir,
        budget=budget,
        gate=gate,
        gate_timeout_s=gate_timeout_s,
        on_gate_timeout=on_gate_timeout,
        plan_only=plan_only,
        merge_timeout_s=merge_timeout_s,
    )
    check_settings()
    paths, first = goal_new_run(goal, repo, options)
    first = _resolved(first, _sandbox(sandbox, check=not plan_only))  # `omoi plan` needs no engine
    connect(address)
    return launch(paths, first, agents=agents)


def start_from_spec(spec_run: str, repo: str | Path, **options: Any) -> RunHandle:
    """Run the tasks a finished `omoi plan` wrote, from its spec's commit (so the documents are on
    every branch of the new run too). `options` are `start`'s."""
    state = status(spec_run, repo, state_dir=options.get("state_dir"))
    spec = state.spec
    if state.started is None or not state.started.plan_only or spec is None or spec.status != "succeeded":
        raise InputError(f"run '{spec_run}' is not a finished `omoi plan` whose spec succeeded")
    plan = Plan(name=f"spec {spec_run}", tasks=tuple(t.spec for t in state.in_order()))
    return start(plan, repo, base=spec.commit, **options)


def decide_gate(
    run_id: str,
    repo: str | Path,
    phase: str,
    decision: Literal["approve", "reject"],
    reason: str = "",
    *,
    state_dir: str | Path | None = None,
) -> int:
    """Approve or reject the spec phase waiting at a human gate; returns the decision's seq.
    A rejection needs a reason: it goes into the prompt that redoes the phase."""
    data = {"phase": phase, "decision": decision, "reason": reason, "by": "human"}
    return inject_kind(run_id, repo, "spec.gate_decided", data, state_dir=state_dir)


def decide_discovery(
    run_id: str,
    repo: str | Path,
    discovery: int,
    decision: Literal["approve", "reject"],
    reason: str = "",
    *,
    state_dir: str | Path | None = None,
) -> int:
    """Approve or reject the discovery (the seq of its `agent.discovery` event) waiting at the
    run's discovery gate; returns the decision's seq."""
    data = {"discovery": discovery, "decision": decision, "reason": reason}
    return inject_kind(run_id, repo, "discovery.decided", data, state_dir=state_dir)


def exec_plan(
    plan: Plan | str | Path, repo: str | Path, *, on_events: EventSink | None = None, **options: Any
) -> RunFinished:
    """Run a plan to the end and return its `run.finished` event. `options` are `start`'s."""
    with start(plan, repo, **options) as handle:
        return handle.wait(on_events)


def resume(
    run_id: str,
    repo: str | Path,
    *,
    address: str | None = None,
    state_dir: str | Path | None = None,
    max_parallel: int | None = None,
    agents: AgentEnv | None = None,
    on_events: EventSink | None = None,
) -> RunFinished:
    """Continue a run from its log: succeeded tasks stay done, interrupted ones run again. A run
    that had finished is not run again, but what its driver left (it may have died before its
    shutdown) is removed: containers and task trees, and its actors when `address` names the
    cluster it ran on."""
    paths = locate(repo, run_id, state_dir)
    state = status(run_id, repo, state_dir=state_dir)
    if state.finished is not None:
        clear(run_id, repo, address=address, state_dir=state_dir)
        return state.finished
    connect(address)
    with launch(paths, max_parallel=max_parallel, agents=agents) as handle:
        return handle.wait(on_events)


def clear(
    run_id: str, repo: str | Path, *, address: str | None = None, state_dir: str | Path | None = None
) -> Cleared:
    """Remove what a run that nobody drives left behind: containers, task trees, and its actors
    when `address` names the cluster it ran on (an embedded cluster's actors died with it). A run
    some live process drives is left alone."""
    paths = locate(repo, run_id, state_dir)
    if is_live(paths.run_dir):
        return Cleared(0, 0, 0)
    if address is not None:
        connect(address)
    return clear_run(paths, actors=address is not None)


@dataclass(frozen=True)
class Collected:
    cleared: Cleared
    live: int

    def __str__(self) -> str:
        return f"removed {self.cleared}" + (f"; {self.live} live run(s) left alone" if self.live else "")


def gc(
    repo: str | Path | None,
    *,
    run_id: str | None = None,
    address: str | None = None,
    state_dir: str | Path | None = None,
) -> Collected:
    """What `omoi gc` removes. With `repo`: that repository's dead runs only (containers, task trees,
    and actors when `address` names their cluster). Without: every dead run's containers on this
    machine. Runs a live process drives are left alone."""
    client = engine_or_none()
    if repo is None:
        containers = remove_run_containers(client, run_id, spare_live=True) if client is not None else 0
        return Collected(Cleared(0, containers, 0), 0)
    info = inspect_repo(repo)
    runs = state_root(info, state_dir) / "runs"
    if address is not None:
        connect(address)
    total, live = Cleared(0, 0, 0), 0
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []:
        if run_id is not None and run_dir.name != run_id:
            continue
        if is_live(run_dir):
            live += 1
            continue
        total += clear_run(RunPaths(info, run_dir.name, runs.parent), actors=address is not None)
    if client is not None:  # runs whose directories are gone: matched by where they were
        gone = remove_run_containers(client, run_id, spare_live=True, under=runs)
        total += Cleared(0, gone, 0)
    return Collected(total, live)


def events(
    run_id: str, repo: str | Path, *, state_dir: str | Path | None = None, kind: str | None = None
) -> list[Event]:
    """A run's log, read straight from its file: no cluster needed, live or finished. Rows that
    cannot be read (an older version's, a disk fault) are skipped; `unreadable` names them."""
    return read_log(run_id, repo, state_dir=state_dir, kind=kind)[0]


def status(run_id: str, repo: str | Path, *, state_dir: str | Path | None = None) -> RunState:
    """The run's state: its latest snapshot and the folded kinds after it (not the output)."""
    return read_state(run_id, repo, state_dir=state_dir)[0]


def inject(
    run_id: str, repo: str | Path, events_: Sequence[Event], *, state_dir: str | Path | None = None
) -> list[int]:
    """Append events to a run's log from any process on the machine that holds it; a live run's
    bus takes them in within a second (the log is the source of truth, the bus follows it).
    Each is checked first (`runtime.run.injection`): only kinds a person may inject, against the
    run as it is now; all are written or none. An event whose id is in the log already is
    returned as it was (a retry)."""
    check_readable(events_)
    for ev in events_:
        injection.build(run_id, ev.kind, ev.model_dump(exclude={"run_id", "kind", "seq"}), source=ev.source)
    return submit(run_id, repo, events_, state_dir=state_dir)


def inject_kind(
    run_id: str,
    repo: str | Path,
    kind: str,
    data: dict[str, Any],
    *,
    id: str | None = None,
    source: str = "user",
    state_dir: str | Path | None = None,
) -> int:
    """Inject one event of an allowed `kind` from plain data (what `omoi inject` and the HTTP API
    take); InjectionRefused names the kind or the field. Returns its seq."""
    ev = injection.build(run_id, kind, data, id=id, source=source)
    (seq,) = submit(run_id, repo, [ev], state_dir=state_dir)
    return seq


def answer(
    run_id: str, task_id: str, text: str, repo: str | Path, *, state_dir: str | Path | None = None
) -> int:
    """Answer the open question of TASK_ID's agent; returns the answer's seq."""
    if not text.strip():
        raise InputError("the answer is empty")
    return inject_kind(
        run_id, repo, "agent.answered", {"task_id": task_id, "answer": text}, state_dir=state_dir
    )


def message(
    run_id: str, task_id: str, text: str, repo: str | Path, *, state_dir: str | Path | None = None
) -> int:
    """Text for TASK_ID's agent, in its next model request (tagged `[omoi message]`); the seq."""
    if not text.strip():
        raise InputError("the message is empty")
    return inject_kind(run_id, repo, "agent.message", {"task_id": task_id, "text": text}, state_dir=state_dir)


def cancel(
    run_id: str,
    repo: str | Path,
    task_id: str | None = None,
    *,
    reason: str = "cancelled by user",
    state_dir: str | Path | None = None,
) -> int:
    """Cancel the run, or one task of it (its dependents are skipped); the seq."""
    if task_id is None:
        return inject_kind(run_id, repo, "run.cancel_requested", {"reason": reason}, state_dir=state_dir)
    data = {"task_id": task_id, "reason": reason}
    return inject_kind(run_id, repo, "task.cancel_requested", data, state_dir=state_dir)


def add_tasks(
    run_id: str, repo: str | Path, specs: Sequence[TaskSpec], *, state_dir: str | Path | None = None
) -> list[int]:
    """Add tasks to the live DAG (checked together: ids, dependencies, cycles); their seqs."""
    events_ = [
        injection.build(run_id, "task.added", {"spec": s.model_dump(mode="json")}, source="user")
        for s in specs
    ]
    return submit(run_id, repo, events_, state_dir=state_dir)


def schedule(
    run_id: str, repo: str | Path, spec: ScheduleSpec | dict[str, Any], *, state_dir: str | Path | None = None
) -> tuple[str, int]:
    """Add a one-shot or recurring schedule to the run (its scheduler fires it on the clock);
    its id and the seq of `schedule.created`. The same schedule id given twice is one schedule."""
    data = spec.model_dump(mode="json") if isinstance(spec, ScheduleSpec) else dict(spec)
    ev = injection.build(run_id, "schedule.created", {"schedule": data}, source="user")
    sid = ev.schedule.id  # type: ignore[union-attr]  # given, or generated by the spec
    (seq,) = submit(
        run_id, repo, [ev.model_copy(update={"id": f"schedule-{run_id}-{sid}-created"})], state_dir=state_dir
    )
    return sid, seq


def schedules(
    run_id: str, repo: str | Path, *, state_dir: str | Path | None = None
) -> list[dict[str, object]]:
    """The run's schedules as its log says: spec, fires so far, next due, why one ended."""
    from omoi.runtime.run.schedules import Schedules

    state = Schedules(run_id)
    for ev in events(run_id, repo, state_dir=state_dir):
        state.apply(ev)
    return state.listing()


def unschedule(
    run_id: str, repo: str | Path, schedule_id: str, *, state_dir: str | Path | None = None
) -> int:
    """Stop a schedule; the seq of `schedule.cancelled`."""
    return inject_kind(run_id, repo, "schedule.cancelled", {"schedule_id": schedule_id}, state_dir=state_dir)


def raise_budget(
    run_id: str,
    repo: str | Path,
    *,
    scope: str = "run",
    tokens: int = 0,
    usd: float = 0.0,
    state_dir: str | Path | None = None,
) -> int:
    """Lift the run's budget (or task `scope`'s) by these amounts; waiting agents go on."""
    if not math.isfinite(usd):
        raise InputError(f"--usd must be a finite number of dollars, got {usd}")
    if tokens < 0 or usd < 0 or (tokens == 0 and usd == 0):
        raise InputError("give a positive amount to raise the budget by (--tokens and/or --usd)")
    data = {"scope": scope, "add_tokens": tokens, "add_usd": usd}
    return inject_kind(run_id, repo, "budget.raised", data, state_dir=state_dir)


def pause(
    run_id: str,
    task_id: str,
    repo: str | Path,
    *,
    reason: str = "paused by user",
    state_dir: str | Path | None = None,
) -> int:
    """Hold TASK_ID's agent before its next model call, until `resume_task`; returns the seq."""
    return inject_kind(
        run_id, repo, "agent.paused", {"task_id": task_id, "reason": reason}, state_dir=state_dir
    )


def resume_task(run_id: str, task_id: str, repo: str | Path, *, state_dir: str | Path | None = None) -> int:
    """Let a paused agent (by a person or by the guardian asking for one) go on; returns the seq."""
    return inject_kind(run_id, repo, "agent.resumed", {"task_id": task_id}, state_dir=state_dir)


def resolve(
    run_id: str,
    task_id: str,
    repo: str | Path,
    *,
    take: Literal["ours", "theirs"] | None = None,
    state_dir: str | Path | None = None,
) -> int:
    """Hand a conflict the merge queue left to a person back to it; returns the event's seq.

    Without `take`, the resolution is what you committed on the task's branch (merge the run's
    integration branch into it and fix the files); it is checked to merge cleanly now. With
    `take`, every conflicting hunk is taken from one side: `ours` the integration head (the work
    merged before), `theirs` the task's branch."""
    from omoi.runtime.merge import trees
    from omoi.runtime.merge.state import fold_merges
    from omoi.runtime.names import run_branch, task_branch

    paths = locate(repo, run_id, state_dir)
    state = fold_merges(run_id, events(run_id, repo, state_dir=state_dir))
    entry = state.entries.get(task_id)
    if entry is None or entry.status != "needs_human":
        waiting = sorted(e.task_id for e in state.waiting_on_person())
        hint = f"; waiting for a person: {', '.join(waiting)}" if waiting else "; no merge waits for a person"
        raise InputError(f"task '{task_id}' of run '{run_id}' has no open merge conflict{hint}")
    if take is None:
        git_dir, branch = paths.repo.git_dir, task_branch(run_id, task_id)
        tip = commit_of(git_dir, branch)
        left = trees.merge(git_dir, state.integration_head, tip).files
        if left:
            raise InputError(
                f"branch {branch} still conflicts with the integration head in: {', '.join(left)}. "
                f"Commit a resolution on it first (git switch {branch}; git merge {run_branch(run_id)}; "
                "fix the files; git commit), or pass --take ours|theirs"
            )
    ev = MergeHumanResolved(run_id=run_id, task_id=task_id, take=take or "branch", source="user")
    (seq,) = submit(run_id, repo, [ev], state_dir=state_dir)  # checked above, with git
    return seq


class Delivered(NamedTuple):
    """What `pull_request` delivered: the description's file and text, and the pull request's
    web address ("" when none was opened)."""

    path: Path
    text: str
    pull_request: str = ""


def pull_request(
    run_id: str,
    repo: str | Path,
    *,
    push: str | None = None,
    github: str | None = None,
    base: str | None = None,
    state_dir: str | Path | None = None,
) -> Delivered:
    """The run's pull-request description (written to `PR.md` in the run's directory and
    returned), once the run has finished. With `push`, the run's merged branch is pushed to that
    remote under the same name; then, with `GITHUB_TOKEN` set and a GitHub repository (`github`
    as OWNER/REPO, or the remote's github.com URL), a pull request into `base` (default: the
    branch the run started from) is opened, or the open one updated. `GITHUB_API_URL` points at
    another API host (GitHub Enterprise). A `delivery.ready` event records what was done."""
    from omoi.runtime.log.events import DeliveryReady
    from omoi.runtime.merge.describe import describe

    paths = locate(repo, run_id, state_dir)
    log_ = events(run_id, repo, state_dir=state_dir)
    state = fold(run_id, log_)
    if state.finished is None:
        raise InputError(f"run '{run_id}' has not finished: `omoi pr` describes a finished run")
    if state.finished.branch is None or state.finished.commit is None:
        raise InputError(
            f"run '{run_id}' {state.finished.status} and delivered no branch: {state.finished.error}"
        )
    branch, commit = state.finished.branch, state.finished.commit
    target = paths.run_dir / "PR.md"
    hub = _pull_request_target(paths.repo.path, push, github)
    into = base or (state.started.base_ref if state.started else "")
    if hub is not None and not into:
        raise InputError("--base: the run started from a detached commit; name the branch to merge into")
    text = describe(run_id, log_)
    if push is not None:
        proc = git(["push", "--quiet", push, f"{commit}:refs/heads/{branch}"], paths.repo.path, check=False)
        if proc.returncode != 0:
            raise InputError(f"--push {push}: git push failed: {proc.stderr.strip() or proc.stdout.strip()}")
    target.write_text(text)
    url = ""
    if hub is not None:
        title = text.splitlines()[0].lstrip("# ").strip() or f"omoi run {run_id}"
        body = gh.fit_body(text, str(target))
        url = gh.open_or_update(hub[0], hub[1], branch, into, title[:250], body)
    ev = DeliveryReady(
        run_id=run_id,
        branch=branch,
        commit=commit,
        description=str(target),
        pushed_to=push or "",
        pull_request=url,
        source="user",
    )
    with contextlib.closing(open_log(paths)) as store:  # after run.finished: appended, not injected
        store.append([ev])
    return Delivered(target, text, url)


def _pull_request_target(
    repo: Path, push: str | None, github: str | None
) -> tuple[gh.Repository, str] | None:
    """(the GitHub repository, the token) when a pull request is to be opened, else None; bad
    combinations are refused before anything is pushed or written."""
    token, api_url = os.environ.get("GITHUB_TOKEN", ""), os.environ.get("GITHUB_API_URL") or None
    if api_url is not None and not api_url.startswith(("https://", "http://")):
        raise InputError(f"GITHUB_API_URL must be an http(s) URL, not {api_url!r}")
    if github is not None:
        if (hub := gh.named(github, api_url)) is None:
            raise InputError(f"--github {github!r}: name the repository as OWNER/REPO")
        if push is None:
            raise InputError(
                "--github needs --push REMOTE: the branch must be on GitHub before a pull request"
            )
        if not token:
            raise InputError("--github needs GITHUB_TOKEN set to a token that may open pull requests")
        return hub, token
    if push is None or not token:
        return None
    proc = git(["remote", "get-url", push], repo, check=False)
    found = gh.from_remote(proc.stdout.strip() if proc.returncode == 0 else push, api_url)
    return None if found is None else (found, token)
