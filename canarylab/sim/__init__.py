"""The simulated lab, canarylab's embedded default: cluster, podinfo, traffic, Linkerd metrics, loadtester.

``canarylab.sim.lab.SimLab`` is what the dashboard and ``canarylab simulate`` (``canarylab.cli.simulate``) drive.
Loads without Textual, Rich, kr8s or sh.
"""
