"""The pull request's description, as Markdown, from the run's log alone."""

from __future__ import annotations

from omoi.runtime.log.events import Event
from omoi.runtime.run.state import fold


def describe(run_id: str, log: list[Event]) -> str:
    state = fold(run_id, log)
    started, finished = state.started, state.finished
    goal = (started.goal if started else "") or (started.plan_name if started else "") or run_id
    lines = [f"# {goal}", "", f"omoi run `{run_id}`"]
    if finished is not None:
        lines[-1] += f": {finished.status}" + (
            f", branch `{finished.branch}` at `{finished.commit}`" if finished.branch else ""
        )
    if state.spec is not None and state.spec.branch:
        lines += ["", f"The spec is on branch `{state.spec.branch}` (`{state.spec.spec_dir}`)."]
    summaries = {e.task_id: e.summary for e in log if e.kind == "agent.finished" and e.status == "complete"}
    lines += ["", "## Tasks", ""]
    for t in state.in_order():
        what = (
            summaries.get(t.id)
            or (t.spec.run and f"`{t.spec.run}`")
            or (t.spec.agent.prompt if t.spec.agent else "")
        )
        merged = (
            " (merged)"
            if t.id in state.merged
            else f" (not merged: {state.merge_failed[t.id]})"
            if t.id in state.merge_failed
            else ""
        )
        lines.append(f"- **{t.id}**: {t.status}{merged}. {what}".rstrip())
    found = [e for e in log if e.kind == "agent.discovery"]
    if found:
        lines += ["", "## Discoveries", ""] + [f"- [{e.type}] {e.title} ({e.task_id})" for e in found]
    story = [
        e
        for e in log
        if e.kind in ("merge.conflicted", "merge.resolved", "merge.needs_human", "merge.failed")
    ]
    lines += ["", "## Conflicts", ""]
    if not story:
        lines.append("None: every branch merged cleanly.")
    for e in story:
        match e.kind:
            case "merge.conflicted":
                what = ", ".join(e.files) or "the merged result failed its checks"
                lines.append(f"- {e.task_id}: conflict in {what}; next: {e.next}")
            case "merge.resolved":
                files = ", ".join(e.files) or "checks"
                lines.append(f"- {e.task_id}: resolved by {e.how} ({files}) {e.detail}".strip())
            case "merge.needs_human":
                lines.append(f"- {e.task_id}: waited for a person ({', '.join(e.files)})")
            case "merge.failed":
                lines.append(f"- {e.task_id}: not merged: {e.reason}")
    checks = [e for e in log if e.kind in ("verify.passed", "verify.failed")]
    lines += ["", "## Verification", ""]
    lines += [
        f"- {', '.join(e.tasks)} on `{e.commit[:12]}`: "
        + ("passed" if e.kind == "verify.passed" else f"failed (`{e.command}` exited {e.exit_code})")
        + (" (retry)" if e.round == 2 else "")
        for e in checks
    ] or ["No checks were declared (the plan's `verify:` and the tasks' acceptance commands)."]
    lines += ["", "## Cost", "", f"{state.usage.total} model tokens, ${state.cost_usd:.4f}", ""]
    return "\n".join(lines)
