"""Run by `omoi bench bus --autogen VENV` with that environment's Python, never imported by omoi:
AutoGen-core's `SingleThreadedAgentRuntime` (in-process, nothing stored), publish -> every
subscriber has it, for the same events as omoi's bus. Prints one JSON object: events/s by
subscriber count. Standard library and autogen-core only."""

import asyncio
import json
import sys
import time
from dataclasses import dataclass

from autogen_core import (
    MessageContext,
    RoutedAgent,
    SingleThreadedAgentRuntime,
    TopicId,
    TypeSubscription,
    message_handler,
)


@dataclass
class TaskOutput:  # the fields of omoi's task.output event, as the bus benchmark sends them
    id: str
    run_id: str
    task_id: str
    attempt: int
    tail: str
    kind: str = "task.output"


class Subscriber(RoutedAgent):
    def __init__(self, n: int, done: "asyncio.Future[float]") -> None:
        super().__init__("a subscriber")
        self.seen, self.n, self.done = 0, n, done

    @message_handler
    async def on_event(self, message: TaskOutput, ctx: MessageContext) -> None:
        self.seen += 1
        if self.seen == self.n:
            self.done.set_result(time.perf_counter())


async def measure(n: int, subs: int) -> float:
    loop = asyncio.get_running_loop()
    finished: list[asyncio.Future[float]] = [loop.create_future() for _ in range(subs)]

    runtime = SingleThreadedAgentRuntime()
    for i in range(subs):
        await Subscriber.register(runtime, f"sub{i}", lambda i=i: Subscriber(n, finished[i]))  # type: ignore[misc]
        await runtime.add_subscription(TypeSubscription(topic_type="run", agent_type=f"sub{i}"))
    events = [
        TaskOutput(id=f"e{i}", run_id="bench", task_id=f"t{i % 50}", attempt=1, tail=f"line {i}")
        for i in range(n)
    ]
    runtime.start()
    start = time.perf_counter()
    for ev in events:
        await runtime.publish_message(ev, topic_id=TopicId("run", "bench"))
    end = max(await asyncio.gather(*finished))
    await runtime.stop_when_idle()
    return n / (end - start)


def main() -> None:
    n = int(sys.argv[1])
    asyncio.run(measure(min(n, 2000), 1))  # warm-up
    print(json.dumps({str(subs): asyncio.run(measure(n, subs)) for subs in (1, 4)}))


if __name__ == "__main__":
    main()
