"""Many sweep runs as one engine population: the same per-run results, one process, one track.

Runs that differ only in their seed and learning rate (same rule, network shape, track, world,
filters) can share one :class:`~sarlearn.engine.FastClosedLoop` population
(:meth:`~sarlearn.engine.FastClosedLoop.from_configs`): agent k is bit-identical to the single
run of ``cfgs[k]``. :func:`run_population` drives such a population with the chunk schedule of
:func:`~sarlearn.runs.run.run_follow` (``CHUNK`` steps, cut at every
``checkpoint_every``) and applies run_follow's stop rule to each agent on its own, so every
agent's summary has the numbers its solo run would have:

- an agent whose robot leaves the line ends there (its trace cut at that step, its weights read
  at the end of that chunk, as run_follow does); the others go on;
- a run that diverges raises for the whole population; the caller then splits the population
  (see :func:`sarlearn.sweeps.sweep.execute_population`), so a diverging run ends up alone
  and goes through run_follow itself.

What a population does not give: the per-run output folder (figures, ``network.npz``,
checkpoints), so a killed population restarts from step 0, and ``stop_at_success`` (such runs
go one by one, to stop exactly where run_follow stops). The trace is kept downsampled only
(every ``trace_every``-th step, plus the full error for the metrics).
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.loop import RECORDS
from sarlearn.metrics import (
    DEAD_SPAN,
    SuccessCriterion,
    above_threshold,
    moving_sum,
    steering_max,
    summarise_errors,
    summarise_settling,
)
from sarlearn.store.records import block_means
from sarlearn.version import __version__

if TYPE_CHECKING:
    import pandas as pd

#: Config fields that may differ within one population (everything else must agree).
PER_AGENT_FIELDS = (("seed",), ("rule", "lr"), ("rule", "layer_lr_scale"))


def population_key(cfg: RunConfig) -> str | None:
    """Runs with the same key can run as one engine population; None: this run cannot (it
    needs run_follow itself: the numpy engine, the reflex alone, ``stop_at_success``, or
    ``world.realism`` on, which only the numpy loop simulates).
    Ground-sensor and camera inputs both run in the engine."""
    if (
        cfg.engine == "numpy"
        or cfg.world.inputs not in ("rows", "camera")
        or cfg.rule.name == "reflex"
        or cfg.stop_at_success
        or cfg.world.realism.active
    ):
        return None
    data = cfg.model_dump(mode="json")
    for path in PER_AGENT_FIELDS:
        node = data
        for part in path[:-1]:
            node = node[part]
        node.pop(path[-1], None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class _Agent:
    """What is kept of one agent while the population runs."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.errors: list[np.ndarray] = []  # full, for the metrics
        self.off: list[np.ndarray] = []
        self.steering: list[np.ndarray] = []  # full, for the smoothness measures
        self.saturated: np.ndarray | None = None  # (<= DEAD_SPAN, L): the dead-unit window
        self.rows: list[dict[str, np.ndarray]] = []  # every ``every``-th step, all records
        self.stop: int | None = None  # steps run (exclusive end) once stopped
        self.status, self.message = "finished", ""
        self.final_wc: np.ndarray | None = None


def run_population(
    cfgs: Sequence[RunConfig],
    trace_every: int = 10,
    chunk: int | None = None,
    trace_format: str = "frame",
) -> list[dict[str, Any]]:
    """Run ``cfgs`` as one engine population; return one summary per config, in order.

    Each summary has the keys of run_follow's (``status`` ``finished`` or ``off_track``,
    ``steps_to_success``, the error metrics, ``weight_change``, ...) plus ``population`` (its
    size) and ``trace``: the run's trace downsampled as
    :func:`~sarlearn.store.store.downsample_trace` would (None with ``trace_every=0``).
    ``steps_per_second`` is the run's steps over the population's loop time. With
    ``trace_format="columns"`` the trace is the frame's columns instead (a dict of name ->
    1-d numpy array, in the frame's order; the sweep stores them without pandas).

    Raises:
        ValueError: the configs cannot share a population (different keys).
        NotImplementedError: the engine does not cover these configs.
        DivergenceError, NonFiniteError: some run diverged (the population is lost).
    """
    from sarlearn.agent import check_rule_name
    from sarlearn.engine import FastClosedLoop
    from sarlearn.runs.run import CHUNK, run_measures

    if trace_format not in ("frame", "columns"):
        raise ValueError(f"trace_format {trace_format!r}: expected 'frame' or 'columns'")
    if not cfgs:
        return []
    keys = {population_key(c) for c in cfgs}
    if len(keys) != 1 or None in keys:
        raise ValueError("run_population: the configs do not share one population key")
    first = cfgs[0]
    check_rule_name(first.rule.name)
    chunk = chunk or CHUNK
    crit = SuccessCriterion.from_config(first)
    loop = FastClosedLoop.from_configs(list(cfgs))
    loop.run(0)  # compile (or load the cache) before the clock starts
    P = len(cfgs)
    agents = [_Agent(trace_every) for _ in range(P)]
    ws_steps: list[np.ndarray] = []
    ws_vals: list[np.ndarray] = []
    loop_time = 0.0
    steps, ckpt = first.steps, first.checkpoint_every
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while loop.t < steps and any(a.stop is None for a in agents):
            n = min(chunk, ckpt - loop.t % ckpt, steps - loop.t)
            t0 = time.perf_counter()
            rec = loop.run(n, sync=False)  # only the records and weight_change() are read
            loop_time += time.perf_counter() - t0
            step = rec["step"]
            ws_steps.append(rec["weight_steps"])
            ws_vals.append(rec["weight_change"])
            keep = step % trace_every == 0 if trace_every else None
            wc_now = None
            for k, agent in enumerate(agents):
                if agent.stop is not None:
                    continue
                off = rec["off_track"][k]
                end = len(step)
                if off.any():  # run_follow's stop: the trace ends at the first off-track step
                    end = int(np.argmax(off)) + 1
                    first_off = int(step[end - 1])
                    agent.stop = first_off + 1
                    agent.status = "off_track"
                    agent.message = f"the robot lost the line (off track at step {first_off})"
                    if wc_now is None:
                        wc_now = loop.weight_change()
                    agent.final_wc = wc_now[k]
                agent.errors.append(rec["error"][k, :end])
                agent.off.append(off[:end])
                agent.steering.append(rec["steering"][k, :end])
                sat = rec["saturated"][k, :end]
                if agent.saturated is not None:
                    sat = np.concatenate([agent.saturated, sat])
                agent.saturated = sat[-DEAD_SPAN:]
                if keep is not None:
                    sel = keep[:end]
                    kept_sat = rec["saturated"][k, :end][sel]
                    agent.rows.append(
                        {
                            "step": step[:end][sel],
                            **{c: rec[c][k, :end][sel] for c in RECORDS},
                            **{f"saturated_{i}": kept_sat[:, i] for i in range(kept_sat.shape[1])},
                        }
                    )
    final_wc = loop.weight_change()
    w_steps = np.concatenate(ws_steps) if ws_steps else np.zeros(0, np.int64)
    w_vals = np.concatenate(ws_vals, axis=1) if ws_vals else np.zeros((P, 0, loop.n_layers))
    written = datetime.now().isoformat(timespec="seconds")
    out = []
    for k, (cfg, agent) in enumerate(zip(cfgs, agents, strict=True)):
        errors = np.concatenate(agent.errors) if agent.errors else np.zeros(0)
        off = np.concatenate(agent.off) if agent.off else np.zeros(0, bool)
        stats = summarise_errors(errors, off, crit, span=1000)
        sat = agent.saturated
        if sat is not None and len(sat) < len(errors):
            # Only the last DEAD_SPAN steps count (dead_units); the older ones were not kept.
            sat = np.concatenate([np.ones((len(errors) - len(sat), sat.shape[1])), sat])
        settle = summarise_settling(
            errors,
            np.concatenate(agent.steering) if agent.steering else np.zeros(0),
            sat,
            crit,
            steering_max(cfg.readout, cfg.network.activation),
        )
        wc = agent.final_wc if agent.final_wc is not None else final_wc[k]
        n_run = int(stats["steps"])
        rate = n_run / loop_time if loop_time > 0 else None
        out.append(
            {
                **run_measures(cfg, stats, settle),
                "steps_per_second": rate if rate is None or math.isfinite(rate) else None,
                "weight_change": [float(v) for v in wc],
                "interrupted": False,
                "status": agent.status,
                "message": agent.message,
                "resumed_from": None,
                "problems": [],
                "population": P,
                "out_dir": None,
                "files": [],
                "sarlearn_version": __version__,
                "python": platform.python_version(),
                "written_at": written,
                "config": cfg.model_dump(mode="json"),
                "trace": (
                    _trace(agent, errors, crit, w_steps, w_vals[k], trace_format)
                    if trace_every
                    else None
                ),
            }
        )
    return out


def _trace(
    agent: _Agent,
    errors: np.ndarray,
    crit: SuccessCriterion,
    w_steps: np.ndarray,
    w_vals: np.ndarray,
    trace_format: str = "frame",
) -> pd.DataFrame | dict[str, np.ndarray]:
    """The agent's downsampled trace, the same frame as ``downsample_trace(trace_table(rec))``
    of its solo run: every kept record, the weight change per layer carried forward from its
    last sample, and ``abs_error`` (mean |error| over the ``every`` steps from each row).
    ``trace_format="columns"``: the frame's columns (a dict), no DataFrame made."""
    every = agent.every
    if agent.rows:
        cols = {key: np.concatenate([r[key] for r in agent.rows]) for key in agent.rows[0]}
    else:
        cols = {"step": np.zeros(0, np.int64), **{c: np.zeros(0) for c in RECORDS}}
    # The columns are gathered first and the frame built once (inserting them one by one into
    # a frame costs more than everything else here); same columns, order and values.
    n_rows = len(cols["step"])
    n_steps = len(errors)
    if n_rows:  # as trace_table: the moving sum and the settling flag, at the kept steps
        at = cols["step"]  # a population run starts at step 0
        cols["moving_sum"] = moving_sum(np.abs(errors), crit.window)[at]
        cols["above_threshold"] = above_threshold(errors, crit)[at]
    if n_rows and len(w_steps):
        steps = cols["step"]
        w_keep = w_steps < n_steps  # as Records.truncate: samples taken within the run
        ws, wv = w_steps[w_keep], w_vals[w_keep]
        if len(ws):
            idx = np.searchsorted(ws, steps, side="right") - 1
            for layer in range(wv.shape[1]):
                cols[f"weight_change_l{layer}"] = np.where(
                    idx >= 0, wv[np.maximum(idx, 0), layer], 0.0
                )
    if "error" in cols:
        cols["abs_error"] = block_means(np.abs(errors), every)
    if trace_format == "columns":
        return cols
    import pandas as pd

    return pd.DataFrame(cols)
