"""A run's state read from a snapshot and the log after it is the state folded from the whole log."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from omoi.bench.scale import write_long_run
from omoi.cli import main
from omoi.runtime.log.events import (
    AgentTurn,
    Event,
    MergeFailed,
    MergeSucceeded,
    RunCancelRequested,
    RunFinished,
    RunStarted,
    SpecFinished,
    TaskAdded,
    TaskCancelled,
    TaskCancelRequested,
    TaskFailed,
    TaskReady,
    TaskRestartRequested,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    Usage,
)
from omoi.runtime.log.store import MemoryEventStore, SqliteEventStore
from omoi.runtime.run.begin import open_log
from omoi.runtime.run.snapshot import SAVE_AFTER, dump, fold_log, load
from omoi.runtime.run.state import FOLDED, RunState, TaskState, fold
from omoi.runtime.run.tasks import TaskSpec
from tests.conftest import RepoFactory

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def _log() -> list[Event]:
    """A run that touches every field of the fold: each task kind, merges, usage, a rejected add."""

    def add(task: str, order: int, *deps: str) -> TaskAdded:
        spec = TaskSpec(id=task, run="true", deps=deps, retries=2)
        return TaskAdded(run_id="r", task_id=task, spec=spec, order=order)

    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    usage = Usage(input_tokens=120, output_tokens=30)
    events: list[Event] = [
        RunStarted(run_id="r", repo="/repo", base_commit="base", goal="a goal", ts=at(0)),
        SpecFinished(run_id="r", status="succeeded", commit="spec1", ts=at(1)),
        add("a", 0),
        add("b", 1, "a"),
        add("c", 2, "a"),
        add("d", 3, "b", "c"),
        add("e", 4),
        add("ghost-dep", 5, "nowhere"),  # rejected: the fold keeps why
        TaskReady(run_id="r", task_id="a"),
        TaskStarted(run_id="r", task_id="a", sandbox="slot-0", attempt=1, ts=at(2)),
        AgentTurn(
            run_id="r", task_id="a", agent="ag", role="worker", turn=1, model="m", usage=usage, cost_usd=0.5
        ),
        TaskSucceeded(run_id="r", task_id="a", attempt=1, commit="c1", ts=at(3)),
        MergeSucceeded(run_id="r", task_id="a", head="h1"),
        TaskReady(run_id="r", task_id="b"),
        TaskStarted(run_id="r", task_id="b", sandbox="slot-1", attempt=1, ts=at(4)),
        TaskFailed(run_id="r", task_id="b", attempt=1, error="boom", final=False, ts=at(5)),
        TaskRetrying(run_id="r", task_id="b", attempt=1, delay_s=30, counts_as_failure=False, ts=at(5)),
        TaskReady(run_id="r", task_id="c"),
        TaskStarted(run_id="r", task_id="c", sandbox="slot-2", attempt=1, ts=at(6)),
        TaskRestartRequested(run_id="r", task_id="c", attempt=1, reason="drifted", keep_work=True),
        TaskCancelRequested(run_id="r", task_id="e", reason="not needed"),
        TaskSucceeded(run_id="r", task_id="c", attempt=1, commit="c3", ts=at(7)),
        MergeFailed(run_id="r", task_id="c", reason="conflict"),
        TaskSkipped(run_id="r", task_id="d", reason="c was not merged", blocked_by="c", ts=at(8)),
        TaskCancelled(run_id="r", task_id="e", ts=at(9)),
        RunCancelRequested(run_id="r", reason="enough"),
        RunFinished(run_id="r", status="cancelled", error="enough", ts=at(10)),
    ]
    return MemoryEventStore().append(events)  # with their seqs, as read back from a log


def test_a_snapshot_holds_every_field_of_the_fold() -> None:
    state = fold("r", _log())
    body = json.loads(dump(state, {7: "a row from the future"}))
    rebuilt = {"graph", "_by_status"}  # from the tasks
    run_fields = {f.name for f in dataclasses.fields(RunState)} - rebuilt
    assert run_fields <= set(body), "a field of RunState that the snapshot does not keep"
    task_fields = {f.name for f in dataclasses.fields(TaskState)}
    assert all(set(t) == task_fields for t in body["tasks"])
    assert state.rejected
    assert state.merged
    assert state.merge_failed
    assert state.cancel_requested == set()
    assert state.tasks["c"].keep_work
    assert state.tasks["b"].not_before
    assert state.tasks["b"].interruptions == 1
    loaded, unreadable = load("r", dump(state, {7: "a row from the future"}))
    assert dump(loaded) == dump(state)
    assert unreadable == {7: "a row from the future"}
    assert loaded.counts() == state.counts()
    assert loaded.outcome() == state.outcome() == "cancelled"
    assert loaded.graph.topological() == state.graph.topological()
    assert loaded.graph.dependents("a") == ["b", "c"]
    assert loaded.graph.waves() == state.graph.waves()


def test_a_snapshot_at_any_seq_and_the_events_after_it_fold_to_the_whole_log() -> None:
    log = _log()
    whole = dump(fold("r", log))
    for cut in range(len(log) + 1):
        state, _ = load("r", dump(fold("r", log[:cut])))
        for ev in log[cut:]:
            state.apply(ev)
        assert dump(state) == whole, f"cut after {cut} events"


def test_a_long_log_is_read_from_its_snapshot_and_a_bad_snapshot_is_ignored(
    make_repo: RepoFactory, tmp_path: Path
) -> None:
    repo = make_repo()
    paths, _ = write_long_run(repo, "long", 3 * SAVE_AFTER, lambda _: None)
    with contextlib.closing(open_log(paths)) as log:
        expected = dump(fold("long", log.read(prefixes=FOLDED)))
        assert log.snapshot() is None
        state, _ = fold_log("long", log)  # a long tail: it stores a snapshot
        stored = log.snapshot()
        assert dump(state) == expected
        assert stored is not None
        assert stored[0] == state.last_seq

    args = ["status", "long", "--repo", str(repo), "--format", "json"]
    from_snapshot = CliRunner().invoke(main, args)
    assert from_snapshot.exit_code == 0, from_snapshot.output
    with sqlite3.connect(paths.events_db) as db:  # a snapshot of another version of the fold
        db.execute("UPDATE snapshots SET body = replace(body, '\"version\":1', '\"version\":0')")
    from_log = CliRunner().invoke(main, args)
    assert from_log.exit_code == 0, from_log.output
    assert json.loads(from_log.output) == json.loads(from_snapshot.output)
    with contextlib.closing(SqliteEventStore(paths.events_db)) as log:
        again = log.snapshot()
        assert again is not None
        assert json.loads(again[1])["version"] == 1, "the bad one was replaced"
