"""HttpWebhooks speaks Flagger's webhook contract to a real HTTP server on 127.0.0.1 (flagger-spec 6.1)."""

from __future__ import annotations

import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canarylab.engine.ports import WebhookCall
from canarylab.engine.webhooks import HttpWebhooks


class HookServer:
    """A hook server answering each POST with the next scripted (status, body); records requests."""

    def __init__(self) -> None:
        self.script: list[tuple[int, str]] = []
        self.requests: list[tuple[str, dict, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.path, json.loads(body), self.headers.get("Content-Type", "")))
                status, text = server.script.pop(0) if len(server.script) > 1 else server.script[0]
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[HookServer]:
    s = HookServer()
    yield s
    s.close()


def hook(url: str, retries: int = 0, timeout: float = 5.0) -> WebhookCall:
    payload = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc",
               "metadata": {"cmd": "hey"}}
    return WebhookCall(name="load-test", type="rollout", url=url, payload=payload, timeout=timeout, retries=retries)


async def test_202_passes_and_the_payload_is_flaggers_json(server: HookServer) -> None:
    server.script = [(202, "accepted")]
    hooks = HttpWebhooks()
    resp = await hooks.call(hook(server.url + "/"))
    await hooks.aclose()
    assert resp.ok and resp.status == 202
    _path, body, ctype = server.requests[0]
    assert ctype == "application/json"
    assert body == {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc",
                    "metadata": {"cmd": "hey"}}


async def test_204_fails_because_only_200_to_202_succeed(server: HookServer) -> None:
    server.script = [(204, "")]
    hooks = HttpWebhooks()
    resp = await hooks.call(hook(server.url))
    await hooks.aclose()
    assert not resp.ok and resp.status == 204


async def test_4xx_is_not_retried_and_its_body_is_the_error(server: HookServer) -> None:
    server.script = [(403, "Forbidden")]
    hooks = HttpWebhooks(sleep=_no_sleep)
    resp = await hooks.call(hook(server.url + "/gate/check", retries=3))
    await hooks.aclose()
    assert not resp.ok and resp.error == "Forbidden"
    assert len(server.requests) == 1


async def test_500_then_202_passes_with_one_retry_after_1s(server: HookServer) -> None:
    server.script = [(500, "boom"), (202, "ok")]
    waits: list[float] = []
    hooks = HttpWebhooks(sleep=_recording(waits))
    resp = await hooks.call(hook(server.url, retries=1))
    await hooks.aclose()
    assert resp.ok and len(server.requests) == 2 and waits == [1.0]


async def test_5xx_exhausting_retries_gives_up_and_loses_the_body(server: HookServer) -> None:
    server.script = [(500, "boom")]
    waits: list[float] = []
    hooks = HttpWebhooks(sleep=_recording(waits))
    resp = await hooks.call(hook(server.url + "/", retries=2))
    await hooks.aclose()
    assert not resp.ok
    assert resp.error == f"POST {server.url}/ giving up after 3 attempt(s)"
    assert waits == [1.0, 2.0]


async def test_501_is_not_retried(server: HookServer) -> None:
    server.script = [(501, "not implemented")]
    hooks = HttpWebhooks(sleep=_no_sleep)
    resp = await hooks.call(hook(server.url, retries=2))
    await hooks.aclose()
    assert not resp.ok and resp.error == "not implemented" and len(server.requests) == 1


async def test_connection_refused_is_retried_then_reported() -> None:
    hooks = HttpWebhooks(sleep=_no_sleep)
    resp = await hooks.call(hook("http://127.0.0.1:9/", retries=1))
    await hooks.aclose()
    assert not resp.ok and resp.error.startswith("POST http://127.0.0.1:9/ giving up after 2 attempt(s): ")


async def _no_sleep(seconds: float) -> None:
    return None


def _recording(waits: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return sleep
