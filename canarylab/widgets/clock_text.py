"""Lab times as the dashboard prints them (UTC, like Kubernetes timestamps)."""

from __future__ import annotations

import time


def hms(seconds: float) -> str:
    """``14:05:07`` (UTC)."""
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def iso(seconds: float) -> str:
    """``2019-06-30T14:05:07Z``, as ``lastTransitionTime`` reads."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
