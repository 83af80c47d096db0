"""Kubernetes objects as plain JSON documents: fast deep copies, JSON merge patch, API timestamps.

Every adapter passes objects across the Cluster port as plain JSON (dicts, lists, scalars), so these few
helpers serve the engine, the in-memory cluster and the simulator alike.
"""

from __future__ import annotations

import marshal
from datetime import UTC, datetime
from typing import Any

__all__ = ["copy_json", "merge_patch", "rfc3339", "type_name"]

def copy_json(value: Any) -> Any:
    """A deep copy of plain JSON data (dicts, lists, scalars); many times faster than ``copy.deepcopy``."""
    try:
        # marshal round-trips exactly the builtin JSON types, in C; anything else falls back below
        return marshal.loads(marshal.dumps(value))
    except ValueError:
        return _copy_slow(value)


def _copy_slow(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_slow(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_slow(v) for v in value]
    if isinstance(value, tuple):
        return [_copy_slow(v) for v in value]
    return value


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``None`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        # scalars are immutable: only containers need a copy (this runs for every leaf of every patch)
        return patch if isinstance(patch, str | int | float) else copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, str | int | float):
            result[key] = value  # a scalar leaf, the common case: no call, no copy
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_last_stamp: tuple[int, str] = (-1, "")


def rfc3339(seconds: float) -> str:
    """A Kubernetes timestamp (``2026-01-02T03:04:05Z``) for seconds since the epoch."""
    global _last_stamp
    whole = int(seconds // 1)
    if _last_stamp[0] != whole:  # many writes share a second: format each second once
        _last_stamp = (whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_stamp[1]


def type_name(value: object) -> str:
    """JSON's name for a value's type, as the API server's validation messages say it."""
    names = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)
