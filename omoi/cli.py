"""The `omoi` command line. Exit codes: 0 every task succeeded, 1 a task or the run failed,
2 bad input (nothing was written), 130 interrupted (the run can be resumed)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from omoi.runtime import names
from omoi.runtime.errors import InputError, OmoiError

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)  # tables unwrapped in logs
err = Console(stderr=True, highlight=False)


def _guard(fn: F) -> F:
    """Turn omoi's errors into one clear line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InputError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(2)
        except OmoiError as exc:
            err.print(f"[bold red]failed:[/] {exc}", markup=True, soft_wrap=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


repo_option = click.option(
    "--repo", "repo", default=".", show_default=True, type=click.Path(), help="The target git repository."
)
state_option = click.option(
    "--state-dir", type=click.Path(), default=None, help="Where run state lives (default: <repo>/.git/omoi)."
)
address_option = click.option(
    "--address",
    envvar="RAY_ADDRESS",
    default=None,
    help="Ray cluster to join (default: $RAY_ADDRESS, else an embedded one).",
)


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


def _warn_unreadable(unreadable: dict[int, str]) -> None:
    for seq, why in sorted(unreadable.items()):
        err.print(f"warning: the log's row seq {seq} cannot be read and is skipped: {why}")


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
@address_option
@state_option
@_guard
def exec_cmd(
    plan: str,
    repo: str,
    run_id: str | None,
    max_parallel: int,
    sandbox: str,
    budget_usd: float | None,
    budget_tokens: int | None,
    address: str | None,
    state_dir: str | None,
) -> None:
    """Run PLAN (YAML or JSON) against the repository; exit 0 only if every task succeeded."""
    from omoi import api
    from omoi.runtime.run.plan import Budget

    budget = None
    if budget_usd is not None or budget_tokens is not None:
        budget = _checked(
            lambda: Budget(usd=budget_usd, tokens=budget_tokens), "--budget-usd/--budget-tokens"
        )
    with api.start(
        plan,
        repo,
        run_id=run_id,
        max_parallel=max_parallel,
        address=address,
        state_dir=state_dir,
        sandbox=sandbox,
        budget=budget,
    ) as handle:
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
@_guard
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
@_guard
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
    from_spec: str | None,
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
    }
    gates: dict[str, Any] = {"gate": gate, "gate_timeout_s": gate_timeout, "on_gate_timeout": on_gate_timeout}
    with (
        api.start_from_spec(from_spec, repo, **options)
        if from_spec is not None
        else api.start_goal(goal, repo, **gates, **options)
    ) as handle:
        finished = _follow(handle.run_id, handle.wait)
    _finish(finished)


@main.command()
@click.argument("run_id")
@click.option("--phase", required=True, type=click.Choice(["requirements", "design", "tasks"]))
@repo_option
@state_option
@_guard
def approve(run_id: str, phase: str, repo: str, state_dir: str | None) -> None:
    """Approve the spec PHASE waiting at RUN_ID's human gate; the spec goes on."""
    from omoi import api

    seq = api.decide_gate(run_id, repo, phase, "approve", state_dir=state_dir)
    out.print(f"approved {phase} of run {run_id} (event {seq})")


@main.command()
@click.argument("run_id")
@click.option("--phase", required=True, type=click.Choice(["requirements", "design", "tasks"]))
@click.option(
    "--reason", required=True, help="What to change: it goes into the prompt that redoes the phase."
)
@repo_option
@state_option
@_guard
def reject(run_id: str, phase: str, reason: str, repo: str, state_dir: str | None) -> None:
    """Send the spec PHASE waiting at RUN_ID's human gate back, with the reason."""
    from omoi import api

    seq = api.decide_gate(run_id, repo, phase, "reject", reason, state_dir=state_dir)
    out.print(f"rejected {phase} of run {run_id} (event {seq}); it is being redone")


@main.command()
@click.argument("run_id")
@repo_option
@click.option("--max-parallel", type=int, default=None, help="Override the run's parallelism.")
@address_option
@state_option
@_guard
def resume(
    run_id: str, repo: str, max_parallel: int | None, address: str | None, state_dir: str | None
) -> None:
    """Continue RUN_ID from its log: what succeeded stays done, the rest runs."""
    from omoi import api

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
@_guard
def answer(run_id: str, task_id: str, text: str, repo: str, state_dir: str | None) -> None:
    """Answer the question TASK_ID's agent asked (it waits for this); the run must be live or resumable."""
    from omoi import api

    seq = api.answer(run_id, task_id, text, repo, state_dir=state_dir)
    out.print(f"answered task {task_id} of run {run_id} (event {seq})")


@main.command("raise-budget")
@click.argument("run_id")
@click.option("--usd", type=float, default=0.0, help="Dollars to add.")
@click.option("--tokens", type=int, default=0, help="Tokens to add.")
@click.option("--task", "scope", default="run", help="Raise this task's budget instead of the run's.")
@repo_option
@state_option
@_guard
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
@_guard
def status(run_id: str, repo: str, state_dir: str | None, fmt: str) -> None:
    """Tasks of RUN_ID with status, attempts, start and end times, and branch."""
    from omoi import api
    from omoi.progress import status_table
    from omoi.runtime.run.state import fold

    log, unreadable = api.read_log(run_id, repo, state_dir=state_dir)
    _warn_unreadable(unreadable)
    state = fold(run_id, log)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "run_id": run_id,
                    "finished": state.finished.status if state.finished else None,
                    "branch": state.finished.branch if state.finished else None,
                    "tasks": [
                        {
                            "id": t.id,
                            "status": t.status,
                            "attempts": t.attempt,
                            "started": t.started_at.isoformat() if t.started_at else None,
                            "ended": t.ended_at.isoformat() if t.ended_at else None,
                            "branch": names.task_branch(run_id, t.id) if t.attempt else None,
                            "error": t.error,
                        }
                        for t in state.in_order()
                    ],
                },
                indent=2,
            )
        )
        return
    out.print(status_table(state))
    if state.finished:
        out.print(
            f"run {state.finished.status}"
            + (f": {state.finished.branch}" if state.finished.branch else "")
            + (f" ({state.finished.error})" if state.finished.error else "")
        )
    else:
        out.print("run not finished (live, or interrupted: `omoi resume` continues it)")


@main.command()
@click.argument("run_id")
@repo_option
@state_option
@click.option("--kind", default=None, help="Only kinds starting with this prefix, e.g. 'task.'.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@_guard
def events(run_id: str, repo: str, state_dir: str | None, kind: str | None, fmt: str) -> None:
    """Print RUN_ID's event log (jsonl: one event per line, every field)."""
    from omoi import api

    log, unreadable = api.read_log(run_id, repo, state_dir=state_dir, kind=kind)
    _warn_unreadable(unreadable)
    for ev in log:
        if fmt == "jsonl":
            click.echo(ev.model_dump_json())
        else:
            extra = {
                k: v
                for k, v in ev.model_dump(
                    mode="json", exclude={"id", "run_id", "ts", "seq", "kind", "source", "spec"}
                ).items()
                if v not in (None, "", [], {})
            }
            body = " ".join(f"{k}={json.dumps(v)[:100]}" for k, v in extra.items())
            click.echo(f"{ev.seq:>6} {ev.ts.astimezone().strftime('%H:%M:%S.%f')[:-3]} {ev.kind:<22} {body}")


@main.group()
def schema() -> None:
    """JSON Schemas of omoi's formats."""


@schema.command("events")
def schema_events() -> None:
    """The JSON Schema of the event union."""
    from omoi.runtime.log.events import schema_json

    click.echo(schema_json())


@schema.command("script")
def schema_script() -> None:
    """The JSON Schema of a scripted-model script (`omoi model serve`)."""
    from omoi.runtime.model.scripted import Script

    click.echo(json.dumps(Script.model_json_schema(), indent=2))


@main.group()
def model() -> None:
    """The scripted Anthropic-compatible model server: replay a run offline."""


@model.command("serve")
@click.argument("scripts", type=click.Path(), nargs=-1, required=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port.")
@_guard
def model_serve(scripts: tuple[str, ...], port: int) -> None:
    """Answer Messages API requests on 127.0.0.1 from SCRIPTS (merged) until interrupted. Point
    omoi (or any Anthropic client) at it with ANTHROPIC_BASE_URL; `omoi schema script` gives the
    format."""
    import threading

    from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts

    try:
        server = ScriptedModelServer(load_scripts(scripts), port=port)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    with server:
        click.echo(f"export ANTHROPIC_BASE_URL={server.url}", nl=True)
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            err.print(f"served {len(server.requests)} requests")


@main.group()
def bench() -> None:
    """Benchmarks: omoi against a baseline measured in the same run."""


@bench.command("scheduler")
@click.option("--tasks", type=int, default=1000, show_default=True)
@click.option("--width", type=int, default=50, show_default=True)
@click.option("--max-parallel", type=int, default=8, show_default=True)
@click.option("--repeat", type=int, default=3, show_default=True)
@address_option
def bench_scheduler(tasks: int, width: int, max_parallel: int, repeat: int, address: str | None) -> None:
    """A layered DAG of no-op tasks through the graph actor vs. chained raw Ray tasks."""
    from omoi.bench import scheduler as b

    out.print(
        b.scheduler(tasks=tasks, width=width, max_parallel=max_parallel, repeat=repeat, address=address)
    )


@bench.command("bus")
@click.option("--events", "n_events", type=int, default=20000, show_default=True)
@click.option("--batch", type=int, default=100, show_default=True)
@address_option
def bench_bus(n_events: int, batch: int, address: str | None) -> None:
    """Durable publish -> every subscriber has it, 1 and 4 subscribers, vs. plain actor calls."""
    from omoi.bench import bus as b

    out.print(b.bus(n_events=n_events, batch=batch, address=address))


@bench.command("agents")
@click.option("--agents", "n", type=int, default=10, show_default=True, help="Concurrent agents.")
@click.option("--turns", type=int, default=5, show_default=True, help="Model turns per agent.")
@address_option
@_guard
def bench_agents(n: int, turns: int, address: str | None) -> None:
    """N scripted agents at once: tool calls/s, ready-to-first-request latency, memory per agent."""
    from omoi.bench import agents as b

    if n < 1 or turns < 2:
        raise InputError("--agents must be at least 1 and --turns at least 2")
    out.print(b.agents(n=n, turns=turns, address=address))


@bench.command("explore")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option("--repeat", type=int, default=3, show_default=True)
@_guard
def bench_explore(path: str, repeat: int) -> None:
    """The static Explore of PATH (a git checkout): files/s and wall time, against `git ls-files`
    plus reading every file (the least any analysis must do)."""
    from omoi.bench import explore as b

    if repeat < 1:
        raise InputError("--repeat must be at least 1")
    out.print(b.explore(Path(path), repeat=repeat))


@bench.command("sandbox")
@click.option("--samples", type=int, default=20, show_default=True)
@_guard
def bench_sandbox(samples: int) -> None:
    """Sandbox acquire (cold and warm pool) vs. plain `docker run --rm` and `git worktree add`."""
    from omoi.bench import sandbox as b

    out.print(b.sandbox(samples=samples))


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
@_guard
def demo(directory: str | None, from_plan: bool, max_parallel: int, address: str | None) -> None:
    """The whole pipeline on a bundled example repository, offline, with a scripted model.

    A goal becomes a spec (explore, requirements, design, tasks; the first task list is sent back
    by the checks), then three agents work in parallel sandboxes (one fails its acceptance once
    and repairs it, one meets a 429 and recovers), and it all merges into one branch."""
    import time

    from omoi import api
    from omoi.cluster.agents import AgentEnv
    from omoi.examples import DEMO_GOAL, demo_script, demo_scripts, make_example_repo
    from omoi.progress import run_summary
    from omoi.runtime.config import agent_settings, model_settings
    from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts

    sandbox = _sandbox_or_warn("auto")
    repo, plan = make_example_repo(Path(directory) if directory else None, "agents")
    scripts = [demo_script()] if from_plan else demo_scripts()
    with ScriptedModelServer(load_scripts(scripts)) as model:
        what = f"plan: {plan}" if from_plan else f"goal: {DEMO_GOAL}"
        out.print(
            f"example repository: {repo}\n{what}\nsandbox: {sandbox}\n"
            f"model: scripted, at {model.url} (no network; {', '.join(str(s) for s in scripts)})"
        )
        env = AgentEnv(model_settings(base_url=model.url), agent_settings())
        started = time.monotonic()
        options: dict[str, Any] = {
            "max_parallel": max_parallel,
            "address": address,
            "sandbox": sandbox,
            "agents": env,
        }
        with (
            api.start(plan, repo, **options) if from_plan else api.start_goal(DEMO_GOAL, repo, **options)
        ) as handle:
            finished = _follow(handle.run_id, handle.wait)
        wall = time.monotonic() - started
    state = api.status(handle.run_id, repo)
    out.print(run_summary(state, api.events(handle.run_id, repo), wall))
    if state.spec is not None and state.spec.status == "succeeded":
        out.print(f"spec: {state.spec.spec_dir}/ (requirements, design, tasks) on every branch of the run")
    if finished.status == "succeeded":
        out.print(
            f"\nall work is on branch [bold]{finished.branch}[/] of {repo}; try:\n"
            f"  git -C {repo} log --oneline --graph {finished.branch}\n"
            f"  omoi events {handle.run_id} --repo {repo} --kind spec."
        )
    _finish(finished)


@main.group()
def sandbox() -> None:
    """The Docker sandbox: its image and its health."""


@sandbox.command("build-image")
@click.option(
    "--dockerfile",
    type=click.Path(path_type=Path),
    default=None,
    help="Build from your own Dockerfile instead of debootstrap.",
)
@click.option("--package", "packages", multiple=True, help="Extra Debian package for the image (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild even if the image exists.")
@_guard
def build_image_cmd(dockerfile: Path | None, packages: tuple[str, ...], force: bool) -> None:
    """Build the sandbox image locally (debootstrap + docker import); nothing is pulled."""
    from omoi.runtime.sandbox.docker import connect_engine
    from omoi.runtime.sandbox.image import DEFAULT_PACKAGES, build_image

    pkgs = tuple(dict.fromkeys([*DEFAULT_PACKAGES, *packages]))
    tag = build_image(connect_engine(), packages=pkgs, dockerfile=dockerfile, force=force, say=out.print)
    out.print(f"[bold green]ready:[/] {tag}", markup=True)


@sandbox.command("doctor")
def doctor_cmd() -> None:
    """Check the engine, the image and the limits; say what to fix. Exit 1 if anything is wrong."""
    from omoi.runtime.sandbox.doctor import run_checks

    ok = True
    for check in run_checks():
        ok &= check.ok
        mark = "[green]ok  [/]" if check.ok else "[red]FAIL[/]"
        out.print(f"{mark} {check.name}: {check.detail}", markup=True, highlight=False)
        if not check.ok and check.fix:
            out.print(f"     fix: {check.fix}", highlight=False)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--run", "run_id", default=None, help="Only this run (default: every run).")
@click.option(
    "--repo",
    "repo",
    default=None,
    type=click.Path(),
    help="Only this repository's runs, their task trees included (default: every run's containers).",
)
@click.option(
    "--address", default=None, help="The Ray cluster the runs ran on: their actors are removed too."
)
@state_option
@_guard
def gc(run_id: str | None, repo: str | None, address: str | None, state_dir: str | None) -> None:
    """Remove what finished or dead runs left behind: containers, task trees, warm slots and, with
    --address, their actors. A run some process is still driving is left alone; branches and logs
    are never touched."""
    from omoi import api

    found = api.gc(repo, run_id=run_id, address=address, state_dir=state_dir)
    out.print(str(found))


if __name__ == "__main__":
    main()
