"""The words the runtime says to agents. The system prompt depends only on the role, so with the
tool definitions it forms a stable prefix that prompt caching serves across tasks; everything
task-specific goes into the first user message."""

from __future__ import annotations

from collections.abc import Sequence

ROLE_BRIEFS = {
    "worker": "You are a software engineer. You change the code to do the task, run its checks, and finish.",
    "explorer": "You explore a codebase and report what you find. You do not change anything.",
    "librarian": "You find and summarise documentation and code relevant to a question. You change nothing.",
    "planner": "You write plans and specifications as Markdown files. You change no code.",
    "oracle": (
        "You are a senior engineer consulted when another agent keeps failing. Read what you need, find the "
        "root cause, and answer with concrete advice: what is wrong and what to change. You change nothing."
    ),
    "resolver": (
        "You resolve merge conflicts between the work of other engineers. You keep the intent of both "
        "sides, remove every conflict marker, run the checks, and finish."
    ),
    "reviewer": (
        "You review work against its requirements and answer with concrete issues. You change nothing."
    ),
}

RULES = """\
You work inside one git worktree (the workspace root is `.`); paths are relative to it.
Rules:
- Read before you edit: edit_file needs the exact current text.
- Keep a checklist with todo_write when the work has several steps, and tick items as you finish them.
- Report bugs or missing requirements you notice outside your task with report_discovery.
- When done, call finish(status="complete", summary=...). The task's acceptance commands then run; if
  they fail you will see their output and get another round.
- If you cannot go on, call finish(status="blocked", summary=<why>). If only a person can answer a
  question, call finish(status="need_input", summary=<the question>).
- Instead of the finish tool you may end a message with [TASK COMPLETE], [BLOCKED: reason] or
  [NEED INPUT: question]."""


def system_prompt(role: str, tools: Sequence[str]) -> str:
    return f"{ROLE_BRIEFS[role]}\n\n{RULES}\n\nYour tools: {', '.join(tools)}."


def task_message(prompt: str, acceptance: Sequence[str], context: Sequence[str]) -> str:
    parts = [f"# Task\n{prompt}"]
    if acceptance:
        parts.append(
            "# Acceptance\nThe task counts as done when these commands exit 0:\n" + _bullets(acceptance)
        )
    if context:
        parts.append("# Start by reading\n" + _bullets(context))
    return "\n\n".join(parts)


def reminder(open_todos: Sequence[str], claimed_complete: bool, submit: str | None = None) -> str:
    if submit is not None:
        return f"You ended your turn without handing in your work. Call {submit} with it."
    if open_todos:
        head = "You said the task is complete, but" if claimed_complete else "You stopped, but"
        return (
            f"{head} your checklist still has open items:\n{_bullets(open_todos)}\n"
            "Continue with them, or update the checklist if they are done."
        )
    return "You ended your turn without finishing. Continue the task, then call finish with a status."


def repair(
    command: str, exit_code: int | None, output: str, failed_rounds: int, repairs: int, advice: str | None
) -> str:
    text = (
        f"Acceptance failed (round {failed_rounds} of at most {repairs} repairs): `{command}` "
        f"exited with {exit_code}.\nIts output:\n```\n{output}\n```\nFix the cause, then finish again."
    )
    if advice:
        text += f"\n\nAdvice from a senior engineer who looked at the failures:\n{advice}"
    return text


def answer(text: str) -> str:
    return f"Answer to your question:\n{text}"


def consultation(prompt: str, failures: Sequence[str]) -> str:
    history = "\n\n".join(f"## Failed round {i}\n{f}" for i, f in enumerate(failures, 1))
    return (
        f"An agent working on this task keeps failing its acceptance checks.\n\n# Task\n{prompt}\n\n"
        f"# Failures so far\n{history}\n\nFind the root cause in the workspace and give concrete advice. "
        "Finish with your advice as the summary."
    )


def _bullets(items: Sequence[str]) -> str:
    return "\n".join(f"- {i}" for i in items)
