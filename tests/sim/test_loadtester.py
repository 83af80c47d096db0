"""The simulated loadtester: Flagger's gate API and tasks, with command lines parsed and never run."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Awaitable, Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import pytest

from canarylab.engine.clock import run_virtual
from canarylab.engine.ports import WebhookCall, WebhookResponse
from canarylab.sim.commands import CommandRefused, Curl, Hey, parse_command
from canarylab.sim.lab import SimLab

LOADTESTER = "http://flagger-loadtester.test/"
PAYLOAD = {"name": "podinfo", "namespace": "test", "phase": "Progressing", "checksum": "abc"}


def call(url: str, metadata: dict[str, str] | None = None, **payload: object) -> WebhookCall:
    body = {**PAYLOAD, **payload}
    if metadata is not None:
        body["metadata"] = metadata
    return WebhookCall(name="hook", type="pre-rollout", url=url, payload=body, timeout=30)


def in_seed_lab(scenario: Callable[[SimLab], Awaitable[None]]) -> None:
    """Run ``scenario`` against the seed lab once the Canary is initialized (virtual time)."""

    async def main() -> None:
        lab = SimLab()
        await lab.start()
        try:
            await asyncio.sleep(40)
            await scenario(lab)
        finally:
            await lab.stop()

    run_virtual(main())


# ------------------------------------------------------------------------------------------- parsing


def test_hey_command_lines_become_load_figures() -> None:
    hey = parse_command("hey -z 2m -q 10 -c 2 http://podinfo-canary.test:9898/")
    assert hey == Hey(url="http://podinfo-canary.test:9898/", duration=120, rps=20)
    assert parse_command("hey -z=30s -c 1 -q 5 -m POST http://x.test/").rps == 5  # type: ignore[union-attr]
    counted = parse_command("hey -n 100 -q 10 -c 2 http://x.test/")
    assert isinstance(counted, Hey) and counted.duration == 5 and counted.requests == 100


def test_curl_piped_to_grep_is_read_like_curl_reads_it() -> None:
    curl = parse_command("curl -sd 'test' http://podinfo-canary.test:9898/token | grep token")
    assert isinstance(curl, Curl)
    assert (curl.method, curl.data, curl.url, curl.silent) == ("POST", "test", "http://podinfo-canary.test:9898/token",
                                                               True)
    assert curl.grep[0].run('{"token": "x"}\n') == (0, '{"token": "x"}\n')
    assert curl.grep[0].run("nothing\n")[0] == 1


@pytest.mark.parametrize("cmd, why", [
    ("curl -s http://podinfo.test:9898/ ; rm -rf /", '";" needs a shell'),
    ("curl http://podinfo.test:9898/ && rm -rf /", '"&&" needs a shell'),
    ("curl http://podinfo.test:9898/ | sh", "curl can only be piped to grep"),
    ("curl http://podinfo.test:9898/ > /etc/passwd", '">" needs a shell'),
    ("curl $(rm -rf /)", "command substitution"),
    ("curl `rm -rf /`", "command substitution"),
    ("curl http://$HOST/", "variables"),
    ("rm -rf /", '"rm" is not a program it knows'),
    ("wrk -t2 -c10 -d30s http://podinfo.test:9898/", '"wrk" is not a program it knows'),
    ("hey http://a.test/ | grep x", "hey's output cannot be piped"),
    ("curl --upload-file /etc/passwd http://a.test/", "curl option --upload-file is not supported"),
])  # fmt: skip
def test_anything_else_is_refused_with_a_reason(cmd: str, why: str) -> None:
    with pytest.raises(CommandRefused) as refused:
        parse_command(cmd)
    message = str(refused.value)
    assert message.startswith(f'command "{cmd}" is not understood by the simulated loadtester: ')
    assert why in message and message.endswith("it runs hey and curl (optionally piped to grep)")


def test_no_shell_is_ever_started(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.setattr(os, "system", lambda *a: started.append(a))
    monkeypatch.setattr(os, "execvp", lambda *a: started.append(a))

    async def scenario(lab: SimLab) -> None:
        for cmd in ("curl -s http://podinfo.test:9898/ ; rm -rf /",
                    "curl -sd x http://podinfo.test:9898/token | grep token"):
            for kind in ("bash", "cmd"):
                await lab.webhooks.call(call(LOADTESTER, {"type": kind, "cmd": cmd}))

    in_seed_lab(scenario)
    assert started == []


# ------------------------------------------------------------------------------------------- API


def test_gates_are_closed_until_opened() -> None:
    async def scenario(lab: SimLab) -> None:
        hooks = lab.webhooks
        assert (await hooks.call(call(LOADTESTER + "healthz"))).ok
        closed = await hooks.call(call(LOADTESTER + "gate/check"))
        assert (closed.ok, closed.status, closed.error) == (False, 403, "Forbidden")
        opened = await hooks.call(call(LOADTESTER + "gate/open"))
        assert (opened.ok, opened.status) == (True, 202)
        assert (await hooks.call(call(LOADTESTER + "gate/check"))).body == "Approved"
        other = await hooks.call(call(LOADTESTER + "gate/check", name="other"))
        assert other.status == 403  # gates are per canary
        await hooks.call(call(LOADTESTER + "gate/close"))
        assert (await hooks.call(call(LOADTESTER + "gate/check"))).status == 403
        assert (await hooks.call(call(LOADTESTER + "gate/approve"))).status == 200
        assert (await hooks.call(call(LOADTESTER + "gate/halt"))).status == 403
        assert (await hooks.call(call(LOADTESTER + "rollback/check"))).status == 403
        await hooks.call(call(LOADTESTER + "rollback/open"))
        assert (await hooks.call(call(LOADTESTER + "rollback/check"))).ok
        # The scenario's `gate` step opens the gate on the loadtester
        lab.webhooks.set_gate("other", "test", True)
        assert (await hooks.call(call(LOADTESTER + "gate/check", name="other"))).ok

    in_seed_lab(scenario)


def test_hey_tasks_answer_202_run_once_while_running_and_produce_their_load() -> None:
    async def scenario(lab: SimLab) -> None:
        task = {"cmd": "hey -z 10s -q 5 -c 2 http://podinfo-primary.test:9898/"}
        before = lab.store.window("test", "podinfo-primary", lab.clock.now(), 600)
        first = await lab.webhooks.call(call(LOADTESTER, task))
        second = await lab.webhooks.call(call(LOADTESTER, task))
        assert (first.status, second.status) == (202, 202)
        assert len(lab.traffic.loads) == 1
        assert any("already running" in line for line in lab.webhooks.loadtester("test", "flagger-loadtester").log)
        other = await lab.webhooks.call(call(LOADTESTER, {"cmd": task["cmd"].replace("-q 5", "-q 0.5")}, name="b"))
        assert other.status == 202 and len(lab.traffic.loads) == 2  # another command (or canary) runs too
        start = lab.clock.now()
        await asyncio.sleep(10.5)  # the slice ending at +10s is accounted
        served = sum(e.ok + e.fail for e in lab.store.window("test", "podinfo-primary", lab.clock.now(),
                                                             lab.clock.now() - start))
        # 5 x 2 = 10 rps and 0.5 x 2 = 1 rps from hey, plus the background users (3 rps) on the apex service
        assert served == pytest.approx(10 * 10 + 1 * 10 + 3 * 10, abs=3)
        assert before  # background traffic was there already
        await asyncio.sleep(5)
        assert lab.traffic.loads == {}  # hey stopped after 10s

    in_seed_lab(scenario)


def test_bash_tasks_answer_200_when_grep_matches_and_500_otherwise() -> None:
    async def scenario(lab: SimLab) -> None:
        ok = await lab.webhooks.call(call(LOADTESTER, {
            "type": "bash", "cmd": "curl -sd 'test' http://podinfo-primary.test:9898/token | grep token"}))
        assert (ok.ok, ok.status) == (True, 200)
        loadtester = lab.webhooks.loadtester("test", "flagger-loadtester")
        code, output = await loadtester._run_sync(parse_command("curl -s http://podinfo-primary.test:9898/status/500"))
        assert code == 0 and '"status": "500"' in output
        missing = await lab.webhooks.call(call(LOADTESTER, {
            "type": "bash", "cmd": "curl -s http://podinfo-primary.test:9898/ | grep nothing-like-this"}))
        assert (missing.ok, missing.status) == (False, 500)
        assert missing.error == f"POST {LOADTESTER} giving up after 1 attempt(s)"  # as Flagger's client says
        assert missing.body.startswith(
            "command curl -s http://podinfo-primary.test:9898/ | grep nothing-like-this failed")
        down = await lab.webhooks.call(call(LOADTESTER, {
            "type": "bash", "cmd": "curl -sSf http://podinfo-canary.test:9898/token | grep token"}))
        assert down.status == 500, down.body  # the canary is scaled to zero: the mesh answers 503, curl -f fails
        assert "The requested URL returned error: 503" in down.body, down.body

    in_seed_lab(scenario)


def test_bad_task_payloads_are_refused_with_the_reason() -> None:
    async def scenario(lab: SimLab) -> None:
        hooks = lab.webhooks
        no_metadata = await hooks.call(call(LOADTESTER))
        assert (no_metadata.status, no_metadata.error) == (400, "metadata not found in payload")
        no_cmd = await hooks.call(call(LOADTESTER, {"type": "bash"}))
        assert (no_cmd.status, no_cmd.error) == (400, "cmd not found in metadata")
        helm = await hooks.call(call(LOADTESTER, {"type": "helm", "cmd": "test podinfo"}))
        assert helm.status == 400 and 'task type "helm" is not supported' in helm.error
        refused = await hooks.call(call(LOADTESTER, {"type": "cmd", "cmd": "wrk -d 1m http://podinfo.test:9898/"}))
        assert refused.status == 400
        assert refused.error.startswith('command "wrk -d 1m http://podinfo.test:9898/" is not understood')

    in_seed_lab(scenario)


# ------------------------------------------------------------------------------------------- URLs


def test_service_urls_resolve_in_every_cluster_dns_form_and_others_fail_clearly() -> None:
    async def scenario(lab: SimLab) -> None:
        for url in ("http://flagger-loadtester.test/healthz", "http://flagger-loadtester.test.svc/healthz",
                    "http://flagger-loadtester.test.svc.cluster.local:80/healthz",
                    "http://flagger-loadtester.test:80/healthz"):
            answer = await lab.webhooks.call(call(url))
            assert (answer.ok, answer.body) == (True, "OK"), url
        unknown = await lab.webhooks.call(call("http://nowhere.example.com/hook"))
        assert not unknown.ok and "no such host" in unknown.error and "127.0.0.1/localhost" in unknown.error
        wrong_port = await lab.webhooks.call(call("http://flagger-loadtester.test:8080/healthz"))
        assert not wrong_port.ok and "has ports 80" in wrong_port.error

    in_seed_lab(scenario)


def test_localhost_urls_reach_a_real_server() -> None:
    seen: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    answers: list[WebhookResponse] = []

    async def scenario(lab: SimLab) -> None:
        answers.append(await lab.webhooks.call(call(f"http://127.0.0.1:{server.server_address[1]}/hook")))

    try:
        in_seed_lab(scenario)
    finally:
        server.shutdown()
        server.server_close()
    assert answers[0].ok and answers[0].status == 202
    assert seen and seen[0]["name"] == "podinfo"
