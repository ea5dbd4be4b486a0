"""Engine invariants shared by the ground-sensor and camera tests."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.loop import RECORDS


def assert_population_equals_single_runs(cfgs: Sequence[RunConfig], steps: int) -> None:
    """Agent k of the population stacked from ``cfgs`` is bit-identical to the single run of
    ``cfgs[k]``: every record, the weight-change samples and the final weights.

    Bit-identical on one CPU by construction (the same compiled kernel does the same
    operations for every agent, whatever the population); never compared across CPUs."""
    pop = FastClosedLoop.from_configs(list(cfgs), weights_every=10)
    rec = pop.run(steps)
    for k, cfg in enumerate(cfgs):
        single = FastClosedLoop.from_config(cfg, 1, weights_every=10)
        one = single.run(steps)
        for key in (*RECORDS, "weight_change"):
            np.testing.assert_array_equal(rec[key][k], one[key][0], err_msg=key)
        for layer in range(single.n_layers):
            np.testing.assert_array_equal(pop.weights(layer)[k], single.weights(layer)[0])


def teacher_forced_steps(
    fast: FastClosedLoop, steps: int
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """``steps`` pairs (reference records, engine records) of one step each, the reference
    reset to the engine's state before every step (teacher forcing): what is compared is the
    arithmetic of one step, never the last bits a free run amplifies (they differ between
    CPUs, Intel and AMD, and between numpy's SIMD paths)."""
    for _ in range(steps):
        loop = fast.loops[0]
        track = loop.robot.track  # read-only and large: shared, not copied
        ref = copy.deepcopy(loop, memo={id(track): track})
        yield ref.run(1), fast.run(1)


def free_run_tolerance(sensitivity: dict[str, float]) -> float:
    """What a free run of the engine may deviate from the reference: 100 times the reference's
    own deviation when its poses and first-layer weights move by one ulp (the engine differs
    from the reference by a few ulp in every step, the loop amplifies them the same way), and
    at least 1e-9."""
    return max(1e-9, 100.0 * max(sensitivity.values()))
