"""The commands around runs rather than of them: `omoi schema`, `omoi model serve`, `omoi sandbox`,
`omoi gc`. Registered on the `omoi` group by cli.py."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from omoi.console import err, guard, out, state_option
from omoi.runtime.errors import InputError


@click.group()
def schema() -> None:
    """JSON Schemas of omoi's formats."""


@schema.command("events")
def schema_events() -> None:
    """The JSON Schema of the event union."""
    from omoi.runtime.log.events import schema_json

    click.echo(schema_json())


@schema.command("api")
def schema_api() -> None:
    """The OpenAPI document of the HTTP API (`omoi serve`)."""
    from omoi.http.app import create_app

    click.echo(json.dumps(create_app(".", "schema-export-only").openapi(), indent=2))


@schema.command("script")
def schema_script() -> None:
    """The JSON Schema of a scripted-model script (`omoi model serve`)."""
    from omoi.runtime.model.scripted import Script

    click.echo(json.dumps(Script.model_json_schema(), indent=2))


@click.group()
def model() -> None:
    """The scripted Anthropic-compatible model server: replay a run offline."""


@model.command("serve")
@click.argument("scripts", type=click.Path(), nargs=-1, required=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="0: any free port.")
@guard
def model_serve(scripts: tuple[str, ...], port: int) -> None:
    """Answer Messages API requests on 127.0.0.1 from SCRIPTS (merged) until interrupted. Point
    omoi (or any Anthropic client) at it with ANTHROPIC_BASE_URL; `omoi schema script` gives the
    format."""

    from omoi.runtime.model.scripted import ScriptedModelServer, load_scripts

    try:
        server = ScriptedModelServer(load_scripts(scripts), port=port)
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    # Ctrl-C (or a TERM) is waited for, not raised: blocked before the server's threads start (they
    # inherit the mask), so it is never delivered half-way, and one sent early is still pending.
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    with server:
        click.echo(f"export ANTHROPIC_BASE_URL={server.url}", nl=True)
        sys.stdout.flush()
        signal.sigwait(stops)
        err.print(f"served {len(server.requests)} requests")


@click.group()
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
@guard
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


@click.command()
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
@guard
def gc(run_id: str | None, repo: str | None, address: str | None, state_dir: str | None) -> None:
    """Remove what finished or dead runs left behind: containers, task trees, warm slots and, with
    --address, their actors. A run some process is still driving is left alone; branches and logs
    are never touched."""
    from omoi import api

    found = api.gc(repo, run_id=run_id, address=address, state_dir=state_dir)
    out.print(str(found))
