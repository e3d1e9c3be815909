"""A scripted Anthropic-compatible model server: what tests and `omoi demo` talk to instead of a model.

It speaks the Messages API over HTTP (`POST /v1/messages`: text and tool_use content, usage with
cache reads and writes, stop reasons, error bodies with `retry-after`), so the real `anthropic` SDK
and omoi's real model client are what get exercised. Answers come from a script: for each task id
and role, the ordered turns of the assistant. A request's turn is the number of assistant messages
it already carries, so a retried request gets the same turn again and the server needs no session.

Faults are injected two ways: per turn in the script (`faults: [{status: 429, retry_after: 0.2}]`,
served before the turn is answered) and at random rates for the whole server (429, 529, 500,
latency, malformed tool input). The server counts requests in flight per model, which is how
tests check the concurrency limits from the outside."""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from omoi.runtime import input_files
from omoi.runtime.errors import ScriptError

# Request headers omoi's model client sends so a script can answer per conversation.
TASK_HEADER, ROLE_HEADER, AGENT_HEADER = "x-omoi-task", "x-omoi-role", "x-omoi-agent"
_ERROR_TYPES = {429: "rate_limit_error", 529: "overloaded_error", 500: "api_error", 503: "api_error"}


class ToolCall(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """`{write_file: {path: a, content: b}}` is the short form of `{name: write_file, input: ...}`."""
        if isinstance(data, dict) and len(data) == 1 and "name" not in data:
            ((name, args),) = data.items()
            return {"name": name, "input": args or {}}
        return data


class Fault(BaseModel):
    """An error answer served instead of the turn, `times` times, before the turn is answered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: int = Field(ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0, description="seconds, sent as retry-after")
    retry_after_ms: int | None = Field(default=None, ge=0, description="sent as retry-after-ms")
    times: int = Field(default=1, ge=1)


class Turn(BaseModel):
    """One assistant message: text, then tool calls (stop reason tool_use), else end_turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = ""
    tools: tuple[ToolCall, ...] = ()
    faults: tuple[Fault, ...] = ()
    delay: float = Field(default=0.0, ge=0, le=600, description="seconds before answering")
    after: tuple[str, ...] = Field(
        default=(), description="answer only once requests of these tasks have arrived (at most 60 s)"
    )


class FaultRates(BaseModel):
    """Random faults for every request, drawn from a seeded generator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_529: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    retry_after: float = Field(default=0.05, ge=0, description="retry-after sent with injected 429/529")
    latency: float = Field(default=0.0, ge=0, le=60, description="seconds added to every answer")
    malformed_tool_input: float = Field(
        default=0.0, ge=0, le=1, description="rate of turns whose first tool call gets a wrong input"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _one_fault_at_most(self) -> FaultRates:
        total = self.rate_429 + self.rate_529 + self.rate_500
        if total > 1:
            raise ValueError(
                f"rate_429 + rate_529 + rate_500 is {total:g}: a request gets one fault at most (sum <= 1)"
            )
        return self


class Script(BaseModel):
    """`tasks: {<task id, or '*', or one conversation 'task/attempt/role'>: {<role or '*'>: [turns]}}`
    plus optional random `faults`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tasks: dict[str, dict[str, tuple[Turn, ...]]] = Field(default_factory=dict)
    faults: FaultRates = FaultRates()

    def turns(self, task: str, role: str, agent: str = "") -> tuple[Turn, ...] | None:
        """The turns of one conversation: keyed by the conversation itself (the agent header,
        `task/attempt/role`) if the script names it, else by task id, else `*`."""
        for t in (agent, task, "*") if agent else (task, "*"):
            roles = self.tasks.get(t)
            if roles is not None:
                for r in (role, "*"):
                    if r in roles:
                        return roles[r]
        return None


def load_script(path: str | Path) -> Script:
    p = Path(path)
    try:
        data = input_files.parse(input_files.read_text(p))
    except input_files.InputFileError as exc:
        raise ScriptError(f"{p}: {str(exc).replace('cannot read it', 'cannot read script')}") from exc
    return parse_script(data, source=str(p))


def load_scripts(paths: Sequence[str | Path]) -> Script:
    """Several scripts as one: their tasks side by side (a later script's task replaces an earlier
    one's), the random faults of the first."""
    scripts = [load_script(p) for p in paths]
    if not scripts:
        raise ScriptError("no script given")
    tasks: dict[str, dict[str, tuple[Turn, ...]]] = {}
    for sc in scripts:
        tasks.update(sc.tasks)
    return Script(tasks=tasks, faults=scripts[0].faults)


def parse_script(data: Any, source: str = "<script>") -> Script:
    try:
        return Script.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "(root)"
        raise ScriptError(f"{source}: {where}: {err['msg']}") from exc


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it, for tests to assert on."""

    at: float  # monotonic
    wall: float  # time.time(), to compare with event timestamps
    task: str
    role: str
    agent: str
    model: str
    turn: int
    status: int
    body: dict[str, Any] = field(repr=False)

    @property
    def last_user_text(self) -> str:
        """The text of the newest user message (tool results included), where feedback arrives."""
        messages = self.body.get("messages") or [{}]
        return _text_of(messages[-1].get("content", ""))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content or []:
        if block.get("type") == "text":
            parts.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content", "")))
    return "\n".join(parts)


def _tokens(value: Any) -> int:
    """A rough token count (4 characters a token), so usage and costs move with the conversation."""
    return max(1, len(json.dumps(value, separators=(",", ":"))) // 4) if value else 0


class ScriptedModelServer:
    """Serves a `Script` on 127.0.0.1; use as a context manager, point `ANTHROPIC_BASE_URL` at `url`."""

    def __init__(self, script: Script, host: str = "127.0.0.1", port: int = 0) -> None:
        self.script = script
        self.requests: list[Recorded] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(script.faults.seed)
        self._faults_served: dict[tuple[str, int, int], int] = {}
        self._replays: dict[str, int] = {}  # conversations sent a malformed turn get it again
        self._cached: set[str] = set()
        self._arrived = threading.Condition(self._lock)
        self._tasks_seen: set[str] = set()
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="scripted-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def requests_for(self, task: str, role: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.task == task and (role is None or r.role == role)]

    # -- answering -------------------------------------------------------------------------------

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body) for one request; the HTTP handler only moves bytes."""
        arrived = time.time()
        task = headers.get(TASK_HEADER, "*")
        role = headers.get(ROLE_HEADER, "worker")
        agent = headers.get(AGENT_HEADER, f"{task}/{role}")
        model = str(body.get("model", ""))
        assistants = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        rates = self.script.faults
        with self._lock:
            self._tasks_seen.add(task)
            self._arrived.notify_all()
            turn_no = assistants - self._replays.get(agent, 0)
            turns = self.script.turns(task, role, agent)
            turn = turns[turn_no] if turns is not None and turn_no < len(turns) else None
            fault = self._scripted_fault(agent, turn_no, turn) or self._random_fault()
            malformed = (
                fault is None
                and turn is not None
                and bool(turn.tools)
                and self._rng.random() < rates.malformed_tool_input
            )
            if malformed:
                self._replays[agent] = self._replays.get(agent, 0) + 1
        if turn is not None and fault is None and turn.after:
            with self._lock:  # a barrier: proves tasks overlap without depending on timing
                self._arrived.wait_for(lambda: set(turn.after) <= self._tasks_seen, timeout=60)
        delay = rates.latency + (turn.delay if turn is not None and fault is None else 0.0)
        if delay:
            time.sleep(delay)  # the model "thinking": this is the simulated service, not a test wait
        if fault is not None:
            status, extra, payload = self._error(fault)
        elif turn is None:
            why = f"the script has no turn {turn_no + 1} for task '{task}' role '{role}'"
            status, extra, payload = 200, {}, self._message(model, Turn(text=f"[BLOCKED: {why}]"), body)
        else:
            status, extra, payload = 200, {}, self._message(model, turn, body, malformed=malformed)
        with self._lock:
            self.requests.append(
                Recorded(time.monotonic(), arrived, task, role, agent, model, turn_no, status, body)
            )
        return status, extra, payload

    def _scripted_fault(self, agent: str, turn_no: int, turn: Turn | None) -> Fault | None:
        for i, fault in enumerate(turn.faults if turn is not None else ()):
            key = (agent, turn_no, i)
            served = self._faults_served.get(key, 0)
            if served < fault.times:
                self._faults_served[key] = served + 1
                return fault
        return None

    def _random_fault(self) -> Fault | None:
        r, rates = self._rng.random(), self.script.faults
        for status, rate in ((429, rates.rate_429), (529, rates.rate_529), (500, rates.rate_500)):
            if r < rate:
                return Fault(status=status, retry_after=rates.retry_after if status != 500 else None)
            r -= rate
        return None

    @staticmethod
    def _error(fault: Fault) -> tuple[int, dict[str, str], Any]:
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["retry-after"] = f"{fault.retry_after:g}"
        if fault.retry_after_ms is not None:
            headers["retry-after-ms"] = str(fault.retry_after_ms)
        kind = _ERROR_TYPES.get(fault.status, "invalid_request_error" if fault.status < 500 else "api_error")
        body = {"type": "error", "error": {"type": kind, "message": f"scripted fault {fault.status}"}}
        return fault.status, headers, body

    def _message(self, model: str, turn: Turn, body: dict[str, Any], *, malformed: bool = False) -> Any:
        content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
        for i, call in enumerate(turn.tools):
            args = {"unexpected_argument": True} if malformed and i == 0 else call.input
            content.append(
                {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:20]}", "name": call.name, "input": args}
            )
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "tool_use" if turn.tools else "end_turn",
            "stop_sequence": None,
            "usage": self._usage(body, content),
        }

    def _usage(self, body: dict[str, Any], content: list[dict[str, Any]]) -> dict[str, int]:
        """Prompt caching as the service does it: the marked prefix (tools + system) is written to
        the cache the first time it is seen and read from it afterwards."""
        prefix = [body.get("tools"), body.get("system")]
        prefix_tokens = _tokens(prefix)
        marked = "cache_control" in json.dumps(prefix)
        write = read = 0
        if marked:
            digest = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
            with self._lock:
                seen = digest in self._cached
                self._cached.add(digest)
            read, write = (prefix_tokens, 0) if seen else (0, prefix_tokens)
        return {
            "input_tokens": _tokens(body.get("messages")) + (0 if marked else prefix_tokens),
            "output_tokens": _tokens(content),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes: with Nagle on, the body waits for the client's
            # delayed ACK of the headers, 40 ms a request on Linux. A model server answers at once.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    return self._invalid("content-length is not a number")
                raw = self.rfile.read(max(0, length))
                if self.path.split("?")[0] != "/v1/messages":
                    self._send(
                        404, {}, {"type": "error", "error": {"type": "not_found_error", "message": self.path}}
                    )
                    return
                try:
                    body = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    return self._invalid(f"body is not JSON: {exc}")
                if not isinstance(body, dict):
                    return self._invalid("body is not a JSON object")
                model = str(body.get("model", ""))
                with server._lock:
                    now = server.in_flight[model] = server.in_flight.get(model, 0) + 1
                    server.max_in_flight[model] = max(server.max_in_flight.get(model, 0), now)
                try:
                    answer = server.answer({k.lower(): v for k, v in self.headers.items()}, body)
                except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                    return self._invalid(f"malformed request: {type(exc).__name__}: {exc}")
                finally:  # out of flight before the answer leaves: the client's next request never overlaps
                    with server._lock:
                        server.in_flight[model] -= 1
                self._send(*answer)

            def _invalid(self, message: str) -> None:
                self._send(
                    400, {}, {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
                )

            def _send(self, status: int, headers: dict[str, str], payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", f"req_{uuid.uuid4().hex[:16]}")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the recorded requests are the log."""

        return Handler
