"""Alerts: ``analysis.alerts`` and ``AlertProvider`` objects, as Flagger's ``alert()`` and ``pkg/notifier``.

At the points where Flagger alerts (initialization done, a new revision, a gate waiting, a rollback,
promotion finished, a failed promotion; see :func:`raise_alert`), every alert of the Canary whose severity
admits the message is posted to its provider: ``info`` alerts receive everything, ``warn`` receives warn
and error, ``error`` only error. A provider is an ``AlertProvider`` in the Canary's namespace (or
``providerRef.namespace``): ``type`` (slack, msteams, discord, rocket, gchat), ``address`` or a
``secretRef`` whose Secret holds ``address`` (and optionally ``token``, sent as a bearer token),
``channel`` (default ``general``), ``username`` (default ``flagger``), ``proxy``.

Payloads are Flagger's, per type (:func:`payload`); each POST has Flagger's 5 s timeout. A failed or
refused post is reported (an :class:`AlertPosted` with ``error``) and never stops the analysis. The
Canary without ``analysis.alerts`` alerts nobody (canarylab has no global notifier flags).
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from canarylab.engine.events import AlertPosted
from canarylab.engine.kinds import ALERT_PROVIDER, SECRET
from canarylab.engine.ports import ClusterError

if TYPE_CHECKING:
    from canarylab.engine.context import TickContext

Severity = Literal["info", "warn", "error"]
PROVIDER_TYPES = ("slack", "msteams", "discord", "rocket", "gchat")
POST_TIMEOUT = 5.0
"""Flagger's notifier gives each POST five seconds."""
BODY_CAP = 64 * 1024
"""How much of an error response is read (a chat endpoint's answer is a line, never megabytes)."""


@dataclass(frozen=True)
class AlertCall:
    """One alert to one provider: where, how, and the JSON body."""

    provider: str  # the AlertProvider's name.namespace
    type: str
    url: str
    payload: dict[str, Any]
    severity: Severity
    message: str
    token: str = ""
    proxy: str = ""


@runtime_checkable
class Alerts(Protocol):
    """Posts alerts; returns ``""`` when delivered, else the reason. Never raises."""

    async def post(self, call: AlertCall) -> str:
        ...


class NoAlerts:
    """Alerts are computed and reported, never sent (``simulate`` without ``--send-alerts``)."""

    sends = False

    async def post(self, call: AlertCall) -> str:
        return ""


class HttpAlerts:
    """Posts alerts with httpx: JSON body, bearer token when the Secret has one, a proxy when set."""

    sends = True

    def __init__(self, timeout: float = POST_TIMEOUT) -> None:
        self.timeout = timeout

    async def post(self, call: AlertCall) -> str:
        import httpx

        headers = {"Content-Type": "application/json"}
        if call.token:
            headers["Authorization"] = f"Bearer {call.token}"
        try:
            async with httpx.AsyncClient(proxy=call.proxy or None, timeout=self.timeout) as client, \
                    client.stream("POST", call.url, json=call.payload, headers=headers) as resp:
                if 200 <= resp.status_code < 300:
                    return ""
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) >= BODY_CAP:
                        break
                text = body[:BODY_CAP].decode(errors="replace").strip()
                return f"sending notification bad response {resp.status_code}: {text}"
        except httpx.TimeoutException:
            return f"sending notification failed to send: no answer within {self.timeout:g}s"
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as err:
            return f"sending notification failed to send: {_reason(err)}"


def _reason(err: BaseException) -> str:
    """The innermost OS reason (``Connection refused``), else the error's own text."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return os.strerror(seen.errno) if seen.errno else str(seen.strerror)
        seen = seen.__cause__ or seen.__context__
    return str(err) or type(err).__name__


# ------------------------------------------------------------------------------------------- payloads


def payload(type: str, workload: str, namespace: str, message: str, fields: list[tuple[str, str]],
            severity: str, *, username: str = "flagger", channel: str = "general") -> dict[str, Any]:
    """The JSON Flagger's notifier of ``type`` posts (``pkg/notifier/<type>.go``)."""
    subject = f"{workload}.{namespace}"
    if type in ("slack", "discord", "rocket"):
        if type == "rocket":
            color = "#FF0000" if severity == "error" else "#0076D7"
        else:
            color = "danger" if severity == "error" else "good"
        return {"channel": channel, "username": username, "icon_url": "", "icon_emoji": ":rocket:",
                "attachments": [{"color": color, "author_name": subject, "text": message, "mrkdwn_in": ["text"],
                                 "fields": [{"title": n, "value": v, "short": False} for n, v in fields]}]}
    if type == "msteams":
        return {"@type": "MessageCard", "@context": "http://schema.org/extensions",
                "themeColor": "FF0000" if severity == "error" else "0076D7", "summary": subject,
                "sections": [{"activityTitle": message, "activitySubtitle": subject,
                              "facts": [{"name": n, "value": v} for n, v in fields]}]}
    if type == "gchat":
        sections = [{"widgets": [{"textParagraph": {
            "text": f"<font color=#848484><strong>{message}</strong></font>"}}]}]
        sections += [{"widgets": [{"textParagraph": {
            "text": f"{n}<br><font color=#848484><strong>{v}</strong></font>"}}]} for n, v in fields]
        return {"cards": [{"header": {"title": "Flagger", "subtitle": subject,
                                      "imageUrl": "https://flagger.app/favicon.png"},
                           "sections": sections}]}
    raise ValueError(f"provider {type} not supported")


def hook_url(type: str, address: str) -> str:
    """Discord's Slack-compatible endpoint is the hook URL plus ``/slack`` (Flagger appends it)."""
    if type != "discord" or address.endswith("/slack"):
        return address
    parts = urlsplit(address)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/slack"))


def metadata_fields(ctx: TickContext) -> list[tuple[str, str]]:
    """``alertMetadata``: target, threshold, progress deadline, traffic routing."""
    c = ctx.canary
    a = c.analysis
    fields = [("Target", f"{c.spec.target_ref.kind}/{c.target}.{c.namespace}"),
              ("Failed checks threshold", str(c.threshold)),
              ("Progress deadline", f"{c.progress_deadline_seconds}s")]
    if c.strategy == "ab-testing":
        fields.append(("Traffic routing", "A/B Testing"))
    elif c.strategy == "blue-green":
        fields.append(("Traffic routing", "Blue/Green"))
    elif a.step_weight > 0:
        fields.append(("Traffic routing", f"Weight step: {a.step_weight} max: {a.max_weight}"))
    elif a.step_weights:
        fields.append(("Traffic routing", f"Weight steps: {','.join(map(str, a.step_weights))} max: {a.max_weight}"))
    return fields


def admits(alert_severity: str, severity: Severity) -> bool:
    """An ``info`` alert gets everything; ``warn`` gets warn and error; ``error`` only error."""
    wanted = alert_severity or "info"
    return wanted == "info" or wanted == severity or (severity == "error" and wanted == "warn")


# ------------------------------------------------------------------------------------------- raising


async def raise_alert(ctx: TickContext, message: str, severity: Severity, *, metadata: bool = False) -> None:
    """Post ``message`` to every provider of the Canary's alerts that admits ``severity``."""
    c = ctx.canary
    alerts = c.analysis.alerts
    if not alerts:
        return
    fields = metadata_fields(ctx) if metadata else []
    for alert in alerts:
        if not admits(alert.severity, severity):
            continue
        ref = alert.provider_ref
        namespace = ref.namespace or c.namespace
        where = f"{ref.name}.{namespace}"
        call, problem = await _resolve(ctx, where, ref.name, namespace, message, fields, severity)
        if call is None:
            _posted(ctx, where, "", severity, message, sent=False, error=problem)
            continue
        error = await ctx.alerts.post(call)
        _posted(ctx, where, call.type, severity, message, sent=getattr(ctx.alerts, "sends", True) and not error,
                error=error)


async def _resolve(ctx: TickContext, where: str, name: str, namespace: str, message: str,
                   fields: list[tuple[str, str]], severity: Severity) -> tuple[AlertCall | None, str]:
    try:
        provider = await ctx.cluster.get(ALERT_PROVIDER, namespace, name)
    except ClusterError as err:
        return None, f"alert provider {where} error: {err}"
    if provider is None:
        return None, f'alert provider {where} error: alertprovider.flagger.app "{name}" not found'
    raw_spec = provider.get("spec")
    spec: dict[str, Any] = raw_spec if isinstance(raw_spec, dict) else {}
    type = str(spec.get("type") or "")
    url, token = str(spec.get("address") or ""), ""
    secret_ref = spec.get("secretRef")
    if isinstance(secret_ref, dict) and secret_ref.get("name"):
        secret_name = str(secret_ref["name"])
        try:
            secret = await ctx.cluster.get(SECRET, namespace, secret_name)
        except ClusterError as err:
            return None, f"alert provider {where} secretRef error: {err}"
        if secret is None:
            return None, f'alert provider {where} secretRef error: secrets "{secret_name}" not found'
        raw_data = secret.get("data")
        data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
        address = _secret_value(data, "address")
        if address is None:
            return None, f"alert provider {where} secret does not contain an address"
        url, token = address, _secret_value(data, "token") or ""
    if not url:
        return None, ""  # Flagger's NopNotifier: nothing to post to, nothing to report
    if type not in PROVIDER_TYPES:
        return None, f"alert provider {where} error: provider {type} not supported"
    body = payload(type, ctx.canary.name, ctx.canary.namespace, message, fields, severity,
                   username=str(spec.get("username") or "flagger"), channel=str(spec.get("channel") or "general"))
    return AlertCall(provider=where, type=type, url=hook_url(type, url), payload=body, severity=severity,
                     message=message, token=token, proxy=str(spec.get("proxy") or "")), ""


def _secret_value(data: dict[str, Any], key: str) -> str | None:
    raw = data.get(key)
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def _posted(ctx: TickContext, provider: str, type: str, severity: Severity, message: str, *, sent: bool,
            error: str) -> None:
    c = ctx.canary
    ctx.emit(AlertPosted(time=ctx.now(), namespace=c.namespace, name=c.name, provider=provider,
                         provider_type=type, severity=severity, message=message, sent=sent, error=error))
    if error:
        ctx.notice(f"alert not sent: {error}", "warning")
