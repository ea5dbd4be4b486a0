"""sar's row predictors are mirror differences by default; every other rule's are raw."""

from __future__ import annotations

from pathlib import Path

from sarlearn.cli.follow import build_config, loaded_defaults
from sarlearn.config import RunConfig
from sarlearn.engine import make_closed_loop
from sarlearn.loop import ClosedLoop


def test_the_predictor_mode_is_tied_to_the_rule_unless_set() -> None:
    assert RunConfig().predictor_mode == "mirror"
    assert RunConfig().with_overrides({"rule.name": "gdm"}).predictor_mode == "raw"
    assert RunConfig().with_overrides({"rule.name": "reflex"}).predictor_mode == "raw"
    assert RunConfig().with_overrides({"world.inputs": "camera"}).predictor_mode == "raw"
    assert RunConfig().with_overrides({"world.predictor_mode": "raw"}).predictor_mode == "raw"
    gdm_mirror = {"rule.name": "gdm", "world.predictor_mode": "mirror"}
    assert RunConfig().with_overrides(gdm_mirror).predictor_mode == "mirror"
    # the world section on its own is unchanged (None); the run's world gets the mode in force
    assert RunConfig().world.predictor_mode is None
    assert RunConfig().world_config.predictor_mode == "mirror"


def test_a_default_run_feeds_sar_the_mirror_differences() -> None:
    loop = ClosedLoop.from_config(RunConfig())
    assert loop.robot.n_predictors == 72 and loop.agent.network.n_inputs == 360
    assert loop.predictor_mode == "mirror"
    gdm = ClosedLoop.from_config(RunConfig().with_overrides({"rule.name": "gdm"}))
    assert gdm.robot.n_predictors == 144 and gdm.agent.network.n_inputs == 720


def test_a_loaded_network_brings_its_predictors_and_cap(tmp_path: Path) -> None:
    cfg = RunConfig().with_overrides({"network.layers": [4, 2], "world.track": "circle"})
    loop = make_closed_loop(cfg, engine="numpy")
    loop.run(20)
    loop.agent.save(tmp_path / "net.npz")
    implied = loaded_defaults(tmp_path / "net.npz")
    assert implied["world.predictor_mode"] == "mirror"
    assert implied["network.input_max_norm"] == float("inf")
    # driven frozen by another rule's loop, the saved mirror network still fits
    other = RunConfig().with_overrides(
        {**implied, "rule.name": "gdm", "load": str(tmp_path / "net.npz"), "freeze": True}
    )
    assert make_closed_loop(other, engine="numpy").agent.network.n_inputs == 360


def test_a_loaded_network_keeps_the_bounds_and_readout_it_learnt_with(tmp_path: Path) -> None:
    """A network trained with SPEC's readout [1, 2] and output bound 3 continues with both,
    not with today's [1.5, 3] and 2; a set value wins; another rule keeps its own step;
    unbounded stays unbounded."""
    old = {"network.layers": [4, 2], "network.readout": [1.0, 2.0], "rule.weight_bound": 3.0}
    loop = make_closed_loop(RunConfig().with_overrides(old), engine="numpy")
    loop.run(20)
    loop.agent.save(tmp_path / "net.npz")
    base = loaded_defaults(tmp_path / "net.npz")
    flags = {"load": str(tmp_path / "net.npz")}
    cfg = build_config(None, flags, base=base)
    assert cfg.readout == [1.0, 2.0]
    assert cfg.rule_config.step_options["weight_bound"] == 3.0
    assert cfg.rule_config.step_options["hidden_weight_bound"] == 1.4
    assert make_closed_loop(cfg, engine="numpy").agent.rule.weight_bound == 3.0
    wins = build_config(None, flags, ["rule.weight_bound=2.5"], base=base)
    assert wins.rule_config.step_options["weight_bound"] == 2.5
    gdm = build_config(None, {**flags, "rule.name": "gdm", "freeze": True}, base=base)
    assert gdm.rule_config.step_options["slope_gate"] is False
    free = RunConfig().with_overrides({**old, "rule.weight_bound": float("inf")})
    make_closed_loop(free, engine="numpy").agent.save(tmp_path / "free.npz")
    again = build_config(
        None, {"load": str(tmp_path / "free.npz")}, base=loaded_defaults(tmp_path / "free.npz")
    )
    assert again.rule_config.step_options["weight_bound"] is None  # inf: no bound
