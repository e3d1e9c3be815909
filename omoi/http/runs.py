"""The runs of one state directory, read from their logs: the server keeps one reader per run
(SQLite in WAL mode: a reader sees each commit of the run's bus as it lands) and never writes
through it; injections take `runtime.run.injection`'s path, like the CLI's."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from omoi.runtime.errors import RunNotFoundError
from omoi.runtime.log.events import Event
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.run.paths import EVENTS_FILE, validate_run_id
from omoi.runtime.run.snapshot import fold_log
from omoi.runtime.run.state import RunState


class RunLogs:
    def __init__(self, state_root: Callable[[], Path]) -> None:
        self._state_root = state_root  # resolved on first use: `omoi schema api` has no repository
        self._root: Path | None = None
        self._readers: dict[str, SqliteEventStore] = {}
        self._lock = threading.Lock()  # one connection per run, used from worker threads

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = self._state_root() / "runs"
        return self._root

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob(f"*/{EVENTS_FILE}"))

    def read(
        self, run_id: str, after: int = 0, kind: str | None = None, limit: int | None = None
    ) -> list[Event]:
        store = self._reader(run_id)
        with self._lock:
            return store.read(after, prefixes=(kind,) if kind else None, limit=limit)

    def last_seq(self, run_id: str) -> int:
        store = self._reader(run_id)
        with self._lock:
            return store.last_seq()

    def state(self, run_id: str) -> RunState:
        store = self._reader(run_id)
        with self._lock:
            return fold_log(run_id, store)[0]

    def _reader(self, run_id: str) -> SqliteEventStore:
        with self._lock:
            store = self._readers.get(run_id)
            if store is None:
                path = self.root / validate_run_id(run_id) / EVENTS_FILE
                if not path.exists():
                    raise RunNotFoundError(run_id, str(self.root))
                store = self._readers[run_id] = SqliteEventStore(path, create=False)
            return store

    def close(self) -> None:
        with self._lock:
            for store in self._readers.values():
                store.close()
            self._readers.clear()
