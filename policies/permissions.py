"""What each agent role may do: one table, read by the agent loop before every tool call.

Read-only roles see the workspace but cannot change it (no writes, no commands, which could write).
A planner writes only Markdown. Only a worker (and the merge queue's resolver) has the whole tool
set. No role has a tool that starts another agent: the runtime alone starts agents (an oracle is
consulted by the loop, not by a role)."""

from __future__ import annotations

from omoi.runtime.run.tasks import ROLES, Role

__all__ = ["ROLES", "TOOLS_BY_ROLE", "Role", "denial", "tools_for"]

READ_ONLY = frozenset({"list_files", "read_file", "search", "todo_write", "report_discovery", "finish"})
WRITE = frozenset({"write_file", "edit_file"})
ALL_TOOLS = READ_ONLY | WRITE | {"run"}
CHANGES_FILES = WRITE | {"run"}  # a turn that used one of these is checkpointed for the radar

TOOLS_BY_ROLE: dict[str, frozenset[str]] = {
    "explorer": READ_ONLY,
    "librarian": READ_ONLY,
    "reviewer": READ_ONLY,
    "oracle": READ_ONLY,
    "planner": READ_ONLY | WRITE,
    "worker": ALL_TOOLS,
    "resolver": ALL_TOOLS,  # reads, edits and runs commands: a merge conflict needs all three
}
# Roles whose writes are confined to some files: role -> (allowed suffixes, how to say it).
WRITE_SUFFIXES: dict[str, tuple[str, ...]] = {"planner": (".md", ".markdown")}


def tools_for(role: str) -> frozenset[str]:
    return TOOLS_BY_ROLE[role]


def denial(role: str, tool: str, arguments: dict[str, object]) -> str | None:
    """Why `role` may not make this call, or None when it may."""
    if tool not in ALL_TOOLS:
        return f"there is no tool '{tool}'; the tools are: {', '.join(sorted(tools_for(role)))}"
    if tool not in tools_for(role):
        return f"the {role} role may not use '{tool}' (it may use: {', '.join(sorted(tools_for(role)))})"
    suffixes = WRITE_SUFFIXES.get(role)
    if suffixes and tool in WRITE:
        path = str(arguments.get("path", ""))
        if not path.lower().endswith(suffixes):
            return f"the {role} role may only write Markdown files ({', '.join(suffixes)}), not '{path}'"
    return None
