"""The routes of omoi's HTTP API, under `/v1`, every one behind `Authorization: Bearer <token>`.

The log is authoritative and the stream best-effort: a client reconciles from a seq (`GET
.../events?after=SEQ`, or `Last-Event-ID` on the stream). Injections go through
`runtime.run.injection`, the path the CLI takes: durable in the log before the answer, refused
with the field named (422), the kind forbidden (403), the task unknown (404) or the run not in a
state that takes it (409), and nothing written then."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from omoi import api
from omoi.http.auth import matches
from omoi.http.feed import Feed
from omoi.http.runs import RunLogs
from omoi.runtime.errors import InjectionRefused, InputError, RunNotFoundError
from omoi.runtime.log.events import Event, ScheduleSpec, new_id
from omoi.status_tree import run_tree

MAX_PAGE = 1000
BEARER = HTTPBearer(auto_error=False, description="the token `omoi serve` printed, or OMOI_API_TOKEN")


class Injection(BaseModel):
    """An event to inject: an allowed `kind` (see `omoi inject --help`) and its fields."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict)
    id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$",
        description="makes a retried request idempotent: the same id is the same event",
    )  # fmt: skip


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=20_000)
    id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")


class Accepted(BaseModel):
    seq: int
    id: str


class Scheduled(BaseModel):
    id: str
    seq: int


class RunSummary(BaseModel):
    run_id: str
    status: str
    counts: dict[str, int]


class EventPage(BaseModel):
    events: list[Event]
    next: int = Field(description="the seq to ask after for the next page")
    more: bool


def create_app(
    repo: str | Path,
    token: str,
    *,
    state_dir: str | Path | None = None,
    poll: float = 0.2,
    keepalive: float = 15.0,
    queue: int = 1000,
) -> FastAPI:
    from omoi.runtime.git.repo import inspect_repo
    from omoi.runtime.run.paths import state_root

    logs = RunLogs(lambda: state_root(inspect_repo(repo), state_dir))
    feeds: dict[str, Feed] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.gather(*(f.close() for f in feeds.values()))
        logs.close()

    def authorized(given: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]) -> None:
        if given is None or not matches(f"Bearer {given.credentials}", token):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(
        title="omoi",
        version="1",
        description=__doc__,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(authorized)],
        lifespan=lifespan,
    )

    @app.exception_handler(RunNotFoundError)
    async def _not_found(request: Request, exc: RunNotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(InjectionRefused)
    async def _refused(request: Request, exc: InjectionRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field, "why": exc.why}, status_code=exc.status)

    @app.exception_handler(InputError)
    async def _bad_input(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/v1/runs")
    def runs() -> list[RunSummary]:
        out = []
        for run_id in logs.ids():
            state = logs.state(run_id)
            status = state.finished.status if state.finished else "unfinished"
            out.append(RunSummary(run_id=run_id, status=status, counts=state.counts()))
        return out

    @app.get("/v1/runs/{run_id}")
    def run(run_id: str) -> dict[str, Any]:
        """The run as a tree: spec phases, tasks, attempts with their agent, guardian and sandbox."""
        return run_tree(run_id, logs.read(run_id)).as_json()

    @app.post("/v1/runs/{run_id}/events", status_code=201)
    def inject(run_id: str, body: Injection) -> Accepted:
        ident = body.id or new_id()
        seq = api.inject_kind(run_id, repo, body.kind, body.data, id=ident, source="api", state_dir=state_dir)
        return Accepted(seq=seq, id=ident)

    @app.post("/v1/runs/{run_id}/tasks/{task_id}/messages", status_code=201)
    def message(run_id: str, task_id: str, body: Message) -> Accepted:
        """Text for the task's agent, in its next model request (tagged `[omoi message]`)."""
        ident = body.id or new_id()
        data = {"task_id": task_id, "text": body.text}
        seq = api.inject_kind(
            run_id, repo, "agent.message", data, id=ident, source="api", state_dir=state_dir
        )
        return Accepted(seq=seq, id=ident)

    @app.post("/v1/runs/{run_id}/schedules", status_code=201)
    def schedule(run_id: str, body: ScheduleSpec) -> Scheduled:
        """A one-shot (`at`) or recurring (`every` seconds, `until`, `count`) schedule whose payload
        is an event or a message; the same `id` posted again is the same schedule."""
        sid, seq = api.schedule(run_id, repo, body, state_dir=state_dir)
        return Scheduled(id=sid, seq=seq)

    @app.get("/v1/runs/{run_id}/schedules")
    def schedules(run_id: str) -> list[dict[str, Any]]:
        logs.last_seq(run_id)  # 404 for an unknown run
        return api.schedules(run_id, repo, state_dir=state_dir)

    @app.delete("/v1/runs/{run_id}/schedules/{schedule_id}")
    def unschedule(run_id: str, schedule_id: str) -> Scheduled:
        seq = api.unschedule(run_id, repo, schedule_id, state_dir=state_dir)
        return Scheduled(id=schedule_id, seq=seq)

    @app.get("/v1/runs/{run_id}/events")
    def events(
        run_id: str,
        after: Annotated[int, Query(ge=0)] = 0,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
    ) -> EventPage:
        page = logs.read(run_id, after, kind, limit + 1)
        more = len(page) > limit
        page = page[:limit]
        return EventPage(events=page, next=page[-1].seq or after if page else after, more=more)

    @app.get("/v1/runs/{run_id}/events/stream", response_class=StreamingResponse)
    def stream(
        run_id: str,
        after: Annotated[int, Query(ge=0)] = 0,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        """Server-Sent Events: `id:` is the seq, `event:` the kind; `Last-Event-ID` resumes."""
        logs.last_seq(run_id)  # 404 now, not mid-stream
        start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
        feed = feeds.get(run_id)
        if feed is None:
            feed = feeds[run_id] = Feed(
                lambda a, k, n: logs.read(run_id, a, k, n), lambda: logs.last_seq(run_id), poll, queue
            )
        return StreamingResponse(
            _sse(feed, start, kind, keepalive),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


async def _sse(feed: Feed, after: int, kind: str | None, keepalive: float) -> AsyncIterator[str]:
    quiet = 0.0
    async for ev in feed.follow(after, kind):
        if ev is None:
            quiet += feed.poll * 5
            if quiet >= keepalive:
                quiet = 0.0
                yield ": keep-alive\n\n"
            continue
        quiet = 0.0
        yield f"id: {ev.seq}\nevent: {ev.kind}\ndata: {json.dumps(ev.model_dump(mode='json'))}\n\n"
    yield "event: omoi.dropped\ndata: {}\n\n"  # a slow reader: resume from the last id
