"""The model client: one Messages API call with omoi's discipline around it.

Each call holds a cluster-wide concurrency lease while its HTTP request is in flight (given back
on success, error and cancellation; none under a limit of 0, which counts nothing), is retried on
429/529/5xx/connection failures with full jitter and the provider's `retry-after`, marks the
stable prefix (tools + system prompt) for prompt caching, and comes back with its usage and
cost. The SDK's own retries are off: these are ours, visible as `model.retried` events and
bounded by configuration."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from omoi.runtime.clock import Clock, SystemClock
from omoi.runtime.config import ModelSettings, Price
from omoi.runtime.errors import ModelError
from omoi.runtime.log.events import Usage
from omoi.runtime.model.scripted import AGENT_HEADER, ROLE_HEADER, TASK_HEADER
from omoi.runtime.ports import ModelRulesPort, SlotsPort

if TYPE_CHECKING:  # the SDK takes ~2 s to import: only processes that call a model pay for it
    import anthropic

log = structlog.get_logger("omoi.model")


@dataclass(frozen=True)
class CallTag:
    """Who is calling: sent as request headers (a scripted server answers per task and role) and
    used as the lease holder (the actor whose death gives its slots back)."""

    task_id: str
    role: str
    agent: str
    holder: str = ""


@dataclass(frozen=True)
class Retry:
    status: int | None
    try_no: int
    delay_s: float
    error: str


@dataclass(frozen=True)
class ModelReply:
    model: str
    content: list[dict[str, Any]]
    stop_reason: str
    usage: Usage
    cost_usd: float
    latency_s: float
    tries: int = 1

    @property
    def text(self) -> str:
        return "\n".join(b["text"] for b in self.content if b.get("type") == "text")

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        return [b for b in self.content if b.get("type") == "tool_use"]


class ModelPort(Protocol):
    async def prepare(self) -> None:
        """Get ready for the first call (load the SDK, build the client); may do nothing."""
        ...

    async def complete(
        self,
        *,
        model: str,
        system: str,
        tools: Sequence[dict[str, Any]],
        messages: Sequence[dict[str, Any]],
        tag: CallTag,
        on_retry: Callable[[Retry], Awaitable[None]] | None = None,
    ) -> ModelReply: ...


_SAMPLE_REPLY: dict[str, Any] = {
    "id": "msg_warm",
    "type": "message",
    "role": "assistant",
    "model": "warm",
    "stop_reason": "tool_use",
    "content": [{"type": "text", "text": ""}, {"type": "tool_use", "id": "t", "name": "n", "input": {}}],
    "usage": {"input_tokens": 0, "output_tokens": 0},
}


def cost(usage: Usage, price: Price | None) -> float:
    if price is None:
        return 0.0
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1_000_000


@dataclass
class AnthropicModel:
    """ModelPort over the `anthropic` SDK. `slots` is the concurrency actor (None: no limit)."""

    settings: ModelSettings
    rules: ModelRulesPort
    slots: SlotsPort | None = None
    clock: Clock = field(default_factory=SystemClock)
    rng: random.Random = field(default_factory=random.Random)
    _client: anthropic.AsyncAnthropic | None = field(default=None, init=False, repr=False)

    async def prepare(self) -> None:
        """Pay now what the SDK does lazily on the first call (~60 ms of CPU here): build the client,
        the pydantic schemas of a reply (on the path the SDK parses with), and anyio's backend."""
        import anthropic
        import anyio.lowlevel

        self.client()
        anthropic.types.Message.construct(**_SAMPLE_REPLY)
        await anyio.lowlevel.checkpoint()

    def client(self) -> anthropic.AsyncAnthropic:
        import anthropic

        if self._client is None:
            key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
            self._client = anthropic.AsyncAnthropic(
                api_key=key or "omoi-no-key",  # a scripted server needs none; the real API says 401
                base_url=self.settings.base_url,
                max_retries=0,
                timeout=self.settings.timeout,
            )
        return self._client

    async def complete(
        self,
        *,
        model: str,
        system: str,
        tools: Sequence[dict[str, Any]],
        messages: Sequence[dict[str, Any]],
        tag: CallTag,
        on_retry: Callable[[Retry], Awaitable[None]] | None = None,
    ) -> ModelReply:
        import anthropic

        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            try:
                raw = await self._once(model, system, tools, messages, tag)
                return self._reply(model, raw, time.monotonic() - started, tries)
            except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
                status = exc.status_code if isinstance(exc, anthropic.APIStatusError) else None
                what = _describe(exc)
                if not self.rules.retryable(status, tries):
                    raise ModelError(
                        f"model call to {model} failed after {tries} {'try' if tries == 1 else 'tries'}: "
                        f"{what}",
                        status=status,
                        tries=tries,
                        model=model,
                    ) from exc
                delay = self.rules.delay(tries, _retry_after(exc), self.rng.random())
                log.info("model.retry", model=model, status=status, try_no=tries, delay_s=round(delay, 3))
                if on_retry is not None:
                    await on_retry(Retry(status, tries, delay, what))
                await self.clock.sleep(delay)

    async def _once(
        self,
        model: str,
        system: str,
        tools: Sequence[dict[str, Any]],
        messages: Sequence[dict[str, Any]],
        tag: CallTag,
    ) -> anthropic.types.Message:
        """One HTTP request under one concurrency lease; the lease goes back however it ends."""
        lease, limit = uuid.uuid4().hex, self.rules.limit(model)
        slots = self.slots if limit > 0 else None  # 0: no limit, so nothing to count (two calls saved)
        if slots is not None:
            try:
                await slots.acquire(self.rules.key(model), limit, tag.holder, lease)
            except BaseException:
                await asyncio.shield(slots.release(lease))  # still queued: leave the queue
                raise
        try:
            return await self.client().messages.create(
                model=model,
                max_tokens=self.settings.max_tokens,
                # The stable prefix is tools + system: one breakpoint at the end of it caches both.
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                tools=list(tools),  # type: ignore[arg-type]
                messages=list(messages),  # type: ignore[arg-type]
                extra_headers={TASK_HEADER: tag.task_id, ROLE_HEADER: tag.role, AGENT_HEADER: tag.agent},
            )
        finally:
            if slots is not None:
                await asyncio.shield(slots.release(lease))

    def _reply(self, model: str, raw: anthropic.types.Message, latency: float, tries: int) -> ModelReply:
        u = raw.usage
        usage = Usage(
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_write_tokens=u.cache_creation_input_tokens or 0,
            cache_read_tokens=u.cache_read_input_tokens or 0,
        )
        content: list[dict[str, Any]] = []
        for block in raw.content:
            if block.type == "text":
                content.append({"type": "text", "text": block.text})
            elif block.type == "tool_use":
                content.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.input})
            else:
                content.append(block.model_dump(exclude_none=True))
        return ModelReply(
            model=model,
            content=content,
            stop_reason=str(raw.stop_reason or ""),
            usage=usage,
            cost_usd=cost(usage, self.settings.prices.get(model)),
            latency_s=latency,
            tries=tries,
        )


def _retry_after(exc: Exception) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms`, else `retry-after` in seconds."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / scale)
            except ValueError:
                continue  # an HTTP date: rare from this API, and the backoff still applies
    return None


def _describe(exc: Exception) -> str:
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        body: dict[str, Any] = exc.body if isinstance(exc.body, dict) else {}
        error: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
        return f"HTTP {exc.status_code} {error.get('type', '')}: {error.get('message', exc.message)}".strip()
    return f"{type(exc).__name__}: {exc}"
