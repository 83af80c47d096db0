"""Bounded reads of HTTP answers: a Prometheus, a webhook or any endpoint can answer 50 MB, canarylab reads
at most a cap and says so (issue 14: a 50 MB Prometheus answer took the process to ~500 MB)."""

from __future__ import annotations

import httpx

PROMETHEUS_BODY_CAP = 8 * 1024 * 1024
"""Largest Prometheus answer read (decoded). A canary check's instant vector is a few hundred bytes."""

WEBHOOK_BODY_CAP = 1024 * 1024
"""Largest webhook answer read (decoded). Flagger only looks at the status code and a short message."""


class BodyTooLarge(Exception):
    """The answer was larger than the cap; nothing beyond the cap was read."""

    def __init__(self, cap: int, declared: int | None = None) -> None:
        self.cap = cap
        self.declared = declared
        size = f"{declared / 1_048_576:.1f} MB" if declared is not None else f"more than {megabytes(cap)}"
        super().__init__(f"the answer is {size}, over the {megabytes(cap)} canarylab reads; it stopped reading")


def megabytes(size: int) -> str:
    return f"{size / 1_048_576:g} MB"


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The body of a streamed ``response``, or :class:`BodyTooLarge` as soon as it passes ``cap`` bytes
    (decoded, so a small gzip bomb is caught as well)."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge(cap, int(declared))
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def text_of(body: bytes, response: httpx.Response) -> str:
    """``body`` decoded as the response says (UTF-8 by default), never raising."""
    return body.decode(response.charset_encoding or "utf-8", errors="replace")
