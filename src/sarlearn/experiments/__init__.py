"""Experiments: one closed-loop run (``run``), sweeps over configs and their reports.

Import the submodules directly (``from sarlearn.experiments.sweep import run_sweep``); nothing
is imported here so that ``sarlearn sweep`` and spawned workers stay cheap to start.
"""
