"""Side by side with the real Flagger: the conformance harness (``make conformance``).

Each scenario runs twice on the same real API server, the same scripted Linkerd metrics (scraped by a real
Prometheus) and the same scripted webhook answers: once under Flagger v1.44 run out of cluster, once under
``canarylab engine``. Both runs are recorded (weights from the routing object, phase, failed checks,
iterations, every Event, the webhook calls, the final objects) and compared; see :mod:`.compare`.
"""
