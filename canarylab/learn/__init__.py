"""Guided workshop lessons (``canarylab learn``): lessons as data, their checks, progress, and a player.

A lesson is a YAML file under ``canarylab/learn/lessons/`` (:mod:`canarylab.learn.model`). Each step says
what Flagger does now, what to do (a dashboard key, a kubectl command, a YAML edit), and a check that decides
completion from the engine's events and the cluster's state (:mod:`canarylab.learn.checks`), never from
elapsed time. :mod:`canarylab.learn.tracker` follows a learner through the steps, :mod:`canarylab.learn.progress`
saves where they are, and :mod:`canarylab.learn.player` plays every lesson on the simulated lab for
``canarylab learn --check``. Nothing here imports the UI.
"""
