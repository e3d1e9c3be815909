"""Reading a run's log from its file, for the commands that need nothing else: `omoi status` and
`omoi events` import this, not `omoi.api`, so they start without loading Ray."""

from __future__ import annotations

import contextlib
from pathlib import Path

from omoi.runtime.log.events import Event
from omoi.runtime.run.begin import locate, open_log


def read_log(
    run_id: str,
    repo: str | Path,
    *,
    state_dir: str | Path | None = None,
    kind: str | None = None,
    kinds: tuple[str, ...] | None = None,
) -> tuple[list[Event], dict[int, str]]:
    """The readable events (of `kind`, or of any of `kinds`, each a prefix), and the seqs of the
    rows that could not be read, with why."""
    paths = locate(repo, run_id, state_dir)
    with contextlib.closing(open_log(paths)) as log:
        return log.read(prefixes=(kind,) if kind else kinds), dict(log.unreadable)
