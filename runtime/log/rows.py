"""A run's log read as stored rows: each event's seq and its JSON, not validated into a model.

`omoi events` prints a long log this way (validating 100,000 events into models cost more than
printing them); `SqliteEventStore.read` selects with the same query and validates. A row that is
not JSON or lacks an event's envelope is named with why, the way the store names the rows it
cannot parse."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pydantic_core import from_json

from omoi.runtime.errors import StoreError

ENVELOPE = ("id", "run_id", "ts", "kind")  # what every stored event has, as a string


def select(after: int, prefixes: tuple[str, ...] | None, limit: int | None) -> tuple[str, list[object]]:
    """The query for rows after `after` whose kind starts with one of `prefixes`, in seq order."""
    sql, args = "SELECT seq, body FROM events WHERE seq > ?", list[object]([after])
    if prefixes:
        sql += " AND (" + " OR ".join("substr(kind, 1, ?) = ?" for _ in prefixes) + ")"
        for p in prefixes:
            args += [len(p), p]
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return sql, args


def read_rows(
    path: Path, after: int = 0, prefixes: tuple[str, ...] | None = None
) -> tuple[list[tuple[str, dict[str, Any]]], dict[int, str]]:
    """Each row's stored JSON and its fields, read-only; and the rows that are not events, with why."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = db.execute(*select(after, prefixes, None)).fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read event log {path}: {exc}") from exc
    out: list[tuple[str, dict[str, Any]]] = []
    unreadable: dict[int, str] = {}
    for seq, body in rows:
        try:
            fields = from_json(body)
        except ValueError as exc:
            unreadable[seq] = f"not JSON: {exc}"
            continue
        missing = _missing(fields)
        if missing:
            unreadable[seq] = f"not an event: no {', '.join(missing)}"
            continue
        fields["seq"] = seq
        out.append((body, fields))
    return out, unreadable


def _missing(fields: object) -> list[str]:
    """The envelope fields a row lacks as strings; the common case written out, with no list
    built (a long log is 100k rows)."""
    if isinstance(fields, dict):
        get = fields.get
        if (
            isinstance(get("id"), str)
            and isinstance(get("run_id"), str)
            and isinstance(get("ts"), str)
            and isinstance(get("kind"), str)
        ):
            return []
        return [k for k in ENVELOPE if not isinstance(get(k), str)]
    return list(ENVELOPE)
