"""Plugins for the whole suite: ``tests.realkube`` gives the real control plane fixtures."""

pytest_plugins = ["tests.realkube"]
