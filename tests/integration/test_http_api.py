"""The HTTP API on real uvicorn (127.0.0.1) over a run's real log: every endpoint behind the
token, refusals that name why and write nothing, idempotent injection, bounded pages, and a
Server-Sent Events stream that resumes from the last id it gave, exactly once and in order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omoi import api
from omoi.http.serve import Background
from omoi.runtime.log.events import AgentNeedsInput, TaskOutput, TaskStarted
from omoi.runtime.run.begin import open_log, plan_new_run
from omoi.runtime.run.options import RunOptions
from omoi.runtime.run.plan import parse_plan
from tests.conftest import RepoFactory

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLAN = """
tasks:
  - {id: build, run: "true"}
  - {id: auth, deps: [build], agent: {prompt: "Add JWT authentication"}}
"""


def _run(repo: Path) -> None:
    paths, first = plan_new_run(parse_plan(PLAN), repo, RunOptions(run_id="live", sandbox="local"))
    paths.run_dir.mkdir(parents=True)
    log = open_log(paths, create=True)
    started = TaskStarted(run_id="live", task_id="auth", attempt=1, sandbox="sandbox/0")
    asked = AgentNeedsInput(
        run_id="live", task_id="auth", attempt=1, agent="w", role="worker", question="alg?"
    )
    log.append([*first, started, asked])
    log.close()


@pytest.fixture
def served(make_repo: RepoFactory) -> Iterator[tuple[Path, httpx.Client]]:
    repo = make_repo()
    _run(repo)
    with (
        Background(repo, TOKEN, poll=0.05, keepalive=0.2, queue=8) as server,
        httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client,
    ):
        yield repo, client


def _outputs(repo: Path, n: int, start: int = 0) -> None:
    """Events the run writes about itself (what a live run's bus appends)."""
    from omoi.runtime.run.paths import locate

    log = open_log(locate(repo, "live"))
    log.append(
        [TaskOutput(run_id="live", task_id="build", attempt=1, tail=f"line {start + i}") for i in range(n)]
    )
    log.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/runs"),
        ("GET", "/v1/runs/live"),
        ("GET", "/v1/runs/live/events"),
        ("GET", "/v1/runs/live/events/stream"),
        ("POST", "/v1/runs/live/events"),
        ("POST", "/v1/runs/live/tasks/auth/messages"),
        ("GET", "/openapi.json"),
    ],
)
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}"])
def test_every_endpoint_needs_the_token_and_writes_nothing_without_it(
    served: tuple[Path, httpx.Client], method: str, path: str, header: str | None
) -> None:
    repo, client = served
    before = len(api.events("live", repo))
    headers = {"Authorization": header} if header else {}
    body = {"kind": "agent.message", "data": {"task_id": "auth", "text": "hi"}}
    with httpx.Client(base_url=str(client.base_url), headers=headers) as anon:
        r = anon.request(method, path, json=body if method == "POST" else None)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert len(api.events("live", repo)) == before


def test_runs_and_the_tree(served: tuple[Path, httpx.Client]) -> None:
    _, client = served
    (run,) = client.get("/v1/runs").json()
    assert (run["run_id"], run["status"], run["counts"]["running"]) == ("live", "unfinished", 1)
    tree = client.get("/v1/runs/live").json()
    assert tree["label"] == "run live"
    tasks = next(c for c in tree["children"] if c["label"] == "tasks")
    auth = next(c for c in tasks["children"] if c["label"] == "auth")
    (attempt,) = auth["children"]
    assert [c["label"] for c in attempt["children"]] == ["agent", "guardian", "sandbox"]
    assert "asks: alg?" in attempt["children"][0]["detail"]
    assert client.get("/v1/runs/nope").status_code == 404
    assert client.get("/v1/runs/..%2Fx").status_code in (404, 422)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "task.succeeded", "data": {"task_id": "auth"}}, 403, "kind"),
        ({"kind": "agent.message", "data": {"task_id": "auth"}}, 422, "data.text"),
        ({"kind": "agent.message", "data": {"task_id": "ghost", "text": "hi"}}, 404, "data.task_id"),
        ({"kind": "agent.resumed", "data": {"task_id": "auth"}}, 409, None),
        ({"kind": "agent.message", "data": {}, "colour": "red"}, 422, None),
        ({"kind": "", "data": {}}, 422, None),
    ],
)
def test_a_refused_event_says_why_and_nothing_is_written(
    served: tuple[Path, httpx.Client], body: dict[str, Any], status: int, field: str | None
) -> None:
    repo, client = served
    before = len(api.events("live", repo))
    r = client.post("/v1/runs/live/events", json=body)
    assert r.status_code == status, r.text
    if field is not None:
        assert r.json()["field"] == field
    assert r.json()["detail"]
    assert len(api.events("live", repo)) == before
    assert client.post("/v1/runs/nope/events", json={"kind": "run.cancel_requested"}).status_code == 404


def test_an_injected_event_is_durable_before_the_answer_and_a_retry_is_the_same_event(
    served: tuple[Path, httpx.Client],
) -> None:
    repo, client = served
    body = {"kind": "agent.answered", "data": {"task_id": "auth", "answer": "HS256"}, "id": "answer-1"}
    first = client.post("/v1/runs/live/events", json=body)
    assert first.status_code == 201
    (answered,) = api.events("live", repo, kind="agent.answered")
    assert (answered.seq, answered.id, answered.source) == (first.json()["seq"], "answer-1", "api")
    again = client.post("/v1/runs/live/events", json=body)  # the question is closed now: still the same
    assert again.json() == first.json()
    assert len(api.events("live", repo, kind="agent.answered")) == 1
    sent = client.post("/v1/runs/live/tasks/auth/messages", json={"text": "keep the API stable"})
    assert sent.status_code == 201
    (msg,) = api.events("live", repo, kind="agent.message")
    assert (msg.seq, msg.text, msg.attempt) == (sent.json()["seq"], "keep the API stable", 1)  # type: ignore[union-attr]


def test_pages_are_bounded_and_chain(served: tuple[Path, httpx.Client]) -> None:
    repo, client = served
    _outputs(repo, 25)
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(
            "/v1/runs/live/events", params={"after": after, "kind": "task.output", "limit": 10}
        ).json()
        seen += [e["seq"] for e in page["events"]]
        assert len(page["events"]) <= 10
        after = page["next"]
        if not page["more"]:
            break
    assert len(seen) == 25
    assert seen == sorted(set(seen))
    assert client.get("/v1/runs/live/events", params={"limit": 5000}).status_code == 422


def _sse(client: httpx.Client, n: int, **kw: Any) -> list[tuple[int, str]]:
    """Read n events from the stream, then hang up: (seq, kind) each."""
    got: list[tuple[int, str]] = []
    with client.stream("GET", "/v1/runs/live/events/stream", **kw) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        seq, kind = 0, ""
        for line in r.iter_lines():
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("event: "):
                kind = line[7:]
            elif line == "" and seq:
                got.append((seq, kind))
                seq = 0
                if len(got) == n:
                    break
    return got


def test_a_stream_resumes_from_its_last_id_with_every_event_once_in_order(
    served: tuple[Path, httpx.Client],
) -> None:
    repo, client = served
    total = len(api.events("live", repo))
    _outputs(repo, 5)
    first = _sse(client, total + 3)  # the log so far, then the client hangs up mid-way
    _outputs(repo, 5, start=5)  # more is written while it is away
    last = first[-1][0]
    rest = _sse(client, total + 10 - len(first), headers={"Last-Event-ID": str(last)})
    seqs = [s for s, _ in first + rest]
    assert seqs == [e.seq for e in api.events("live", repo)]
    only = _sse(client, 10, params={"kind": "task.output"})
    assert {k for _, k in only} == {"task.output"}


def test_schedules_are_created_listed_and_stopped_and_a_bad_one_names_its_field(
    served: tuple[Path, httpx.Client],
) -> None:
    repo, client = served
    status = {
        "id": "status",
        "every": 300,
        "message": {"task_id": "auth", "text": "[STATUS CHECK] progress?"},
    }
    made = client.post("/v1/runs/live/schedules", json=status)
    assert made.status_code == 201, made.text
    again = client.post("/v1/runs/live/schedules", json=status)  # a retry: the same schedule
    assert again.json() == made.json()
    (listed,) = client.get("/v1/runs/live/schedules").json()
    assert (listed["schedule"]["id"], listed["fired"], listed["cancelled"]) == ("status", 0, None)
    assert listed["next_due"] is not None
    before = len(api.events("live", repo))
    for body, code, field in [
        ({"every": 0.5, "message": {"task_id": "auth", "text": "x"}}, 422, None),
        ({"every": 60}, 422, None),
        ({"every": 60, "message": {"task_id": "build", "text": "x"}}, 409, "data.task_id"),
        (
            {"at": "2030-01-01T00:00:00Z", "event": {"kind": "task.succeeded", "data": {}}},
            422,
            "data.schedule.event.kind",
        ),
    ]:
        r = client.post("/v1/runs/live/schedules", json=body)
        assert r.status_code == code, (body, r.text)
        if field:
            assert r.json()["field"] == field
    assert len(api.events("live", repo)) == before
    assert client.delete("/v1/runs/live/schedules/nope").status_code == 404
    stopped = client.delete("/v1/runs/live/schedules/status")
    assert stopped.status_code == 200
    (listed,) = client.get("/v1/runs/live/schedules").json()
    assert (listed["cancelled"], listed["next_due"]) == ("cancelled by user", None)
    assert client.get("/v1/runs/nope/schedules").status_code == 404
