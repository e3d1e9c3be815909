"""What a resolving agent is told: both sides' intent, the files, and what counts as done."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

# A line git's merge leaves: `<<<<<<< label`, `>>>>>>> label` (`=======` alone is also Markdown).
MARKER_CHECK = "! grep -nE '^(<<<<<<<|>>>>>>>)( |$)' -- "


def marker_check(files: Sequence[str]) -> str:
    """An acceptance command that fails, listing the lines, while any file holds a conflict marker."""
    return MARKER_CHECK + " ".join(shlex.quote(f) for f in files)


def resolve_message(
    task_id: str,
    prompt: str,
    summary: str,
    files: Sequence[str],
    others: Mapping[str, str],
    *,
    neutral: bool = False,
) -> str:
    who = (
        "You are resolving a merge conflict between work of other agents."
        if neutral
        else "Your work on this task is done, but it conflicts with work merged since you started."
    )
    theirs = "\n".join(f"- **{t}**: {why}" for t, why in others.items()) or "- (no summary was recorded)"
    return (
        f"# Resolve a merge conflict\n{who}\n\nThe workspace holds the merge of the integration head "
        f"with task `{task_id}`'s branch. These files still have conflict markers:\n"
        + "\n".join(f"- {f}" for f in files)
        + f"\n\n## What task `{task_id}` was for\n{prompt}\n\nWhat it did: {summary or '(no summary)'}"
        + f"\n\n## What the merged work was for\n{theirs}\n\n"
        "Edit each file so that both intents hold (never drop one side's change to keep the other's), "
        "remove every conflict marker, run the checks, then finish. Change nothing else."
    )


def regenerate_script(commands: Sequence[str], files: Sequence[str]) -> str:
    """The plan's generators, in order, on the merged result; then no marker may be left."""
    return " && ".join([*(f"( {c}\n)" for c in commands), marker_check(files)])


def repair_message(task_id: str, prompt: str, command: str, output: str) -> str:
    return (
        f"# Your work broke the merged result\nTask `{task_id}` passed its checks alone, but merged with the "
        f"work of the other tasks `{command}` fails:\n```\n{output}\n```\nThe workspace holds the merge. Fix "
        f"the code so that both your task and the merged work hold, then finish.\n\n## Your task\n{prompt}"
    )


def verify_script(commands: Sequence[str]) -> str:
    """One shell script for a sandbox: each command in turn; the first that fails is named on the
    last line of the output (`[omoi verify] failed: #N exit CODE`) and its code is the script's."""
    lines = ["set -u"]
    for i, c in enumerate(commands, 1):
        failed = f'echo "[omoi verify] failed: #{i} exit $rc"; exit $rc'
        lines.append(f"( {c}\n) ; rc=$? ; if [ $rc -ne 0 ]; then {failed}; fi")
    return "\n".join(lines)


def failed_command(commands: Sequence[str], output: str) -> str:
    for line in reversed(output.splitlines()):
        if line.startswith("[omoi verify] failed: #"):
            n = line.split("#", 1)[1].split(" ", 1)[0]
            if n.isdigit() and 1 <= int(n) <= len(commands):
                return commands[int(n) - 1]
    return commands[0] if commands else ""
