"""A supervising model answers through one tool call: its input, checked against a schema, or
why the reply is unusable (the tool not called, or a field wrong, named as `tool.field`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def tool_answer(tool_uses: Sequence[dict[str, Any]], tool: str, schema: type[M]) -> M | str:
    calls = [u for u in tool_uses if u.get("name") == tool]
    if not calls:
        return f"the reply did not call {tool}"
    try:
        return schema.model_validate(calls[0].get("input"))
    except ValidationError as exc:
        err = exc.errors()[0]
        return f"{tool}.{'.'.join(str(x) for x in err['loc']) or 'input'}: {err['msg']}"
