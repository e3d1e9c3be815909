"""The concurrency actor in-process: FIFO leases, cancellation, and dead holders' slots coming back."""

from __future__ import annotations

import asyncio

from omoi.actors.concurrency import ConcurrencyActor
from omoi.policies.concurrency import limit_for
from omoi.policies.model_calls import ModelRules
from omoi.runtime.testing import FakeClock


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_waiters_are_served_first_in_first_out() -> None:
    actor = ConcurrencyActor()
    await actor.acquire("k", 1, "h0", "l0")
    order: list[str] = []

    async def want(lease: str) -> None:
        await actor.acquire("k", 1, f"h-{lease}", lease)
        order.append(lease)

    waiters = [asyncio.create_task(want(f"l{i}")) for i in (1, 2, 3)]
    await _settle()
    assert order == []
    for lease in ("l0", "l1", "l2"):
        await actor.release(lease)
        await _settle()
    await asyncio.gather(*waiters)
    assert order == ["l1", "l2", "l3"]
    assert (await actor.stats())["k"] == {"limit": 1, "held": 1, "waiting": 0}


async def test_zero_is_unlimited_and_a_cancelled_waiter_leaves_the_queue() -> None:
    actor = ConcurrencyActor()
    for i in range(50):
        await actor.acquire("free", 0, "h", f"f{i}")
    await actor.acquire("k", 1, "a", "held")
    gave_up = asyncio.create_task(actor.acquire("k", 1, "b", "gave-up"))
    later = asyncio.create_task(actor.acquire("k", 1, "c", "later"))
    await _settle()
    await actor.release("gave-up")  # what the model client does when its call is cancelled
    await actor.release("held")
    await asyncio.wait_for(later, 5)  # the queue's head had left, so the slot went to the next
    assert (await actor.stats())["k"] == {"limit": 1, "held": 1, "waiting": 0}
    assert gave_up.done()


class Liveness:
    def __init__(self) -> None:
        self.dead: set[str] = set()

    async def alive(self, holder: str) -> bool:
        return holder not in self.dead


async def test_a_dead_holders_slot_comes_back_on_the_next_sweep() -> None:
    clock, liveness = FakeClock(), Liveness()
    actor = ConcurrencyActor(liveness, clock, sweep=1.0)
    await actor.acquire("k", 1, "omoi/r/agent/a/1", "la")
    waiter = asyncio.create_task(actor.acquire("k", 1, "omoi/r/agent/b/1", "lb"))
    await _settle()
    clock.advance(1.0)
    await _settle()
    assert not waiter.done()  # the holder is alive: nothing is taken from it
    liveness.dead.add("omoi/r/agent/a/1")
    clock.advance(1.0)
    await asyncio.wait_for(waiter, 5)
    assert (await actor.stats())["k"]["held"] == 1


def test_limits_are_looked_up_per_model_then_provider_then_default() -> None:
    assert limit_for("m", "anthropic", {"m": 2, "anthropic": 9}) == 2
    assert limit_for("x", "anthropic", {"m": 2, "anthropic": 9}) == 9
    assert limit_for("x", "anthropic", {}) == 5
    rules = ModelRules(limits={"anthropic": 3})
    assert (rules.key("x"), rules.limit("x")) == ("anthropic", 3)
    rules = ModelRules(limits={"x": 2, "anthropic": 3})
    assert (rules.key("x"), rules.limit("x")) == ("anthropic/x", 2)
    assert (rules.key("y"), rules.limit("y")) == ("anthropic", 3)


async def test_a_restarted_actor_is_rebuilt_by_its_holders_open_holds() -> None:
    """What Ray does on a restart: the new instance is empty, and the calls in flight (each held
    lease's `hold`, each waiter's `acquire`) are sent to it again."""
    old = ConcurrencyActor()
    await old.acquire("k", 1, "h0", "held")
    new = ConcurrencyActor()  # the restart: nothing known
    holding = asyncio.create_task(new.hold("k", 1, "h0", "held"))  # re-sent
    await _settle()
    assert (await new.stats())["k"] == {"limit": 1, "held": 1, "waiting": 0}
    waiter = asyncio.create_task(new.acquire("k", 1, "h1", "next"))
    await _settle()
    assert not waiter.done(), "the re-claimed slot still counts against the limit"
    await new.release("held")
    await asyncio.wait_for(waiter, 1)
    await asyncio.wait_for(holding, 1)
    await new.release("next")
    await new.hold("k", 1, "h0", "held")  # a late hold of a released lease claims nothing
    assert (await new.stats())["k"]["held"] == 0


async def test_a_dead_holders_open_holds_end_when_it_is_swept() -> None:
    actor = ConcurrencyActor()
    await actor.acquire("k", 2, "dead", "l0")
    holding = asyncio.create_task(actor.hold("k", 2, "dead", "l0"))
    await _settle()
    await actor.release_holder("dead")
    await asyncio.wait_for(holding, 1)
    assert (await actor.stats())["k"]["held"] == 0
