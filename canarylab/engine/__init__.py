"""The canary engine: Flagger's analysis in pure Python.

It imports nothing from the rest of canarylab and never Textual, Rich, kr8s or sh; the world reaches it
through the ports in :mod:`canarylab.engine.ports`.
"""
