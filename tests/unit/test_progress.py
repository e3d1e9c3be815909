"""Progress lines as a terminal shows them, from events with their own times."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from omoi.progress import Progress
from omoi.runtime.log.events import (
    MergeConflicted,
    MergeFailed,
    MergeNeedsHuman,
    MergeResolved,
    RunStarted,
    TaskStarted,
    TaskSucceeded,
)


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


def test_the_merge_queues_work_reads_as_lines_and_a_waiting_person_is_told_what_to_type() -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    buf = io.StringIO()
    progress = Progress("r", Console(file=buf, width=200), live=True)  # only loud lines print live
    events = [
        RunStarted(run_id="r", repo="/repo", base_commit="abc", ts=t0),
        MergeConflicted(run_id="r", task_id="b", files=("app.py",), head="h", next="agent", ts=t0),
        MergeResolved(
            run_id="r", task_id="b", files=("NOTES.md",), how="rule", detail="NOTES.md: append", ts=t0
        ),
        MergeNeedsHuman(run_id="r", task_id="c", files=("VERSION",), head="h", ts=t0),
        MergeFailed(run_id="r", task_id="d", reason="verification failed: `pytest` exited 1", ts=t0),
    ]
    progress(events)
    text = buf.getvalue()
    assert "conflict" not in text, "on the live table only what needs a person is printed"
    assert "c                    WAITING   for a person to resolve VERSION" in text
    assert "omoi resolve r c   (or --take ours|theirs)" in text
    assert "on omoi/r/c" in text
    assert "d                    NOT MERGED verification failed" in text
    buf.truncate(0)
    plain = Progress("r", Console(file=buf, width=200), live=False)
    plain(events)
    text = buf.getvalue()
    assert "b                    conflict  in app.py -> agent" in text
    assert "b                    resolved  NOTES.md by rule (NOTES.md: append)" in text
