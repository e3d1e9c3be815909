"""What every `omoi` command shares: the two consoles, the error guard, the common options."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from omoi.runtime.errors import InputError, OmoiError

F = TypeVar("F", bound=Callable[..., Any])
out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)  # tables unwrapped in logs
err = Console(stderr=True, highlight=False)


def guard(fn: F) -> F:
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


def warn_unreadable(unreadable: dict[int, str]) -> None:
    for seq, why in sorted(unreadable.items()):
        err.print(f"warning: the log's row seq {seq} cannot be read and is skipped: {why}")
