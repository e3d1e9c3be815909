"""One line per event worth a line, for the plain (non-TTY) progress and the lines printed
above the live table: the spec's steps, the merge queue's and the guardian's."""

from __future__ import annotations

from omoi.runtime import names
from omoi.runtime.log.events import Event


def spec_line(stamp: str, ev: Event) -> str | None:
    """How the spec's progress reads: one line per step, the gate's commands spelled out."""
    head = f"{stamp} spec {getattr(ev, 'phase', ''):<15}"
    match ev.kind:
        case "spec.intent":
            return f"{stamp} spec intent          {ev.intent} (by {ev.by}): {ev.reason}"
        case "spec.phase_started":
            fix = f", fixing: {ev.feedback.splitlines()[0][:100]}" if ev.feedback else ""
            return f"{head} started   attempt {ev.attempt}{fix}"
        case "spec.phase_evaluated":
            if ev.passed:
                return f"{head} checks    passed (score {ev.score:.2f})"
            more = f" (+{len(ev.issues) - 1} more)" if len(ev.issues) > 1 else ""
            first = ev.issues[0][:140] if ev.issues else ""
            return f"{head} checks    sent back, score {ev.score:.2f} < {ev.threshold:.2f}: {first}{more}"
        case "spec.gate_waiting":
            return (
                f"{head} waiting   for your decision on {', '.join(ev.artifacts)}\n"
                f"{'':>10} omoi approve {ev.run_id} --phase {ev.phase}   or   "
                f'omoi reject {ev.run_id} --phase {ev.phase} --reason "..."'
            )
        case "spec.gate_decided":
            why = f": {ev.reason.strip().splitlines()[0][:120]}" if ev.reason.strip() else ""
            return f"{head} {ev.decision + 'd':<9} by {ev.by}{why}"
        case "spec.phase_completed":
            return f"{head} done      {', '.join(ev.artifacts)}"
        case "spec.phase_failed":
            return f"{head} FAILED    " + "; ".join(r.splitlines()[0][:160] for r in ev.reasons)
        case "spec.finished":
            if ev.status == "succeeded":
                return f"{stamp} spec finished: {ev.tasks} tasks, documents in {ev.spec_dir} on {ev.branch}"
            return f"{stamp} spec failed: {ev.error}"
    return None


def merge_line(stamp: str, ev: Event) -> str | None:
    """How the merge queue's work reads: merges, each rung of the ladder, checks, predictions."""
    task = f"{getattr(ev, 'task_id', ''):<20}"
    match ev.kind:
        case "merge.succeeded":
            return f"{stamp} {task} merged    into the head at {ev.head[:10]}"
        case "merge.conflicted" if ev.next != "rule":
            why = f": {ev.detail.splitlines()[0][:120]}" if ev.detail else ""
            return (
                f"{stamp} {task} conflict  in {', '.join(ev.files) or 'the merged checks'} -> {ev.next}{why}"
            )
        case "merge.resolved":
            return f"{stamp} {task} resolved  {', '.join(ev.files)} by {ev.how}" + (
                f" ({ev.detail[:120]})" if ev.detail else ""
            )
        case "merge.needs_human":
            return (
                f"{stamp} {task} WAITING   for a person to resolve {', '.join(ev.files)}\n"
                f"{'':>10} commit a resolution on {names.task_branch(ev.run_id, ev.task_id)}, then "
                f"omoi resolve {ev.run_id} {ev.task_id}   (or --take ours|theirs)"
            )
        case "merge.failed":
            return f"{stamp} {task} NOT MERGED {ev.reason[:160]}"
        case "verify.failed":
            return (
                f"{stamp} {'checks':<20} red       round {ev.round} of {', '.join(ev.tasks)}: `{ev.command}`"
            )
        case "merge.conflict_predicted":
            return f"{stamp} {' + '.join(ev.tasks):<20} predicted conflict in {', '.join(ev.files)}"
        case "delivery.ready":
            return f"{stamp} delivered {ev.branch}" + (f" -> {ev.pull_request}" if ev.pull_request else "")
    return None


SUPERVISION = ("guardian.", "conductor.", "discovery.", "agent.paused", "agent.resumed")


def guardian_line(stamp: str, ev: Event) -> str | None:
    """What supervision did: interventions (with the evidence), outcomes, assessments, pauses,
    the conductor's acts and discoveries."""
    match ev.kind:
        case "guardian.intervened":
            seen = "; ".join(s.evidence for s in ev.signals)[:160]
            hint = f"\n{'':>10} omoi resume {ev.run_id} {ev.task_id}" if ev.action == "ask_human" else ""
            return f"{stamp} {ev.task_id:<20} guardian  {ev.action} (turn {ev.turn}): {seen}{hint}"
        case "guardian.outcome":
            verdict = "worked" if ev.worked else f"did not work ({', '.join(ev.still)} again)"
            return f"{stamp} {ev.task_id:<20} guardian  steer at seq {ev.intervention} {verdict}"
        case "guardian.assessed":
            said = ev.recommendation or ev.summary or ev.error
            return f"{stamp} {ev.task_id:<20} assessed  {ev.verdict} (turn {ev.turn}): {said[:140]}"
        case "guardian.replanned":
            said = f"rewrote the task: {ev.rationale}" if ev.prompt else f"no rewrite: {ev.error}"
            return f"{stamp} {ev.task_id:<20} planner   attempt {ev.attempt}: {said[:140]}"
        case "discovery.awaiting" if ev.gate == "review":
            return (
                f"{stamp} {ev.task_id:<20} found     discovery {ev.discovery} ({ev.title[:80]}): under review"
            )
        case "discovery.awaiting":
            note = f" ({ev.note[:100]})" if ev.note else ""
            return (
                f"{stamp} {ev.task_id:<20} WAITING   discovery {ev.discovery} ({ev.title[:80]}){note}\n"
                f"{'':>10} omoi approve {ev.run_id} --discovery {ev.discovery}   or   "
                f"omoi reject {ev.run_id} --discovery {ev.discovery} --reason ..."
            )
        case "discovery.task_spawned":
            blocks = ", which waits for it" if ev.blocks else ""
            return f"{stamp} {ev.task_id:<20} found     {ev.spec.id}: {ev.spec.description[:100]}{blocks}"
        case "discovery.rejected":
            return f"{stamp} {ev.task_id:<20} found     discovery {ev.discovery} dropped: {ev.reason[:120]}"
        case "conductor.acted" if ev.action == "message" and ev.kept:
            files = ", ".join(ev.files[:3])
            return f"{stamp} {ev.task_id:<20} conductor told about {ev.kept}: both name {files}"
        case "conductor.acted" if ev.action in ("message", "diagnose"):
            return f"{stamp} {ev.task_id:<20} conductor {ev.reason.removeprefix('[omoi conductor] ')[:120]}"
        case "conductor.acted":
            return f"{stamp} {ev.task_id:<20} conductor {ev.action}: waits for {ev.kept}"
        case "conductor.assessed":
            score = "" if ev.score is None else f" {ev.score:.2f}"
            judged = (
                ""
                if ev.coherence == "not asked"
                else f" [{ev.coherence}{score}{ev.error and ': ' + ev.error}]"
            )
            lines = [*ev.waiting, *(f"issue: {i}" for i in ev.issues)]
            return f"{stamp} {'conductor':<20} {ev.summary}{judged}" + "".join(
                f"\n{'':>10} {w}" for w in lines
            )
        case "agent.paused":
            return f"{stamp} {ev.task_id:<20} paused    {ev.reason[:120]}"
        case "agent.resumed":
            return f"{stamp} {ev.task_id:<20} resumed"
    return None
