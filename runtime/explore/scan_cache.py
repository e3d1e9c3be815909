"""Python scans kept by git blob id, so exploring a repository again parses only what changed.

Parsing is most of an Explore's cost (`ast.parse` is nine tenths of it), and a file's scan is a
function of its content alone: the blob id git already has for every tracked file is the key.
Stored as JSON, never pickle: the file sits in the repository's state directory and is read by
host-side code, so it must not be able to make the host run anything. A file that does not read
back is ignored and written again."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from omoi.runtime.explore.pyparse import FileScan, Imported, Symbol

VERSION = 1  # bump when what a scan holds changes: older files are then ignored


class ScanCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._scans: dict[str, dict[str, Any]] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if data["version"] == VERSION:
                self._scans = dict(data["scans"])
        self.hits = 0

    def get(self, path: str, blob: str) -> FileScan | None:
        raw = self._scans.get(blob)
        if raw is None:
            return None
        try:
            scan = FileScan(
                path=path,
                imports=[Imported(i[0], tuple(i[1]), i[2], i[3]) for i in raw["imports"]],
                symbols=[Symbol(s[0], s[1], s[2]) for s in raw["symbols"]],
                main_guard=bool(raw["main_guard"]),
                parser=str(raw["parser"]),
                error=raw["error"],
            )
        except (KeyError, IndexError, TypeError):
            return None
        self.hits += 1
        return scan

    def save(self, scans: list[FileScan], blobs: dict[str, str]) -> None:
        """Keep the scans of the blobs tracked now (the cache never outgrows the repository)."""
        kept: dict[str, dict[str, Any]] = {}
        for s in scans:
            if s.path in blobs:
                kept[blobs[s.path]] = {
                    "imports": [dataclasses.astuple(i) for i in s.imports],
                    "symbols": [dataclasses.astuple(y) for y in s.symbols],
                    "main_guard": s.main_guard,
                    "parser": s.parser,
                    "error": s.error,
                }
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"version": VERSION, "scans": kept}), encoding="utf-8")
            tmp.replace(self.path)
