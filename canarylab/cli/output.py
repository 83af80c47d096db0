"""Lines the headless commands (``simulate``, ``engine``) print for engine events they share."""

from __future__ import annotations

from canarylab.engine.events import AlertPosted


def alert_json(event: AlertPosted, at: float) -> dict[str, object]:
    """``{"kind": "alert", "provider", "severity", "message", ...}``: one line per alert and provider."""
    return {"kind": "alert", "time": at, "namespace": event.namespace, "name": event.name,
            "provider": event.provider, "type": event.provider_type, "severity": event.severity,
            "message": event.message, "sent": event.sent, "error": event.error}


def alert_text(event: AlertPosted) -> str:
    """``alert <severity> <name>.<ns> -> <provider> (<type>): <message>`` and what became of it."""
    outcome = "sent" if event.sent else (f"not sent: {event.error}" if event.error else
                                         "not sent (--send-alerts sends it)")
    via = f" ({event.provider_type})" if event.provider_type else ""
    return f"alert {event.severity} {event.key} -> {event.provider}{via}: {event.message} [{outcome}]"
