"""The commands that act on a live run from anywhere on its machine, through its log: `omoi
inject`, `message`, `cancel`, `add-task`, `watch`, and `serve` (the HTTP API). Every injection
takes the path the HTTP API takes (`runtime.run.injection`): the same checks, the same errors,
exit 2 naming the field, and nothing written. Registered on the `omoi` group by cli.py."""

from __future__ import annotations

import json
import time

import click

from omoi.console import guard, out, repo_option, state_option
from omoi.runtime.errors import InputError
from omoi.runtime.run.injectable import ALLOWED

KINDS_HELP = "\n".join(f"  {k}: {v}" for k, v in sorted(ALLOWED.items()))


@click.command(epilog=f"Kinds:\n\n{KINDS_HELP}")
@click.argument("run_id")
@click.argument("kind")
@click.option("--data", "data_text", default="{}", show_default=True, help="The event's fields, as JSON.")
@click.option(
    "--id", "event_id", default=None, help="An id of your own: the same id injected twice is one event."
)
@repo_option
@state_option
@guard
def inject(
    run_id: str, kind: str, data_text: str, event_id: str | None, repo: str, state_dir: str | None
) -> None:
    """Inject an event of KIND into RUN_ID's log (a live run takes it within a second)."""
    from omoi import api

    try:
        data = json.loads(data_text)
    except json.JSONDecodeError as exc:
        raise InputError(f"--data is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError("--data must be a JSON object of the event's fields")
    seq = api.inject_kind(run_id, repo, kind, data, id=event_id, state_dir=state_dir)
    out.print(f"injected {kind} into run {run_id} (event {seq})")


@click.command()
@click.argument("run_id")
@click.argument("task_id")
@click.argument("text")
@repo_option
@state_option
@guard
def message(run_id: str, task_id: str, text: str, repo: str, state_dir: str | None) -> None:
    """Send TEXT to TASK_ID's agent: it reads it in its next model request, tagged [omoi message]."""
    from omoi import api

    seq = api.message(run_id, task_id, text, repo, state_dir=state_dir)
    out.print(f"sent to task {task_id} of run {run_id} (event {seq}); delivered with its next request")


@click.command()
@click.argument("run_id")
@click.argument("task_id", required=False)
@click.option("--reason", default="cancelled by user", show_default=True, help="Why, for the log.")
@repo_option
@state_option
@guard
def cancel(run_id: str, task_id: str | None, reason: str, repo: str, state_dir: str | None) -> None:
    """Cancel RUN_ID, or only TASK_ID (the tasks that depend on it are skipped)."""
    from omoi import api

    seq = api.cancel(run_id, repo, task_id, reason=reason, state_dir=state_dir)
    what = f"task {task_id} of run {run_id}" if task_id else f"run {run_id}"
    out.print(f"asked to cancel {what} (event {seq})")


@click.command("add-task")
@click.argument("run_id")
@click.option(
    "--file", "path", required=True, type=click.Path(), help="One task, or `tasks: [...]`, as YAML or JSON."
)
@repo_option
@state_option
@guard
def add_task(run_id: str, path: str, repo: str, state_dir: str | None) -> None:
    """Add tasks to RUN_ID's live DAG; their dependencies may name the run's tasks."""
    from omoi import api
    from omoi.runtime.run.plan import load_tasks

    specs = load_tasks(path)
    seqs = api.add_tasks(run_id, repo, specs, state_dir=state_dir)
    out.print(f"added {', '.join(s.id for s in specs)} to run {run_id} (events {', '.join(map(str, seqs))})")


@click.command()
@click.argument("run_id")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=1.0,
    show_default=True,
    help="Seconds between looks.",
)
@repo_option
@state_option
@guard
def watch(run_id: str, interval: float, repo: str, state_dir: str | None) -> None:
    """RUN_ID's status tree, redrawn as its log grows, until the run finishes (Ctrl-C leaves)."""
    from rich.live import Live
    from rich.text import Text

    from omoi import api
    from omoi.status_tree import run_tree

    def draw() -> tuple[Text, bool]:
        log = api.events(run_id, repo, state_dir=state_dir)
        done = any(e.kind == "run.finished" for e in log[-1:])
        return Text("\n".join(run_tree(run_id, log).render())), done

    view, done = draw()
    with Live(view, console=out, auto_refresh=False) as live:
        while not done:
            try:
                time.sleep(interval)  # the log is a file another process writes: look again
            except KeyboardInterrupt:
                return
            view, done = draw()
            live.update(view, refresh=True)


@click.command()
@repo_option
@state_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Other than loopback needs OMOI_API_TOKEN."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@guard
def serve(repo: str, state_dir: str | None, host: str, port: int) -> None:
    """Serve the runs of REPO over HTTP (/v1, bearer token): status, events, a live stream,
    injection, messages and schedules. The token is OMOI_API_TOKEN, or one generated into the
    state directory on first start and printed once."""
    from omoi.http.serve import serve as run_server

    run_server(repo, host, port, state_dir=state_dir, say=out.print)


def _when(text: str, option: str) -> str:
    """An ISO 8601 time with its zone, or `+SECONDS` from now."""
    from datetime import UTC, datetime, timedelta

    if text.startswith("+"):
        try:
            return (datetime.now(UTC) + timedelta(seconds=float(text[1:]))).isoformat()
        except ValueError as exc:
            raise InputError(f"{option} {text}: give +SECONDS, e.g. +300") from exc
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InputError(
            f"{option} {text}: not an ISO 8601 time (e.g. 2026-12-07T10:00:00Z) or +SECONDS"
        ) from exc
    if when.tzinfo is None:
        raise InputError(f"{option} {text}: give a time zone (e.g. ...Z or +01:00)")
    return when.isoformat()


@click.command()
@click.argument("run_id")
@click.option("--every", type=float, default=None, help="Fire every this many seconds.")
@click.option("--at", "at", default=None, help="Fire once, at this time (ISO 8601 with zone, or +SECONDS).")
@click.option("--start", default=None, help="With --every: the first fire (default: one interval on).")
@click.option("--until", default=None, help="With --every: no fire after this time.")
@click.option("--count", type=int, default=None, help="With --every: at most this many fires.")
@click.option(
    "--message", "message_", nargs=2, default=None, metavar="TASK_ID TEXT", help="Send TEXT to the agent."
)
@click.option("--event", "kind", default=None, help="Inject an event of this kind (with --data).")
@click.option("--data", "data_text", default="{}", show_default=True, help="The event's fields, as JSON.")
@click.option("--id", "schedule_id", default=None, help="The schedule's id (default: generated).")
@repo_option
@state_option
@guard
def schedule(
    run_id: str,
    every: float | None,
    at: str | None,
    start: str | None,
    until: str | None,
    count: int | None,
    message_: tuple[str, str] | None,
    kind: str | None,
    data_text: str,
    schedule_id: str | None,
    repo: str,
    state_dir: str | None,
) -> None:
    """Fire an event or a message into RUN_ID once (--at) or on a period (--every): e.g.
    `omoi schedule RUN --every 300 --message auth "[STATUS CHECK] report your progress"`."""
    from omoi import api

    spec: dict[str, object] = {"every": every}
    for name, value in (("at", at), ("start", start), ("until", until)):
        if value is not None:
            spec[name] = _when(value, f"--{name}")
    if count is not None:
        spec["count"] = count
    if schedule_id is not None:
        spec["id"] = schedule_id
    if message_ is not None:
        spec["message"] = {"task_id": message_[0], "text": message_[1]}
    if kind is not None:
        try:
            spec["event"] = {"kind": kind, "data": json.loads(data_text)}
        except json.JSONDecodeError as exc:
            raise InputError(f"--data is not valid JSON: {exc}") from exc
    sid, seq = api.schedule(run_id, repo, spec, state_dir=state_dir)
    out.print(f"scheduled {sid} on run {run_id} (event {seq}); `omoi unschedule {run_id} {sid}` stops it")


@click.command()
@click.argument("run_id")
@repo_option
@state_option
@guard
def schedules(run_id: str, repo: str, state_dir: str | None) -> None:
    """RUN_ID's schedules: what each fires, how often, how many times it has, and when next."""
    from omoi import api

    rows = api.schedules(run_id, repo, state_dir=state_dir)
    if not rows:
        out.print(f"run {run_id} has no schedule")
    for row in rows:
        s = row["schedule"]
        assert isinstance(s, dict)
        when = f"every {s['every']:g}s" if s.get("every") else f"at {s['at']}"
        what = f"message to {s['message']['task_id']}" if s.get("message") else f"event {s['event']['kind']}"
        state = f"cancelled: {row['cancelled']}" if row["cancelled"] else f"next {row['next_due'] or 'never'}"
        out.print(f"{s['id']}  {when}  {what}  fired {row['fired']}  {state}", highlight=False)


@click.command()
@click.argument("run_id")
@click.argument("schedule_id")
@repo_option
@state_option
@guard
def unschedule(run_id: str, schedule_id: str, repo: str, state_dir: str | None) -> None:
    """Stop SCHEDULE_ID of RUN_ID."""
    from omoi import api

    seq = api.unschedule(run_id, repo, schedule_id, state_dir=state_dir)
    out.print(f"stopped schedule {schedule_id} of run {run_id} (event {seq})")
