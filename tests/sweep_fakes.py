"""Fake run functions for the sweep tests: fast, deterministic, importable by spawned workers.

``fake_run`` stands in for ``run_follow``. Its outcome is a pure function of the config:

- ``steps_to_success = 500 + 20000 * (lr / 1e-4 - 1) ** 2 + 30 * seed + 200 * n_hidden``
  for ``lr`` within a factor 3 of ``1e-4`` (and, for rule ``sar``, of ``1e-5``); otherwise
  the run never succeeds (None). Deep nets (n_hidden >= 3) never succeed with odd seeds.
- settling: a successful run settles unless ``seed % 3 == 2``, at
  ``settled_step = steps_to_success + 100 * seed`` with ``seed % 3`` relapses; a run that
  does not settle ends with 30 % of its settling window above threshold.
- rule ``boom`` raises ``ValueError``; rule ``crash`` kills its worker process (only in a
  worker, never in the test process).

Every call drops a file in ``$SARLEARN_FAKE_CALLS`` (if set) so tests can count calls made by
worker processes too.
"""

from __future__ import annotations

import os
import uuid
from multiprocessing import parent_process
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarlearn.config import RunConfig

CALLS_ENV = "SARLEARN_FAKE_CALLS"


def expected_steps(cfg: RunConfig) -> int | None:
    """The fake's steps_to_success for ``cfg`` (None: never succeeds)."""
    best = 1e-5 if cfg.rule.name == "sar" else 1e-4
    n_hidden = len(cfg.network.layers) - 1
    ratio = cfg.rule.learning_rate / best
    if not 1 / 3 <= ratio <= 3 or (n_hidden >= 3 and cfg.seed % 2):
        return None
    return int(500 + 20000 * (ratio - 1) ** 2 + 30 * cfg.seed + 200 * n_hidden)


def fake_run(cfg: RunConfig, out_dir: Path | None, progress: bool = False) -> dict[str, Any]:
    """A deterministic stand-in for ``run_follow`` that writes a small trace."""
    calls = os.environ.get(CALLS_ENV)
    if calls:
        Path(
            calls, f"{cfg.rule.name}-{cfg.rule.learning_rate}-{cfg.seed}-{uuid.uuid4().hex}"
        ).touch()
    if cfg.rule.name == "boom":
        raise ValueError(f"fake failure at lr={cfg.rule.learning_rate}")
    if cfg.rule.name == "crash" and parent_process() is not None:
        os._exit(3)
    sts = expected_steps(cfg)
    n_layers = len(cfg.network.layers)
    rng = np.random.default_rng(cfg.seed)
    t = np.arange(cfg.steps)
    scale = 300.0 if sts is None else sts / 3
    error = 10 * np.exp(-t / scale) * rng.standard_normal(cfg.steps)
    trace = pd.DataFrame({"step": t, "error": error, "output": 0.1 * error, "label": "x"})
    for i in range(n_layers):
        trace[f"weight_change_l{i}"] = cfg.rule.learning_rate * 1e3 * (i + 1) * t / cfg.steps
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        trace.to_parquet(out_dir / "trace.parquet", index=False)
    settles = sts is not None and cfg.seed % 3 != 2
    return {
        "rule": cfg.rule.name,
        "seed": cfg.seed,
        "track": cfg.world.track,
        "steps": cfg.steps,
        "steps_to_success": sts,
        "settled": settles,
        "settled_step": sts + 100 * cfg.seed if settles else None,
        "settle_window": min(5000, cfg.steps),
        "above_threshold_fraction": 0.0 if settles else 0.3,
        "relapses": None if sts is None else cfg.seed % 3,
        "steering_flips_per_1000": 10.0 * (cfg.seed + 1),
        "saturated_steering_fraction": 0.1,
        "dead_units": [1.0 if cfg.seed == 4 else 0.0] + [0.0] * (n_layers - 1),
        "dead_layers": int(cfg.seed == 4),
        "mean_abs_error_first_1000": float(np.abs(error[:1000]).mean()),
        "mean_abs_error_last_1000": float(np.abs(error[-1000:]).mean()),
        "off_track_steps": 0,
        "steps_per_second": 1e6,
        "weight_change": [cfg.rule.learning_rate * 1e3 * (i + 1) for i in range(n_layers)],
        "config": cfg.model_dump(mode="json"),
    }


def no_trace_run(cfg: RunConfig, out_dir: Path | None) -> dict[str, Any]:
    """Like ``fake_run`` but writes no trace and reports no weight change."""
    summary = fake_run(cfg, None)
    summary.pop("weight_change")
    return summary


def bad_summary_run(cfg: RunConfig, out_dir: Path | None) -> dict[str, Any]:
    """Returns a summary without ``steps_to_success``."""
    return {"steps": cfg.steps}
