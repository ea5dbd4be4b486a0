"""World realism: each effect does what it says, off changes nothing, runs stay reproducible."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sarlearn.config import ConfigError, RealismConfig, RunConfig, WorldConfig
from sarlearn.loop import ClosedLoop
from sarlearn.stages.world.realism import (
    REALISTIC,
    Realism,
    RealismParams,
    apply_deadband,
    blur,
    expose,
    illumination,
    lag_factor,
    lit_darkness,
    quantise,
    relative_darkness,
    track_floor,
    wheel_gains,
)
from sarlearn.stages.world.sim import SimWorld

DT = 0.05


def realism(**kw: object) -> Realism:
    params = RealismParams(**kw)  # type: ignore[arg-type]
    return Realism(params, 1, DT, 250.0, 250.0, np.random.default_rng(0))


def world(seed: int = 0, **realism_kw: object) -> SimWorld:
    cfg = WorldConfig(track="oval", realism=RealismConfig(**realism_kw))  # type: ignore[arg-type]
    return SimWorld(cfg, rng=np.random.default_rng(seed))


# ---------------------------------------------------------------------- off changes nothing
def test_off_is_the_ideal_world() -> None:
    assert not RealismConfig().active
    assert world().realism is None
    # Neutral values given explicitly are still off: the simulator runs none of it.
    assert world(sensor_noise=0.0, delay=0, motor_tau=0.0, camera_exposure=1.0).realism is None
    assert world(preset="realistic").realism is not None


def test_off_run_equals_explicit_neutral_run() -> None:
    base = RunConfig().with_overrides({"world.track": "oval", "engine": "numpy", "seed": 2})
    neutral = base.with_overrides(
        {"world.realism.preset": "off", "world.realism.delay": 0, "world.realism.adc_bits": 0}
    )
    a = ClosedLoop.from_config(base).run(300)
    b = ClosedLoop.from_config(neutral).run(300)
    for key in ("error", "steering", "x", "y", "heading"):
        np.testing.assert_array_equal(a[key], b[key])


# ---------------------------------------------------------------------- motors
@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_delay_shifts_the_command_by_exactly_k_cycles(k: int) -> None:
    r = realism(delay=k)
    cmds = np.arange(1.0, 11.0)
    got = np.array([r.drive([c], [-c])[0][0] for c in cmds])
    expected = np.concatenate([np.zeros(k), cmds[: len(cmds) - k]])  # at rest until then
    np.testing.assert_array_equal(got, expected)


def test_delayed_world_follows_the_ideal_path_k_cycles_late() -> None:
    k = 2
    ideal, late = world(), world(delay=k)
    rng = np.random.default_rng(5)
    cmds = 30.0 + rng.normal(0.0, 5.0, (12, 2))
    for i, (vl, vr) in enumerate(cmds):
        late.set_wheel_speeds(vl, vr)
        if i >= k:
            ideal.set_wheel_speeds(*cmds[i - k])
        else:
            ideal.set_wheel_speeds(0.0, 0.0)
    np.testing.assert_array_equal(late.pose, ideal.pose)


def test_deadband_zeroes_small_commands_only() -> None:
    v = np.array([-6.0, -5.0, -4.9, 0.0, 3.0, 4.99, 5.0, 7.0])
    np.testing.assert_array_equal(
        apply_deadband(v, 5.0), [-6.0, -5.0, 0.0, 0.0, 0.0, 0.0, 5.0, 7.0]
    )
    r = realism(deadband=5.0)
    assert r.drive([4.0], [6.0]) == (pytest.approx([0.0]), pytest.approx([6.0]))


def test_lag_step_response_is_first_order() -> None:
    tau = 0.2
    r = realism(motor_tau=tau)
    got = np.array([r.drive([30.0], [30.0])[0][0] for _ in range(20)])
    n = np.arange(1, 21)
    np.testing.assert_allclose(got, 30.0 * (1.0 - np.exp(-n * DT / tau)), rtol=1e-12)
    assert lag_factor(0.0, DT) == 1.0  # no lag: the command at once


def test_wheel_mismatch_turns_a_straight_command() -> None:
    assert wheel_gains(0.1) == pytest.approx((1.05, 0.95))
    r = realism(wheel_mismatch=0.1)
    assert r.drive([20.0], [20.0]) == (pytest.approx([21.0]), pytest.approx([19.0]))
    w = world(wheel_mismatch=0.1)
    start = w.pose[0, 2]
    w.set_wheel_speeds(30.0, 30.0)
    # the stronger left wheel turns the robot clockwise (heading decreases)
    assert math.remainder(w.pose[0, 2] - start, 2 * math.pi) < -1e-3


# ---------------------------------------------------------------------- sensing
def test_noise_statistics() -> None:
    r = realism(sensor_noise=0.02)
    ideal = np.full((1, 200_000), 0.5)
    d = r.sense(ideal, None, 0) - 0.5
    assert abs(d.mean()) < 4 * 0.02 / math.sqrt(d.size)
    assert d.std() == pytest.approx(0.02, rel=0.01)
    # readings stay in [0, 1]: noise on the white floor is clipped at 0
    low = r.sense(np.zeros((1, 1000)), None, 0)
    assert low.min() == 0.0 and 0 < low.mean() < 0.02


def test_adc_quantisation() -> None:
    x = np.linspace(0.0, 1.0, 5001)[None]
    q = quantise(x, 10)
    np.testing.assert_allclose(q * 1023, np.round(q * 1023), atol=1e-9)
    assert np.abs(q - x).max() <= 0.5 / 1023 + 1e-12
    assert len(np.unique(realism(adc_bits=2).sense(x, None, 0))) == 4


def test_lighting_gradient_and_drift() -> None:
    p = RealismParams(light_gradient=0.2, light_drift=0.1, light_drift_period=100)
    # gradient along x: 0.9 .. 1.1 across the arena, 1 at the centre
    at = illumination(np.array([0.0, 125.0, 250.0]), 125.0, 0, p, 250.0, 250.0)
    np.testing.assert_allclose(at, [0.9, 1.0, 1.1])
    # drift: + amplitude a quarter period in, back to the gradient's value after a period
    assert illumination(125.0, 125.0, 25, p, 250.0, 250.0) == pytest.approx(1.1)
    assert illumination(125.0, 125.0, 100, p, 250.0, 250.0) == pytest.approx(1.0)
    # a white floor under less light reads grey, the black line stays black
    np.testing.assert_allclose(lit_darkness([0.0, 1.0], 0.9), [0.1, 1.0])
    # in the world: the same pose reads differently where the light differs
    w = world(light_gradient=0.5)
    assert w.realism is not None
    ideal = w.sensors.read(w.track, w.pose)
    assert not np.array_equal(w.read_ground(), ideal)


def test_off_track_uses_the_ideal_readings() -> None:
    # heavy noise makes every sensor "see" a line; off-track must not be fooled
    w = world(sensor_noise=0.5)
    w.pose = (-50.0, -50.0, 0.0)  # outside the arena: no line anywhere
    for _ in range(5):
        w.set_wheel_speeds(0.0, 0.0)
    assert (w.read_ground() > 0.1).any()
    assert w.lost_steps[0] == 5


# ---------------------------------------------------------------------- camera
def test_blur_keeps_uniform_images_and_spreads_edges() -> None:
    flat = np.full((2, 6, 8), 0.3)
    np.testing.assert_allclose(blur(flat, 1.5), flat)
    edge = np.zeros((1, 6, 8))
    edge[..., 4:] = 1.0
    b = blur(edge, 1.0)
    assert 0 < b[0, 0, 3] < 0.5 < b[0, 0, 4] < 1
    np.testing.assert_array_equal(blur(edge, 0.0), edge)


def test_exposure() -> None:
    d = np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(expose(d, 1.0, 1.0), d)
    np.testing.assert_allclose(expose(d, 1.0, 0.6), [0.4, 0.7, 1.0])  # under: floor grey
    np.testing.assert_allclose(expose(d, 1.0, 1.5), [0.0, 0.25, 1.0])  # over: light saturates


def test_camera_frames_in_the_world() -> None:
    cfg = WorldConfig(track="oval", inputs="camera")
    ideal = SimWorld(cfg).grab_frame()
    real = SimWorld(
        cfg.model_copy(update={"realism": RealismConfig(camera_blur=1.0, camera_exposure=1.3)})
    ).grab_frame()
    assert ideal is not None and real is not None and real.shape == ideal.shape
    assert not np.array_equal(real, ideal)
    assert real.min() >= 0.0 and real.max() <= 1.0


# ---------------------------------------------------------------------- config and runs
def test_preset_and_overrides() -> None:
    assert RealismConfig(preset="realistic").resolve() == REALISTIC
    mixed = RealismConfig(preset="realistic", sensor_noise=0.0, adc_bits=0)
    p = mixed.resolve()
    assert p.sensor_noise == 0.0 and p.adc_bits is None and p.motor_tau == REALISTIC.motor_tau
    cfg = RunConfig().with_overrides({"world.realism.preset": "realistic"})
    assert cfg.world.realism.active
    # a dumped and re-read config keeps the preset's meaning
    assert RunConfig.model_validate(cfg.model_dump()).world.realism.resolve() == REALISTIC


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"world.realism.delay": 4}, "delay"),
        ({"world.realism.sensor_noise": -0.1}, "sensor_noise"),
        ({"world.realism.preset": "noisy"}, "preset"),
        ({"world.realism.light_gradient": 0.8, "world.realism.light_drift": 0.7}, "light"),
        ({"world.realism.preset": "realistic", "engine": "fast"}, "numpy loop only"),
    ],
)
def test_bad_settings_are_clear_config_errors(override: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RunConfig().with_overrides(override)


def test_engine_auto_runs_realism_on_the_numpy_loop() -> None:
    from sarlearn.engine import FastClosedLoop, make_closed_loop
    from sarlearn.sweeps.population import population_key

    cfg = RunConfig().with_overrides({"world.realism.sensor_noise": 0.01, "world.track": "oval"})
    loop = make_closed_loop(cfg)
    assert type(loop) is ClosedLoop
    assert population_key(cfg) is None
    with pytest.raises(NotImplementedError, match="numpy loop only"):
        FastClosedLoop(ClosedLoop.from_config(cfg))


def test_realistic_runs_are_reproducible_from_the_seed() -> None:
    cfg = RunConfig().with_overrides(
        {"world.track": "oval", "world.realism.preset": "realistic", "seed": 4}
    )
    a = ClosedLoop.from_config(cfg).run(200)
    b = ClosedLoop.from_config(cfg).run(200)
    c = ClosedLoop.from_config(cfg.with_overrides({"seed": 5})).run(200)
    for key in ("error", "steering", "x"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["sensor_left"], c["sensor_left"])
    # the noise comes from a child generator: the start poses are those of realism off
    off = ClosedLoop.from_config(cfg.with_overrides({"world.realism.preset": "off"}))
    np.testing.assert_array_equal(off.robot.starts, ClosedLoop.from_config(cfg).robot.starts)


def test_state_dict_round_trip_continues_identically() -> None:
    w = world(seed=1, preset="realistic", delay=2)
    for _ in range(3):
        w.set_wheel_speeds(30.0, 25.0)
    state = w.state_dict()
    after = []
    for _ in range(4):
        w.set_wheel_speeds(28.0, 31.0)
        after.append(w.read_ground())
    w.load_state_dict(state)
    for expected in after:
        w.set_wheel_speeds(28.0, 31.0)
        np.testing.assert_array_equal(w.read_ground(), expected)


def test_follow_cli_realism_flag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from typer.testing import CliRunner

    from sarlearn.cli import app

    out = tmp_path / "run"
    args = ["follow", "--track", "oval", "--steps", "200", "--realism", "realistic"]
    result = CliRunner().invoke(app, [*args, "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["world"]["realism"]["preset"] == "realistic"
    bad = CliRunner().invoke(app, [*args[:-1], "bright", "--no-progress"])
    assert bad.exit_code == 2 and "preset" in bad.output


def test_gym_environments_refuse_realism() -> None:
    from sarlearn.gym.core import LineFollowerCore
    from sarlearn.gym.options import make_options

    opts = make_options("oval", world={"realism": {"preset": "realistic"}})
    for backend in ("numpy", "compiled"):
        with pytest.raises(ConfigError, match="gym environments"):
            LineFollowerCore(opts, backend=backend)


def test_preflight_notes_on_realism() -> None:
    from sarlearn.runs.preflight import realism_warnings, setting_warnings

    assert realism_warnings(RunConfig()) == []
    notes = realism_warnings(RunConfig().with_overrides({"world.realism.preset": "realistic"}))
    assert any("numpy loop" in n for n in notes) and not any("sensor_noise" in n for n in notes)
    raw = RunConfig().with_overrides(
        {"world.realism.preset": "realistic", "world.realism.sensor_margin": 0.0}
    )
    assert any("sensor_noise" in n for n in realism_warnings(raw))
    delayed = RunConfig().with_overrides({"world.realism.delay": 1})
    assert any("error_gain = 25" in n for n in setting_warnings(delayed))
    slower = delayed.with_overrides({"world.error_gain": 25.0})
    assert not any("overshoots" in n for n in realism_warnings(slower))


# ---------------------------------------------------------------------- the robot's answers
def test_margin_makes_a_noisy_bare_floor_read_zero() -> None:
    """The calibration's dead zone: 5 noise widths above the floor's level read 0, so a
    robot between the line's edges senses no error; the line itself still reads dark."""
    r = realism(sensor_noise=0.01, adc_bits=10, sensor_margin=5.0)
    floor = r.sense(np.zeros((1, 100_000)), None, 0)
    assert np.count_nonzero(floor) <= 2  # a 5-sigma blip is one reading in ~3.5 million
    line = r.sense(np.ones((1, 1000)), None, 0)
    assert line.min() > 0.95
    # relative_darkness maps floor + margin to 0 and 1 to 1, linearly between
    np.testing.assert_allclose(relative_darkness([0.05, 0.525, 1.0], 0.0, 0.05), [0, 0.5, 1])
    # without noise a margin is no margin: nothing changes, the world stays ideal
    assert not RealismParams(sensor_margin=5.0).active


def test_floor_tracking_cancels_a_lighting_gradient() -> None:
    """Each sensor's running floor estimate absorbs the light it sits under, so two sensors
    under different light both read a bare floor as 0 and the line as dark."""
    r = realism(sensor_noise=0.01, sensor_margin=5.0, floor_tracking=20.0)
    dim = np.array([[0.12, 0.05]])  # a grey floor: less light under the left sensor
    for _ in range(300):
        out = r.sense(dim, None, 0)
    assert r.floor is not None
    np.testing.assert_allclose(r.floor[0], [0.12, 0.05], atol=0.01)
    assert np.count_nonzero(out) == 0
    # the line (far darker than the estimate) reads dark and leaves the estimate alone
    before = r.floor.copy()
    line = r.sense(np.array([[1.0, 1.0]]), None, 0)
    assert line.min() > 0.95
    np.testing.assert_array_equal(r.floor, before)
    # track_floor: a reading near the estimate moves it by 1/cycles of the gap
    np.testing.assert_allclose(track_floor(np.array([0.0]), np.array([0.1]), 10.0), [0.01])
    np.testing.assert_allclose(track_floor(np.array([0.0]), np.array([0.9]), 10.0), [0.0])


def test_floor_tracking_in_the_world_and_its_state() -> None:
    """In the simulator under a gradient the bare floor's readings go back to 0 with
    tracking, and the floor estimates travel with the world's state."""
    x, y = world().pose[0, :2]
    towards_centre = math.degrees(math.atan2(125.0 - y, 125.0 - x))  # the robot in the dim half
    grad = {"light_gradient": 0.3, "light_angle_deg": towards_centre}
    plain, tracked = world(**grad), world(floor_tracking=10.0, **grad)
    for w in (plain, tracked):
        for _ in range(100):
            w.set_wheel_speeds(0.0, 0.0)  # standing still: the same floor under every sensor
    ideal = plain.sensors.read(plain.track, plain.pose)
    floor = ideal[0] == 0.0
    assert plain.read_ground()[0][floor].max() > 0.03  # dimmed floor reads grey
    assert tracked.read_ground()[0][floor].max() < 1e-3
    state = tracked.state_dict()
    assert tracked.realism is not None and tracked.realism.floor is not None
    again = world(floor_tracking=10.0, **grad)
    again.load_state_dict(state)
    assert again.realism is not None
    np.testing.assert_array_equal(again.realism.floor, tracked.realism.floor)
