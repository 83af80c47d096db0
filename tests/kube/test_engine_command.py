"""``canarylab engine`` as a user runs it: a real process against the API server on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.kube.apiserver import ApiServer, free_port, write_kubeconfig
from tests.kube.test_engine_over_http import loadtester, seeded

__all__ = ["loadtester", "seeded"]

pytestmark = pytest.mark.timeout(60)


async def start(kubeconfig: Path, cache: Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "CANARYLAB_CACHE_DIR": str(cache)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canarylab.cli", "engine", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_engine_runs_headless_until_ctrl_c(seeded: ApiServer, loadtester: object, kubeconfig: Path,
                                                 tmp_path: Path) -> None:
    # Given the seed lab behind context "kmock", when the user runs the engine on its namespace with --json
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test", "--json")
    assert proc.stdout is not None and proc.stderr is not None
    lines = []
    async with asyncio.timeout(30):
        while True:
            line = json.loads(await proc.stdout.readline())
            lines.append(line)
            if line.get("message") == "Initialization done! podinfo.test":
                break
    # then the events come as JSON lines, and Ctrl-C stops it cleanly
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(15):
        code = await proc.wait()
        err = (await proc.stderr.read()).decode()
    assert code == 130
    assert "Traceback" not in err
    assert all(line["kind"] in ("event", "notice") for line in lines)
    assert " create Deployment test/podinfo-primary" in err  # every write on its own stderr line
    assert " patch Canary test/podinfo status" in err


async def test_engine_waits_for_an_unreachable_api_server_with_a_clear_message(tmp_path: Path) -> None:
    # Given a context whose API server is down
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}", context="lab")
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "lab", "--namespace", "test")
    assert proc.stderr is not None
    # then it says what is wrong and that it retries, and keeps running
    async with asyncio.timeout(20):
        first = (await proc.stderr.readline()).decode()
    assert f"cannot reach the Kubernetes API server of context 'lab' at http://127.0.0.1:{port}" in first
    assert "connection refused" in first and "Retrying in" in first
    assert proc.returncode is None
    proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(15):
        code = await proc.wait()
        err = (await proc.stderr.read()).decode()
    assert code == 130
    assert "Traceback" not in err
