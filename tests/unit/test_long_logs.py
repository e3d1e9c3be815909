"""A long run's log read back the cheap way gives what reading all of it gives."""

from __future__ import annotations

import contextlib

from click.testing import CliRunner

from omoi.bench.scale import write_long_run
from omoi.cli import main
from omoi.runtime.run.begin import open_log
from omoi.runtime.run.paths import locate
from omoi.runtime.run.state import FOLDED, fold
from tests.conftest import RepoFactory


def test_the_fold_over_the_folded_kinds_is_the_fold_over_everything(make_repo: RepoFactory) -> None:
    repo = make_repo()
    paths, left = write_long_run(repo, "long", 3000, lambda _: None)
    with contextlib.closing(open_log(paths)) as log:
        everything, folded = log.read(), log.read(prefixes=FOLDED)
    assert len(folded) < len(everything) / 2  # the output is most of the log
    full, cheap = fold("long", everything), fold("long", folded)
    assert [(t.id, t.status, t.attempt) for t in cheap.in_order()] == [
        (t.id, t.status, t.attempt) for t in full.in_order()
    ]
    assert cheap.counts() == full.counts()
    assert left == sum(1 for t in full.in_order() if t.status != "succeeded") > 0

    args = ["status", "long", "--repo", str(repo), "--limit", "5"]
    shown = CliRunner().invoke(main, args, terminal_width=200)
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if line.startswith("│ t")]
    assert len(rows) == 5
    assert all("succeeded" not in r for r in rows)  # the unsettled first
    assert f"5 of {len(full.tasks)} tasks shown" in shown.output


def test_events_prints_the_stored_rows_as_their_events_would_print(make_repo: RepoFactory) -> None:
    from omoi.formats import event_line
    from omoi.run_log import read_rows

    repo = make_repo()
    write_long_run(repo, "long", 600, lambda _: None)
    rows, unreadable = read_rows("long", repo)
    with contextlib.closing(open_log(locate(repo, "long"))) as log:
        events = log.read()
    assert not unreadable
    assert len(rows) == len(events) > 600
    assert [event_line(fields) for _, fields in rows] == [
        event_line(ev.model_dump(mode="json")) for ev in events
    ]
    assert [body for body, _ in rows] == [ev.model_dump_json() for ev in events]  # what jsonl prints

    shown = CliRunner().invoke(main, ["events", "long", "--repo", str(repo), "--kind", "task.succeeded"])
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines() == [
        event_line(ev.model_dump(mode="json")) for ev in events if ev.kind == "task.succeeded"
    ]
