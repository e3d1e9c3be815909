"""The HTTP API next to a live run on the shared Ray cluster: real uvicorn on 127.0.0.1, real git,
real agents on the real SDK against the scripted model server. What is injected over HTTP is in
the log before the answer and acted on by the run; a message reaches the agent's next request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from omoi import api
from omoi.http.serve import Background
from omoi.runtime.run.plan import parse_plan
from tests.agents import call, env
from tests.conftest import RepoFactory
from tests.helpers import gate_cmd, has, of, wait_for_events

pytestmark = pytest.mark.ray

TOKEN = "live-token-0123456789abcdef"
FINISH = {"tools": [call("finish", status="complete", summary="done")]}


def test_a_cancel_and_a_message_over_http_are_acted_on_by_the_live_run(
    ray_address: str, make_repo: RepoFactory, model_server: Any, tmp_path: Path
) -> None:
    server = model_server({"tasks": {"a": {"worker": [FINISH]}}})
    repo = make_repo()
    gate, never = tmp_path / "gate", tmp_path / "never"
    plan = parse_plan(
        json.dumps(
            {
                "tasks": [
                    {"id": "first", "run": gate_cmd(gate, "true")},
                    {"id": "a", "deps": ["first"], "agent": {"prompt": "do a"}},
                    {"id": "stuck", "run": gate_cmd(never, "true")},
                ]
            }
        )
    )
    with (
        api.start(plan, repo, run_id="remote", sandbox="local", agents=env(server)) as handle,
        Background(repo, TOKEN) as api_server,
        httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client,
    ):
        read = lambda: handle.events(timeout=1.0, prefixes=None)  # noqa: E731
        wait_for_events(read, has("task.started", "stuck"))
        sent = client.post("/v1/runs/remote/tasks/a/messages", json={"text": "keep the diff small"})
        assert sent.status_code == 201, sent.text
        cancel = {"kind": "task.cancel_requested", "data": {"task_id": "stuck", "reason": "not needed"}}
        asked = client.post("/v1/runs/remote/events", json=cancel)
        assert asked.status_code == 201, asked.text
        wait_for_events(read, has("task.cancelled", "stuck"))
        gate.touch()
        finished = handle.wait(timeout=120)
        tree = client.get("/v1/runs/remote").json()
    log = api.events("remote", repo)
    (cancelled,) = of(log, "task.cancelled", "stuck")
    assert cancelled.reason == "not needed"  # type: ignore[attr-defined]
    (first_request,) = server.requests_for("a")
    assert "[omoi message] keep the diff small" in first_request.last_user_text
    (delivered,) = of(log, "guardian.delivered", "a")
    assert delivered.intervention == sent.json()["seq"]  # type: ignore[attr-defined]
    assert finished.status != "succeeded"  # a task was cancelled
    assert tree["status"] == finished.status
