"""Rendering a run's progress from its events: a live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from omoi.event_lines import guardian_line, merge_line, spec_line
from omoi.runtime import names
from omoi.runtime.log.events import Event
from omoi.runtime.run.state import STATUSES, RunState

STYLE = {
    "pending": "dim",
    "ready": "cyan",
    "running": "yellow",
    "succeeded": "green",
    "failed": "red",
    "skipped": "magenta",
    "cancelled": "magenta",
}

# What a person must see even on the live table: something waits for them, or something broke.
LOUD = frozenset(
    {
        "agent.needs_input",
        "budget.warning",
        "budget.exhausted",
        "task.failed",
        "spec.gate_waiting",
        "spec.phase_failed",
        "merge.needs_human",
        "merge.failed",
    }
)


class Progress:
    """Folds the events it is shown into a RunState and draws it."""

    def __init__(self, run_id: str, console: Console, *, live: bool | None = None) -> None:
        self.state = RunState(run_id)
        self.console = console
        self.started = time.monotonic()
        self.live_mode = console.is_terminal if live is None else live
        self._live: Live | None = None

    def __enter__(self) -> Progress:
        if self.live_mode:
            self._live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=4,
                transient=False,
                get_renderable=self._render,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            if self.state.finished is not None:  # the table shows counts; say how it ended, and where
                self.console.print(self._line(self.state.finished) or "", highlight=False, soft_wrap=True)

    def __call__(self, events: list[Event]) -> None:
        for ev in events:
            self.state.apply(ev)
            if not self.live_mode or ev.kind in LOUD:  # printed above the live table, where it stays
                line = self._line(ev)
                if line:
                    self.console.print(line, highlight=False, soft_wrap=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def since_start(self, ev: Event) -> float:
        """The event's own time since the run started: lines read late (a batch of spec events, a
        resumed run's history) still say when each thing happened."""
        start = self.state.started
        return (ev.ts - start.ts).total_seconds() if start is not None else self.elapsed()

    def _line(self, ev: Event) -> str | None:
        stamp = f"[{self.since_start(ev):7.1f}s]"
        match ev.kind:
            case "run.started":
                return f"{stamp} run {ev.run_id} started on {ev.repo} at {ev.base_commit[:10]}"
            case "task.started":
                return f"{stamp} {ev.task_id:<20} started   attempt {ev.attempt}"
            case "task.succeeded":
                return f"{stamp} {ev.task_id:<20} succeeded {(ev.commit or '')[:10]} ({ev.duration_s:.1f}s)"
            case "task.failed":
                tail = ev.output_tail.strip().splitlines()[-1:] if ev.output_tail else []
                last = f" | {tail[0][:120]}" if tail else ""
                again = "" if ev.final else " (will retry)"
                return f"{stamp} {ev.task_id:<20} failed    {ev.error}{again}{last}"
            case "task.retrying":
                return (
                    f"{stamp} {ev.task_id:<20} retrying  attempt {ev.attempt} in {ev.delay_s:g}s: {ev.reason}"
                )
            case "task.skipped" | "task.cancelled":
                return f"{stamp} {ev.task_id:<20} {ev.kind.split('.')[1]:<9} {ev.reason}"
            case "run.finished":
                return (
                    f"{stamp} run {ev.status}"
                    + (f": branch {ev.branch}" if ev.branch else "")
                    + (f" ({ev.error})" if ev.error else "")
                )
            case "agent.needs_input":
                return (
                    f"{stamp} {ev.task_id:<20} asks      {ev.question}\n"
                    f'{"":>10} answer with: omoi answer {ev.run_id} {ev.task_id} "..."'
                )
            case "agent.acceptance":
                verdict = "passed" if ev.passed else f"failed: `{ev.command}` exited {ev.exit_code}"
                return f"{stamp} {ev.task_id:<20} accept    round {ev.round} {verdict}"
            case "agent.escalated":
                return (
                    f"{stamp} {ev.task_id:<20} escalated to the oracle after {ev.failed_rounds} failed rounds"
                )
            case "model.retried":
                why = f"HTTP {ev.status}" if ev.status else "connection failure"
                return f"{stamp} {ev.task_id:<20} model     {why}, retry {ev.try_no} in {ev.delay_s:.2f}s"
            case "budget.warning" | "budget.exhausted":
                limit = " / ".join(
                    x
                    for x in (
                        f"{ev.limit_tokens} tokens" if ev.limit_tokens else "",
                        f"${ev.limit_usd:g}" if ev.limit_usd else "",
                    )
                    if x
                )
                what = (
                    "80% spent" if ev.kind == "budget.warning" else "SPENT: no new model calls until raised"
                )
                hint = f" (omoi raise-budget {ev.run_id} ...)" if ev.kind == "budget.exhausted" else ""
                return (
                    f"{stamp} budget {ev.scope}: {what} ({ev.tokens} tokens, ${ev.usd:.4f} of {limit}){hint}"
                )
            case "budget.raised":
                return f"{stamp} budget {ev.scope}: raised by {ev.add_tokens} tokens, ${ev.add_usd:g}"
            case kind if kind.startswith("spec."):
                return spec_line(stamp, ev)
            case kind if kind.startswith(("merge.", "verify.", "delivery.")):
                return merge_line(stamp, ev)
            case kind if kind.startswith(
                ("guardian.", "conductor.", "discovery.", "agent.paused", "agent.resumed")
            ):
                return guardian_line(stamp, ev)
            case _:
                return None

    def _render(self) -> Group:
        counts = self.state.counts()
        head = Text(f"run {self.state.run_id}  {self.elapsed():6.1f}s  ")
        if self.state.usage.total:
            head.append(f"{self.state.usage.total:,} tokens ${self.state.cost_usd:.4f}  ")
        for status in STATUSES:
            if counts[status]:
                head.append(f"{status} {counts[status]}  ", style=STYLE[status])
        running = self.state.with_status("running")
        table = Table(box=None, show_header=bool(running), pad_edge=False)
        table.add_column("running task")
        table.add_column("attempt", justify="right")
        for t in running[:12]:
            table.add_row(t.id, str(t.attempt))
        if len(running) > 12:
            table.add_row(f"... and {len(running) - 12} more", "")
        return Group(head, table)


_SETTLED = ("succeeded", "skipped")


def status_table(state: RunState, limit: int = 0) -> Table:
    """Every task in run order, or at most `limit` (0: no limit): the unsettled first, then the
    settled, each in run order, with a caption saying what was left out (a 10k-task table takes
    seconds to draw and nobody reads it)."""
    table = Table(title=f"run {state.run_id}", title_justify="left")
    for col in ("task", "status", "attempts", "started", "ended", "branch"):
        table.add_column(col, no_wrap=True)
    table.add_column("note", overflow="ellipsis", no_wrap=True)
    tasks = state.in_order()
    if limit and len(tasks) > limit:
        shown = {t.id for t in [t for t in tasks if t.status not in _SETTLED][:limit]}
        shown |= {t.id for t in [t for t in tasks if t.status in _SETTLED][: limit - len(shown)]}
        counts = ", ".join(f"{n} {s}" for s, n in state.counts().items() if n)
        table.caption = f"{limit} of {len(tasks)} tasks shown ({counts}); --limit 0 shows all"
        tasks = [t for t in tasks if t.id in shown]
    for t in tasks:
        branch = names.task_branch(state.run_id, t.id) if t.attempt else ""
        table.add_row(
            t.id,
            Text(t.status, style=STYLE[t.status]),
            str(t.attempt),
            _ts(t.started_at),
            _ts(t.ended_at),
            branch,
            (t.error or "")[:80],
        )
    return table


def _ts(value: datetime | None) -> str:
    return value.astimezone().strftime("%H:%M:%S") if value else ""


def run_summary(state: RunState, events: list[Event], wall_s: float) -> Table:
    """What a run cost and did, per task: attempts, model turns, retried calls, acceptance rounds,
    tokens and dollars, with the totals, the wall time and the branch to look at."""
    turns: Counter[str] = Counter()
    retries: Counter[str] = Counter()
    rounds: Counter[str] = Counter()
    merged_how: dict[str, str] = {}  # the last rung that resolved each task's merge
    actions: Counter[str] = Counter()  # the guardian's interventions, by action
    worked: Counter[bool] = Counter()  # and the steers judged
    assessed: Counter[str] = Counter()  # the guardian's model assessments, by verdict, and tokens
    spec_tokens, spec_usd = 0, 0.0  # the spec's agents (task ids spec-*): intent, phases, reviews
    for ev in events:
        task = getattr(ev, "task_id", "")
        match ev.kind:
            case "agent.turn":
                turns[task] += 1
                if names.is_spec_conversation(task):
                    spec_tokens, spec_usd = spec_tokens + ev.usage.total, spec_usd + ev.cost_usd
            case "model.retried":
                retries[task] += 1
            case "agent.acceptance":
                rounds[task] += 1
            case "merge.resolved":
                merged_how[task] = ev.how
            case "guardian.intervened":
                actions[ev.action] += 1
            case "guardian.outcome":
                worked[ev.worked] += 1
            case "guardian.assessed":
                assessed[ev.verdict] += 1
                assessed["tokens"] += ev.usage.total
            case "guardian.replanned":
                assessed["tokens"] += ev.usage.total
            case "conductor.assessed" if ev.coherence != "not asked":
                assessed[f"run {ev.coherence}"] += 1
                assessed["tokens"] += ev.usage.total
    branch = state.finished.branch if state.finished else None
    ended = state.finished.status if state.finished else "unfinished"
    table = Table(
        title=f"run {state.run_id}: {ended} in {wall_s:.1f}s",
        title_justify="left",
        caption="\n".join(
            x
            for x in (
                f"branch: {branch}" if branch else "",
                _merges(state, merged_how),
                _guarded(actions, worked),
                _assessed(assessed, state.usage.total),
            )
            if x
        )
        or None,
        caption_justify="left",
    )
    for col in ("task", "kind", "status", "attempts", "model turns", "retried calls", "acceptance rounds"):
        table.add_column(col, justify="left" if col in ("task", "kind", "status") else "right")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    for t in state.in_order():
        agent = t.spec.agent is not None
        table.add_row(
            t.id,
            "agent" if agent else "command",
            Text(t.status, style=STYLE[t.status]),
            str(t.attempt),
            str(turns[t.id]) if agent else "",
            str(retries[t.id]) if agent else "",
            str(rounds[t.id]) if agent else "",
            f"{t.tokens:,}" if agent else "",
            f"${t.cost_usd:.4f}" if agent else "",
        )
    spec = [t for t in turns if names.is_spec_conversation(t)]
    if spec:
        table.add_row(
            "(spec)",
            "agents",
            Text(
                state.spec.status if state.spec else "running",
                style=STYLE.get(state.spec.status, "") if state.spec else "",
            ),
            "",
            str(sum(turns[t] for t in spec)),
            str(sum(retries[t] for t in spec)),
            "",
            f"{spec_tokens:,}",
            f"${spec_usd:.4f}",
        )
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        str(sum(t.attempt for t in state.tasks.values())),
        str(sum(turns.values())),
        str(sum(retries.values())),
        str(sum(rounds.values())),
        f"{state.usage.total:,}",
        f"${state.cost_usd:.4f}",
    )
    return table


def _guarded(actions: Counter[str], worked: Counter[bool]) -> str:
    """One line of what the guardian did: interventions by action, and how many steers worked."""
    if not actions:
        return ""
    line = "interventions: " + ", ".join(f"{n} {a}" for a, n in sorted(actions.items()))
    if worked:
        line += f" ({worked[True]} worked, {worked[False]} did not)"
    return line


def _assessed(assessed: Counter[str], agent_tokens: int) -> str:
    """One line of what supervision's model calls said and cost, against the agents' tokens."""
    tokens = assessed.pop("tokens", 0)
    if not assessed:
        return ""
    share = f" ({tokens / agent_tokens:.1%} of the agents')" if agent_tokens else ""
    verdicts = ", ".join(f"{n} {v}" for v, n in sorted(assessed.items()))
    return f"assessments: {verdicts}; {tokens:,} tokens{share}"


def _merges(state: RunState, how: dict[str, str]) -> str:
    """One line of the merge queue's outcome: how many merged, which took a rung, which did not."""
    if not state.merged and not state.merge_failed:
        return ""
    rungs = ", ".join(f"{t} by {h}" for t, h in how.items() if t in state.merged)
    line = f"merges: {len(state.merged)} merged" + (f" ({rungs})" if rungs else "")
    if state.merge_failed:
        line += f", {len(state.merge_failed)} not merged ({', '.join(state.merge_failed)})"
    return line


def plan_summary(state: RunState) -> str:
    """The DAG a spec wrote: its waves (tasks that can run at the same time), the critical path,
    and where the documents are."""
    graph = state.graph
    lines = [f"{len(graph)} tasks in {len(graph.waves())} waves:"]
    for i, wave in enumerate(graph.waves(), 1):
        lines.append(f"  wave {i}: " + ", ".join(wave))
    lines.append("critical path: " + " -> ".join(graph.critical_path()))
    for tid in graph.topological():
        spec = graph.spec(tid)
        deps = f" (after {', '.join(spec.deps)})" if spec.deps else ""
        lines.append(f"  {tid}{deps}: {spec.description}; acceptance: {'; '.join(spec.acceptance)}")
    if (done := state.spec) is not None:
        repo = state.started.repo if state.started else "."
        lines.append(f"documents: {done.spec_dir}/ on branch {done.branch}")
        lines.append(f"  git -C {repo} show {done.branch}:{done.spec_dir}/tasks.md")
    return "\n".join(lines)
