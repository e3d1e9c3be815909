from __future__ import annotations

import json
from datetime import datetime

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from omoi.cli import main
from omoi.runtime.errors import EventError
from omoi.runtime.log.events import (
    EVENT_ADAPTER,
    TaskAdded,
    TaskFailed,
    TaskOutput,
    TaskStarted,
    kinds,
    parse_event,
)
from omoi.runtime.run.tasks import TaskSpec

REQUIRED = {
    "run.started",
    "run.finished",
    "task.added",
    "task.ready",
    "task.started",
    "task.succeeded",
    "task.failed",
    "task.retrying",
    "task.skipped",
    "task.cancelled",
    "task.output",
}


def test_union_has_every_required_kind() -> None:
    assert set(kinds()) >= REQUIRED


def test_event_round_trips_through_json_with_every_field() -> None:
    ev = TaskAdded(run_id="r1", task_id="a", attempt=0, spec=TaskSpec(id="a", run="true", deps=()), order=3)
    again = parse_event(ev.model_dump_json())
    assert again == ev
    assert again.ts.tzinfo is not None


def test_task_events_carry_task_id_and_attempt() -> None:
    ev = TaskFailed(run_id="r", task_id="t", attempt=2, error="boom", final=True)
    data = json.loads(ev.model_dump_json())
    assert (data["task_id"], data["attempt"], data["kind"]) == ("t", 2, "task.failed")


def test_unknown_kind_is_a_clear_error() -> None:
    with pytest.raises(EventError, match=r"task\.exploded"):
        parse_event({"kind": "task.exploded", "run_id": "r"})


def test_malformed_field_names_the_field() -> None:
    with pytest.raises(EventError, match="attempt"):
        parse_event({"kind": "task.started", "run_id": "r", "task_id": "a", "attempt": "x", "sandbox": "s"})


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError):
        TaskOutput(run_id="r", task_id="a", tail="x", ts=datetime(2026, 1, 1))


def test_events_are_frozen() -> None:
    ev = TaskStarted(run_id="r", task_id="a", attempt=1, sandbox="s")
    with pytest.raises(ValidationError):
        ev.attempt = 2  # type: ignore[misc]


def test_extra_fields_are_refused() -> None:
    with pytest.raises(EventError, match="bogus"):
        parse_event({"kind": "task.ready", "run_id": "r", "task_id": "a", "bogus": 1})


def test_schema_command_prints_the_union() -> None:
    result = CliRunner().invoke(main, ["schema", "events"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    assert schema == EVENT_ADAPTER.json_schema()
    assert set(schema["discriminator"]["mapping"]) == set(kinds())
