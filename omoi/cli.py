"""The `omoi` command line. Exit codes: 0 every task succeeded, 1 a task or the run failed,
2 bad input (nothing was written), 130 interrupted (the run can be resumed)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from omoi.console import address_option, err, guard, out, repo_option, state_option, warn_unreadable
from omoi.runtime.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="omoi")
def main() -> None:
    """omoi: coding agents on one repository, in parallel, on Ray: from a goal (`omoi run`) or a
    plan of tasks (`omoi exec`) to one merged branch."""
    from omoi.runtime.logging import configure

    configure()


def _sandbox_or_warn(requested: str) -> str:
    from omoi.cluster.runner import choose_sandbox

    kind, warning = choose_sandbox(requested, say=lambda m: err.print(m, soft_wrap=True))
    if warning:
        err.print(f"[bold yellow]WARNING:[/] {warning}", markup=True, soft_wrap=True)
    return kind


SERVE = click.option(
    "--serve",
    type=click.IntRange(1, 65535),
    default=None,
    metavar="PORT",
    help="Also serve the HTTP API on 127.0.0.1:PORT while the run goes (see `omoi serve`).",
)


def _serving(repo: str, port: int | None, state_dir: str | None) -> contextlib.AbstractContextManager[Any]:
    if port is None:
        return contextlib.nullcontext()
    from omoi.http.serve import alongside

    server: contextlib.AbstractContextManager[Any] = alongside(
        repo, port, state_dir=state_dir, say=lambda m: err.print(m, soft_wrap=True)
    )
    return server


def _finish(finished: Any) -> None:
    sys.exit(0 if finished.status == "succeeded" else 1)


def _follow(run_id: str, start: Callable[[Any], Any]) -> Any:
    from omoi.progress import Progress

    with Progress(run_id, out) as progress:
        try:
            finished = start(progress)
        except KeyboardInterrupt:
            err.print(f"interrupted: resume with `omoi resume {run_id}`")
            sys.exit(130)
    return finished


@main.command("exec")
@click.argument("plan", type=click.Path())
@repo_option
@click.option("--run-id", default=None, help="Name the run (default: time-based).")
@click.option("--max-parallel", type=int, default=4, show_default=True, help="Tasks running at once.")
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "docker", "local"]),
    default="auto",
    show_default=True,
    help="docker: a locked-down container per task; local: on the host, NOT isolated; "
    "auto: docker when an engine answers.",
)
@click.option(
    "--budget-usd", type=float, default=None, help="Dollar budget of the run (overrides the plan's)."
)
@click.option(
    "--budget-tokens", type=int, default=None, help="Token budget of the run (overrides the plan's)."
)
@click.option(
    "--merge-timeout",
    type=float,
    default=None,
    help="A conflict left to a person (`omoi resolve`): seconds to wait before the task fails to merge.",
)
@address_option
@state_option
@SERVE
@guard
def exec_cmd(
    plan: str,
    repo: str,
    run_id: str | None,
    max_parallel: int,
    sandbox: str,
    budget_usd: float | None,
    budget_tokens: int | None,
    merge_timeout: float | None,
    address: str | None,
    state_dir: str | None,
    serve: int | None,
) -> None:
    """Run PLAN (YAML or JSON) against the repository; exit 0 only if every task succeeded."""
    from omoi import api
    from omoi.runtime.run.plan import Budget

    budget = None
    if budget_usd is not None or budget_tokens is not None:
        budget = _checked(
            lambda: Budget(usd=budget_usd, tokens=budget_tokens), "--budget-usd/--budget-tokens"
        )
    with (
        api.start(
            plan,
            repo,
            run_id=run_id,
            max_parallel=max_parallel,
            address=address,
            state_dir=state_dir,
            sandbox=sandbox,
            budget=budget,
            merge_timeout_s=merge_timeout,
        ) as handle,
        _serving(repo, serve, state_dir),
    ):
        finished = _follow(handle.run_id, handle.wait)
    _finish(finished)


def _goal_options(fn: F) -> F:
    """What `omoi plan` and `omoi run` share: the goal, the repository, the gates."""
    for option in reversed(
        [
            click.argument("goal"),
            repo_option,
            click.option(
                "--gate",
                type=click.Choice(["auto", "review", "human"]),
                default="auto",
                show_default=True,
                help="Between spec phases: go on (auto), ask a reviewer agent, or wait for "
                "`omoi approve`/`omoi reject` (human).",
            ),
            click.option("--gate-timeout", type=float, default=None, help="Human gate: seconds to wait."),
            click.option(
                "--on-gate-timeout",
                type=click.Choice(["approve", "reject", "fail"]),
                default="fail",
                show_default=True,
                help="What a human gate's timeout means.",
            ),
            click.option("--run-id", default=None, help="Name the run (default: time-based)."),
            address_option,
            state_option,
        ]
    ):
        fn = option(fn)
    return fn


@main.command("plan")
@_goal_options
@guard
def plan_cmd(
    goal: str,
    repo: str,
    gate: str,
    gate_timeout: float | None,
    on_gate_timeout: str,
    run_id: str | None,
    address: str | None,
    state_dir: str | None,
) -> None:
    """Turn GOAL into a spec and a task DAG, grounded in the repository, and stop there: prints
    the waves, the critical path and where the documents are (on the run's spec branch)."""
    from omoi import api
    from omoi.progress import plan_summary

    with api.start_goal(
        goal,
        repo,
        gate=gate,
        gate_timeout_s=gate_timeout,
        on_gate_timeout=on_gate_timeout,
        plan_only=True,
        run_id=run_id,
        address=address,
        state_dir=state_dir,
        sandbox="local",
    ) as handle:
        finished = _follow(handle.run_id, handle.wait)
    if finished.status == "succeeded":
        out.print(plan_summary(api.status(handle.run_id, repo, state_dir=state_dir)), highlight=False)
        out.print(f"run these tasks: omoi run - --from {handle.run_id} --repo {repo}", highlight=False)
    _finish(finished)


@main.command("run")
@_goal_options
@click.option("--from", "from_spec", default=None, help="Run the tasks an `omoi plan` run wrote (its id).")
@click.option("--max-parallel", type=int, default=4, show_default=True, help="Tasks running at once.")
@click.option(
    "--sandbox",
    type=click.Choice(["auto", "docker", "local"]),
    default="auto",
    show_default=True,
    help="Where the tasks run (see `omoi exec`).",
)
@click.option("--budget-usd", type=float, default=None, help="Dollar budget of the run.")
@click.option("--budget-tokens", type=int, default=None, help="Token budget of the run.")
@click.option(
    "--merge-timeout",
    type=float,
    default=None,
    help="A conflict left to a person (`omoi resolve`): seconds to wait before the task fails to merge.",
)
@SERVE
@guard
def run_cmd(
    goal: str,
    repo: str,
    gate: str,
    gate_timeout: float | None,
    on_gate_timeout: str,
    run_id: str | None,
    address: str | None,
    state_dir: str | None,
    max_parallel: int,
    sandbox: str,
    budget_usd: float | None,
    budget_tokens: int | None,
    merge_timeout: float | None,
    from_spec: str | None,
    serve: int | None,
) -> None:
    """From GOAL to one merged branch: spec (Explore, Requirements, Design, Tasks, gated), then the
    tasks' agents in sandboxes, then the merge. With `--from PLAN_RUN` and `-` as GOAL: the tasks
    an `omoi plan` run wrote. Exit codes as for `omoi exec`."""
    from omoi import api
    from omoi.runtime.run.plan import Budget

    budget = None
    if budget_usd is not None or budget_tokens is not None:
        budget = _checked(
            lambda: Budget(usd=budget_usd, tokens=budget_tokens), "--budget-usd/--budget-tokens"
        )
    if (from_spec is None) == (goal == "-"):
        raise InputError("give a GOAL, or `-` as the goal with --from PLAN_RUN (an `omoi plan` run's id)")
    options: dict[str, Any] = {
        "run_id": run_id,
        "max_parallel": max_parallel,
        "address": address,
        "state_dir": state_dir,
        "sandbox": sandbox,  # resolved by the API once the input is checked
        "budget": budget,
        "merge_timeout_s": merge_timeout,
    }
    gates: dict[str, Any] = {"gate": gate, "gate_timeout_s": gate_timeout, "on_gate_timeout": on_gate_timeout}
    with (
        (
            api.start_from_spec(from_spec, repo, **options)
            if from_spec is not None
            else api.start_goal(goal, repo, **gates, **options)
        ) as handle,
        _serving(repo, serve, state_dir),
    ):
        finished = _follow(handle.run_id, handle.wait)
    _finish(finished)


PHASE = click.option(
    "--phase", type=click.Choice(["requirements", "design", "tasks"]), help="The spec phase at its gate."
)
DISCOVERY = click.option(
    "--discovery", type=int, help="The discovery at its gate (the seq of its agent.discovery event)."
)


def _gated(phase: str | None, discovery: int | None) -> None:
    if (phase is None) == (discovery is None):
        raise InputError("say what is decided: --phase PHASE (a spec gate) or --discovery SEQ, one of them")


@main.command()
@click.argument("run_id")
@PHASE
@DISCOVERY
@repo_option
@state_option
@guard
def approve(run_id: str, phase: str | None, discovery: int | None, repo: str, state_dir: str | None) -> None:
    """Approve what waits at RUN_ID's human gate: a spec PHASE (the spec goes on) or a DISCOVERY
    (it becomes a task)."""
    from omoi import api

    _gated(phase, discovery)
    if discovery is not None:
        seq = api.decide_discovery(run_id, repo, discovery, "approve", state_dir=state_dir)
        out.print(f"approved discovery {discovery} of run {run_id} (event {seq})")
        return
    assert phase is not None
    seq = api.decide_gate(run_id, repo, phase, "approve", state_dir=state_dir)
    out.print(f"approved {phase} of run {run_id} (event {seq})")


@main.command()
@click.argument("run_id")
@PHASE
@DISCOVERY
@click.option("--reason", required=True, help="Why: for a phase it goes into the prompt that redoes it.")
@repo_option
@state_option
@guard
def reject(
    run_id: str, phase: str | None, discovery: int | None, reason: str, repo: str, state_dir: str | None
) -> None:
    """Send back what waits at RUN_ID's human gate, with the reason: a spec PHASE (it is redone)
    or a DISCOVERY (it is dropped)."""
    from omoi import api

    _gated(phase, discovery)
    if discovery is not None:
        seq = api.decide_discovery(run_id, repo, discovery, "reject", reason, state_dir=state_dir)
        out.print(f"rejected discovery {discovery} of run {run_id} (event {seq})")
        return
    assert phase is not None
    seq = api.decide_gate(run_id, repo, phase, "reject", reason, state_dir=state_dir)
    out.print(f"rejected {phase} of run {run_id} (event {seq}); it is being redone")


@main.command()
@click.argument("run_id")
@click.argument("task_id", required=False)
@repo_option
@click.option("--max-parallel", type=int, default=None, help="Override the run's parallelism.")
@address_option
@state_option
@guard
def resume(
    run_id: str,
    task_id: str | None,
    repo: str,
    max_parallel: int | None,
    address: str | None,
    state_dir: str | None,
) -> None:
    """Continue RUN_ID from its log: what succeeded stays done, the rest runs. With TASK_ID: let
    that paused agent go on (see `omoi pause`)."""
    from omoi import api

    if task_id is not None:
        seq = api.resume_task(run_id, task_id, repo, state_dir=state_dir)
        out.print(f"resumed task {task_id} of run {run_id} (event {seq})")
        return

    done = api.status(run_id, repo, state_dir=state_dir).finished
    if done is not None:
        cleared = api.clear(run_id, repo, address=address, state_dir=state_dir)
        out.print(f"run {run_id} already finished ({done.status}); removed what was left: {cleared}")
        _finish(done)
    finished = _follow(
        run_id,
        lambda progress: api.resume(
            run_id, repo, address=address, state_dir=state_dir, max_parallel=max_parallel, on_events=progress
        ),
    )
    _finish(finished)


@main.command()
@click.argument("run_id")
@click.argument("task_id")
@click.argument("text")
@repo_option
@state_option
@guard
def answer(run_id: str, task_id: str, text: str, repo: str, state_dir: str | None) -> None:
    """Answer the question TASK_ID's agent asked (it waits for this); the run must be live or resumable."""
    from omoi import api

    seq = api.answer(run_id, task_id, text, repo, state_dir=state_dir)
    out.print(f"answered task {task_id} of run {run_id} (event {seq})")


@main.command()
@click.argument("run_id")
@click.argument("task_id")
@click.option("--reason", default="paused by user", show_default=True, help="Why, for the log.")
@repo_option
@state_option
@guard
def pause(run_id: str, task_id: str, reason: str, repo: str, state_dir: str | None) -> None:
    """Hold TASK_ID's agent before its next model call until `omoi resume RUN_ID TASK_ID`."""
    from omoi import api

    seq = api.pause(run_id, task_id, repo, reason=reason, state_dir=state_dir)
    out.print(
        f"paused task {task_id} of run {run_id} (event {seq}); `omoi resume {run_id} {task_id}` lets it go on"
    )


@main.command("raise-budget")
@click.argument("run_id")
@click.option("--usd", type=float, default=0.0, help="Dollars to add.")
@click.option("--tokens", type=int, default=0, help="Tokens to add.")
@click.option("--task", "scope", default="run", help="Raise this task's budget instead of the run's.")
@repo_option
@state_option
@guard
def raise_budget(run_id: str, usd: float, tokens: int, scope: str, repo: str, state_dir: str | None) -> None:
    """Lift a spent budget so waiting agents go on."""
    from omoi import api

    seq = api.raise_budget(run_id, repo, scope=scope, tokens=tokens, usd=usd, state_dir=state_dir)
    out.print(f"raised the {scope} budget of run {run_id} by {tokens} tokens and ${usd:g} (event {seq})")


def _checked(build: Callable[[], Any], where: str) -> Any:
    """A pydantic model built from options; a validation error names the options."""
    from pydantic import ValidationError

    try:
        return build()
    except ValidationError as exc:
        raise InputError(f"{where}: {exc.errors()[0]['msg']}") from exc


@main.command()
@click.argument("run_id")
@repo_option
@state_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--tree", is_flag=True, help="Run, spec phases, tasks, attempts, agent, guardian, sandbox.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Table rows at most, unfinished tasks first (0: every task).",
)
@guard
def status(run_id: str, repo: str, state_dir: str | None, fmt: str, tree: bool, limit: int) -> None:
    """Tasks of RUN_ID with status, attempts, start and end times, and branch (from the log alone)."""
    from omoi.formats import run_outcome, status_json
    from omoi.progress import status_table
    from omoi.run_log import read_log, read_state

    if tree:
        from omoi.status_tree import run_tree

        log, unreadable = read_log(run_id, repo, state_dir=state_dir)
        warn_unreadable(unreadable)
        root = run_tree(run_id, log)
        click.echo(json.dumps(root.as_json(), indent=2) if fmt == "json" else "\n".join(root.render()))
        return
    state, unreadable = read_state(run_id, repo, state_dir=state_dir)
    warn_unreadable(unreadable)
    if fmt == "json":
        click.echo(json.dumps(status_json(state), indent=2))
        return
    out.print(status_table(state, limit))
    out.print(run_outcome(state))


@main.command()
@click.argument("run_id")
@repo_option
@state_option
@click.option("--kind", default=None, help="Only kinds starting with this prefix, e.g. 'task.'.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@guard
def events(run_id: str, repo: str, state_dir: str | None, kind: str | None, fmt: str) -> None:
    """Print RUN_ID's event log as stored (jsonl: one event per line, every field)."""
    from omoi.formats import event_line
    from omoi.run_log import read_rows

    rows, unreadable = read_rows(run_id, repo, state_dir=state_dir, kind=kind)
    warn_unreadable(unreadable)
    stream = click.get_text_stream("stdout")
    for start in range(0, len(rows), 2000):  # one write per chunk: a long log is 100k lines
        chunk = rows[start : start + 2000]
        stream.write(
            "".join((body if fmt == "jsonl" else event_line(fields)) + "\n" for body, fields in chunk)
        )
    stream.flush()


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(),
    default=None,
    help="Where to create the example repository (default: a new temporary directory).",
)
@click.option(
    "--plan",
    "from_plan",
    is_flag=True,
    help="Run the example's plan (omoi exec) instead of its goal (omoi run).",
)
@click.option("--max-parallel", type=int, default=4, show_default=True)
@address_option
@guard
def demo(directory: str | None, from_plan: bool, max_parallel: int, address: str | None) -> None:
    """The whole pipeline on a bundled example repository, offline, with a scripted model.

    A goal becomes a spec (explore, requirements, design, tasks; the first task list is sent back
    by the checks), then three agents work in parallel sandboxes (one fails its acceptance once
    and repairs it, one meets a 429 and recovers), and it all merges into one branch."""
    from omoi.demo import run_demo

    finished = run_demo(
        directory=Path(directory) if directory else None,
        from_plan=from_plan,
        max_parallel=max_parallel,
        address=address,
        sandbox=_sandbox_or_warn("auto"),
        follow=_follow,
        say=out.print,
    )
    _finish(finished)


from omoi.bench.commands import bench  # noqa: E402  (the command groups register on `main`)
from omoi.delivery import pr, resolve  # noqa: E402
from omoi.live import add_task, cancel, inject, message, serve, watch  # noqa: E402
from omoi.toolbox import gc, model, sandbox, schema  # noqa: E402

for _group in (
    schema,
    model,
    sandbox,
    bench,
    gc,
    resolve,
    pr,
    inject,
    message,
    cancel,
    add_task,
    watch,
    serve,
):
    main.add_command(_group)

if __name__ == "__main__":
    main()
