"""The seed tutorial end to end on the real API server, with ``canarylab engine`` as a user runs it: the Canary
on podinfo (pods Running and Ready by KWOK), initialization, ``kubectl set image``, weights advancing on
metric values from a Prometheus API, promotion or rollback, and what ``kubectl`` shows about it."""

from __future__ import annotations

import pytest

from canarylab.engine.kinds import DEPLOYMENT, HTTP_ROUTE, SERVICE, TRAFFIC_SPLIT
from tests.realapi.conftest import SeedLab, apply, seed_in, until

pytestmark = pytest.mark.timeout(150)


async def initialized(lab: SeedLab, router: str = "smi", **analysis: object) -> None:
    """Apply the seed (pointed at the stand-ins), start the engine, wait for Initialized."""
    await apply(lab.plane, seed_in(lab.namespace, metrics_server=lab.prometheus.url, loadtester=lab.loadtester.url,
                                   router=router, **analysis))
    await lab.start_engine()

    async def ready() -> bool:
        return await lab.phase() == "Initialized"

    try:
        await until("the Canary to be Initialized", ready, 60)
    except AssertionError:
        raise AssertionError(f"{await lab.phase()!r}; engine stderr:\n{lab.engines[-1].stderr()[-3000:]}") from None


async def weights_until(lab: SeedLab, phase: str, timeout: float = 90) -> list[int]:
    """Canary weights seen on the routing object (in order, without repeats) until the Canary reaches ``phase``."""
    seen: list[int] = []

    async def probe() -> bool:
        weight = (await lab.weights()).get("podinfo-canary", 0)
        if not seen or seen[-1] != weight:
            seen.append(weight)
        return await lab.phase() == phase

    try:
        await until(f"phase {phase}", probe, timeout, every=0.05)
    except AssertionError as err:
        engine = lab.engines[-1]
        pods = await lab.kubectl("get", "pods", "-o", "wide", "--show-labels")
        status = await lab.kubectl("get", "deploy", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.replicas}"
                                   " {.status}{'\\n'}{end}")
        raise AssertionError(f"{err}; phase {await lab.phase()!r}, weights {seen}; engine events "
                             f"{engine.messages()[-4:]}\n{pods}\n{status}") from None
    return seen


async def test_the_seed_canary_is_promoted_on_the_real_api_server(seed: SeedLab) -> None:
    lab, ns = seed, seed.namespace
    # Given the seed's Canary on podinfo and the engine running
    await initialized(lab, maxWeight=10)
    # then it created what Flagger's initialization creates: the primary (Running, Ready pods), the services,
    # the TrafficSplit with all traffic on the primary, and scaled the target to zero
    primary = await lab.get(DEPLOYMENT, "podinfo-primary")
    assert primary["status"].get("readyReplicas", 0) >= 1
    assert {s["metadata"]["name"] for s in await lab.cluster.list(SERVICE, ns)} >= \
        {"podinfo", "podinfo-canary", "podinfo-primary"}
    assert (await lab.get(SERVICE, "podinfo"))["spec"]["selector"] == {"app": "podinfo-primary"}
    assert await lab.weights() == {"podinfo-canary": 0, "podinfo-primary": 100}
    assert await lab.replicas("podinfo") == 0
    pods = await lab.kubectl("get", "pods", "-l", "app=podinfo-primary", "-o",
                             "jsonpath={range .items[*]}{.status.phase}{' '}{end}")
    assert pods.split() and set(pods.split()) == {"Running"}

    # when the user bumps the image as the tutorial says
    await lab.set_image("6.0.1")
    # then the analysis runs: weights advance by stepWeight to maxWeight, then the primary is promoted
    weights = await weights_until(lab, "Succeeded")
    steps = [w for w in weights if w > 0]
    assert steps == [5, 10], weights
    assert weights[-1] == 0
    assert await lab.image("podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"
    assert await lab.replicas("podinfo") == 0
    assert await lab.weights() == {"podinfo-canary": 0, "podinfo-primary": 100}
    # the load test and the acceptance test reached the loadtester
    commands = [payload.get("metadata", {}).get("cmd", "") for _, payload in lab.loadtester.calls]
    assert any("hey -z 2m" in c for c in commands) and any("curl -sd 'test'" in c for c in commands)
    # the checks were asked of the Prometheus API for this namespace
    assert any(f'namespace="{ns}"' in q for q in lab.prometheus.queries)

    # and kubectl shows it with Flagger's columns and Flagger's events
    table = (await lab.kubectl("get", "canaries")).splitlines()
    assert table[0].split() == ["NAME", "STATUS", "WEIGHT", "LASTTRANSITIONTIME"]
    assert table[1].split()[:3] == ["podinfo", "Succeeded", "0"]
    described = await lab.kubectl("describe", "canary", "podinfo")
    for line in (f"Initialization done! podinfo.{ns}", f"New revision detected! Scaling up podinfo.{ns}",
                 f"Starting canary analysis for podinfo.{ns}", f"Advance podinfo.{ns} canary weight 5",
                 f"Advance podinfo.{ns} canary weight 10",
                 f"Copying podinfo.{ns} template spec to podinfo-primary.{ns}",
                 f"Promotion completed! Scaling down podinfo.{ns}"):
        assert line in described, f"{line!r} not in:\n{described}"
    assert "flagger" in described  # the events' source, as Flagger records them


async def test_failing_checks_roll_the_canary_back(seed: SeedLab) -> None:
    lab, ns = seed, seed.namespace
    await initialized(lab, threshold=2)
    # Given the canary answers with errors (success rate 60 %, the seed wants at least 99 %)
    lab.prometheus.set(ns, success=60.0)
    # when a new revision is deployed
    await lab.set_image("6.0.2")
    # then the analysis fails the checks `threshold` times, and rolls back
    await until("phase Failed", lambda: _is(lab, "Failed"), 60)
    assert await lab.weights() == {"podinfo-canary": 0, "podinfo-primary": 100}
    assert await lab.replicas("podinfo") == 0
    assert await lab.image("podinfo-primary") != "ghcr.io/stefanprodan/podinfo:6.0.2"
    described = await lab.kubectl("describe", "canary", "podinfo")
    assert f"Halt podinfo.{ns} advancement success rate 60.00% < 99%" in described, described
    assert f"Rolling back podinfo.{ns} failed checks threshold reached 2" in described
    assert f"Canary failed! Scaling down podinfo.{ns}" in described
    table = (await lab.kubectl("get", "canaries")).splitlines()
    assert table[1].split()[:3] == ["podinfo", "Failed", "0"]


async def test_gatewayapi_routes_with_an_httproute(seed: SeedLab) -> None:
    lab = seed
    await initialized(lab, router="gatewayapi", stepWeight=25)
    route = await lab.get(HTTP_ROUTE, "podinfo")
    refs = {b["name"]: b.get("weight") for b in route["spec"]["rules"][0]["backendRefs"]}
    assert refs == {"podinfo-primary": 100, "podinfo-canary": 0}
    assert await lab.cluster.get(TRAFFIC_SPLIT, lab.namespace, "podinfo") is None
    await lab.set_image("6.0.1")
    weights = await weights_until(lab, "Succeeded")
    assert [w for w in weights if w > 0] == [25, 50], weights
    assert await lab.image("podinfo-primary") == "ghcr.io/stefanprodan/podinfo:6.0.1"


async def _is(lab: SeedLab, phase: str) -> bool:
    return await lab.phase() == phase
