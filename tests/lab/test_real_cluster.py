"""The real lab, end to end: `up`, bump the image, promotion, rollback, `down`.

Needs Docker, internet and a few GB of memory; deselected by default. Run with `make test-cluster`
(or `.venv/bin/pytest -m cluster tests/lab/test_real_cluster.py`). The tools come from PATH or
`canarylab tools install`. Takes 15-25 minutes (image pulls, then two analyses at a 30 s interval).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import yaml

from canarylab.lab.runner import find_tool
from canarylab.lab.state import bin_dir
from canarylab.lab.steps import seed_canary

NAME = "canarylab-e2e"
CONTEXT = f"kind-{NAME}"
pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]


@pytest.fixture(autouse=True)
def cache() -> None:
    """Use the real user cache: the downloaded tools live there (overrides the isolating fixture)."""


def canarylab(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarylab.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def kubectl(*args: str, stdin: str | None = None) -> str:
    tool = find_tool("kubectl", [bin_dir()])
    assert tool, "kubectl is needed: run `canarylab tools install`"
    out = subprocess.run([str(tool), "--context", CONTEXT, *args], input=stdin, capture_output=True, text=True,
                         timeout=120, check=True)
    return out.stdout


def phase() -> str:
    return kubectl("-n", "test", "get", "canary", "podinfo", "-o", "jsonpath={.status.phase}")


def wait_for_phase(want: str, limit: float) -> None:
    deadline = time.monotonic() + limit
    seen = ""
    while time.monotonic() < deadline:
        seen = phase()
        if seen == want:
            return
        time.sleep(5)
    raise AssertionError(f"Canary phase is {seen!r} after {limit:.0f}s, wanted {want!r}")


@pytest.fixture(scope="module")
def lab() -> Iterator[None]:
    up = canarylab("up", "--name", NAME, "--router", "smi", "--no-tui")
    assert up.returncode == 0, up.stdout + up.stderr
    engine = subprocess.Popen([sys.executable, "-m", "canarylab.cli", "engine", "--context", CONTEXT],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        engine.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            engine.wait(timeout=30)
        if not os.environ.get("CANARYLAB_E2E_KEEP"):  # CANARYLAB_E2E_KEEP=1 keeps the lab for inspection
            down = canarylab("down", "--name", NAME, timeout=300)
            assert down.returncode == 0, down.stdout + down.stderr


def test_up_bump_promotion_rollback_down(lab: None) -> None:
    # the lab is up: the engine initialises the seed's Canary
    wait_for_phase("Initialized", 600)
    assert "podinfo-primary" in kubectl("-n", "test", "get", "svc", "podinfo", "-o", "jsonpath={.spec.selector.app}")
    # bump the image: the analysis promotes it
    kubectl("-n", "test", "set", "image", "deployment/podinfo", "podinfod=stefanprodan/podinfo:3.1.1")
    wait_for_phase("Succeeded", 900)
    image = kubectl("-n", "test", "get", "deployment", "podinfo-primary", "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}")
    assert image == "stefanprodan/podinfo:3.1.1"
    # make the load test hit /status/500, then change the revision: the analysis rolls back
    canary = seed_canary()
    canary["spec"]["analysis"]["threshold"] = 2
    canary["spec"]["analysis"]["webhooks"][1]["metadata"]["cmd"] = (
        "hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/status/500")
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(canary))
    kubectl("-n", "test", "set", "image", "deployment/podinfo", "podinfod=stefanprodan/podinfo:3.1.0")
    wait_for_phase("Failed", 900)
    image = kubectl("-n", "test", "get", "deployment", "podinfo-primary", "-o",
                    "jsonpath={.spec.template.spec.containers[0].image}")
    assert image == "stefanprodan/podinfo:3.1.1", "the primary kept the last good version"

