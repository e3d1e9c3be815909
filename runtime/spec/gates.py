"""The spec's gates as mechanisms: the intent gate's conversation, a reviewer's verdict, and
waiting for a person's decision. What the answers mean is policies/spec/flow.py's to say."""

from __future__ import annotations

import asyncio

from omoi.runtime import names
from omoi.runtime.clock import Clock
from omoi.runtime.explore.static import Exploration
from omoi.runtime.log.events import SpecGateDecided
from omoi.runtime.log.subscription import Subscription
from omoi.runtime.ports import BusPort
from omoi.runtime.spec import documents as docs
from omoi.runtime.spec import prompts as spec_prompts
from omoi.runtime.spec.writer import DocumentWriter, Judgement


async def classify_intent(
    writer: DocumentWriter, model: str, goal: str, exploration: Exploration, judgement: Judgement
) -> docs.IntentDecision | str:
    """The model's decision on the goal's intent, or why there is none."""
    return await writer.write(
        task_id=names.spec_conversation("intent"),
        attempt=1,
        role="planner",
        model_name=model,
        tool=spec_prompts.SUBMIT_TOOLS["intent"],
        document=docs.IntentDecision,
        prompt=spec_prompts.intent_message(goal, exploration),
        judgement=judgement,
    )


async def review(
    writer: DocumentWriter,
    model: str,
    phase: str,
    attempt: int,
    goal: str,
    texts: dict[str, str],
    spec_dir: str,
    judgement: Judgement,
) -> docs.Review | str:
    """The reviewer's verdict on this attempt of the phase, or why there is none."""
    verdict = await writer.write(
        task_id=names.spec_conversation(f"review-{phase}"),
        attempt=attempt,
        role="reviewer",
        model_name=model,
        tool=spec_prompts.SUBMIT_TOOLS["review"],
        document=docs.Review,
        prompt=spec_prompts.review_message(phase, goal, texts, spec_dir),
        judgement=judgement,
    )
    return verdict


async def human_decision(
    bus: BusPort, clock: Clock, phase: str, attempt: int, timeout: float | None
) -> SpecGateDecided | None:
    """A person's decision on this attempt of the phase, or None when `timeout` (on `clock`)
    passed first. Read from the start of the log: a resumed spec may find it there already."""

    async def read() -> SpecGateDecided:
        async for ev in Subscription(bus, ("spec.gate_decided",)):
            if isinstance(ev, SpecGateDecided) and ev.phase == phase and ev.attempt == attempt:
                return ev
        raise AssertionError("a subscription never ends")

    reader = asyncio.create_task(read())
    if timeout is None:
        return await reader
    timer = asyncio.create_task(clock.sleep(timeout))
    try:
        await asyncio.wait({reader, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not reader.done():
            reader.cancel()
    return reader.result() if reader.done() and not reader.cancelled() else None
