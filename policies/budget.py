"""Token and dollar budgets, per task and per run: what has been spent, and what that means.

At 80% of a limit a warning is due, at 100% the scope is exhausted: no new model call starts for
it until a raise lifts the limit. Each level is announced once per limit; a raise that brings the
spend back under a level lets it be announced again."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WARN_AT = 0.8
Level = Literal["ok", "warning", "exhausted"]
RUN = "run"  # the scope name of the run as a whole; a task's scope is its id


@dataclass
class Limit:
    tokens: int | None = None
    usd: float | None = None

    def level(self, tokens: int, usd: float) -> Level:
        share = max(_share(tokens, self.tokens), _share(usd, self.usd))
        return "exhausted" if share >= 1 else "warning" if share >= WARN_AT else "ok"


def _share(used: float, limit: float | None) -> float:
    if limit is None:
        return 0.0
    return used / limit if limit > 0 else float("inf")


@dataclass(frozen=True)
class Crossing:
    scope: str  # RUN or a task id
    level: Level
    tokens: int
    usd: float
    limit: Limit


@dataclass
class _Scope:
    limit: Limit
    tokens: int = 0
    usd: float = 0.0
    announced: Level = "ok"

    def level(self) -> Level:
        return self.limit.level(self.tokens, self.usd)


_ORDER: dict[Level, int] = {"ok": 0, "warning": 1, "exhausted": 2}


@dataclass
class Ledger:
    run: Limit = field(default_factory=Limit)

    def __post_init__(self) -> None:
        self._scopes: dict[str, _Scope] = {RUN: _Scope(self.run)}

    def limit_task(self, task_id: str, limit: Limit) -> None:
        self._scopes.setdefault(task_id, _Scope(limit)).limit = limit

    def spend(self, task_id: str, tokens: int, usd: float) -> list[Crossing]:
        """Add one model call's cost to its task and to the run (a call for the run as a whole,
        like a guardian's, passes RUN); returns the levels newly crossed."""
        crossings = []
        for name in dict.fromkeys((task_id, RUN)):
            scope = self._scopes.setdefault(name, _Scope(Limit()))
            scope.tokens += tokens
            scope.usd += usd
            level = scope.level()
            if _ORDER[level] > _ORDER[scope.announced]:
                scope.announced = level
                crossings.append(Crossing(name, level, scope.tokens, scope.usd, scope.limit))
        return crossings

    def raise_limit(self, scope: str, add_tokens: int = 0, add_usd: float = 0.0) -> None:
        """Lift a limit by the amounts given; a scope without a limit of that kind stays unlimited."""
        s = self._scopes.setdefault(scope, _Scope(Limit()))
        if add_tokens and s.limit.tokens is not None:
            s.limit.tokens += add_tokens
        if add_usd and s.limit.usd is not None:
            s.limit.usd += add_usd
        s.announced = s.level()

    def blocked(self, task_id: str) -> str | None:
        """Why no model call may start for this task now, or None."""
        for name in (task_id, RUN):
            scope = self._scopes.get(name)
            if scope is not None and scope.level() == "exhausted":
                what = "the run's" if name == RUN else f"task '{name}''s"
                return f"{what} budget is spent ({scope.tokens} tokens, ${scope.usd:.4f}); raise it to go on"
        return None

    def spent(self, scope: str = RUN) -> tuple[int, float]:
        s = self._scopes.get(scope)
        return (s.tokens, s.usd) if s else (0, 0.0)
