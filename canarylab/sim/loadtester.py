"""The simulated Flagger loadtester: its gate and rollback API and its tasks (flagger-spec 6.2, 6.3).

Tasks are command lines, parsed by :mod:`canarylab.sim.commands` and turned into simulated traffic:
``hey`` becomes load on the lab's network for its duration, ``curl ... | grep`` one request whose answer is
grepped. Nothing is ever run in a shell.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from canarylab.sim.commands import CommandRefused, Curl, Hey, parse_command
from canarylab.sim.workloads import HttpAnswer

TASK_TIMEOUT = 3600.0
"""The loadtester's ``-timeout`` (1h): longer tasks are stopped."""


class Network(Protocol):
    """What the loadtester needs from the lab: one request, and load over time."""

    def request(self, method: str, url: str, body: str) -> HttpAnswer | str:
        """One request through the simulated network: the answer, or a curl-style error text."""
        ...

    def start_load(self, key: str, url: str, rps: float, duration: float,
                   headers: tuple[tuple[str, str], ...] = ()) -> str | None:
        """Send ``rps`` requests per second to ``url`` (with ``headers``) for ``duration`` seconds; an error text
        if impossible."""
        ...

    def now(self) -> float:
        """Lab seconds."""
        ...


@dataclass
class RunningTask:
    """An async (``type: cmd``) task still running: identical commands are skipped until it ends."""

    cmd: str
    until: float


class Loadtester:
    """One loadtester's state: gates (closed until opened) and running tasks, keyed as Flagger keys them."""

    def __init__(self, network: Network, sleep: Callable[[float], Awaitable[None]]) -> None:
        self.network = network
        self.sleep = sleep
        self.gates: dict[str, bool] = {}
        self.rollbacks: dict[str, bool] = {}
        self.running: dict[str, RunningTask] = {}
        self.log: list[str] = []

    def set_gate(self, name: str, namespace: str, open: bool) -> None:
        """``/gate/open`` or ``/gate/close`` for one canary."""
        self.gates[f"{name}.{namespace}"] = open

    async def handle(self, method: str, path: str, body: str) -> HttpAnswer:
        """Answer one HTTP request as ``flagger-loadtester`` does."""
        path = path.split("?", 1)[0] or "/"
        if path == "/healthz":
            return HttpAnswer(200, "OK")
        if path == "/metrics":
            return HttpAnswer(200, "# loadtester metrics are not simulated\n")
        if path == "/gate/approve":
            return HttpAnswer(200, "OK")
        if path == "/gate/halt":
            return HttpAnswer(403, "Forbidden")
        if path in ("/gate/check", "/rollback/check"):
            key = _canary_key(body)
            table = self.gates if path.startswith("/gate") else self.rollbacks
            if key is not None and table.get(key, False):
                return HttpAnswer(200, "Approved")
            return HttpAnswer(403, "Forbidden")
        if path in ("/gate/open", "/gate/close", "/rollback/open", "/rollback/close"):
            key = _canary_key(body)
            if key is None:
                return HttpAnswer(400, "name and namespace are required in the payload")
            table = self.gates if path.startswith("/gate") else self.rollbacks
            table[key] = path.endswith("/open")
            return HttpAnswer(202, "Accepted")
        return await self._task(body)

    async def _task(self, body: str) -> HttpAnswer:
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return HttpAnswer(400, "payload is not JSON")
        metadata = payload.get("metadata") if isinstance(payload, dict) else None
        if not metadata:
            return HttpAnswer(400, "metadata not found in payload")
        cmd = metadata.get("cmd")
        if not cmd:
            return HttpAnswer(400, "cmd not found in metadata")
        kind = metadata.get("type") or "cmd"
        if kind not in ("cmd", "bash"):
            return HttpAnswer(400, f'task type "{kind}" is not supported by the simulated loadtester: '
                                   "it runs cmd (async) and bash (sync) tasks with hey and curl")
        try:
            parsed = parse_command(str(cmd))
        except CommandRefused as err:
            self.log.append(str(err))
            return HttpAnswer(400, str(err))
        if kind == "cmd":
            owner = f"{payload.get('name', '')}.{payload.get('namespace', '')}"
            return self._start(str(cmd), parsed, owner)
        code, output = await self._run_sync(parsed)
        if code == 0:
            output_wanted = str(metadata.get("returnCmdOutput", "")).lower() == "true"
            return HttpAnswer(200, output if output_wanted else "")
        return HttpAnswer(500, f"command {cmd} failed: {output.strip()}: exit status {code}")

    def _start(self, cmd: str, parsed: Hey | Curl, owner: str) -> HttpAnswer:
        # Flagger's runner keys tasks by canary and command: the same command for another canary runs too.
        key = f"{owner}:{cmd}"
        now = self.network.now()
        running = self.running.get(key)
        if running is not None and running.until > now:
            self.log.append(f"command skipped {cmd} is already running")
            return HttpAnswer(202, "")
        if isinstance(parsed, Hey):
            duration = min(parsed.duration, TASK_TIMEOUT)
            error = self.network.start_load(key, parsed.url, parsed.rps, duration, parsed.headers)
            if error is not None:
                self.log.append(f"command {cmd} failed: {error}")
                return HttpAnswer(202, "")  # async: the failure only shows in the loadtester's log
            self.running[key] = RunningTask(cmd, now + duration)
        else:
            self._curl(parsed)
        return HttpAnswer(202, "")

    async def _run_sync(self, parsed: Hey | Curl) -> tuple[int, str]:
        if isinstance(parsed, Hey):
            duration = min(parsed.duration, TASK_TIMEOUT)
            error = self.network.start_load(f"sync:{id(parsed)}", parsed.url, parsed.rps, duration, parsed.headers)
            if error is not None:
                return 1, error
            await self.sleep(duration)
            total = int(parsed.rps * duration)
            return 0, f"Summary:\n  Total:\t{duration:.4f} secs\n  Requests/sec:\t{parsed.rps:.4f}\n" \
                      f"Status code distribution:\n  [200]\t{total} responses\n"
        return self._curl(parsed)

    def _curl(self, curl: Curl) -> tuple[int, str]:
        """Exit code and combined output (stderr, then what the pipe prints), as ``bash -c`` reports them."""
        answer = self.network.request(curl.method, curl.url, curl.data)
        if isinstance(answer, str):
            code = 6 if "resolve host" in answer else 7
            return _pipe(code, "", f"curl: ({code}) {answer}\n" if (curl.show_error or not curl.silent) else "", curl)
        if curl.fail and answer.status >= 400:
            error = f"curl: (22) The requested URL returned error: {answer.status}\n"
            return _pipe(22, "", error if (curl.show_error or not curl.silent) else "", curl)
        output = ""
        if curl.include or curl.head:
            output += f"HTTP/1.1 {answer.status}\r\ncontent-type: application/json; charset=utf-8\r\n\r\n"
        if not curl.head and not curl.output_to_file:
            output += answer.body
        if curl.write_out:
            output += curl.write_out.replace("%{http_code}", str(answer.status)).replace("\\n", "\n")
        return _pipe(0, output, "", curl)


def _pipe(code: int, stdout: str, stderr: str, curl: Curl) -> tuple[int, str]:
    """Pipe curl's stdout through its greps; the last command's exit code wins (no pipefail)."""
    for grep in curl.grep:
        code, stdout = grep.run(stdout)
    return code, stderr + stdout


def _canary_key(body: str) -> str | None:
    try:
        payload: Any = json.loads(body) if body else {}
    except ValueError:
        return None
    if not isinstance(payload, dict) or not payload.get("name") or not payload.get("namespace"):
        return None
    return f"{payload['name']}.{payload['namespace']}"
