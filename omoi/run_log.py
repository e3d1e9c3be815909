"""Reading a run's log from its file, for the commands that need nothing else: `omoi status` and
`omoi events` import this, not `omoi.api`, so they start without loading Ray (and `events`
without the event models)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omoi.runtime.log.rows import read_rows as _read_rows
from omoi.runtime.run.paths import locate

if TYPE_CHECKING:
    from omoi.runtime.log.events import Event
    from omoi.runtime.run.state import RunState


def read_log(
    run_id: str,
    repo: str | Path,
    *,
    state_dir: str | Path | None = None,
    kind: str | None = None,
) -> tuple[list[Event], dict[int, str]]:
    """The readable events (of `kind`, a prefix), and the seqs of the rows that could not be
    read, with why."""
    from omoi.runtime.run.begin import open_log

    paths = locate(repo, run_id, state_dir)
    with contextlib.closing(open_log(paths)) as log:
        return log.read(prefixes=(kind,) if kind else None), dict(log.unreadable)


def read_rows(
    run_id: str, repo: str | Path, *, state_dir: str | Path | None = None, kind: str | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], dict[int, str]]:
    """The log's rows (of `kind`, a prefix) as stored: each one's JSON and its fields, unvalidated;
    and the rows that are not events, with why."""
    return _read_rows(locate(repo, run_id, state_dir).events_db, prefixes=(kind,) if kind else None)


def read_state(
    run_id: str, repo: str | Path, *, state_dir: str | Path | None = None
) -> tuple[RunState, dict[int, str]]:
    """The run's folded state (from its latest snapshot and the log after it), and the seqs of the
    rows that could not be read, with why."""
    from omoi.runtime.run.begin import open_log
    from omoi.runtime.run.snapshot import fold_log

    with contextlib.closing(open_log(locate(repo, run_id, state_dir))) as log:
        return fold_log(run_id, log)
