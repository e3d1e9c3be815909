"""Progress lines as a terminal shows them, from events with their own times."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from omoi.progress import Progress
from omoi.runtime.log.events import RunStarted, TaskStarted, TaskSucceeded


def test_each_line_shows_its_events_own_time_since_the_run_started() -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    buf = io.StringIO()
    progress = Progress("r", Console(file=buf, width=200), live=False)
    events = [
        RunStarted(run_id="r", repo="/repo", base_commit="abc", ts=t0),
        TaskStarted(run_id="r", task_id="slow", attempt=1, sandbox="s0", ts=t0 + timedelta(seconds=41.5)),
        TaskSucceeded(
            run_id="r", task_id="slow", attempt=1, branch="b", commit="c", ts=t0 + timedelta(seconds=73)
        ),
    ]
    progress(events)  # all at once, as a driver that read them late would
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("[    0.0s] run r started")
    assert lines[1].startswith("[   41.5s] slow")
    assert lines[2].startswith("[   73.0s] slow")
