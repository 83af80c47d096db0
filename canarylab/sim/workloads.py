"""How simulated apps answer: latency profiles, error ratios, faults, and podinfo's HTTP answers.

A pod answers with the behaviour of its image (healthy by default) changed by the fault injected into its
Deployment, if any. Latency is a uniform distribution between two bounds: it makes the histogram buckets
and the P99 exact and deterministic, which is what a lab for learning wants.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

HEALTHY_LATENCY_MS = (5.0, 30.0)
"""A healthy podinfo answers in 5-30 ms (uniform): P99 about 29 ms."""


@dataclass(frozen=True)
class LatencyProfile:
    """Response latency, uniform between ``low_ms`` and ``high_ms``."""

    low_ms: float
    high_ms: float

    def cdf(self, bound_ms: float) -> float:
        """Share of responses that take at most ``bound_ms``."""
        if bound_ms >= self.high_ms:
            return 1.0
        if bound_ms < self.low_ms:
            return 0.0
        width = self.high_ms - self.low_ms
        return 1.0 if width <= 0 else (bound_ms - self.low_ms) / width

    def shifted(self, extra_ms: float) -> LatencyProfile:
        """The same spread, ``extra_ms`` slower."""
        return LatencyProfile(self.low_ms + extra_ms, self.high_ms + extra_ms)

    @property
    def mean_ms(self) -> float:
        return (self.low_ms + self.high_ms) / 2


@dataclass(frozen=True)
class Fault:
    """An injected fault on a Deployment's pods.

    ``error_rate`` is the share of requests answered 500, ``latency_ms`` is added to every response, and
    ``never_ready`` keeps pods that are not ready yet from ever becoming ready (the progress-deadline case).
    """

    error_rate: float = 0.0
    latency_ms: float = 0.0
    never_ready: bool = False


@dataclass(frozen=True)
class Behaviour:
    """How one pod answers right now."""

    error_rate: float
    latency: LatencyProfile


HEALTHY = Behaviour(0.0, LatencyProfile(*HEALTHY_LATENCY_MS))


def behaviour(fault: Fault | None) -> Behaviour:
    """The behaviour of a podinfo pod under ``fault`` (healthy without one)."""
    if fault is None:
        return HEALTHY
    return Behaviour(min(1.0, max(0.0, fault.error_rate)), HEALTHY.latency.shifted(max(0.0, fault.latency_ms)))


FAULT_PRESETS: dict[str, tuple[float, float]] = {
    "errors": (0.3, 0.0),
    "slow": (0.0, 600.0),
    "errors+slow": (0.3, 600.0),
    "outage": (1.0, 0.0),
}
"""Faults the dashboard offers by name: ``(error_rate, latency_ms)``."""


# ------------------------------------------------------------------------------------------ apps

APP_PODINFO = "podinfo"
APP_LOADTESTER = "loadtester"
APP_GENERIC = "generic"


def app_of_image(image: str) -> str:
    """Which simulated app a container image runs (podinfo, the Flagger loadtester, or a generic HTTP app)."""
    repo = image.rsplit("@", 1)[0]
    name = repo.rsplit("/", 1)[-1].split(":", 1)[0]
    if "loadtester" in name:
        return APP_LOADTESTER
    if "podinfo" in name:
        return APP_PODINFO
    return APP_GENERIC


def image_version(image: str) -> str:
    """The tag of an image (``3.1.1`` for ``stefanprodan/podinfo:3.1.1``), ``latest`` without one."""
    repo = image.rsplit("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


@dataclass(frozen=True)
class HttpAnswer:
    """A simulated HTTP response."""

    status: int
    body: str


def podinfo_answer(method: str, path: str, body: str, *, pod: str, image: str, failed: bool) -> HttpAnswer:
    """What podinfo (stefanprodan/podinfo) answers to ``method path``; ``failed`` = the fault hit this one."""
    if failed:
        return HttpAnswer(500, '{"code": 500, "message": "Internal Server Error"}\n')
    version = image_version(image)
    path = path.split("?", 1)[0] or "/"
    if path in ("/", "/api/info"):
        return HttpAnswer(200, json.dumps({
            "hostname": pod, "version": version, "revision": "", "color": "#34577c",
            "logo": "https://raw.githubusercontent.com/stefanprodan/podinfo/gh-pages/cuddle_clap.gif",
            "message": f"greetings from podinfo v{version}", "goos": "linux", "goarch": "amd64",
            "runtime": "go1.13.1", "num_goroutine": "8", "num_cpu": "2",
        }, indent=2) + "\n")  # fmt: skip
    if path == "/token":
        if method != "POST":
            return HttpAnswer(405, "")  # podinfo routes /token for POST only
        return HttpAnswer(200, json.dumps({
            "token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyIjoiYW5vbnltb3VzIn0.c2ltdWxhdGVk",
            "expires_at": "2030-01-01T00:00:00Z",
        }, indent=2) + "\n")  # fmt: skip
    if path in ("/healthz", "/readyz"):
        return HttpAnswer(200, '{\n  "status": "OK"\n}\n')
    if path == "/version":
        return HttpAnswer(200, json.dumps({"commit": "", "version": version}, indent=2) + "\n")
    if path.startswith("/status/"):
        code_text = path.removeprefix("/status/")
        if code_text.isdigit() and 100 <= int(code_text) <= 599:
            return HttpAnswer(int(code_text), json.dumps({"status": code_text}, indent=2) + "\n")
    if path == "/echo" and method in ("POST", "PUT"):
        return HttpAnswer(202, body)
    if path in ("/env", "/headers", "/configs") or path.startswith("/delay/"):
        return HttpAnswer(200, "{}\n")
    return HttpAnswer(404, "404 page not found\n")
