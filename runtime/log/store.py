"""The durable event log of one run: the source of truth every actor's state is folded from.

`EventStore` is the seam a server database could fill; `SqliteEventStore` is the default, a WAL-mode
SQLite file in the run's state directory. Appending is idempotent by event id, so a publisher may
retry after a crash without creating duplicates, and seqs stay gap-free. Beside the events the file
keeps the latest snapshot of the run's fold, so a reader of a long log reads its tail."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import structlog

from omoi.runtime.errors import EventError, StoreError
from omoi.runtime.log.events import Event, parse_event
from omoi.runtime.log.rows import select

log = structlog.get_logger("omoi.store")

Durability = Literal["FULL", "NORMAL", "OFF"]


class EventStore(Protocol):
    """Append-only, per-run log with a gap-free seq starting at 1."""

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Store events not stored yet (by id) under the next seqs; return every event with its seq."""
        ...

    def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Event]: ...

    def last_seq(self) -> int: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY,
    id      TEXT NOT NULL UNIQUE,
    kind    TEXT NOT NULL,
    task_id TEXT,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events(kind, seq);
CREATE TABLE IF NOT EXISTS snapshots (
    seq     INTEGER PRIMARY KEY,
    body    TEXT NOT NULL
);
"""


class SqliteEventStore:
    """SQLite (WAL) log. `durability="FULL"` fsyncs every append: an acknowledged event survives a crash."""

    def __init__(self, path: Path, *, durability: Durability = "FULL", create: bool = True) -> None:
        self.unreadable: dict[int, str] = {}  # seq -> why: rows skipped by `read`
        self.path = path
        if not create and not path.exists():
            raise StoreError(f"no event log at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={durability}")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open event log {path}: {exc}") from exc
        self._last = self._query_last()

    def _query_last(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    def append(self, events: Sequence[Event]) -> list[Event]:
        if not events:
            return []
        return self.append_checked(lambda: events)

    def append_checked(self, decide: Callable[[], Sequence[Event]]) -> list[Event]:
        """Append what `decide` returns, deciding under the log's write lock: no other writer,
        in this process or another, appends between what `decide` read and what it writes. An
        exception from `decide` writes nothing."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                events = list(decide())
                stored = self._append_locked(events) if events else []
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._last = self._query_last()
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"cannot append to event log {self.path}: {exc}") from exc
        return stored

    def _append_locked(self, events: Sequence[Event]) -> list[Event]:
        # Another process may have appended since we last looked (a restarted bus); trust the file.
        self._last = self._query_last()
        ids = list({e.id for e in events})
        existing: dict[str, Event] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            marks = ",".join("?" * len(chunk))
            for (body,) in self._db.execute(f"SELECT body FROM events WHERE id IN ({marks})", chunk):
                ev = parse_event(body)
                existing[ev.id] = ev
        out: list[Event] = []
        rows = []
        for ev in events:
            if ev.id in existing:
                out.append(existing[ev.id])
                continue
            self._last += 1
            stored = ev.model_copy(update={"seq": self._last})
            existing[ev.id] = stored
            out.append(stored)
            rows.append((self._last, ev.id, ev.kind, getattr(ev, "task_id", None), stored.model_dump_json()))
        self._db.executemany("INSERT INTO events(seq, id, kind, task_id, body) VALUES (?,?,?,?,?)", rows)
        return out

    def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Event]:
        sql, args = select(after, prefixes, limit)
        try:
            rows = self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event log {self.path}: {exc}") from exc
        out = []
        for seq, body in rows:
            try:
                out.append(parse_event(body))
            except EventError as exc:  # an older version's row, a disk fault: the rest still reads
                if seq not in self.unreadable:
                    self.unreadable[seq] = str(exc)
                    log.warning("log.unreadable_row", path=str(self.path), seq=seq, error=str(exc))
        return out

    def last_seq(self) -> int:
        self._last = self._query_last()  # other writers may have appended since
        return self._last

    def snapshot(self) -> tuple[int, str] | None:
        """The latest folded state stored with the log (`runtime/run/snapshot.py`), and its seq."""
        try:
            row = self._db.execute("SELECT seq, body FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read event log {self.path}: {exc}") from exc
        return (int(row[0]), str(row[1])) if row else None

    def save_snapshot(self, seq: int, body: str) -> None:
        """Keep `body` as the state folded through `seq`, in place of older ones."""
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT OR REPLACE INTO snapshots(seq, body) VALUES (?, ?)", (seq, body))
                self._db.execute("DELETE FROM snapshots WHERE seq < ?", (seq,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot store a snapshot in event log {self.path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()


class MemoryEventStore:
    """The same contract in memory, for unit tests and the in-process bus."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._by_id: dict[str, Event] = {}

    def append(self, events: Sequence[Event]) -> list[Event]:
        out = []
        for ev in events:
            if ev.id not in self._by_id:
                stored = ev.model_copy(update={"seq": len(self._events) + 1})
                self._events.append(stored)
                self._by_id[ev.id] = stored
            out.append(self._by_id[ev.id])
        return out

    def read(
        self, after: int = 0, prefixes: tuple[str, ...] | None = None, limit: int | None = None
    ) -> list[Event]:
        out = [e for e in self._events[max(after, 0) :] if prefixes is None or e.kind.startswith(prefixes)]
        return out if limit is None else out[:limit]

    def last_seq(self) -> int:
        return len(self._events)

    def close(self) -> None:
        pass
