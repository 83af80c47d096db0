"""Flagger's own metrics (flagger_canary_*) from the engine's events, in Flagger's exposition."""

from __future__ import annotations

import re

from canarylab.engine.flagger_metrics import FlaggerMetrics
from tests.engine.conftest import Lab, canary

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def samples(text: str) -> dict[str, float]:
    """``name{k="v",...}`` (labels sorted) to value; fails on any line that is not valid exposition."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = ",".join(sorted((m["labels"] or "").split(","))) if m["labels"] else ""
        out[f"{m['name']}{{{labels}}}" if labels else m["name"]] = float(m["value"])
    return out


def recorder(lab: Lab) -> FlaggerMetrics:
    metrics = FlaggerMetrics(lab.engine.facts, version="0.1.0", mesh_provider="linkerd")
    lab.engine.subscribe(metrics.record)
    return metrics



async def test_a_promotion_is_counted_with_flaggers_names_and_labels() -> None:
    # Given the engine with Flagger's recorder subscribed
    lab = Lab()
    metrics = recorder(lab)
    # when a healthy canary runs to promotion
    await lab.ship_to_the_end()
    assert lab.phase == "Succeeded"
    got = samples(metrics.exposition())
    # then the series Flagger's dashboards read are there, with the target's name as `name`
    assert got['flagger_info{mesh_provider="linkerd",version="0.1.0"}'] == 1
    assert got['flagger_canary_total{namespace="test"}'] == 1
    assert got['flagger_canary_status{name="podinfo",namespace="test"}'] == 1  # successful
    assert got['flagger_canary_successes_total{analysis_status="completed",deployment_strategy="canary",'
               'name="podinfo",namespace="test"}'] == 1
    assert not any(k.startswith("flagger_canary_failures_total") for k in got)
    assert got['flagger_canary_weight{namespace="test",workload="podinfo-primary"}'] == 100
    assert got['flagger_canary_weight{namespace="test",workload="podinfo"}'] == 0
    # the last check values: success rate in percent, Flagger's request-duration in seconds (100 ms)
    assert got['flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"}'] == 100
    assert got['flagger_canary_metric_analysis{metric="request-duration",name="podinfo",namespace="test"}'] == 0.1
    # every tick was timed into the histogram, cumulative buckets ending in +Inf == count
    count = got['flagger_canary_duration_seconds_count{name="podinfo",namespace="test"}']
    assert count == lab.engine.ticks
    assert got['flagger_canary_duration_seconds_bucket{le="+Inf",name="podinfo",namespace="test"}'] == count
    buckets = [v for k, v in got.items() if k.startswith("flagger_canary_duration_seconds_bucket")]
    assert buckets == sorted(buckets)


async def test_a_running_then_failed_canary_reports_0_then_2_and_counts_a_failure() -> None:
    lab = Lab(canary(threshold=2))
    metrics = recorder(lab)
    lab.metrics.set("request-success-rate", 50.0)  # below the 99 % minimum
    await lab.initialized()
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.1")
    for _ in range(3):
        await lab.tick()
        if lab.phase == "Progressing":
            break
    assert samples(metrics.exposition())['flagger_canary_status{name="podinfo",namespace="test"}'] == 0  # running
    for _ in range(10):
        await lab.tick()
        if lab.phase == "Failed":
            break
    got = samples(metrics.exposition())
    assert lab.phase == "Failed"
    assert got['flagger_canary_status{name="podinfo",namespace="test"}'] == 2
    assert got['flagger_canary_failures_total{analysis_status="completed",deployment_strategy="canary",'
               'name="podinfo",namespace="test"}'] == 1
    assert got['flagger_canary_metric_analysis{metric="request-success-rate",name="podinfo",namespace="test"}'] == 50


async def test_skip_analysis_is_counted_as_skipped_and_blue_green_as_its_strategy() -> None:
    skipped = Lab(canary(iterations=3, stepWeight=None, maxWeight=None))
    skipped.patch_canary({"skipAnalysis": True})
    metrics = recorder(skipped)
    await skipped.ship_to_the_end()
    got = samples(metrics.exposition())
    assert got['flagger_canary_successes_total{analysis_status="skipped",deployment_strategy="blue-green",'
               'name="podinfo",namespace="test"}'] == 1


def test_an_empty_recorder_writes_only_the_info_line_and_escapes_label_values() -> None:
    metrics = FlaggerMetrics(lambda ns, name: None, version='1"\\x', mesh_provider="linkerd")
    assert metrics.exposition() == ('# HELP flagger_info Flagger version and mesh provider information\n'
                                    '# TYPE flagger_info gauge\n'
                                    'flagger_info{version="1\\"\\\\x",mesh_provider="linkerd"} 1\n')
