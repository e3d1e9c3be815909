"""The model client over real HTTP to the scripted server: retries, retry-after, failures, caching."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from omoi.policies.model_calls import ModelRules
from omoi.policies.retry import model_backoff
from omoi.runtime.config import model_settings
from omoi.runtime.errors import ModelError
from omoi.runtime.model.client import AnthropicModel, CallTag, Retry
from omoi.runtime.model.scripted import ScriptedModelServer, parse_script

MODEL = "claude-haiku-4-5"


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[ScriptedModelServer] = []

    def start(turn: dict[str, Any], **faults: Any) -> ScriptedModelServer:
        server = ScriptedModelServer(parse_script({"tasks": {"t": {"*": [turn]}}, "faults": faults})).start()
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


async def _ask(server: ScriptedModelServer, rules: ModelRules, retries: list[Retry] | None = None) -> Any:
    async def noted(r: Retry) -> None:
        (retries if retries is not None else []).append(r)

    client = AnthropicModel(model_settings(base_url=server.url), rules, rng=random.Random(7))
    return await client.complete(
        model=MODEL,
        system="s",
        tools=[],
        messages=[{"role": "user", "content": "hi"}],
        tag=CallTag("t", "worker", "t/1"),
        on_retry=noted,
    )


async def test_a_429_is_retried_no_sooner_than_retry_after_asks(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({"text": "ok", "faults": [{"status": 429, "retry_after": 0.6}]})
    retries: list[Retry] = []
    reply = await _ask(server, ModelRules(backoff=0.001, backoff_cap=0.001), retries)
    assert reply.text == "ok"
    assert reply.tries == 2
    first, second = server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.6
    assert [(r.status, r.try_no, r.delay_s) for r in retries] == [(429, 1, 0.6)]


async def test_retry_after_ms_and_overload_then_server_errors_are_retried(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve(
        {"text": "ok", "faults": [{"status": 529, "retry_after_ms": 400}, {"status": 500, "times": 2}]}
    )
    reply = await _ask(server, ModelRules(backoff=0.01, backoff_cap=0.02))
    assert reply.tries == 4
    statuses = [r.status for r in server.requests]
    assert statuses == [529, 500, 500, 200]
    assert server.requests[1].at - server.requests[0].at >= 0.4


async def test_a_persistent_failure_raises_a_model_error_with_the_tries(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({"text": "never", "faults": [{"status": 503, "times": 50}]})
    with pytest.raises(ModelError) as err:
        await _ask(server, ModelRules(max_tries=3, backoff=0.001, backoff_cap=0.001))
    assert (err.value.status, err.value.tries) == (503, 3)
    assert "after 3 tries" in str(err.value)
    assert len(server.requests) == 3


async def test_a_bad_request_is_not_retried(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve({"text": "never", "faults": [{"status": 400}]})
    with pytest.raises(ModelError) as err:
        await _ask(server, ModelRules(backoff=0.001))
    assert (err.value.status, err.value.tries) == (400, 1)
    assert len(server.requests) == 1


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    assert model_backoff(1, 0.5, 30, draw=0.999) < 0.5
    assert model_backoff(4, 0.5, 30, draw=0.999) == pytest.approx(3.996)
    assert model_backoff(20, 0.5, 30, draw=0.5) == 15.0
    assert model_backoff(1, 0.5, 30, draw=0.0) == 0.0
    assert model_backoff(1, 0.5, 30, draw=0.0, retry_after=2.0) == 2.0
