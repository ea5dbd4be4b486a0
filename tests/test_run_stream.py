"""A run's records as a stream give the same summary and trace as the whole records, in memory
bounded whatever the run's length; run folders are locked and checkpoints bound to their
config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.metrics import (
    SuccessCriterion,
    above_threshold,
    moving_sum,
    summarise_errors,
    summarise_settling,
)
from sarlearn.runs import outputs, stream
from sarlearn.runs.run import LOCK, run_follow
from sarlearn.runs.stream import RunStats, RunStream, Tail, View, truncate
from sarlearn.store.lock import folder_lock

CRIT = SuccessCriterion(warmup=50, window=40, threshold=2.0, hold=30, settle_window=300)
LAYERS = 3


def records(n: int, seed: int) -> dict[str, np.ndarray]:
    """Whole records of one agent whose error settles, relapses and settles again, with
    weight samples every 7 steps."""
    rng = np.random.default_rng(seed)
    scale = np.where(np.arange(n) < n // 3, 0.5, 0.01)
    scale[n // 2 : n // 2 + 60] = 0.5  # a relapse
    error = rng.normal(0, 1, n) * scale
    steering = rng.normal(0, 1, n)
    steering[rng.random(n) < 0.1] = 0.0
    w_steps = np.arange(6, n, 7)
    return {
        "step": np.arange(n),
        "error": error[None],
        "steering": steering[None],
        "x": rng.random((1, n)),
        "y": rng.random((1, n)),
        "heading": rng.random((1, n)),
        "off_track": (rng.random((1, n)) < 0.05),
        "saturated": rng.random((1, n, LAYERS)) < 0.9,
        "weight_steps": w_steps,
        "weight_change": rng.random((1, len(w_steps), LAYERS)),
    }


def chunks(rec: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    out, at = [], 0
    n = len(rec["step"])
    for size in [*sizes, n]:
        stop = min(n, at + size)
        keep = (rec["weight_steps"] >= at) & (rec["weight_steps"] < stop)
        part = {k: v[..., at:stop] if k not in ("step",) else v[at:stop] for k, v in rec.items()}
        part["saturated"] = rec["saturated"][:, at:stop]
        part["weight_steps"] = rec["weight_steps"][keep]
        part["weight_change"] = rec["weight_change"][:, keep]
        out.append(part)
        at = stop
        if at >= n:
            break
    return out


def whole_trace(rec: dict[str, np.ndarray], crit: SuccessCriterion) -> pd.DataFrame:
    """The trace as the whole records give it (the way runs wrote it before streaming)."""
    cols = {k: v for k, v in rec.items() if k not in ("weight_steps", "weight_change")}
    cols["moving_sum"] = moving_sum(np.abs(cols["error"]), crit.window)
    cols["above_threshold"] = above_threshold(cols["error"], crit)
    frame = outputs.trace_frame(cols)
    idx = np.searchsorted(rec["weight_steps"], frame["step"].to_numpy(), side="right") - 1
    for layer in range(rec["weight_change"].shape[2]):
        values = rec["weight_change"][0, np.maximum(idx, 0), layer]
        frame[f"weight_change_l{layer}"] = np.where(idx >= 0, values, 0.0)
    return frame


@pytest.mark.parametrize("n", [0, 1, 39, 45, 2000])
@pytest.mark.parametrize("sizes", [[1], [250], [7, 300, 1, 13]])
def test_streamed_summary_equals_the_whole_trace_summary(n: int, sizes: list[int]) -> None:
    rec = records(n, seed=n)
    stats = RunStats(CRIT)
    for part in chunks(rec, sizes * 400):
        stats.add(part)
    e = rec["error"][0]
    want = summarise_errors(e, rec["off_track"][0], CRIT, span=1000)
    got = stats.errors_summary()
    mean_want, mean_got = want.pop("mean_abs_error"), got.pop("mean_abs_error")
    assert got == want
    assert (mean_got is None) == (mean_want is None)
    if mean_want is not None:  # a running sum, not numpy's pairwise one
        assert mean_got == pytest.approx(mean_want, rel=1e-12)
    y_max = 1.5
    want_s = summarise_settling(e, rec["steering"][0], rec["saturated"][0], CRIT, y_max)
    assert stats.settling_summary(y_max) == want_s


def test_the_test_records_settle_relapse_and_go_off_track() -> None:
    stats = RunStats(CRIT)
    stats.add(records(2000, seed=1))
    s = {**stats.errors_summary(), **stats.settling_summary(1.0)}
    assert s["steps_to_success"] is not None and s["relapses"] >= 1
    assert s["settled_step"] is not None and s["off_track_steps"] > 0


@pytest.mark.parametrize(("every", "batched"), [(1, False), (3, False), (1, True)])
def test_streamed_trace_equals_the_whole_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: int, batched: bool
) -> None:
    monkeypatch.setattr(stream, "FLUSH_ROWS", 100)  # many parts
    monkeypatch.setattr(stream, "BATCH_STEPS", 90)  # chunks taken in together
    rec = records(1000, seed=3)
    run = RunStream(CRIT, tmp_path / "parts", trace_every=every)
    for k, part in enumerate(chunks(rec, [33, 1, 250, 64] * 5)):
        if batched and k % 3:
            run.push(part)
        else:
            run.add(part)
    run.settle()
    assert len(run.trace.parts()) >= 3
    run.trace.write(tmp_path / "trace.parquet", tmp_path / "frames.npy")
    got = pd.read_parquet(tmp_path / "trace.parquet")
    want = whole_trace(rec, CRIT).iloc[::every].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_no_trace_with_every_zero(tmp_path: Path) -> None:
    run = RunStream(CRIT, tmp_path / "parts", trace_every=0)
    run.add(records(500, seed=4))
    assert run.trace.write(tmp_path / "trace.parquet", tmp_path / "frames.npy") == []
    assert not (tmp_path / "trace.parquet").exists()
    assert run.stats.n == 500


def test_a_truncated_chunk_keeps_the_steps_and_samples_before_the_cut() -> None:
    rec = records(100, seed=5)
    cut = truncate(rec, 20)
    assert len(cut["step"]) == 20 and cut["error"].shape == (1, 20)
    assert (cut["weight_steps"] < 20).all() and cut["weight_change"].shape[1] == 2


def test_memory_is_bounded_by_the_windows_not_the_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "FLUSH_ROWS", 500)
    run = RunStream(CRIT, tmp_path / "parts")
    run.view = View(points=256, span=20)
    rec = records(20_000, seed=6)
    for part in chunks(rec, [250] * 80):
        run.add(part)
        held = sum(len(c) for c in run.view.cols["step"])
        assert held <= 256 and run.trace.rows < 500 + 250
        assert run.stats.tail_above.n < 2 * CRIT.settle_window
    steps = run.view.get("step")
    assert steps[0] == 0 and np.all(np.diff(steps) == run.view.stride)
    path = run.view.path()
    assert list(path["step"][:20]) == list(range(20)) and path["step"][-1] == 19_999
    wsteps, _ = run.view.weights(LAYERS)
    assert len(wsteps) <= 257


def test_a_tail_keeps_the_last_rows() -> None:
    tail = Tail(5)
    for a in np.array_split(np.arange(103), 17):
        tail.add(a)
    assert tail.get().tolist() == [98, 99, 100, 101, 102]


# ---------------------------------------------------------------------- runs


def cfg_of(**over: Any) -> RunConfig:
    base = {"world.track": "circle", "network.layers": [2], "rule.name": "gdm"}
    base |= {"rule.lr": 1e-4, "engine": "numpy"}
    return RunConfig().with_overrides({**base, "steps": 300, **over})


def test_trace_every_keeps_every_nth_row_of_the_full_trace(tmp_path: Path) -> None:
    cfg = cfg_of()
    full = run_follow(cfg, tmp_path / "full", figures=False)
    thin = run_follow(cfg, tmp_path / "thin", figures=False, trace_every=7)
    assert {**full, "out_dir": 0, "files": 0, "run_seconds": 0} | _times(full) == {
        **thin,
        "out_dir": 0,
        "files": 0,
        "run_seconds": 0,
    } | _times(full)
    a = outputs.read_trace(tmp_path / "full" / outputs.TRACE)
    b = outputs.read_trace(tmp_path / "thin" / outputs.TRACE)
    pd.testing.assert_frame_equal(b, a.iloc[::7].reset_index(drop=True))
    none = run_follow(cfg, tmp_path / "none", figures=False, trace_every=0)
    assert none["steps"] == 300 and outputs.TRACE not in none["files"]


def _times(s: dict[str, Any]) -> dict[str, Any]:
    keys = ("steps_per_second", "loop_steps_per_second", "written_at")
    return {k: s[k] for k in keys}


def test_a_trace_is_written_in_row_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "FLUSH_ROWS", 100)
    monkeypatch.setattr(stream, "BATCH_STEPS", 50)
    run_follow(cfg_of(), tmp_path / "r", figures=False, chunk=50)
    meta = pq.ParquetFile(tmp_path / "r" / outputs.TRACE).metadata
    assert meta.num_rows == 300 and meta.num_row_groups == 3


def test_a_second_run_in_a_locked_folder_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with (
        folder_lock(out, LOCK, "busy {holder}"),
        pytest.raises(ConfigError, match=r"another run .* is writing to"),
    ):
        run_follow(cfg_of(), out, figures=False)
    assert not (out / outputs.SUMMARY).exists()
    run_follow(cfg_of(), out, figures=False)  # released: the folder is usable
    assert not (out / LOCK).exists()


def _interrupted_at_250(out: Path) -> None:
    """A 300-step run stopped by Ctrl-C at step 250 (checkpoints every 100 steps)."""

    def stop(loop: Any, done: int) -> None:
        if done == 250:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_follow(cfg_of(checkpoint_every=100), out, on_chunk=stop, chunk=50, figures=False)


def test_resume_refuses_a_checkpoint_of_another_config(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _interrupted_at_250(out)
    assert (out / outputs.CHECKPOINT).is_file()
    other = cfg_of(checkpoint_every=100, seed=9)  # e.g. config.json copied from another run
    outputs.write_json(out / outputs.CONFIG, other.model_dump(mode="json"))
    with pytest.raises(ConfigError, match="another config"):
        run_follow(None, out, resume=True, figures=False)


def test_resume_may_lengthen_a_run(tmp_path: Path) -> None:
    out = tmp_path / "r"
    _interrupted_at_250(out)
    longer = cfg_of(checkpoint_every=100).with_overrides({"steps": 600})
    outputs.write_json(out / outputs.CONFIG, longer.model_dump(mode="json"))
    summary = run_follow(None, out, resume=True, figures=False)
    assert summary["resumed_from"] and summary["steps"] == 600


def test_follow_trace_every_on_the_command_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sarlearn.cli import app

    args = ["follow", "--steps", "100", "--layers", "2", "--track", "circle", "--lr", "0.01"]
    args += ["--no-progress", "--set", "engine=numpy", "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(app, [*args, "--trace-every", "10"])
    assert res.exit_code == 0, res.output
    trace = outputs.read_trace(tmp_path / "r" / outputs.TRACE)
    assert trace["step"].tolist() == list(range(0, 100, 10))
    res = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "s"), "--trace-every", "-1"])
    assert res.exit_code == 2
