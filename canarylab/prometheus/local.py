"""A real Prometheus on 127.0.0.1 for the simulated lab and the tests: the ``prometheus`` binary found on PATH.

It gets a free port, a temporary TSDB and a generated config that scrapes the given ``host:port`` targets
every second on ``/metrics``. :meth:`LocalPrometheus.stop` and :meth:`LocalPrometheus.start` keep the port
and the data, so a test can take Prometheus away mid-run and bring it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from canarylab.errors import UserError

READY_TIMEOUT = 30.0
"""Seconds to wait for ``/-/ready`` (it takes about one on an idle machine)."""

STOP_TIMEOUT = 5.0
"""Seconds to wait after SIGTERM, then again after SIGKILL."""

MISSING_BINARY = (
    "the prometheus binary is not on PATH: install the Debian package prometheus "
    "(apt-get install prometheus), or pass --prometheus URL to use a running Prometheus"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_target(target: str) -> str:
    """``host:port`` as Prometheus's ``static_configs`` wants it; a UserError naming the value otherwise."""
    host, sep, port = target.rpartition(":")
    if not sep or not host or "/" in target or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"scrape target {target!r} is not host:port (e.g. 127.0.0.1:9102)")
    return target


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the child when we die, so a killed test run leaves no Prometheus behind."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class LocalPrometheus:
    """Starts and stops the ``prometheus`` binary on a free 127.0.0.1 port; an async context manager.

    ``async with LocalPrometheus(["127.0.0.1:9102"]) as prom:`` gives a ready server at ``prom.url``; on exit
    it is stopped (SIGTERM, then SIGKILL, both bounded) and its temporary directory removed.
    """

    def __init__(self, scrape_targets: list[str], *, binary: str = "prometheus", port: int | None = None) -> None:
        self.scrape_targets = [check_target(t) for t in scrape_targets]
        self.binary = binary
        self.port = port
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (set once started; the port stays the same across restarts)."""
        if self.port is None:
            raise RuntimeError("LocalPrometheus has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """Prometheus's own log (stdout and stderr)."""
        if self.workdir is None:
            raise RuntimeError("LocalPrometheus has not been started")
        return self.workdir / "prometheus.log"

    async def __aenter__(self) -> LocalPrometheus:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _write_config(self, workdir: Path) -> Path:
        config = {  # JSON is YAML: no need for a YAML writer
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "canarylab",
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": self.scrape_targets}],
                }
            ],
        }
        path = workdir / "prometheus.yml"
        path.write_text(json.dumps(config, indent=2))
        return path

    async def start(self) -> None:
        """Start the binary (again, on the same port and data after :meth:`stop`) and wait until it is ready."""
        if self.running:
            return
        binary = shutil.which(self.binary)
        if binary is None:
            raise UserError(MISSING_BINARY)
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="canarylab-prometheus-"))
        if self.port is None:
            self.port = free_port()
        config = self._write_config(self.workdir)
        # A file, not a pipe: nobody has to drain it. The child keeps its own descriptor after we close ours.
        with open(self.log_path, "ab") as log:
            self._proc = self._spawn(binary, config, log)
        await self._wait_ready()

    def _spawn(self, binary: str, config: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        return subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1d",
            ],
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal is ours to handle; we stop it in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    await self.stop()
                    raise UserError(
                        f"prometheus exited with code {code} before it was ready on {self.url}; "
                        f"its last log lines:\n{self.last_log_lines()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise UserError(
                        f"prometheus did not become ready on {self.url} within {READY_TIMEOUT:g}s; "
                        f"its last log lines:\n{self.last_log_lines()}"
                    )
                await asyncio.sleep(0.1)

    def last_log_lines(self, count: int = 10) -> str:
        """The end of Prometheus's log, for error messages."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, RuntimeError):
            return "(no log)"
        return "\n".join(lines[-count:]) or "(empty log)"

    async def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL), keeping the port and the data for :meth:`start`."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            if await _wait(proc, STOP_TIMEOUT) is None:
                proc.kill()
                await _wait(proc, STOP_TIMEOUT)

    async def close(self) -> None:
        """Stop the process and remove its temporary directory (the TSDB)."""
        await self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None


async def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """The exit code, or ``None`` after ``timeout`` real seconds (a thread: works on any event loop)."""
    try:
        return await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        return None


def prometheus_available(binary: str = "prometheus") -> bool:
    """Whether the binary is on PATH."""
    return shutil.which(binary) is not None


__all__ = ["MISSING_BINARY", "LocalPrometheus", "check_target", "free_port", "prometheus_available"]
