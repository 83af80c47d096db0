"""Flagger's acceptance scenarios (flagger-spec 8.3) for the engine, one tick at a time on a manual clock."""

from __future__ import annotations

from canarylab.engine.documents import rfc3339
from canarylab.engine.events import CheckEvaluated, PhaseChanged, WebhookResult, WeightChanged
from canarylab.engine.kinds import CONFIG_MAP, DEPLOYMENT, HPA, HTTP_ROUTE, SECRET, TRAFFIC_SPLIT
from canarylab.engine.memory_cluster import MemoryCluster
from canarylab.engine.ports import MetricsError, NoValuesFound, WebhookResponse
from tests.engine.conftest import Lab, canary, podinfo, with_hooks

NEW = "ghcr.io/stefanprodan/podinfo:6.0.1"

# ------------------------------------------------------------------------------------ initialization


async def test_1_first_tick_creates_primary_and_services_and_waits_for_an_unready_primary() -> None:
    # Given a new Canary and a cluster where pods never become ready by themselves
    lab = Lab(instant_ready=False)
    # When one tick runs
    await lab.tick()
    # Then the primary exists with the rewritten selector, and the canary/primary services
    primary = lab.deployment("podinfo-primary")
    assert primary["spec"]["selector"] == {"matchLabels": {"app": "podinfo-primary"}}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "podinfo-primary"
    assert lab.service("podinfo-canary")["spec"]["selector"] == {"app": "podinfo"}  # type: ignore[index]
    assert lab.service("podinfo-primary")["spec"]["selector"] == {"app": "podinfo-primary"}  # type: ignore[index]
    assert lab.phase == "Initializing"
    assert any("podinfo-primary.test not ready: waiting for rollout to finish" in w for w in lab.warnings())


async def test_2_ready_primary_completes_initialization_without_analysis() -> None:
    lab = Lab(instant_ready=False)
    await lab.tick()
    # Given the primary becomes ready
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo-primary", {
        "observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1})
    # When the next tick runs
    await lab.tick()
    # Then the apex selects the primary, the target is at 0, traffic is 100/0 and the canary is Initialized
    assert lab.service("podinfo")["spec"]["selector"] == {"app": "podinfo-primary"}  # type: ignore[index]
    assert lab.deployment()["spec"]["replicas"] == 0
    ts = lab.cluster.get_now(TRAFFIC_SPLIT, "test", "podinfo")
    assert ts is not None and ts["spec"]["backends"] == [
        {"service": "podinfo-canary", "weight": 0}, {"service": "podinfo-primary", "weight": 100}]
    st = lab.status
    assert st["phase"] == "Initialized"
    assert st["conditions"][0]["type"] == "Promoted" and st["conditions"][0]["status"] == "True"
    assert st["conditions"][0]["reason"] == "Initialized"
    assert st["lastAppliedSpec"] == st["lastPromotedSpec"]
    assert "Initialization done! podinfo.test" in lab.messages()
    assert not lab.metrics.queries


async def test_3_selector_without_known_label_creates_nothing_and_names_the_labels() -> None:
    dep = podinfo()
    dep["spec"]["selector"] = {"matchLabels": {"role": "web"}}
    lab = Lab(deployment=dep)
    await lab.tick()
    assert lab.cluster.get_now(DEPLOYMENT, "test", "podinfo-primary") is None
    assert lab.warnings()[-1] == ("deployment podinfo.test spec.selector.matchLabels must contain one of "
                                  "[app name app.kubernetes.io/name]")


async def test_5_hpa_is_copied_for_the_primary_with_overrides() -> None:
    hpa = HPA.new("test", "podinfo", spec={
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
        "minReplicas": 2, "maxReplicas": 4})
    obj = canary()
    obj["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
                                    "name": "podinfo", "primaryScalerReplicas": {"maxReplicas": 6}}
    lab = Lab(obj, extra=[hpa])
    await lab.initialized()
    primary_hpa = lab.cluster.get_now(HPA, "test", "podinfo-primary")
    assert primary_hpa is not None
    assert primary_hpa["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    assert (primary_hpa["spec"]["minReplicas"], primary_hpa["spec"]["maxReplicas"]) == (2, 6)
    # and a new revision scales the canary to the HPA's minReplicas
    await lab.set_image(NEW)
    await lab.tick()
    assert lab.deployment()["spec"]["replicas"] == 2


# ------------------------------------------------------------------------------------ triggering


async def test_7_new_image_scales_up_and_starts_progressing_without_moving_traffic() -> None:
    lab = Lab(deployment=podinfo(replicas=3))
    await lab.initialized()
    await lab.set_image(NEW)
    await lab.tick()
    assert "New revision detected! Scaling up podinfo.test" in lab.messages()
    assert lab.deployment()["spec"]["replicas"] == 3
    assert (lab.phase, lab.status["canaryWeight"], lab.status["failedChecks"]) == ("Progressing", 0, 0)
    assert lab.weights == (100, 0)


async def test_9_reverting_a_failed_run_to_the_promoted_spec_starts_nothing(lab: Lab) -> None:
    await lab.progressing()
    lab.patch_status({"failedChecks": 5})
    await lab.tick()
    assert lab.phase == "Failed"
    # When the Deployment is reverted to the promoted image
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.0")
    mark = lab.mark()
    await lab.tick(2)
    assert lab.phase == "Failed" and "New revision detected! Scaling up podinfo.test" not in lab.messages(mark)
    # but re-applying the failed image later is a new run
    await lab.set_image(NEW)
    await lab.tick()
    assert lab.phase == "Progressing"


async def test_10_replicas_only_change_starts_nothing(lab: Lab) -> None:
    await lab.initialized()
    lab.cluster.patch_now(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 4}})
    await lab.tick(2)
    assert lab.phase == "Initialized"


# ------------------------------------------------------------------------------------ progression


async def test_11_first_progressing_tick_runs_pre_rollout_and_steps_without_metrics() -> None:
    lab = Lab(with_hooks({"name": "acceptance", "type": "pre-rollout", "url": "http://tester/"}))
    await lab.progressing()
    mark = lab.mark()
    await lab.tick()
    assert lab.messages(mark) == ["Starting canary analysis for podinfo.test", "Pre-rollout check acceptance passed",
                                  "Advance podinfo.test canary weight 10"]
    assert lab.weights == (90, 10) and lab.status["canaryWeight"] == 10
    assert not lab.metrics.queries


async def test_12_healthy_run_steps_to_max_weight_then_promotes(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick(5)
    assert [e.canary for e in lab.of(WeightChanged)][-5:] == [10, 20, 30, 40, 50]
    queries = len(lab.metrics.queries)
    await lab.tick()
    assert lab.messages()[-1] == "Copying podinfo.test template spec to podinfo-primary.test"
    assert lab.phase == "Promoting"
    assert len(lab.metrics.queries) == queries + 2  # checked on the promoting tick too
    assert lab.deployment("podinfo-primary")["spec"]["template"]["spec"]["containers"][0]["image"] == NEW


async def _ladder(lab: Lab) -> list[int]:
    await lab.progressing()
    for _ in range(15):
        await lab.tick()
        if lab.phase == "Promoting":
            break
    assert lab.phase == "Promoting"
    return [e.canary for e in lab.of(WeightChanged) if e.canary]


async def test_13_step_weight_overshoots_max_weight() -> None:
    assert await _ladder(Lab(canary(stepWeight=20, maxWeight=50))) == [20, 40, 60]


async def test_14_step_weights_ladders() -> None:
    assert await _ladder(Lab(canary(stepWeight=None, stepWeights=[1, 2, 10, 80]))) == [1, 2, 10, 80]
    assert await _ladder(Lab(canary(stepWeight=None, stepWeights=[1, 2, 10, 200]))) == [1, 2, 10, 100]
    assert await _ladder(Lab(canary(stepWeight=None, maxWeight=50, stepWeights=[10, 20, 30, 40, 50, 60]))) == [
        10, 20, 30, 40, 50, 60]


async def test_15_unready_canary_halts_without_counting_a_failure() -> None:
    lab = Lab()
    await lab.progressing()
    await lab.tick()
    lab.cluster.instant_ready = False
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo", {"availableReplicas": 0})
    await lab.tick()
    assert lab.warnings()[-1] == ("canary deployment podinfo.test not ready: waiting for rollout to finish: "
                                  "0 of 1 (readyThreshold 100%) updated replicas are available")
    assert lab.weights == (90, 10) and lab.status["failedChecks"] == 0


# ------------------------------------------------------------------------------------ failure


async def test_16_low_success_rate_halts_and_failures_accumulate(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick()
    lab.metrics.set("request-success-rate", 69.17)
    await lab.tick()
    assert lab.warnings()[-1] == "Halt podinfo.test advancement success rate 69.17% < 99%"
    assert lab.status["failedChecks"] == 1 and lab.weights == (90, 10)
    check = lab.of(CheckEvaluated)[-1]
    assert (check.metric, check.value, check.min, check.ok) == ("request-success-rate", 69.17, 99, False)
    lab.metrics.set("request-success-rate", 100)
    await lab.tick()
    assert lab.status["failedChecks"] == 1 and lab.weights == (80, 20)


async def test_17_slow_p99_is_reported_as_go_durations(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick()
    lab.metrics.set("request-duration", 1200.7)
    await lab.tick()
    assert lab.warnings()[-1] == "Halt podinfo.test advancement request duration 1.2s > 500ms"
    assert lab.status["failedChecks"] == 1


async def test_18_no_values_is_a_failed_check_naming_the_traffic_problem(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick()
    lab.metrics.set("request-success-rate", NoValuesFound("no values found"))
    await lab.tick()
    assert lab.warnings()[-1] == ("Halt advancement no values found for linkerd metric request-success-rate "
                                  "probably podinfo.test is not receiving traffic: "
                                  "running query failed: no values found")
    assert lab.status["failedChecks"] == 1


async def test_18b_provider_errors_fail_the_check_and_recovery_is_announced_once(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick()
    lab.metrics.set("request-success-rate", MetricsError("connection refused"))
    await lab.tick(2)
    assert lab.warnings()[-1] == "Prometheus query failed: running query failed: connection refused"
    lab.metrics.set("request-success-rate", 100)
    await lab.tick(2)
    assert lab.messages().count("all the metrics providers are available!") == 2  # init + once on recovery


async def test_19_threshold_reached_rolls_back_at_the_start_of_the_next_tick() -> None:
    lab = Lab(with_hooks({"name": "notify", "type": "post-rollout", "url": "http://tester/"}))
    await lab.progressing()
    await lab.tick()
    lab.metrics.set("request-success-rate", 50)
    await lab.tick(5)
    assert lab.status["failedChecks"] == 5 and lab.phase == "Progressing"
    mark = lab.mark()
    await lab.tick()
    assert lab.messages(mark)[:2] == ["Rolling back podinfo.test failed checks threshold reached 5",
                                      "Canary failed! Scaling down podinfo.test"]
    assert lab.weights == (100, 0) and lab.deployment()["spec"]["replicas"] == 0
    assert lab.phase == "Failed"
    assert lab.webhooks.payloads("notify")[-1]["phase"] == "Failed"


async def test_21_failing_pre_rollout_retries_each_tick_then_rolls_back() -> None:
    lab = Lab(with_hooks({"name": "acceptance", "type": "pre-rollout", "url": "http://tester/"}))
    lab.webhooks.set("acceptance", WebhookResponse(ok=False, status=500, error="command failed: exit 1"))
    await lab.progressing()
    await lab.tick(5)
    assert lab.messages().count("Starting canary analysis for podinfo.test") == 5
    assert "Halt podinfo.test advancement pre-rollout check acceptance failed command failed: exit 1" in lab.warnings()
    assert lab.status["failedChecks"] == 5 and lab.weights == (100, 0)
    await lab.tick()
    assert lab.phase == "Failed"


async def test_22_canary_past_its_progress_deadline_rolls_back_without_threshold_message() -> None:
    obj = canary()
    obj["spec"]["progressDeadlineSeconds"] = 60
    lab = Lab(obj)
    await lab.progressing()
    lab.cluster.instant_ready = False
    stamp = rfc3339(lab.clock.now())  # unavailable from now on: the deadline passes after 60s
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo", {"availableReplicas": 0, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable", "lastUpdateTime": stamp}]})
    await lab.tick(4)  # 0s, 15s, 30s, 45s: still waiting
    assert lab.phase == "Progressing"
    await lab.tick(2)  # 60s is not past the deadline yet, 75s is
    assert lab.phase == "Failed"
    assert "Canary failed! Scaling down podinfo.test" in lab.messages()
    assert not any("threshold reached" in m for m in lab.messages())


async def test_23_rollback_hook_opened_rolls_back_on_the_next_tick() -> None:
    lab = Lab(with_hooks({"name": "rollback", "type": "rollback", "url": "http://tester/rollback/check"}))
    lab.webhooks.set("rollback", 403)
    await lab.progressing()
    await lab.tick()
    assert "Rollback hook rollback not signaling a rollback" in lab.messages()
    lab.webhooks.set("rollback", 200)
    await lab.tick()
    assert "Rolling back podinfo.test manual webhook invoked" in lab.warnings()
    assert lab.phase == "Failed"


# ------------------------------------------------------------------------------------ gates


async def test_24_confirm_rollout_gate_holds_the_run_in_waiting_until_opened() -> None:
    lab = Lab(with_hooks({"name": "approve", "type": "confirm-rollout", "url": "http://tester/gate/check"}))
    lab.webhooks.set("approve", 403)
    await lab.initialized()
    await lab.set_image(NEW)
    await lab.tick(3)
    assert lab.phase == "Waiting" and lab.deployment()["spec"]["replicas"] == 0
    assert lab.warnings().count("Halt podinfo.test advancement waiting for approval approve") == 1
    assert lab.webhooks.payloads("approve")[0]["phase"] == "Initialized"
    assert lab.webhooks.payloads("approve")[-1]["phase"] == "Waiting"
    lab.webhooks.set("approve", 200)
    await lab.tick()
    assert lab.phase == "Progressing" and lab.deployment()["spec"]["replicas"] == 1


async def test_25_closed_traffic_increase_gate_holds_weight_but_keeps_checking() -> None:
    lab = Lab(with_hooks({"name": "step", "type": "confirm-traffic-increase", "url": "http://tester/gate/check"}))
    await lab.progressing()
    await lab.tick()
    lab.webhooks.set("step", 403)
    queries = len(lab.metrics.queries)
    await lab.tick(3)
    assert lab.weights == (90, 10) and lab.status["failedChecks"] == 0
    assert len(lab.metrics.queries) == queries + 6
    assert lab.warnings()[-1] == "Halt podinfo.test advancement waiting for traffic increase approval step"


async def test_26_closed_promotion_gate_waits_at_max_weight_then_promotes() -> None:
    lab = Lab(with_hooks({"name": "promote", "type": "confirm-promotion", "url": "http://tester/gate/check"}))
    lab.webhooks.set("promote", 403)
    await lab.progressing()
    await lab.tick(7)
    assert lab.phase == "WaitingPromotion" and lab.weights == (50, 50)
    assert "Halt podinfo.test advancement waiting for promotion approval promote" in lab.warnings()
    # metrics keep running and can still fail the run
    queries = len(lab.metrics.queries)
    await lab.tick()
    assert len(lab.metrics.queries) == queries + 2
    lab.webhooks.set("promote", 200)
    await lab.tick()
    assert lab.phase == "Promoting"


# ------------------------------------------------------------------------------------ promotion


async def test_27_promotion_waits_for_the_primary_then_routes_back_and_finalises() -> None:
    lab = Lab(with_hooks({"name": "notify", "type": "post-rollout", "url": "http://tester/"}))
    await lab.progressing()
    await lab.tick(6)
    assert lab.phase == "Promoting"
    # Given the primary is still rolling out
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo-primary", {"observedGeneration": 1})
    await lab.tick()
    assert lab.weights == (50, 50) and "observed deployment generation less than desired" in lab.warnings()[-1]
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo-primary", {
        "observedGeneration": lab.deployment("podinfo-primary")["metadata"]["generation"]})
    await lab.tick()
    assert lab.messages()[-1] == "Routing all traffic to primary"
    assert lab.weights == (100, 0) and lab.phase == "Finalising"
    await lab.tick()
    assert lab.phase == "Succeeded" and lab.deployment()["spec"]["replicas"] == 0
    assert lab.messages()[-1] == "Promotion completed! Scaling down podinfo.test"
    assert lab.webhooks.payloads("notify")[-1]["phase"] == "Succeeded"
    assert lab.deployment("podinfo-primary")["spec"]["template"]["spec"]["containers"][0]["image"] == NEW


async def test_28_step_weight_promotion_shifts_traffic_back_in_steps() -> None:
    lab = Lab(canary(stepWeight=100, maxWeight=100, stepWeightPromotion=50))
    await lab.progressing()
    phases = []
    for _ in range(5):
        await lab.tick()
        phases.append((lab.phase, lab.status["canaryWeight"]))
    assert phases == [("Progressing", 100), ("Promoting", 100), ("Promoting", 50), ("Finalising", 0),
                      ("Succeeded", 0)]
    assert "Advance podinfo.test primary weight 50" in lab.messages()


async def test_29_primary_breaking_during_promotion_leaves_traffic_on_the_canary(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick(6)
    assert lab.phase == "Promoting"
    lab.cluster.instant_ready = False
    lab.cluster.patch_status_now(DEPLOYMENT, "test", "podinfo-primary", {"conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})
    await lab.tick()
    assert lab.weights == (0, 100) and lab.phase == "Failed" and lab.status["canaryWeight"] == 100
    assert lab.deployment()["spec"]["replicas"] == 1
    assert any(m.startswith("Promotion of podinfo.test failed, primary not ready:") for m in lab.warnings())


# ------------------------------------------------------------------------------------ restart, skip, ...


async def test_30_new_revision_mid_run_restarts_the_analysis() -> None:
    lab = Lab(with_hooks({"name": "acceptance", "type": "pre-rollout", "url": "http://tester/"}))
    await lab.progressing()
    await lab.tick()
    assert lab.weights == (90, 10)
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.2")
    await lab.tick()
    assert lab.messages()[-1] == "New revision detected! Restarting analysis for podinfo.test"
    assert lab.weights == (100, 0)
    assert (lab.status["canaryWeight"], lab.status["failedChecks"], lab.status["iterations"]) == (0, 0, 0)
    mark = lab.mark()
    await lab.tick()
    assert lab.messages(mark)[:2] == ["Starting canary analysis for podinfo.test",
                                      "Pre-rollout check acceptance passed"]


async def test_31_skip_analysis_promotes_on_the_second_tick_without_queries() -> None:
    obj = canary()
    obj["spec"]["skipAnalysis"] = True
    lab = Lab(obj)
    await lab.progressing()
    await lab.tick()
    assert lab.phase == "Succeeded" and lab.deployment()["spec"]["replicas"] == 0
    assert lab.messages()[-1] == "Promotion completed! Canary analysis was skipped for podinfo.test"
    assert not lab.metrics.queries


async def test_32_suspend_freezes_the_run_and_resuming_continues(lab: Lab) -> None:
    await lab.progressing()
    await lab.tick()
    lab.patch_canary({"suspend": True})
    mark = lab.mark()
    await lab.tick(3)
    assert lab.messages(mark) == ["skipping canary run as object is suspended"] * 3
    assert lab.weights == (90, 10)
    lab.patch_canary({"suspend": False})
    await lab.tick()
    assert lab.weights == (80, 20)


async def test_33_blue_green_iterations_then_all_traffic_to_canary_then_promotion() -> None:
    lab = Lab(canary(stepWeight=None, maxWeight=None, iterations=1))
    await lab.initialized()
    await lab.set_image(NEW)
    phases = []
    for _ in range(6):
        await lab.tick()
        phases.append(lab.phase)
        if lab.phase == "Progressing" and lab.weights == (0, 100):
            phases[-1] = "Progressing 0/100"
    assert phases == ["Progressing", "Progressing", "Progressing 0/100", "Promoting", "Finalising", "Succeeded"]
    assert "Advance podinfo.test canary iteration 1/1" in lab.messages()
    assert "Routing all traffic to canary" in lab.messages()


async def test_36_event_hooks_see_every_event_with_the_phase_at_emission() -> None:
    hook = {"name": "events", "type": "event", "url": "http://tester/events"}
    gates = [{"name": n, "type": t, "url": "http://tester/gate/approve"} for n, t in (
        ("rollout-gate", "confirm-rollout"), ("step-gate", "confirm-traffic-increase"),
        ("promo-gate", "confirm-promotion"))]
    obj = with_hooks(hook, *gates, {"name": "pre", "type": "pre-rollout", "url": "http://tester/"},
                     {"name": "post", "type": "post-rollout", "url": "http://tester/"},
                     stepWeight=100, maxWeight=100, stepWeightPromotion=50, metrics=[])  # fmt: skip
    lab = Lab(obj)
    await lab.initialized()
    await lab.set_image(NEW)
    await lab.tick(7)
    sent = [(p["metadata"]["eventMessage"], p["phase"]) for p in lab.webhooks.payloads("events")]
    assert sent == [
        ("all the metrics providers are available!", "Initializing"),
        ("Initialization done! podinfo.test", "Initialized"),
        ("Confirm-rollout check rollout-gate passed", "Initialized"),
        ("New revision detected! Scaling up podinfo.test", "Progressing"),
        ("Starting canary analysis for podinfo.test", "Progressing"),
        ("Pre-rollout check pre passed", "Progressing"),
        ("Confirm-traffic-increase check step-gate passed", "Progressing"),
        ("Advance podinfo.test canary weight 100", "Progressing"),
        ("Confirm-traffic-increase check step-gate passed", "Progressing"),
        ("Confirm-promotion check promo-gate passed", "Progressing"),
        ("Copying podinfo.test template spec to podinfo-primary.test", "Progressing"),
        ("Advance podinfo.test primary weight 50", "Promoting"),
        ("Advance podinfo.test primary weight 100", "Promoting"),
        ("Post-rollout check post passed", "Succeeded"),
        ("Promotion completed! Scaling down podinfo.test", "Succeeded"),
    ]
    assert all(p["metadata"]["eventType"] == "Normal" for p in lab.webhooks.payloads("events"))


async def test_37_webhook_payload_carries_name_namespace_phase_checksum_metadata() -> None:
    lab = Lab(with_hooks({"name": "load", "type": "rollout", "url": "http://tester/", "metadata": {"cmd": "hey"}}))
    await lab.progressing()
    await lab.tick(3)
    first, second = lab.webhooks.payloads("load")[:2]
    assert set(first) == {"name", "namespace", "phase", "checksum", "metadata"}
    assert (first["name"], first["namespace"], first["phase"], first["metadata"]) == (
        "podinfo", "test", "Progressing", {"cmd": "hey"})
    assert first["checksum"] == second["checksum"]  # stable per revision
    await lab.set_image("ghcr.io/stefanprodan/podinfo:6.0.2")
    await lab.tick(3)
    assert lab.webhooks.payloads("load")[-1]["checksum"] != first["checksum"]


async def test_phase_events_follow_the_status(lab: Lab) -> None:
    await lab.progressing()
    assert [(e.old, e.new) for e in lab.of(PhaseChanged)] == [
        ("", "Initializing"), ("Initializing", "Initialized"), ("Initialized", "Progressing")]


def test_memory_cluster_fixture_is_fresh_per_lab() -> None:
    assert Lab().cluster is not Lab().cluster and isinstance(Lab().cluster, MemoryCluster)


# ------------------------------------------------------------------------------------ ports and configs


def _with_ports(port: int = 9898, target_port: int | str | None = None) -> Lab:
    dep = podinfo()
    dep["spec"]["template"]["spec"]["containers"][0]["ports"] = [
        {"name": "http", "containerPort": 9898}, {"name": "http-metrics", "containerPort": 8080},
        {"containerPort": 8888}]
    obj = canary()
    obj["spec"]["service"] = {"port": port, "portDiscovery": True}
    if target_port is not None:
        obj["spec"]["service"]["targetPort"] = target_port
    return Lab(obj, deployment=dep)


def _ports(lab: Lab, name: str) -> list[tuple[str, int, object]]:
    svc = lab.service(name)
    assert svc is not None
    return [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]]


async def test_4_port_discovery_exposes_every_container_port() -> None:
    lab = _with_ports()
    await lab.initialized()
    expected = [("http", 9898, 9898), ("http-metrics", 8080, 8080), ("tcp-podinfod-2", 8888, 8888)]
    assert _ports(lab, "podinfo-canary") == expected
    assert _ports(lab, "podinfo") == expected
    lab = _with_ports(port=80, target_port=9898)
    await lab.initialized()
    assert _ports(lab, "podinfo-canary")[0] == ("http", 80, 9898)
    lab = _with_ports(port=8080, target_port="http")
    await lab.initialized()
    assert _ports(lab, "podinfo-canary")[0] == ("http", 8080, "http")


def _with_configs() -> Lab:
    dep = podinfo()
    pod = dep["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "off", "configMap": {"name": "off"}}]
    pod["containers"][0]["envFrom"] = [{"secretRef": {"name": "sec"}}]
    cfg = CONFIG_MAP.new("test", "cfg", data={"color": "blue"})
    off = CONFIG_MAP.new("test", "off", data={"x": "1"})
    off["metadata"]["annotations"] = {"flagger.app/config-tracking": "disabled"}
    sec = SECRET.new("test", "sec", type="Opaque", data={"token": "czNjcmV0"})
    return Lab(deployment=dep, extra=[cfg, off, sec])


async def test_6_tracked_configs_are_copied_for_the_primary() -> None:
    lab = _with_configs()
    await lab.initialized()
    assert lab.cluster.get_now(CONFIG_MAP, "test", "cfg-primary")["data"] == {"color": "blue"}  # type: ignore[index]
    assert lab.cluster.get_now(SECRET, "test", "sec-primary")["data"] == {"token": "czNjcmV0"}  # type: ignore[index]
    assert lab.cluster.get_now(CONFIG_MAP, "test", "off-primary") is None
    pod = lab.deployment("podinfo-primary")["spec"]["template"]["spec"]
    assert [v.get("configMap", {}).get("name") for v in pod["volumes"]] == ["cfg-primary", "off"]
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "sec-primary"}}]
    assert set(lab.status["trackedConfigs"]) == {"configmap/cfg", "secret/sec"}


async def test_8_a_config_change_starts_a_run_and_promotion_carries_the_new_data() -> None:
    lab = _with_configs()
    await lab.initialized()
    lab.cluster.patch_now(CONFIG_MAP, "test", "cfg", {"data": {"color": "green"}})
    await lab.tick()
    assert lab.phase == "Progressing"
    assert "New revision detected! Scaling up podinfo.test" in lab.messages()
    for _ in range(10):
        await lab.tick()
    assert lab.phase == "Succeeded"
    assert lab.cluster.get_now(CONFIG_MAP, "test", "cfg-primary")["data"] == {"color": "green"}  # type: ignore[index]


async def test_a_missing_mandatory_config_is_reported() -> None:
    dep = podinfo()
    dep["spec"]["template"]["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "nope"}}]
    lab = Lab(deployment=dep)
    await lab.tick()
    assert lab.warnings() == ['ConfigMap nope.test get query error: configmaps "nope" not found']


async def test_gateway_api_provider_routes_with_an_httproute() -> None:
    obj = canary()
    obj["spec"]["provider"] = "gatewayapi:v1beta1"
    obj["spec"]["service"]["gatewayRefs"] = [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}]
    lab = Lab(obj)
    await lab.progressing()
    await lab.tick()
    route = lab.cluster.get_now(HTTP_ROUTE, "test", "podinfo")
    assert route is not None and lab.cluster.get_now(TRAFFIC_SPLIT, "test", "podinfo") is None
    assert route["spec"]["parentRefs"] == [{"group": "core", "kind": "Service", "name": "podinfo", "port": 9898}]
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [("podinfo-primary", 90), ("podinfo-canary", 10)]
    assert lab.engine.canary_states()[0].router == "HTTPRoute"


async def test_every_webhook_call_is_reported_with_its_outcome() -> None:
    lab = Lab(with_hooks({"name": "acceptance", "type": "pre-rollout", "url": "http://tester/"}))
    lab.webhooks.set("acceptance", [WebhookResponse(ok=False, status=500, error="exit 1"), 200])
    await lab.progressing()
    await lab.tick(2)
    results = [(r.hook, r.type, r.ok, r.status, r.message) for r in lab.of(WebhookResult)]
    assert results == [("acceptance", "pre-rollout", False, 500, "exit 1"),
                       ("acceptance", "pre-rollout", True, 200, "")]
