"""A scripted webhook receiver on 127.0.0.1: records every call and answers as the scenario says.

URLs are ``http://127.0.0.1:<port>/<namespace>/<hook>``. A hook answers ``200`` by default; a scenario can make
it fail (``500`` with a body) or make it a gate that answers ``403 closed`` until the harness opens it. The
Flagger run and the engine run of a scenario use different namespaces, so their calls never mix.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HookCall:
    """One POST: when, which hook, and Flagger's payload (name, namespace, phase, checksum, metadata)."""

    time: float
    hook: str
    payload: dict[str, Any]


@dataclass
class HookAnswer:
    """``status`` and ``body`` to answer; a gate answers 403 until ``open``."""

    status: int = 200
    body: str = "ok"
    gate: bool = False
    open: bool = False

    def reply(self) -> tuple[int, str]:
        if self.gate:
            return (200, "approved") if self.open else (403, "closed")
        return self.status, self.body


@dataclass
class _Namespace:
    answers: dict[str, HookAnswer] = field(default_factory=dict)
    calls: list[HookCall] = field(default_factory=list)


class ScriptedHooks:
    """The receiver. ``url(ns, hook)`` is what a Canary's webhook names."""

    def __init__(self, port: int = 0) -> None:
        self._lock = threading.Lock()
        self._spaces: dict[str, _Namespace] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="conformance-hooks", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, namespace: str, hook: str) -> str:
        return f"http://127.0.0.1:{self.port}/{namespace}/{hook}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def script(self, namespace: str, answers: dict[str, HookAnswer]) -> None:
        with self._lock:
            self._spaces[namespace] = _Namespace({k: HookAnswer(**vars(v)) for k, v in answers.items()})

    def open_gate(self, namespace: str, hook: str) -> None:
        with self._lock:
            self._spaces[namespace].answers.setdefault(hook, HookAnswer(gate=True)).open = True

    def calls(self, namespace: str) -> list[HookCall]:
        with self._lock:
            return list(self._spaces.get(namespace, _Namespace()).calls)

    def answer(self, path: str, body: bytes) -> tuple[int, str]:
        parts = path.strip("/").split("/")
        if len(parts) != 2:
            return 404, "use /<namespace>/<hook>"
        namespace, hook = parts
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {"unparsed": body.decode(errors="replace")}
        with self._lock:
            space = self._spaces.setdefault(namespace, _Namespace())
            space.calls.append(HookCall(time.time(), hook, payload if isinstance(payload, dict) else {}))
            return space.answers.get(hook, HookAnswer()).reply()


def _handler(hooks: ScriptedHooks) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, text = hooks.answer(self.path, self.rfile.read(length) if length else b"")
            body = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler
