"""run_follow end to end: learning, outputs, stop conditions, interruption, crash, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from engine_switch import force_numpy_engine
from sarlearn.config import ConfigError, RunConfig
from sarlearn.loop import ClosedLoop
from sarlearn.runs import outputs
from sarlearn.runs.run import RunInterrupted, run_follow
from summaries import VOLATILE


def cfg_of(**over: Any) -> RunConfig:
    base = {
        "world.track": "circle",
        "network.layers": [2],
        "rule.name": "gdm",
        "rule.lr": 1e-4,
        "steps": 600,
        "checkpoint_every": 1000,
    }
    base.update(over)
    return RunConfig().with_overrides(base)


def fail_at(monkeypatch: pytest.MonkeyPatch, step: int, exc: BaseException) -> None:
    """Make ClosedLoop.step raise ``exc`` when it is about to run global step ``step`` (and
    run the reference loop, whose steps can be patched one by one)."""
    force_numpy_engine(monkeypatch)
    original = ClosedLoop.step

    def step_or_fail(self: ClosedLoop) -> dict[str, np.ndarray]:
        if self.t == step:
            raise exc
        return original(self)

    monkeypatch.setattr(ClosedLoop, "step", step_or_fail)


@pytest.mark.parametrize(("rule", "lr"), [("gdm", 1e-4), ("sar", 1e-5)])
def test_shallow_network_learns_on_a_gentle_track(rule: str, lr: float, tmp_path: Path) -> None:
    # the plain step these rates were chosen for (sar's default step adds bounds)
    inf = float("inf")
    plain = {"rule.step_norm": "none", "rule.slope_gate": False, "rule.weight_bound": inf,
             "rule.hidden_weight_bound": inf}  # fmt: skip
    cfg = cfg_of(**{"rule.name": rule, "rule.lr": lr, "steps": 2000, **plain})
    s = run_follow(cfg, tmp_path / rule)
    early, late = s["mean_abs_error_first_1000"], s["mean_abs_error_last_1000"]
    assert s["status"] == "finished" and s["steps"] == 2000
    assert late < 0.5 * early, (early, late)
    assert s["weight_change"][0] > 0
    assert s["off_track_steps"] == 0
    assert s["init_align"] == 0.0  # no hidden bound: the rows unturned


def test_reflex_alone_does_not_succeed_on_curvy(tmp_path: Path) -> None:
    s = run_follow(
        cfg_of(**{"world.track": "curvy", "rule.name": "reflex", "steps": 2500}), tmp_path
    )
    assert s["steps_to_success"] is None and not s["success"]
    assert s["weight_change"] == []
    assert s["mean_abs_error_last_1000"] > 1.0
    assert not (tmp_path / "network.npz").exists()
    assert not s["settled"] and s["settled_step"] is None and s["relapses"] is None
    assert s["above_threshold_fraction"] > 0.5 and s["settle_window"] == 2300
    assert s["steering_flips_per_1000"] == 0.0  # y = 0 throughout
    assert s["saturated_steering_fraction"] is None and s["dead_units"] is None
    assert s["init_align"] is None


def test_output_folder_contents(tmp_path: Path) -> None:
    s = run_follow(cfg_of(steps=300), tmp_path / "run", video=True)
    out = tmp_path / "run"
    for name in (
        "summary.json",
        "trace.parquet",
        "config.json",
        "learning.png",
        "path.png",
        "weights.png",
        "network.npz",
    ):
        assert (out / name).is_file(), name
    assert (out / "run.mp4").is_file() or (out / "run.gif").is_file()
    assert not (out / "checkpoint.pkl").exists()  # finished: nothing to resume
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["rule"] == "gdm" and on_disk["init_align"] == 0.0  # no hidden bound
    for key in (
        "rule",
        "seed",
        "track",
        "steps",
        "steps_to_success",
        "mean_abs_error_first_1000",
        "mean_abs_error_last_1000",
        "off_track_steps",
        "steps_per_second",
        "weight_change",
        "interrupted",
        "status",
        "config",
        "settled_step",
        "settled",
        "settle_window",
        "above_threshold_fraction",
        "relapses",
        "steering_flips_per_1000",
        "saturated_steering_fraction",
        "dead_units",
        "dead_layers",
    ):
        assert key in on_disk, key
    assert on_disk["config"] == s["config"] and on_disk["problems"] == []
    trace = pd.read_parquet(out / "trace.parquet")
    assert len(trace) == 300
    for col in ("step", "error", "steering", "left", "right", "x", "y", "heading", "off_track"):
        assert col in trace.columns, col
    # the settling measures agree with the trace they were computed from
    n_layers = len(s["config"]["network"]["layers"])
    assert [f"saturated_{i}" for i in range(n_layers)] == [
        c for c in trace.columns if c.startswith("saturated_")
    ]
    assert len(on_disk["dead_units"]) == n_layers
    assert on_disk["settle_window"] == 300 - 200  # clipped: the steps after warm-up
    above = trace["above_threshold"].to_numpy()
    assert on_disk["above_threshold_fraction"] == pytest.approx(above[-100:].mean())
    assert on_disk["settled"] == (not above[-100:].any())
    np.testing.assert_allclose(
        trace["moving_sum"], trace["error"].abs().rolling(200, min_periods=1).sum(), atol=1e-9
    )
    np.testing.assert_allclose(
        trace["right"] - trace["left"], 2 * (trace["error"] + 5.0 * trace["steering"])
    )


def test_settle_window_longer_than_the_run_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="settle_window 600 is longer than the run"):
        RunConfig().with_overrides({"steps": 500, "settle_window": 600})
    with pytest.raises(ConfigError, match="settle_window"):
        RunConfig().with_overrides({"settle_window": 0})
    assert RunConfig().with_overrides({"steps": 500, "settle_window": 500}).settle_window == 500


def test_stop_at_success_is_exact_whatever_the_chunk(tmp_path: Path) -> None:
    cfg = cfg_of(steps=3000, stop_at_success=True, **{"world.track": "circle"})
    a = run_follow(cfg, tmp_path / "a")
    b = run_follow(cfg, tmp_path / "b", chunk=77)
    assert a["steps_to_success"] is not None
    assert a["steps"] == a["steps_to_success"] + cfg.success_hold
    assert "stopped at success" in a["message"]
    assert a["steps"] == b["steps"] and a["weight_change"] == b["weight_change"]


def test_off_track_ends_the_run(tmp_path: Path) -> None:
    cfg = cfg_of(**{"world.start": (20.0, 20.0, 3.9), "world.off_track_after": 30})
    s = run_follow(cfg, tmp_path)
    assert s["status"] == "off_track" and s["steps"] < 600
    assert "lost the line" in s["message"]
    assert s["off_track_steps"] == 1  # the run ends at the first off-track step


def test_divergence_ends_cleanly(tmp_path: Path) -> None:
    # A linear network cannot saturate its way out of the blow-up.
    s = run_follow(cfg_of(**{"rule.lr": 1e308, "network.activation": "linear"}), tmp_path)
    assert s["status"] == "diverged"
    assert "diverged" in s["message"] and "non-finite" in s["message"]
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"
    assert len(pd.read_parquet(tmp_path / "trace.parquet")) == s["steps"]


def test_crash_leaves_a_readable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_at(monkeypatch, 123, RuntimeError("motor on fire"))
    with pytest.raises(RuntimeError, match="motor on fire") as info:
        run_follow(cfg_of(), tmp_path)
    assert any(str(tmp_path) in n for n in info.value.__notes__)
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["status"] == "failed" and "motor on fire" in s["message"]
    assert s["steps"] == 123 and not s["interrupted"]
    assert "motor on fire" in (tmp_path / "error.txt").read_text()
    assert len(pd.read_parquet(tmp_path / "trace.parquet")) == 123


def test_resume_equals_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = cfg_of(
        steps=900, checkpoint_every=300, engine="numpy", **{"rule.name": "sar", "rule.lr": 1e-5}
    )
    whole = run_follow(cfg, tmp_path / "whole")

    with monkeypatch.context() as m:
        fail_at(m, 700, KeyboardInterrupt())
        with pytest.raises(RunInterrupted) as info:
            run_follow(cfg, tmp_path / "cut")
    cut = tmp_path / "cut"
    assert info.value.summary["interrupted"] and info.value.summary["steps"] == 700
    s = json.loads((cut / "summary.json").read_text())
    assert s["status"] == "interrupted" and s["interrupted"] is True
    assert len(pd.read_parquet(cut / "trace.parquet")) == 700  # everything that was done
    assert (cut / "checkpoint.pkl").is_file()

    resumed = run_follow(None, cut, resume=True)
    assert resumed["resumed_from"] == 600  # the last checkpoint
    assert {k: v for k, v in resumed.items() if k not in VOLATILE} == {
        k: v for k, v in whole.items() if k not in VOLATILE
    }
    pd.testing.assert_frame_equal(
        pd.read_parquet(cut / "trace.parquet"), pd.read_parquet(tmp_path / "whole/trace.parquet")
    )
    # a finished run has nothing left to resume
    assert run_follow(None, cut, resume=True)["status"] == "finished"


def test_fast_engine_resume_equals_uninterrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sarlearn.engine import FastClosedLoop

    cfg = cfg_of(steps=900, checkpoint_every=300, **{"rule.name": "sar", "rule.lr": 1e-3})
    whole = run_follow(cfg, tmp_path / "whole")
    original = FastClosedLoop.run

    def run_or_interrupt(self: FastClosedLoop, n: int) -> dict[str, np.ndarray]:
        if self.t >= 700:
            raise KeyboardInterrupt
        return original(self, n)

    with monkeypatch.context() as m:
        m.setattr(FastClosedLoop, "run", run_or_interrupt)
        with pytest.raises(RunInterrupted):
            run_follow(cfg, tmp_path / "cut")
    resumed = run_follow(None, tmp_path / "cut", resume=True)
    assert resumed["resumed_from"] == 600
    assert {k: v for k, v in resumed.items() if k not in VOLATILE} == {
        k: v for k, v in whole.items() if k not in VOLATILE
    }


def test_folder_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = run_follow(cfg_of(steps=50))
    assert Path(s["out_dir"]).parent.name == "runs"
    assert Path(s["out_dir"]).name.startswith("follow-gdm-circle-s0-")
    with pytest.raises(ConfigError, match="already holds a run"):
        run_follow(cfg_of(steps=50), s["out_dir"])
    with pytest.raises(ConfigError, match="cannot resume"):
        run_follow(None, tmp_path / "nothing", resume=True)
    with pytest.raises(ConfigError, match="unknown rule"):
        run_follow(cfg_of(**{"rule.name": "nope"}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_checkpoint_roundtrip_keeps_shared_objects_out(tmp_path: Path) -> None:
    big = np.zeros(1000)
    path = outputs.save_checkpoint(tmp_path / "c.pkl", {"a": big, "b": [big]}, {"big": big})
    assert path.stat().st_size < 1000
    state = outputs.load_checkpoint(path, {"big": big})
    assert state["a"] is big and state["b"][0] is big


def test_camera_inputs_run_and_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = cfg_of(steps=300, checkpoint_every=100, **{"world.inputs": "camera"})
    fail_at(monkeypatch, 250, KeyboardInterrupt())
    with pytest.raises(RunInterrupted):
        run_follow(cfg, tmp_path)
    monkeypatch.undo()
    s = run_follow(None, tmp_path, resume=True)
    assert s["status"] == "finished" and s["steps"] == 300 and s["resumed_from"] == 200
    assert s["inputs"] == "camera"


def test_figures_can_be_skipped(tmp_path: Path) -> None:
    s = run_follow(cfg_of(steps=100), tmp_path, figures=False)
    assert s["status"] == "finished"
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "network.npz").is_file() and (tmp_path / "trace.parquet").is_file()


def test_summary_names_the_aligned_start_in_force(tmp_path: Path) -> None:
    # sar's default step bounds its hidden rows, and the aligned start goes with that bound
    s = run_follow(cfg_of(**{"rule.name": "sar", "network.layers": [10, 10, 2]}), tmp_path / "a")
    assert s["init_align"] == 0.9
    s = run_follow(
        cfg_of(**{"rule.name": "sar", "network.layers": [10, 10, 2], "network.init_align": 0.0}),
        tmp_path / "b",
    )
    assert s["init_align"] == 0.0
