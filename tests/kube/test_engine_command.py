"""``canarylab engine`` as a user runs it: a real process against the API server on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
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


async def test_engine_serves_flaggers_metrics_and_probes_on_metrics_addr(
        seeded: ApiServer, loadtester: object, kubeconfig: Path, tmp_path: Path) -> None:
    # Given the engine started with --metrics-addr, as a Deployment's probes and Prometheus would reach it
    port = free_port()
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test", "--json",
                       "--metrics-addr", f"127.0.0.1:{port}")
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while json.loads(await proc.stdout.readline()).get("message") != "Initialization done! podinfo.test":
                pass
        # then /healthz and /readyz answer 200 and /metrics carries Flagger's series for the initialized canary
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            body = ""
            async with asyncio.timeout(10):
                while 'flagger_canary_weight{workload="podinfo-primary",namespace="test"} 100' not in body:
                    response = await http.get("/metrics")
                    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
                    body = response.text
                    await asyncio.sleep(0.1)
            assert 'flagger_canary_status{name="podinfo",namespace="test"} 1' in body  # Initialized
            assert 'flagger_canary_total{namespace="test"} 1' in body
            assert 'flagger_info{version="' in body
            assert (await http.get("/nope")).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(15):
            await proc.wait()
    assert "Traceback" not in (await proc.stderr.read()).decode()


async def test_engine_metrics_addr_in_use_is_a_clear_error_with_exit_2(kubeconfig: Path, tmp_path: Path) -> None:
    # Given a port someone else holds
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test",
                           "--metrics-addr", f"127.0.0.1:{port}")
        async with asyncio.timeout(20):
            _, err = await proc.communicate()
    # then it refuses at once, naming the flag, the address and the fix
    text = err.decode()
    assert proc.returncode == 2, text
    assert f"--metrics-addr: cannot listen on 127.0.0.1:{port}" in text
    assert "choose a free port" in text and "Traceback" not in text


async def test_engine_metrics_addr_must_be_host_and_port(kubeconfig: Path, tmp_path: Path) -> None:
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test",
                       "--metrics-addr", "localhost:http")
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 2
    assert "--metrics-addr 'localhost:http': expected HOST:PORT or :PORT" in err.decode()


async def test_engine_metrics_server_must_be_an_http_url(kubeconfig: Path, tmp_path: Path) -> None:
    # --metrics-server is Flagger's -metrics-server: a Prometheus URL, refused before anything connects
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test",
                       "--metrics-server", "prometheus:9090")
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    text = err.decode()
    assert proc.returncode == 2, text
    assert "--metrics-server 'prometheus:9090' is not an http(s) URL" in text and "Traceback" not in text


async def test_sigterm_stops_the_engine_like_ctrl_c_with_an_interrupted_result_line(
        seeded: ApiServer, loadtester: object, kubeconfig: Path, tmp_path: Path) -> None:
    proc = await start(kubeconfig, tmp_path / "cache", "--context", "kmock", "--namespace", "test", "--json")
    assert proc.stdout is not None and proc.stderr is not None
    async with asyncio.timeout(30):
        while json.loads(await proc.stdout.readline()).get("message") != "Initialization done! podinfo.test":
            pass
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(15):
        rest = (await proc.stdout.read()).decode().splitlines()
        code = await proc.wait()
        err = (await proc.stderr.read()).decode()
    assert code == 143
    assert "Traceback" not in err
    result = json.loads(rest[-1])
    assert result["kind"] == "result" and result["interrupted"] is True and result["signal"] == "SIGTERM"
    assert [(c["namespace"], c["name"]) for c in result["canaries"]] == [("test", "podinfo")]
