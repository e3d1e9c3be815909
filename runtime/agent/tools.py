"""The tools an agent calls, as JSON schemas for the model and as code over the task's sandbox.

Every argument set is a pydantic model, so a malformed tool input comes back to the model as a
readable error naming the fields, never as an exception in the loop. Results are capped: the
model sees the head and tail of long output, with a note of what was cut."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omoi.runtime.errors import OmoiError
from omoi.runtime.sandbox.seam import Sandbox

MAX_LISTED = 400
MAX_HITS_SHOWN = 100


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListFiles(_Args):
    """List the files under a directory of the workspace (git metadata left out)."""

    path: str = Field(default=".", description="directory, relative to the workspace root")


class ReadFile(_Args):
    """Read a text file, whole or a range of lines (1-based, inclusive)."""

    path: str
    start: int | None = Field(default=None, ge=1)
    end: int | None = Field(default=None, ge=1)


class WriteFile(_Args):
    """Create or overwrite a file with the given content."""

    path: str
    content: str


class EditFile(_Args):
    """Replace an exact string in a file. `old` must occur exactly once unless replace_all is set."""

    path: str
    old: str = Field(min_length=1, description="the exact text to replace, with enough context to be unique")
    new: str
    replace_all: bool = False


class Search(_Args):
    """Search files for a regular expression; returns file:line: text."""

    pattern: str = Field(min_length=1)
    path: str = "."


class Run(_Args):
    """Run a shell command in the workspace; returns its exit code and output."""

    command: str = Field(min_length=1)
    timeout: float | None = Field(default=None, gt=0, description="seconds (capped by the task's timeout)")


class Todo(_Args):
    text: str = Field(min_length=1)
    done: bool = False


class TodoWrite(_Args):
    """Replace your checklist for this task. Keep it current: open items are how the runtime knows
    the work is not finished."""

    items: list[Todo]


DiscoveryType = Literal[
    "bug", "missing_requirement", "optimization", "security", "performance", "integration",
    "tech_debt", "clarification",
]  # fmt: skip


class ReportDiscovery(_Args):
    """Report work found beyond this task (a bug, a missing requirement, ...). The runtime may turn
    it into a new task of the run. With blocks_current, this task waits for that task to be merged
    and then starts again from the merged result."""

    type: DiscoveryType
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, description="what the new work is, enough to do it")
    evidence: str = Field(default="", description="where you saw it: files, lines, output")
    priority: Literal["low", "medium", "high", "critical"] = "medium"
    blocks_current: bool = Field(default=False, description="this task cannot be finished without it")


class Finish(_Args):
    """End the task: complete (acceptance checks run next), blocked (cannot go on, say why), or
    need_input (ask a person a question; the task waits for the answer)."""

    status: Literal["complete", "blocked", "need_input"]
    summary: str = Field(min_length=1, description="what was done, why blocked, or the question")


# Tools whose time is a command's, not a file operation's: a turn that calls one is on the log
# before it starts (see AgentLoop._record).
SLOW_TOOLS = frozenset({"run"})
ARGS: dict[str, type[_Args]] = {
    "list_files": ListFiles,
    "read_file": ReadFile,
    "write_file": WriteFile,
    "edit_file": EditFile,
    "search": Search,
    "run": Run,
    "todo_write": TodoWrite,
    "report_discovery": ReportDiscovery,
    "finish": Finish,
}


@functools.cache
def tool_definitions(names: frozenset[str]) -> list[dict[str, Any]]:
    """The Messages API `tools` for these names, in a fixed order (a stable prefix caches).
    Cached: building JSON schemas costs CPU that every turn would pay again. Callers don't mutate."""
    out = []
    for name, model in ARGS.items():
        if name in names:
            schema = model.model_json_schema()
            schema.pop("title", None)
            schema.pop("description", None)
            out.append({"name": name, "description": (model.__doc__ or "").strip(), "input_schema": schema})
    return out


def cap(text: str, limit: int) -> str:
    """Head and tail of `text` within `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


@dataclass(frozen=True)
class ToolOutcome:
    text: str
    is_error: bool = False
    finish: Finish | None = None
    discovery: ReportDiscovery | None = None


@dataclass
class ToolBox:
    """Runs tool calls in one sandbox and keeps the agent's checklist."""

    sandbox: Sandbox
    timeout: float
    output_cap: int = 8000
    todos: list[Todo] = field(default_factory=list)

    def open_todos(self) -> tuple[str, ...]:
        return tuple(t.text for t in self.todos if not t.done)

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        model = ARGS.get(name)
        if model is None:
            return ToolOutcome(f"there is no tool '{name}'", is_error=True)
        try:
            args = model.model_validate(arguments)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: {e['msg']}" for e in exc.errors()
            )
            return ToolOutcome(f"invalid arguments for {name}: {problems}. Fix them and call again.", True)
        try:
            return await self._run(args)
        except (OmoiError, OSError, ValueError) as exc:
            return ToolOutcome(f"{name} failed: {exc}", is_error=True)

    async def _run(self, args: _Args) -> ToolOutcome:
        sb = self.sandbox
        match args:
            case ListFiles(path=path):
                files = await sb.list_files(path)
                more = f"\n[{len(files) - MAX_LISTED} more files]" if len(files) > MAX_LISTED else ""
                return ToolOutcome("\n".join(files[:MAX_LISTED]) + more if files else "(no files)")
            case ReadFile(path=path, start=start, end=end):
                return ToolOutcome(cap(await sb.read_file(path, start, end), self.output_cap))
            case WriteFile(path=path, content=content):
                await sb.write_file(path, content)
                return ToolOutcome(f"wrote {path} ({len(content)} characters)")
            case EditFile():
                return await self._edit(args)
            case Search(pattern=pattern, path=path):
                hits = await sb.search(pattern, path)
                lines = [f"{h.path}:{h.line}: {h.text}" for h in hits[:MAX_HITS_SHOWN]]
                return ToolOutcome("\n".join(lines) if lines else "no matches")
            case Run(command=command, timeout=timeout):
                res = await sb.exec(command, min(timeout or self.timeout, self.timeout))
                status = "timed out" if res.timed_out else f"exit code {res.exit_code}"
                note = " (output truncated: showing the end)" if res.truncated else ""
                return ToolOutcome(
                    f"{status}{note}\n{cap(res.output, self.output_cap)}", is_error=res.exit_code != 0
                )
            case TodoWrite(items=items):
                self.todos = list(items)
                return ToolOutcome(render_todos(self.todos))
            case ReportDiscovery():
                return ToolOutcome("recorded", discovery=args)
            case Finish():
                return ToolOutcome("noted", finish=args)
        raise AssertionError(f"unhandled tool arguments {type(args).__name__}")

    async def _edit(self, args: EditFile) -> ToolOutcome:
        text = await self.sandbox.read_file(args.path)
        found = text.count(args.old)
        if found == 0:
            return ToolOutcome(
                f"edit_file: the old text was not found in {args.path}. The file may have changed or differ "
                "in whitespace: re-read it with read_file, then retry with text copied exactly from it.",
                is_error=True,
            )
        if found > 1 and not args.replace_all:
            return ToolOutcome(
                f"edit_file: the old text was found {found} times in {args.path}. Re-read the file and "
                "include more surrounding lines so it matches once, or set replace_all to change them all.",
                is_error=True,
            )
        await self.sandbox.write_file(args.path, text.replace(args.old, args.new))
        return ToolOutcome(f"edited {args.path}: replaced {found} occurrence{'s' if found > 1 else ''}")


def render_todos(todos: list[Todo]) -> str:
    if not todos:
        return "(checklist is empty)"
    return "\n".join(f"[{'x' if t.done else ' '}] {t.text}" for t in todos)
