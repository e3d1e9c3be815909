from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from omoi.runtime.log.events import Event, RunStarted, TaskOutput, TaskReady
from omoi.runtime.log.store import EventStore, MemoryEventStore, SqliteEventStore


def outputs(n: int, task: str = "a") -> list[Event]:
    return [TaskOutput(run_id="r", task_id=task, attempt=1, tail=f"line {i}") for i in range(n)]


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EventStore:
    if request.param == "memory":
        return MemoryEventStore()
    return SqliteEventStore(tmp_path / "events.db")


def test_seq_is_gap_free_and_in_publish_order(store: EventStore) -> None:
    stored = store.append(outputs(5)) + store.append(outputs(3))
    assert [e.seq for e in stored] == list(range(1, 9))
    assert [e.seq for e in store.read()] == list(range(1, 9))
    assert store.last_seq() == 8


def test_append_is_idempotent_by_event_id(store: EventStore) -> None:
    batch = outputs(3)
    first = store.append(batch)
    again = store.append([*batch, *outputs(1, "b")])
    assert [e.seq for e in again] == [1, 2, 3, 4]
    assert [e.id for e in again[:3]] == [e.id for e in first]
    assert store.last_seq() == 4


def test_duplicate_inside_one_batch_is_stored_once(store: EventStore) -> None:
    ev = outputs(1)[0]
    assert [e.seq for e in store.append([ev, ev])] == [1, 1]


def test_read_filters_by_kind_prefix_and_cursor(store: EventStore) -> None:
    store.append(
        [
            RunStarted(run_id="r", repo="/x", base_commit="b"),
            *outputs(2),
            TaskReady(run_id="r", task_id="a", attempt=1),
        ]
    )
    assert [e.kind for e in store.read(prefixes=("task.",))] == ["task.output", "task.output", "task.ready"]
    assert [e.kind for e in store.read(prefixes=("task.ready", "run."))] == ["run.started", "task.ready"]
    assert [e.seq for e in store.read(after=2)] == [3, 4]
    assert [e.seq for e in store.read(after=0, limit=2)] == [1, 2]


def test_sqlite_log_survives_reopen_and_a_second_writer(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = SqliteEventStore(path)
    first.append(outputs(3))
    second = SqliteEventStore(path)  # e.g. a restarted bus while the old process still has it open
    second.append(outputs(2))
    first.append(outputs(1))  # the old handle must not reuse seqs the new one took
    assert [e.seq for e in SqliteEventStore(path).read()] == [1, 2, 3, 4, 5, 6]


def test_sqlite_store_refuses_missing_file_when_not_creating(tmp_path: Path) -> None:
    from omoi.runtime.errors import StoreError

    with pytest.raises(StoreError, match="no event log"):
        SqliteEventStore(tmp_path / "missing.db", create=False)


Factory = Callable[[], EventStore]
