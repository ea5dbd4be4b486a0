"""Engine invariants shared by the ground-sensor and camera tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.loop import RECORDS


def assert_population_equals_single_runs(cfgs: Sequence[RunConfig], steps: int) -> None:
    """Agent k of the population stacked from ``cfgs`` is bit-identical to the single run of
    ``cfgs[k]``: every record, the weight-change samples and the final weights."""
    pop = FastClosedLoop.from_configs(list(cfgs), weights_every=10)
    rec = pop.run(steps)
    for k, cfg in enumerate(cfgs):
        single = FastClosedLoop.from_config(cfg, 1, weights_every=10)
        one = single.run(steps)
        for key in (*RECORDS, "weight_change"):
            np.testing.assert_array_equal(rec[key][k], one[key][0], err_msg=key)
        for layer in range(single.n_layers):
            np.testing.assert_array_equal(pop.weights(layer)[k], single.weights(layer)[0])
