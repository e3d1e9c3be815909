"""The run's metrics on the shared Ray cluster's Prometheus endpoint: a plan with agents runs,
then the scrape shows `ray_omoi_*` series for that run whose values agree with its log."""

from __future__ import annotations

import concurrent.futures
import json
import re
import urllib.request
from typing import Any

import pytest

from omoi import api
from omoi.runtime.model.scripted import TASK_HEADER
from omoi.runtime.run.plan import parse_plan
from tests.agents import call, env
from tests.conftest import RepoFactory
from tests.helpers import of, wait_until

pytestmark = pytest.mark.ray

FINISH = {"tools": [call("finish", status="complete", summary="done")]}
WRITE = {"tools": [call("write_file", path="notes.txt", content="hello\n")]}


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _samples(text: str, name: str, **tags: str) -> list[float]:
    """A metric's samples whose tags include `tags`."""
    found = []
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} ([0-9.e+-]+)$", text, re.M):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(labels.get(k) == v for k, v in tags.items()):
            found.append(float(m.group(2)))
    return found


def _value(text: str, name: str, **tags: str) -> float:
    return sum(_samples(text, name, **tags))


def test_a_runs_metrics_are_on_the_prometheus_endpoint_and_agree_with_its_log(
    ray_address: str, metrics_port: int, make_repo: RepoFactory, model_server: Any
) -> None:
    # b's last turn waits until the test has seen the slots' pool gauge: a slot's gauges leave the
    # endpoint with its process, so they are looked for while the run still holds its slots.
    held = {**FINISH, "after": ["scraped"]}
    server = model_server({"tasks": {"a": {"worker": [WRITE, FINISH]}, "b": {"worker": [held]}}})
    repo = make_repo()
    plan = parse_plan(
        json.dumps(
            {
                "tasks": [
                    {"id": "a", "agent": {"prompt": "write notes"}},
                    {"id": "b", "deps": ["a"], "agent": {"prompt": "review"}},
                    {"id": "c", "run": "true"},
                ]
            }
        )
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            api.exec_plan, plan, repo, run_id="metered", sandbox="local", agents=env(server)
        )
        wait_until(
            lambda: bool(_samples(_scrape(metrics_port), "ray_omoi_sandbox_pool_ready", run_id="metered")),
            "the run's slots report their warm pools",
        )
        server.answer({TASK_HEADER: "scraped"}, {"messages": []})  # lets b finish
        finished = running.result(timeout=300)
    assert finished.status == "succeeded", finished.error
    log = api.events("metered", repo)
    turns = of(log, "agent.turn")
    tokens = sum(e.usage.input_tokens for e in turns)  # type: ignore[attr-defined]
    assert tokens > 0
    run = {"run_id": "metered"}

    def agrees() -> bool:
        text = _scrape(metrics_port)
        return (
            _value(text, "ray_omoi_tasks", **run, state="succeeded") == 3
            and _value(text, "ray_omoi_model_tokens_total", **run, kind="input") == tokens
        )

    wait_until(agrees, "the scrape shows the run's tasks and tokens")
    text = _scrape(metrics_port)
    assert _value(text, "ray_omoi_tasks", **run, state="running") == 0
    assert _value(text, "ray_omoi_agents_running", **run) == 0
    output = sum(e.usage.output_tokens for e in turns)  # type: ignore[attr-defined]
    assert _value(text, "ray_omoi_model_tokens_total", **run, kind="output") == output
    assert _value(text, "ray_omoi_bus_lag_seconds_count", **run) > 0
