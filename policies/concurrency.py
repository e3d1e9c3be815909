"""Counting semaphores per provider/model key with first-in first-out waiters and named leases.

A lease has an id chosen by the caller (so a caller that gives up can cancel a request still
waiting) and a holder (the actor making the call), so every lease of a dead holder can be taken
back at once. Pure bookkeeping: the concurrency actor adds the waiting and the liveness checks."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

DEFAULT_LIMIT = 5


def limit_for(model: str, provider: str, limits: dict[str, int], default: int = DEFAULT_LIMIT) -> int:
    """Looked up per model, then per provider, then the default; 0 means unlimited."""
    for key in (model, provider):
        if key in limits:
            return limits[key]
    return default


@dataclass
class _Key:
    limit: int
    held: dict[str, str] = field(default_factory=dict)  # lease -> holder
    waiting: deque[tuple[str, str]] = field(default_factory=deque)  # (lease, holder), oldest first


class Semaphores:
    def __init__(self) -> None:
        self._keys: dict[str, _Key] = {}
        self._where: dict[str, str] = {}  # lease -> key, held or waiting

    def request(self, lease: str, key: str, limit: int, holder: str) -> bool:
        """Ask for a slot; True when granted now, else the lease waits its turn. A repeated
        request for a lease already known changes nothing (a retried call is harmless)."""
        k = self._keys.setdefault(key, _Key(limit))
        k.limit = limit  # the newest configuration wins
        if lease in self._where:
            return lease in k.held
        self._where[lease] = key
        if not k.waiting and (limit == 0 or len(k.held) < limit):
            k.held[lease] = holder
            return True
        k.waiting.append((lease, holder))
        return False

    def claim(self, lease: str, key: str, limit: int, holder: str) -> None:
        """A holder re-claims a slot it held before this table was rebuilt (the actor restarted):
        held at once, even past the limit, since the call it covers is already in flight."""
        if lease in self._where:
            return
        k = self._keys.setdefault(key, _Key(limit))
        self._where[lease] = key
        k.held[lease] = holder
        k.waiting = deque(w for w in k.waiting if w[0] != lease)

    def release(self, lease: str) -> list[str]:
        """Give back a held slot or drop a waiting request; returns the leases granted as a result."""
        key = self._where.pop(lease, None)
        if key is None:
            return []
        k = self._keys[key]
        k.held.pop(lease, None)
        k.waiting = deque(w for w in k.waiting if w[0] != lease)
        return self._grant(k)

    def leases_of(self, holder: str) -> list[str]:
        """Every lease `holder` holds or waits for."""
        return [le for k in self._keys.values() for le, h in [*k.held.items(), *k.waiting] if h == holder]

    def release_holder(self, holder: str) -> list[str]:
        """Everything `holder` held or waited for goes back (its process died)."""
        granted: list[str] = []
        for lease in self.leases_of(holder):
            granted += self.release(lease)
        return [g for g in granted if g in self._where]

    def _grant(self, k: _Key) -> list[str]:
        granted = []
        while k.waiting and (k.limit == 0 or len(k.held) < k.limit):
            lease, holder = k.waiting.popleft()
            k.held[lease] = holder
            granted.append(lease)
        return granted

    def holders_with_waiters(self) -> set[str]:
        """Holders of slots that somebody is waiting for: the ones worth checking for liveness."""
        return {h for k in self._keys.values() if k.waiting for h in k.held.values()}

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            key: {"limit": k.limit, "held": len(k.held), "waiting": len(k.waiting)}
            for key, k in self._keys.items()
        }
