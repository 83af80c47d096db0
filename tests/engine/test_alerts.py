"""analysis.alerts and AlertProviders: Flagger's messages, severities and payloads, posted to a real HTTP
server on 127.0.0.1 (``pkg/controller/events.go`` alert() and ``pkg/notifier``)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from canarylab.engine.alerts import HttpAlerts
from canarylab.engine.events import AlertPosted, EngineNotice
from canarylab.engine.kinds import ALERT_PROVIDER, SECRET, Obj
from canarylab.manifests import bootstrap_documents
from tests.engine.conftest import Lab, canary, with_hooks


class ChatServer:
    """Records each POST (path, JSON body, headers); answers ``status`` (after ``delays[path]`` seconds)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any, dict[str, str]]] = []
        self.status, self.reply = 200, "ok"
        self.delays: dict[str, float] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append((self.path, json.loads(body), dict(self.headers)))
                time.sleep(server.delays.get(self.path, 0.0))
                data = server.reply.encode()
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def bodies(self, path: str) -> list[Any]:
        return [body for p, body, _ in self.requests if p == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    server = ChatServer()
    yield server
    server.close()


def provider(name: str, type: str, address: str | None = None, **spec: Any) -> Obj:
    body = {"type": type, **spec}
    if address is not None:
        body["address"] = address
    return ALERT_PROVIDER.new("test", name, spec=body)


def alert(name: str, severity: str, ref: str) -> dict[str, Any]:
    return {"name": name, "severity": severity, "providerRef": {"name": ref}}


def alerting_lab(canary_obj: Obj, *providers: Obj, timeout: float = 5.0) -> Lab:
    lab = Lab(canary_obj, extra=list(providers))
    lab.engine.alerts = HttpAlerts(timeout=timeout)
    return lab



INFO_MESSAGES = ["New Deployment detected, initialization completed.",
                 "New revision detected, progressing canary analysis.",
                 "Canary analysis completed successfully, promotion finished."]
METADATA = [{"title": "Target", "value": "Deployment/podinfo.test", "short": False},
            {"title": "Failed checks threshold", "value": "5", "short": False},
            {"title": "Progress deadline", "value": "600s", "short": False},
            {"title": "Traffic routing", "value": "Weight step: 10 max: 50", "short": False}]


async def test_an_info_alert_gets_flaggers_messages_as_a_slack_payload_with_the_secrets_token(
        chat: ChatServer) -> None:
    # Given a Slack provider whose address and token come from a Secret, as Flagger reads them
    secret = SECRET.new("test", "slack-url", data={
        "address": base64.b64encode(f"{chat.url}/slack-hook".encode()).decode(),
        "token": base64.b64encode(b"xoxb-secret").decode()})
    slack = provider("slack", "slack", channel="deploys", username="canary-bot", secretRef={"name": "slack-url"})
    lab = alerting_lab(canary(alerts=[alert("team", "info", "slack")]), slack, secret)
    # when a healthy canary runs to promotion
    await lab.ship_to_the_end()
    assert lab.phase == "Succeeded"
    # then the three info messages were posted, in order, with Flagger's Slack body
    bodies = chat.bodies("/slack-hook")
    assert [b["attachments"][0]["text"] for b in bodies] == INFO_MESSAGES
    first = bodies[0]
    assert (first["channel"], first["username"], first["icon_emoji"]) == ("deploys", "canary-bot", ":rocket:")
    assert first["attachments"][0]["author_name"] == "podinfo.test"
    assert first["attachments"][0]["color"] == "good"
    assert first["attachments"][0]["fields"] == METADATA  # initialization and new revision carry the metadata
    assert bodies[2]["attachments"][0]["fields"] == []  # promotion does not
    _, _, headers = chat.requests[0]
    assert headers["Authorization"] == "Bearer xoxb-secret"
    assert headers["Content-Type"] == "application/json"
    posted = lab.of(AlertPosted)
    assert [(p.provider, p.provider_type, p.severity, p.sent, p.error) for p in posted] == \
        [("slack.test", "slack", "info", True, "")] * 3


async def test_severities_filter_as_flagger_does_and_each_type_has_its_own_body(chat: ChatServer) -> None:
    # Given error, warn and info alerts on three providers, and a canary whose checks fail
    providers = [provider("pager", "msteams", f"{chat.url}/teams"),
                 provider("ops", "discord", f"{chat.url}/discord"),
                 provider("room", "gchat", f"{chat.url}/gchat"),
                 provider("rocket", "rocket", f"{chat.url}/rocket", channel="releases")]
    obj = canary(threshold=2, alerts=[alert("pager", "error", "pager"), alert("ops", "warn", "ops"),
                                      alert("room", "info", "room"), alert("rocket", "", "rocket")])
    lab = alerting_lab(obj, *providers)
    lab.metrics.set("request-success-rate", 50.0)
    await lab.ship_to_the_end()
    assert lab.phase == "Failed"
    # then error reaches error, warn and info alerts; info messages only the info ones ("" means info)
    teams = chat.bodies("/teams")
    assert [b["sections"][0]["activityTitle"] for b in teams] == ["Failed checks threshold reached 2"]
    assert teams[0]["@type"] == "MessageCard" and teams[0]["themeColor"] == "FF0000"
    assert teams[0]["summary"] == teams[0]["sections"][0]["activitySubtitle"] == "podinfo.test"
    discord = chat.bodies("/discord/slack")  # Discord's Slack-compatible endpoint
    assert [b["attachments"][0]["text"] for b in discord] == ["Failed checks threshold reached 2"]
    assert discord[0]["attachments"][0]["color"] == "danger"
    gchat = chat.bodies("/gchat")
    assert [b["cards"][0]["sections"][0]["widgets"][0]["textParagraph"]["text"] for b in gchat] == [
        "<font color=#848484><strong>New Deployment detected, initialization completed.</strong></font>",
        "<font color=#848484><strong>New revision detected, progressing canary analysis.</strong></font>",
        "<font color=#848484><strong>Failed checks threshold reached 2</strong></font>"]
    assert gchat[0]["cards"][0]["header"]["title"] == "Flagger"
    assert gchat[0]["cards"][0]["sections"][1]["widgets"][0]["textParagraph"]["text"] == \
        "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>"
    rocket = chat.bodies("/rocket")
    assert rocket[-1]["attachments"][0]["color"] == "#FF0000" and rocket[0]["attachments"][0]["color"] == "#0076D7"
    assert rocket[0]["channel"] == "releases" and rocket[0]["username"] == "flagger"


async def test_gate_alerts_are_warnings_and_muted_hooks_stay_quiet(chat: ChatServer) -> None:
    # Given a closed confirm-rollout gate, and a closed confirm-promotion gate with muteAlert
    hooks = [{"name": "gate", "type": "confirm-rollout", "url": "http://gate.test/"},
             {"name": "quiet", "type": "confirm-promotion", "url": "http://quiet.test/", "muteAlert": True}]
    lab = alerting_lab(with_hooks(*hooks, alerts=[alert("ops", "warn", "ops")]),
                       provider("ops", "slack", f"{chat.url}/ops"))
    lab.webhooks.set("gate", 403)
    lab.webhooks.set("quiet", 403)
    chat.status, chat.reply = 403, "invalid_token"  # and the chat refuses the first post
    await lab.initialized()
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    await lab.tick(3)
    assert lab.phase == "Waiting"
    # then one warning when the canary starts waiting (not one per tick); the refusal is reported, not fatal
    assert [b["attachments"][0]["text"] for b in chat.bodies("/ops")] == ["Canary is waiting for approval."]
    refused = lab.of(AlertPosted)
    assert [(p.sent, p.error) for p in refused] == [(False, "sending notification bad response 403: invalid_token")]
    # when the rollout gate opens, the canary runs to the muted promotion gate: no further alert
    chat.status = 200
    lab.webhooks.set("gate", 200)
    for _ in range(20):
        await lab.tick()
        if lab.phase == "WaitingPromotion":
            break
    assert lab.phase == "WaitingPromotion"
    assert len(chat.bodies("/ops")) == 1


async def test_a_failing_or_slow_provider_is_reported_and_never_stops_the_analysis(chat: ChatServer) -> None:
    # Given a provider that answers 500, one that never answers in time, and one that does not exist
    obj = canary(alerts=[alert("broken", "info", "broken"), alert("slow", "info", "slow"),
                         alert("gone", "info", "missing"), alert("odd", "info", "odd")])
    lab = alerting_lab(obj, provider("broken", "slack", f"{chat.url}/broken"),
                       provider("slow", "msteams", f"{chat.url}/slow"),
                       provider("odd", "pagerduty", f"{chat.url}/odd"), timeout=0.3)
    chat.status, chat.reply, chat.delays["/slow"] = 500, "boom", 1.0
    await lab.ship_to_the_end()
    # then the canary is promoted all the same, and every failure says why
    assert lab.phase == "Succeeded"
    errors = {p.provider: p.error for p in lab.of(AlertPosted)}
    assert errors["broken.test"] == "sending notification bad response 500: boom"
    assert errors["slow.test"] == "sending notification failed to send: no answer within 0.3s"
    assert errors["missing.test"] == 'alert provider missing.test error: alertprovider.flagger.app "missing" not found'
    assert errors["odd.test"] == "alert provider odd.test error: provider pagerduty not supported"
    assert not chat.bodies("/odd")
    assert any(n.message.startswith("alert not sent: ") for n in lab.of(EngineNotice))


def write_lab(tmp_path: Path, url: str) -> Path:
    seed = next(d for d in bootstrap_documents("workloads", "podinfo-canary.yaml") if d and d["kind"] == "Canary")
    seed["spec"]["analysis"]["alerts"] = [alert("team", "info", "team")]
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump_all([seed, provider("team", "slack", f"{url}/team")]))
    return path


def simulate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canarylab.cli", "simulate", "--json", *args],
                          capture_output=True, text=True, timeout=120)


def test_simulate_prints_alerts_and_sends_them_only_with_send_alerts(chat: ChatServer, tmp_path: Path) -> None:
    lab_file = write_lab(tmp_path, chat.url)
    # Given the seed Canary with an info alert: without --send-alerts nothing leaves the machine
    quiet = simulate("-f", str(lab_file))
    assert quiet.returncode == 0, quiet.stderr
    alerts = [json.loads(line) for line in quiet.stdout.splitlines() if '"kind": "alert"' in line]
    assert [a["message"] for a in alerts] == INFO_MESSAGES
    assert {(a["provider"], a["type"], a["severity"], a["sent"], a["error"]) for a in alerts} == \
        {("team.test", "slack", "info", False, "")}
    assert chat.requests == []
    # with --send-alerts they are posted
    loud = simulate("--send-alerts", "-f", str(lab_file))
    assert loud.returncode == 0, loud.stderr
    assert [b["attachments"][0]["text"] for b in chat.bodies("/team")] == INFO_MESSAGES
    assert all(json.loads(line)["sent"] for line in loud.stdout.splitlines() if '"kind": "alert"' in line)
