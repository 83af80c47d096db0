"""Plugins for the whole suite: ``tests.realkube`` gives the real control plane fixtures."""

import signal

import pytest

pytest_plugins = ["tests.realkube"]


def pytest_configure(config: pytest.Config) -> None:
    """A run started in the background of a non-interactive shell (`make test &` in a CI script) inherits SIGINT
    ignored, and so would every process a test starts (pytest-xdist's workers too): `canarylab` would then ignore
    the SIGINT a test sends it. Take Python's default back, so the commands under test meet SIGINT as they do
    from a user's terminal."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
