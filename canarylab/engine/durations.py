"""Durations as Flagger and Go write them: ``30s``, ``1m``, ``1h30m``, ``1.2s``, ``500ms``."""

from __future__ import annotations

import re

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``90s``, ``2m``, ``1m30s``, ``250ms``); ``ValueError`` if malformed."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 30s, 2m, 1m30s, 500ms")
    return total


def format_go_duration(seconds: float) -> str:
    """Format like Go's ``time.Duration.String()``: ``1.2s``, ``500ms``, ``1m30s``, ``0s``."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        ms = round(seconds * 1000, 6)
        return f"{sign}{_trim(ms)}ms"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = sign
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{_trim(round(secs, 9))}s"


def _trim(value: float) -> str:
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    return text or "0"
