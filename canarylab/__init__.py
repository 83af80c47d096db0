"""canarylab: teach and demonstrate canary releases with Flagger's semantics."""

__version__ = "0.1.0"
