"""A fault belongs to the revision it was injected into, like a bad release: a new image starts clean."""

from __future__ import annotations

import asyncio

from canarylab.engine.clock import run_virtual
from canarylab.engine.kinds import DEPLOYMENT
from canarylab.sim.lab import SimLab


def _pods(lab: SimLab, deployment: str = "podinfo") -> list:
    return [p for p in lab.cluster.pods.get(("test", deployment), {}).values() if p.ready]


def test_a_new_image_starts_clean_and_the_fault_stays_with_its_revision() -> None:
    async def scenario() -> None:
        lab = SimLab(speed=None)
        await lab.start()
        try:
            # given the seed canary analysing 3.1.1 with a 50% error fault on it
            while not any(s.phase == "Initialized" for s in lab.engine.canary_states()):
                await asyncio.sleep(1)
            await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
            while not _pods(lab):
                await asyncio.sleep(1)
            await lab.set_fault("test", "podinfo", 0.5, 0.0)
            fault = lab.fault("test", "podinfo")
            assert fault is not None and fault.active and fault.image == "stefanprodan/podinfo:3.1.1"
            assert fault.what() == "50% errors" and fault.since == lab.clock.now()
            assert all(lab.traffic.behaviour_of(p).error_rate == 0.5 for p in _pods(lab))
            # the primary (another Deployment) is untouched
            assert all(lab.traffic.behaviour_of(p).error_rate == 0 for p in _pods(lab, "podinfo-primary"))
            # when 3.1.2 ships
            await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.2")
            # then the fault is no longer active: it is reported as left behind with 3.1.1
            left = lab.fault("test", "podinfo")
            assert left is not None and not left.active
            assert left.image == "stefanprodan/podinfo:3.1.1" and left.replaced_by == "stefanprodan/podinfo:3.1.2"
            # and 3.1.2's pods answer cleanly
            target = lab.cluster.get_now(DEPLOYMENT, "test", "podinfo")
            assert target is not None
            for _ in range(60):
                new = [p for p in _pods(lab) if "stefanprodan/podinfo:3.1.2" in p.images]
                if new:
                    break
                await asyncio.sleep(1)
            assert new and all(lab.traffic.behaviour_of(p).error_rate == 0 for p in new)
            # clearing forgets it entirely
            await lab.clear_fault("test", "podinfo")
            assert lab.fault("test", "podinfo") is None
        finally:
            await lab.stop()

    run_virtual(scenario())


def test_a_fault_keeps_hitting_its_revision_when_it_is_scaled_up_again() -> None:
    async def scenario() -> None:
        lab = SimLab(speed=None)
        await lab.start()
        try:
            while not any(s.phase == "Initialized" for s in lab.engine.canary_states()):
                await asyncio.sleep(1)
            await lab.set_image("test", "podinfo", "podinfod", "stefanprodan/podinfo:3.1.1")
            await lab.set_fault("test", "podinfo", 1.0, 0.0)
            # replicas change, the template does not: still the same revision, still faulty
            await lab.cluster.patch(DEPLOYMENT, "test", "podinfo", {"spec": {"replicas": 3}})
            fault = lab.fault("test", "podinfo")
            assert fault is not None and fault.active
        finally:
            await lab.stop()

    run_virtual(scenario())
