"""One run's token and dollar budgets, kept as a fold over its log."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from omoi.policies.budget import RUN, Crossing, Ledger, Limit
from omoi.runtime import names
from omoi.runtime.log.events import (
    BudgetExhausted,
    BudgetWarning,
    Event,
)
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.ports import BusPort

log = structlog.get_logger("omoi.budget")
FOLLOWS = (
    "run.started",
    "task.added",
    "agent.turn",
    "guardian.assessed",
    "guardian.replanned",
    "conductor.assessed",
    "budget.raised",
)


class BudgetActor:
    """Owns: the run's ledger (spend per task and for the run, and the limits), folded from the log.

    Handles `start` (follow the log from now on) and `admit(task_id)`, which returns when a model
    call for that task may start: at once, or once a `budget.raised` event lifts the spent budget.
    Emits `budget.warning` at 80% and `budget.exhausted` at 100% of a limit, with ids derived from
    the scope, level and the number of raises so far, so a replay publishes nothing twice.
    If it dies: Ray restarts it and it folds the log again from the start; waiting `admit` calls
    fail and are re-sent by Ray (admit is idempotent)."""

    def __init__(self, run_id: str, bus: BusPort) -> None:
        self._run_id, self._bus = run_id, bus
        self._ledger = Ledger()
        self._raises: dict[str, int] = {}
        self._changed = asyncio.Condition()
        self._log = Subscription(bus, FOLLOWS, poll=30.0)  # its cursor is how far the ledger has folded
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin folding the log. The run calls this at launch, so the ledger is current before
        the first model call asks, and the follower's first read (which looks the bus up) is
        not paid by that call. `admit` and `spent` start it too, after a restart."""
        self._start()

    async def admit(self, task_id: str, after: int = 0) -> None:
        self._start()
        async with self._changed:
            await self._changed.wait_for(
                lambda: self._log.cursor >= after and self._ledger.blocked(task_id) is None
            )

    async def spent(self, scope: str = RUN) -> tuple[int, float]:
        self._start()
        return self._ledger.spent(scope)

    def _start(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        """Owned by this actor for its lifetime: fold every relevant event, in log order."""
        while True:
            try:
                events = await self._log.next_batch()
            except Exception:  # the bus restarting: keep the cursor and ask again
                log.warning("budget.read_failed", run_id=self._run_id, exc_info=True)
                await asyncio.sleep(0.5)
                continue
            crossings = [c for e in events for c in self._fold(e)]
            if events:
                async with self._changed:
                    self._changed.notify_all()
            if crossings:
                with contextlib.suppress(Exception):
                    await self._bus.publish([self._announce(c) for c in crossings])

    def _fold(self, event: Event) -> list[Crossing]:
        match event.kind:
            case "run.started":
                self._ledger.run.tokens, self._ledger.run.usd = event.budget_tokens, event.budget_usd
            case "task.added" if event.spec.agent is not None:
                a = event.spec.agent
                if a.budget_tokens is not None or a.budget_usd is not None:
                    self._ledger.limit_task(event.task_id, Limit(a.budget_tokens, a.budget_usd))
            case "agent.turn":
                return self._ledger.spend(event.task_id, event.usage.total, event.cost_usd)
            case "guardian.assessed" | "guardian.replanned" | "conductor.assessed":  # the run's budget
                return self._ledger.spend(RUN, event.usage.total, event.cost_usd)
            case "budget.raised":
                self._raises[event.scope] = self._raises.get(event.scope, 0) + 1
                self._ledger.raise_limit(event.scope, event.add_tokens, event.add_usd)
        return []

    def _announce(self, c: Crossing) -> BudgetWarning | BudgetExhausted:
        kind = BudgetExhausted if c.level == "exhausted" else BudgetWarning
        log.warning(
            "budget." + c.level, run_id=self._run_id, scope=c.scope, tokens=c.tokens, usd=round(c.usd, 4)
        )
        return kind(
            id=f"budget-{self._run_id}-{c.scope}-{c.level}-{self._raises.get(c.scope, 0)}",
            run_id=self._run_id,
            source=names.actor(self._run_id, "budget"),
            scope=c.scope,
            tokens=c.tokens,
            usd=c.usd,
            limit_tokens=c.limit.tokens,
            limit_usd=c.limit.usd,
        )
