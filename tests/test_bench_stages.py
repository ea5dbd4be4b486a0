"""benchmarks/step_stages.py: every stage and step is timed, on an agent past the decay."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "step_stages.py"


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("step_stages", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_measures_every_stage_and_step() -> None:
    out = load_script().measure("sar", rounds=2, calls=50, steps=50, warm=600)
    times = out["us_per_call"]
    assert set(times) == {
        "sense",
        "filters",
        "forward",
        "forward: layer 0 sums",
        "forward: activations",
        "step, default world",
        "step, default world, rule off",
        "step, learner alone (every step learns)",
        "step, learner alone, rule off",
    }
    assert all(math.isfinite(v) and v > 0 for v in times.values())
    assert all(out["us_per_call_min"][k] <= v for k, v in times.items())
    # after the decay the flushed filter states are exactly 0: some inputs, not all
    assert 0.0 < out["inputs_exactly_zero"] < 1.0
    assert out["machine"]["cpu"]
