"""Reading a file a user hands omoi (a plan, a script): only a regular file, of bounded size, as
UTF-8 text, parsed without letting its nesting exhaust the stack. `/dev/zero`, a FIFO or a 20,000
deep list would otherwise fill memory, hang the CLI or crash it with a traceback."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import yaml

MAX_INPUT = 16 * 1024 * 1024  # bytes of a plan or a script
MAX_DEPTH = 100  # nesting of mappings and lists


class InputFileError(ValueError):
    """What is wrong with the file, in words to put after its name."""


def read_text(path: str | Path, limit: int = MAX_INPUT) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputFileError(f"cannot read it: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputFileError("cannot read it: not a regular file (a device, a FIFO or a directory)")
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputFileError(f"cannot read it: larger than {limit // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(f"cannot read it: not UTF-8 text (byte {exc.start})") from exc


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML where a key given twice in one mapping is an error, not 'the last one wins'."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"key '{key}' is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse(text: str, *, is_json: bool = False) -> Any:
    """JSON or YAML (duplicate keys refused), at most MAX_DEPTH deep; InputFileError says why not."""
    _check_depth(text)
    try:
        if is_json:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputFileError(f"not valid {'JSON' if is_json else 'YAML'}: {exc}") from exc
    except RecursionError as exc:
        raise InputFileError(f"nested more than {MAX_DEPTH} levels deep") from exc


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InputFileError(f"not valid JSON: key '{key}' is given twice")
        out[key] = value
    return out


def _check_depth(text: str) -> None:
    """Refuse deep nesting before a parser recurses into it: brackets and indentation both count,
    an over-count only for text no plan has (a deep structure spelled inside a string)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    indents = {len(line) - len(line.lstrip(" ")) for line in text.splitlines() if line.strip()}
    if deepest > MAX_DEPTH or len(indents) > MAX_DEPTH:
        raise InputFileError(f"nested more than {MAX_DEPTH} levels deep")
