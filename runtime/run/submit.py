"""Writing checked injections into a run's log: each process follows each run's log (one fold
per run, read incrementally), and checks and appends under the log's write lock, so what was
checked is what the event is appended to, whichever process or bus writes next."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from omoi.runtime.log.events import Event
from omoi.runtime.log.store import SqliteEventStore
from omoi.runtime.run.begin import open_log
from omoi.runtime.run.injection import check
from omoi.runtime.run.paths import locate
from omoi.runtime.run.state import RunState, fold


@dataclass
class _Followed:
    """A run's log as this process last read it, folded: an injection reads only what is new."""

    store: SqliteEventStore
    log: list[Event] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    state: RunState | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def catch_up(self, run_id: str) -> RunState:
        self.state = self.state or RunState(run_id)
        for ev in self.store.read(after=self.log[-1].seq or 0 if self.log else 0):
            self.state.apply(ev)
            self.log.append(ev)
            self.seen[ev.id] = ev.seq or 0
        return self.state


_FOLLOWED: OrderedDict[Path, _Followed] = OrderedDict()
_FOLLOWED_LOCK = threading.Lock()
KEEP = 16  # runs followed at once by one process (an API server, a test session)


def _followed(path: Path, open_store: Callable[[], SqliteEventStore]) -> _Followed:
    with _FOLLOWED_LOCK:
        f = _FOLLOWED.pop(path, None) or _Followed(open_store())
        _FOLLOWED[path] = f
        while len(_FOLLOWED) > KEEP:
            _, old = _FOLLOWED.popitem(last=False)
            with old.lock:
                old.store.close()
        return f


def submit(
    run_id: str, repo: str | Path, events: Sequence[Event], *, state_dir: str | Path | None = None
) -> list[int]:
    """Check each event against the run's log and append them all, or none; the seqs. An event
    whose id the log holds already is not checked again: its seq is returned. The check and the
    append happen under the log's write lock, so no other writer (another process's injection, the
    run's bus) appends in between."""
    paths = locate(repo, run_id, state_dir)
    f = _followed(paths.events_db, lambda: open_log(paths))

    def decide() -> list[Event]:  # under the log's write lock: what it read is what it appends to
        state = f.catch_up(run_id)
        log = f.log
        if len(events) > 1:  # later events are checked against the earlier ones: on a copy
            log = list(log)
            state = fold(run_id, log)
        fresh: list[Event] = []
        for ev in events:
            if ev.id not in f.seen and ev.id not in {e.id for e in fresh}:
                ev = check(ev, log, state)
                if len(events) > 1:
                    state.apply(ev)
                    log.append(ev)
                fresh.append(ev)
        return fresh

    with f.lock:
        f.catch_up(run_id)  # most of the reading, before the write lock: the run's bus waits less
        stored = {e.id: e.seq or 0 for e in f.store.append_checked(decide)}
    return [f.seen.get(e.id) or stored[e.id] for e in events]
