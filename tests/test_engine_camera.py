"""Camera inputs in the engine: the compiled camera stage against its numpy twin
(``PinholeCamera.render`` + ``perception.darkness_predictors``), and the whole closed loop with
camera inputs against the reference, teacher-forced, on user images, a line touching the image
border and starts facing out of the image, for several rules and both dtypes.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from border_track import border_track_file
from engine_checks import assert_population_equals_single_runs
from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop, make_closed_loop
from sarlearn.errors import ShapeError
from sarlearn.loop import RECORDS, ClosedLoop
from sarlearn.stages import codes
from sarlearn.stages.perception.compiled import camera_arrays, camera_step, pairwise_sum
from sarlearn.stages.perception.perception import darkness_predictors
from sarlearn.stages.world.camera import PinholeCamera
from sarlearn.stages.world.track import Track
from sarlearn.stages.world.tracks import load_track
from sarlearn.sweeps.population import population_key


def camera_cfg(**overrides: Any) -> RunConfig:
    small = {"world.inputs": "camera", "network.layers": [6, 6, 2]}
    return RunConfig().with_overrides({**small, **overrides})


# ---------------------------------------------------------------------- the stage alone


@pytest.mark.parametrize("n", [*range(1, 20), 64, 127, 128, 129, 255, 300, 1037])
def test_pairwise_sum_is_numpys_bit_for_bit(n: int) -> None:
    a = np.random.default_rng(n).random((2, 3 * n + 5))
    assert pairwise_sum(a, 1, 2, n, 1) == np.add.reduce(a[1, 2 : 2 + n])
    # strided, as a band of image rows is summed column by column (np.add.reduceat, axis=-2)
    frame = a[:, : 3 * n].reshape(2, n, 3)
    got = frame[1, 0, 2] + pairwise_sum(a, 1, 3 + 2, n - 1, 3) if n > 1 else frame[1, 0, 2]
    assert got == np.add.reduceat(frame, [0], axis=-2)[1, 0, 2]


def run_stage(
    camera: PinholeCamera, track: Track, poses: np.ndarray, rows: int, cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The compiled stage for every pose: frames (P, H, W), predictors, and the predictors
    of the numpy frame pushed through the compiled segment grid."""
    P = len(poses)
    par, cam = camera_arrays(camera, rows, cols, P, record_frame=True)
    table = track.lookup_table
    img = np.array(table.flat)
    world = codes.WorldParams(
        inv=float(table.inv), height=float(table.height), umax=float(table.umax),
        vmax=float(table.vmax), stride=int(table.stride), speed=0.0, dt=0.0, axle=0.0,
        error_gain=0.0, net_gain=0.0, width=0.0, line_seen=0.0,
    )  # fmt: skip
    r_frame = np.zeros((P, 1, camera.shape[0] * camera.shape[1]))
    for p in range(P):
        camera_step(p, 0, poses, img, world, par, cam, r_frame)
    frame, pred = cam.frame, cam.pred
    np.testing.assert_array_equal(r_frame[:, 0], frame)  # the frame record is the frame
    return frame.reshape(P, *camera.shape), pred.copy()


CASES = {
    # camera geometry, track, segment grid
    "default-on-curvy": ({}, "curvy", (4, 8)),
    "supersample-1-uneven-grid": ({"supersample": 1}, "curvy", (5, 6)),
    "supersample-3-pixel-grid": (
        {"supersample": 3, "width": 12, "height_px": 10},
        "oval",
        (10, 12),
    ),
    "one-band-pairwise": ({"width": 40, "height_px": 30}, "oval", (1, 2)),
    "above-horizon": ({"tilt_deg": 10.0, "fov_deg": 90.0}, "curvy", (4, 8)),
    "recursive-sums": ({"width": 300, "height_px": 264, "supersample": 1}, "oval", (1, 2)),
}


@pytest.mark.parametrize("case", CASES)
def test_camera_stage_equals_numpy_camera_and_perception(case: str) -> None:
    geometry, track_name, (rows, cols) = CASES[case]
    camera = PinholeCamera(**geometry)
    track = load_track(track_name)
    # poses near the line, heading roughly along it (either way) or across it
    rng = np.random.default_rng(0)
    c = track.centreline
    k = rng.choice(len(c) - 1, 6)
    along = np.arctan2(*(c[k + 1] - c[k]).T[::-1])
    heading = along + np.array([0.0, np.pi, 0.3, -0.3, np.pi / 2, -2.0])
    poses = np.column_stack([c[k] + rng.normal(0, 2, (6, 2)), heading])
    frame, pred = run_stage(camera, track, poses, rows, cols)
    ref_frame = camera.render(track, poses)
    assert ref_frame.max() > 0.5  # the camera does see the line
    # the same rays and sums; cos/sin of the heading may differ by an ulp (C library, numpy)
    np.testing.assert_allclose(frame, ref_frame, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred, darkness_predictors(ref_frame, rows, cols), rtol=0, atol=1e-12)
    # the segment grid and mirror differences alone: bit for bit on numpy's own frame
    _, cam = camera_arrays(camera, rows, cols, len(poses))
    frame_buf, colsum, pred_buf = cam.frame, cam.colsum, cam.pred
    from sarlearn.stages.perception.compiled import predictors

    frame_buf[...] = ref_frame.reshape(len(poses), -1)
    for p in range(len(poses)):
        predictors(p, frame_buf, camera.shape[1], cam.rb, cam.cb, colsum, pred_buf)
    np.testing.assert_array_equal(pred_buf, darkness_predictors(ref_frame, rows, cols))
    if case == "above-horizon":
        assert not np.isfinite(camera.ground_points).all()  # some rays read 0 by rule


@pytest.mark.parametrize(
    "pose", [[47.0, 30.0, 0.0], [40.0, 10.0, -np.pi / 2], [52.0, 8.0, -0.8]],
    ids=["right-edge-looking-out", "bottom-edge-looking-out", "corner-looking-out"],
)  # fmt: skip
def test_camera_stage_at_the_image_border(tmp_path: Path, pose: list[float]) -> None:
    """A user image whose line touches the border; the camera sees the line and, beyond the
    image, the light ring of the padded lookup."""
    track = Track.from_image(border_track_file(tmp_path), arena=60.0)
    camera = PinholeCamera()
    poses = np.array([pose])
    frame, pred = run_stage(camera, track, poses, 4, 8)
    ref = camera.render(track, poses)
    assert ref.max() > 0.3 and (ref == 0).any()  # sees the line and the light ring beyond
    np.testing.assert_allclose(frame, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred, darkness_predictors(ref, 4, 8), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- the whole loop


def _scaled(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(a))), 1e-300))


def stepwise_camera(cfg: RunConfig, steps: int, population: int = 2) -> dict[str, float]:
    """Teacher-forced, as ``verify.stepwise_deviation``, with the recorded frames and ground
    readings compared too: before each step the reference is a copy of the engine's state."""
    fast = FastClosedLoop.from_config(cfg, population, weights_every=1, record_ground=True)
    track = fast.robot.track
    out: dict[str, float] = {}
    for _ in range(steps):
        ref = copy.deepcopy(fast.loops[0], memo={id(track): track})
        rr, rf = ref.run(1), fast.run(1)
        assert set(rr) == set(rf)
        for key in (*RECORDS, "ground", "frame", "weight_change"):
            assert rr[key].shape == rf[key].shape and rr[key].dtype == rf[key].dtype, key
            out[key] = max(out.get(key, 0.0), _scaled(rr[key], rf[key]))
        for layer, w in enumerate(ref.agent.network.weights):
            out["weights"] = max(out.get("weights", 0.0), _scaled(w, fast.weights(layer)))
    return out


@pytest.mark.parametrize(
    ("rule", "lr"),
    [("sar", None), ("gdm", 1e-3), ("relevance-only", 1e-4), ("dfa", 1e-3), ("sign-only", 1e-4)],
)
def test_one_camera_step_equals_the_reference(rule: str, lr: float | None) -> None:
    over = {"rule.name": rule, **({} if lr is None else {"rule.lr": lr})}
    dev = stepwise_camera(camera_cfg(**over), steps=40)
    assert max(dev.values()) < 1e-12, dev


def test_float32_camera_step_equals_the_reference() -> None:
    dev = stepwise_camera(camera_cfg(dtype="float32", **{"rule.lr": 1e-4}), steps=40)
    assert max(dev.values()) < 1e-5, dev


@pytest.mark.parametrize(
    "start", [[57.0, 30.0, 0.0], [40.0, 1.5, -np.pi / 2]],
    ids=["right-edge-facing-out", "bottom-edge-facing-out"],
)  # fmt: skip
def test_camera_loop_at_the_image_border_of_a_user_image(tmp_path: Path, start: list) -> None:
    cfg = camera_cfg(**{"world.track": str(border_track_file(tmp_path)), "world.arena": 60.0,
                        "world.start": start, "rule.lr": 1e-3})  # fmt: skip
    dev = stepwise_camera(cfg, steps=30)
    assert max(dev.values()) < 1e-12, dev


def test_camera_records_are_the_references() -> None:
    """The same keys, shapes and dtypes, frames included (recorded with the ground, as the
    reference does). Their values are compared teacher-forced (``stepwise_camera``): a free
    run's frames at the line's edge amplify the CPU's last bits."""
    cfg = camera_cfg()
    fast = FastClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    ref = ClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    rf, rr = fast.run(25), ref.run(25)
    assert set(rf) == set(rr) and "frame" in rf
    for key in rr:
        assert rf[key].shape == rr[key].shape and rf[key].dtype == rr[key].dtype, key
    forced = stepwise_camera(cfg, steps=5)
    assert forced["frame"] < 1e-12 and forced["error"] < 1e-12, forced
    plain = FastClosedLoop.from_config(cfg, 1).run(5)
    assert "frame" not in plain and "ground" not in plain


def test_camera_population_equals_single_runs() -> None:
    cfgs = [camera_cfg(seed=s, **{"rule.lr": lr}) for s, lr in ((0, 1e-4), (1, 3e-4), (2, 1e-5))]
    assert_population_equals_single_runs(cfgs, 150)


def test_camera_chunks_lockstep_and_checkpoints_change_nothing() -> None:
    cfg = camera_cfg(**{"rule.lr": 1e-4})
    whole = FastClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    lockstep = FastClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True, block=1)
    chunked = FastClosedLoop.from_config(cfg, 2, weights_every=7, record_ground=True)
    a, b = whole.run(60), lockstep.run(60)
    c1 = chunked.run(25)
    c2 = pickle.loads(pickle.dumps(chunked)).run(35)  # a checkpoint in between
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        joined = np.concatenate([c1[key], c2[key]], axis=0 if a[key].ndim == 1 else 1)
        np.testing.assert_array_equal(a[key], joined, err_msg=key)


def test_a_camera_run_on_the_engine_learns() -> None:
    """gdm on the oval from camera inputs: the reflex error falls (3 agents, 4000 steps)."""
    cfg = camera_cfg(**{"world.track": "oval", "rule.name": "gdm", "rule.lr": 1e-3,
                        "network.layers": [10, 10, 2]})  # fmt: skip
    loop = make_closed_loop(cfg, population=3)
    assert isinstance(loop, FastClosedLoop)
    rec = loop.run(4000)
    e = np.abs(rec["error"])
    early, late = e[:, :1000].mean(axis=1), e[:, -1000:].mean(axis=1)
    assert np.all(late < 0.6 * early), (early, late)
    assert not rec["off_track"].any()
    assert np.all(loop.weight_change()[:, 0] > 0)


def test_camera_configs_batch_into_populations() -> None:
    assert population_key(camera_cfg()) is not None
    assert population_key(camera_cfg()) == population_key(camera_cfg(seed=3))
    assert population_key(camera_cfg()) != population_key(RunConfig())


def test_a_camera_grid_that_does_not_fit_is_a_clear_error() -> None:
    cfg = camera_cfg(**{"world.camera.grid_rows": 30})  # 30 rows of a 24-pixel-high frame
    with pytest.raises(ShapeError, match="does not fit"):
        FastClosedLoop.from_config(cfg)


def test_a_camera_sweep_batched_equals_runs_one_by_one(tmp_path: Path) -> None:
    """Sweeps with camera inputs run as engine populations, with the numbers of solo runs."""
    import json

    import pandas as pd

    from sarlearn.store.store import ResultStore
    from sarlearn.sweeps.spec import parse_spec
    from sarlearn.sweeps.sweep import run_sweep

    spec = parse_spec(
        {
            "base": {"steps": 600, "network.layers": [6, 2], "world.inputs": "camera"},
            "grid": {"seed": [0, 1], "rule.name": ["sar", "gdm"]},
        }
    )
    batched = run_sweep(spec, tmp_path / "pop", jobs=1, trace_every=25)
    solo = run_sweep(spec, tmp_path / "solo", jobs=1, trace_every=25, population=1)
    assert (batched.ok, batched.failed) == (solo.ok, solo.failed) == (4, 0)
    a, b = (
        ResultStore(tmp_path / d).load().sort_values("run_id", ignore_index=True)
        for d in ("pop", "solo")
    )
    cols = ["run_id", "status", "steps_run", "mean_abs_error_first_1000", "off_track_steps"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert max(json.loads(s).get("population", 1) for s in a["summary_json"]) == 2
    assert all(json.loads(s)["inputs"] == "camera" for s in a["summary_json"])


def test_a_recorded_engine_camera_run_replays(tmp_path: Path) -> None:
    """run_follow on the engine keeps every frame with --record-sensors (frames.npy), and the
    numpy replay of the run reproduces its steering (to rounding: the replay is numpy)."""
    from sarlearn.runs import outputs
    from sarlearn.runs.replay import replay_run
    from sarlearn.runs.run import run_follow

    cfg = camera_cfg(steps=200, **{"world.track": "oval"})
    assert isinstance(make_closed_loop(cfg), FastClosedLoop)
    run_follow(cfg, tmp_path, record_ground=True, figures=False)
    assert np.load(tmp_path / outputs.FRAMES).shape == (200, 24, 32)
    _, rec = replay_run(tmp_path)
    trace = outputs.read_trace(tmp_path / "trace.parquet")
    np.testing.assert_allclose(rec["steering"][0], trace["steering"], rtol=0, atol=1e-9)
