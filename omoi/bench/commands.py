"""`omoi bench ...`: each verb prints a table with ratios against a baseline measured in the same
run. The benchmarks themselves are the other modules of this package; they import lazily, so
`omoi --help` loads none of them."""

from __future__ import annotations

from pathlib import Path

import click

from omoi.console import address_option, guard, out
from omoi.runtime.errors import InputError


@click.group()
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
@click.option(
    "--autogen",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also run AutoGen-core's in-process runtime from this virtualenv (created if missing).",
)
@address_option
@guard
def bench_bus(n_events: int, batch: int, autogen: Path | None, address: str | None) -> None:
    """Durable publish -> every subscriber has it, 1 and 4 subscribers, vs. plain actor calls
    (and, with --autogen, vs. AutoGen-core's SingleThreadedAgentRuntime)."""
    from omoi.bench import bus as b

    if n_events < 1 or batch < 1:
        raise InputError("--events and --batch must be at least 1")
    say = lambda s: click.echo(s, err=True)  # noqa: E731
    out.print(b.bus(n_events=n_events, batch=batch, address=address, autogen=autogen, say=say))


@bench.command("api")
@click.option("--events", "n", type=click.IntRange(10, 100_000), default=500, show_default=True)
@guard
def bench_api(n: int) -> None:
    """Events injected over HTTP (durable) and the stream's lag, vs. omoi.inject_kind from Python."""
    from omoi.bench.api import api_bench

    out.print(api_bench(n))


@bench.command("agents")
@click.option("--agents", "n", type=int, default=10, show_default=True, help="Concurrent agents.")
@click.option("--turns", type=int, default=5, show_default=True, help="Model turns per agent.")
@click.option(
    "--supervision", is_flag=True, help="Also run omoi with the guardian off, and compare (on/off)."
)
@address_option
@guard
def bench_agents(n: int, turns: int, supervision: bool, address: str | None) -> None:
    """N scripted agents at once: tool calls/s, ready-to-first-request latency, memory per agent."""
    from omoi.bench import agents as b

    if n < 1 or turns < 2:
        raise InputError("--agents must be at least 1 and --turns at least 2")
    out.print(b.agents(n=n, turns=turns, address=address, supervision=supervision))


@bench.command("explore")
@click.argument("path", type=click.Path(file_okay=False))
@click.option("--repeat", type=int, default=3, show_default=True)
@click.option(
    "--make-corpus",
    is_flag=True,
    help="Create PATH first: a git repository of the installed dependencies' sources (offline).",
)
@guard
def bench_explore(path: str, repeat: int, make_corpus: bool) -> None:
    """The static Explore of PATH (a git checkout): files/s and wall time, against `git ls-files`
    plus reading every file (the least any analysis must do). The reference corpus is made with
    `omoi bench explore /tmp/omoi-corpus --make-corpus` (about 6,000 files)."""
    from omoi.bench import explore as b

    if repeat < 1:
        raise InputError("--repeat must be at least 1")
    if make_corpus:
        if Path(path).exists():
            raise InputError(f"--make-corpus: {path} exists already; name a new directory, or drop the flag")
        click.echo(f"made {path}: {b.make_corpus(Path(path)):,} files", err=True)
    elif not Path(path).is_dir():
        raise InputError(
            f"{path} is not a directory (add --make-corpus to create the reference corpus there)"
        )
    out.print(b.explore(Path(path), repeat=repeat))


@bench.command("startup")
@click.option("--repeat", type=int, default=1, show_default=True)
@click.option(
    "--sandbox",
    type=click.Choice(["local", "docker"]),
    default="local",
    show_default=True,
    help="The sandbox of the run measured (local: omoi's own start-up, no container).",
)
@guard
def bench_startup(repeat: int, sandbox: str) -> None:
    """Where a run's first seconds go (Ray up, run actors up, spec agent started, first model
    request), each side in a fresh process with its own Ray, against a bare ray.init() + one
    actor call."""
    from omoi.bench import startup as b

    if repeat < 1:
        raise InputError("--repeat must be at least 1")
    out.print(b.startup(repeat=repeat, sandbox=sandbox))


@bench.command("sandbox")
@click.option("--samples", type=int, default=20, show_default=True)
@guard
def bench_sandbox(samples: int) -> None:
    """Sandbox acquire (cold and warm pool) vs. plain `docker run --rm` and `git worktree add`."""
    from omoi.bench import sandbox as b

    out.print(b.sandbox(samples=samples))


@bench.command("merge")
@click.option("--branches", type=int, default=20, show_default=True)
@click.option("--repeat", type=int, default=3, show_default=True)
@guard
def bench_merge(branches: int, repeat: int) -> None:
    """BRANCHES task branches (every third appending to one file) through the merge queue, against
    a plain sequential `git merge` loop over the same branches: time per merge and the ratio."""
    from omoi.bench import merge as b

    if branches < 2 or repeat < 1:
        raise InputError("--branches must be at least 2 and --repeat at least 1")
    out.print(b.merge(branches=branches, repeat=repeat))


@bench.command("scale")
@click.option(
    "--sizes", default="100,1000,10000", show_default=True, help="Task counts to schedule, comma-separated."
)
@click.option(
    "--events", "n_events", type=click.IntRange(1000, 10_000_000), default=100_000, show_default=True
)
@address_option
@guard
def bench_scale(sizes: str, n_events: int, address: str | None) -> None:
    """How costs grow with a run's size: scheduling per task at each size, then a log of EVENTS
    events: its replay, `omoi resume` to the first dispatch, `omoi status` and `omoi events`."""
    from omoi.bench import scale as b

    try:
        counts = tuple(int(s) for s in sizes.split(","))
    except ValueError:
        raise InputError(f"--sizes: '{sizes}' is not a comma-separated list of task counts") from None
    if not counts or min(counts) < 50:
        raise InputError("--sizes: each task count must be at least 50 (one layer of the DAG)")
    out.print(b.scale(sizes=counts, events=n_events, address=address, say=lambda s: click.echo(s, err=True)))
