"""Train, save, deploy: ClosedLoopAgent.save/load/load_state, RunConfig.load/freeze, and
`sarlearn follow --load/--freeze` on both engines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sarlearn.agent import ClosedLoopAgent, file_sha256
from sarlearn.cli import app
from sarlearn.config import ConfigError, RunConfig
from sarlearn.engine import FastClosedLoop, make_closed_loop
from sarlearn.errors import ShapeError
from sarlearn.stages.network.network import Network

runner = CliRunner()
SMALL = {"network.layers": [6, 2], "rule.name": "sar", "rule.lr": 1e-2, "world.track": "circle"}


def small(**kw: object) -> RunConfig:
    return RunConfig().with_overrides({**SMALL, **kw})


def weights_of(loop: object) -> list[np.ndarray]:
    return [w.copy() for w in loop.agent.network.weights]  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SaR network trained for 600 steps on circle, saved as a run would save it."""
    loop = make_closed_loop(small(), engine="numpy")
    loop.run(600)
    path = tmp_path_factory.mktemp("net") / "network.npz"
    loop.agent.save(path)
    return path


# ---------------------------------------------------------------------- the Python API


@pytest.mark.parametrize("rule", ["sar", "fa"])
def test_save_load_continues_exactly(tmp_path: Path, rule: str) -> None:
    """A loaded agent (weights, relevance, feedback matrices, filters) steps like the original."""
    cfg = small(**{"rule.name": rule, "rule.relevance.lowpass": 0.5})
    a = ClosedLoopAgent.from_config(cfg, n_predictors=8, population=2)
    rng = np.random.default_rng(1)
    pred = rng.random((60, 2, 8))
    err = rng.normal(size=(60, 2))
    for t in range(30):
        a.step(err[t], pred[t])
    a.save(tmp_path / "agent.npz")
    b = ClosedLoopAgent.load(tmp_path / "agent.npz")
    assert b.loaded is not None and b.loaded["sha256"] == file_sha256(tmp_path / "agent.npz")
    for t in range(30, 60):
        np.testing.assert_array_equal(a.step(err[t], pred[t]), b.step(err[t], pred[t]))
    for wa, wb in zip(a.network.weights, b.network.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    # The file is also a plain saved network.
    assert Network.load(tmp_path / "agent.npz").layers == a.network.layers


def test_load_rejects_a_plain_network(tmp_path: Path) -> None:
    net = Network(4, [2], rng=np.random.default_rng(0))
    net.save(tmp_path / "net.npz")
    with pytest.raises(ConfigError, match="not a saved agent"):
        ClosedLoopAgent.load(tmp_path / "net.npz")
    # ... but a run can start from it (weights only).
    agent = ClosedLoopAgent.from_config(
        RunConfig().with_overrides({"network.layers": [2], "filters.n_filters": 1}), 4
    )
    agent.load_state(tmp_path / "net.npz")
    np.testing.assert_array_equal(agent.network.weights[0], net.weights[0])
    assert agent.loaded["restored"] == []


def test_reflex_agent_has_nothing_to_save(tmp_path: Path) -> None:
    agent = ClosedLoopAgent.from_config(RunConfig().with_overrides({"rule.name": "reflex"}), 4)
    with pytest.raises(ConfigError, match="no network"):
        agent.save(tmp_path / "x.npz")


@pytest.mark.parametrize(
    ("override", "needs"),
    [
        ({"network.layers": [5, 2]}, "layers [5, 2]"),
        ({"filters.n_filters": 3}, "216 inputs"),  # 72 mirror predictors x 3 filters
        ({"dtype": "float32"}, "float32"),
        ({"network.activation": "tanh"}, "tanh"),
    ],
)
def test_mismatch_names_both_shapes(trained: Path, override: dict, needs: str) -> None:
    with pytest.raises(ShapeError) as info:
        make_closed_loop(small(load=str(trained), **override), engine="numpy")
    msg = str(info.value)
    # sar's rows are 72 mirror differences, x 5 filters
    assert "saved 360 inputs -> layers [6, 2] (logistic, float64)" in msg
    assert needs in msg and str(trained) in msg


def test_missing_or_garbage_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        make_closed_loop(small(load=str(tmp_path / "none.npz")), engine="numpy")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read"):
        make_closed_loop(small(load=str(bad)), engine="numpy")


def test_reflex_cannot_load(trained: Path) -> None:
    with pytest.raises(ConfigError, match="reflex alone has no network"):
        make_closed_loop(small(load=str(trained), **{"rule.name": "reflex"}), engine="numpy")


def test_population_gets_copies_of_one_saved_agent(trained: Path) -> None:
    loop = make_closed_loop(small(load=str(trained)), population=3, engine="numpy")
    saved = Network.load(trained)
    for w, ws in zip(loop.agent.network.weights, saved.weights, strict=True):
        assert w.shape[0] == 3
        np.testing.assert_array_equal(w, np.broadcast_to(ws, w.shape))


@pytest.mark.parametrize("engine", ["numpy", "fast"])
def test_freeze_keeps_weights_bit_identical(trained: Path, engine: str) -> None:
    cfg = small(load=str(trained), freeze=True, **{"world.track": "oval"})
    loop = make_closed_loop(cfg, engine=engine)
    assert isinstance(loop, FastClosedLoop) == (engine == "fast")
    before = weights_of(loop)
    np.testing.assert_array_equal(before[0], Network.load(trained).weights[0])
    rec = loop.run(400)
    assert np.abs(rec["steering"]).max() > 0  # the network does steer
    for a, b in zip(before, weights_of(loop), strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.tobytes() == b.tobytes()
    np.testing.assert_array_equal(loop.agent.weight_change(), 0.0)


def test_freeze_rule_computes_nothing(trained: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = make_closed_loop(small(load=str(trained), freeze=True), engine="numpy")
    calls = []
    monkeypatch.setattr(type(loop.agent.rule), "step", lambda *a, **k: calls.append(1))
    loop.run(50)
    assert calls == []


def test_engines_agree_from_loaded_weights(trained: Path) -> None:
    """Learning continues from the loaded network identically in both engines."""
    cfg = small(load=str(trained), **{"world.track": "oval"})
    recs = [make_closed_loop(cfg, engine=e).run(300) for e in ("numpy", "fast")]
    np.testing.assert_allclose(recs[0]["steering"], recs[1]["steering"], rtol=0, atol=1e-9)


def test_relevance_state_restored_for_the_same_rule(tmp_path: Path) -> None:
    cfg = small(**{"rule.relevance.normalise": True})
    loop = make_closed_loop(cfg, engine="numpy")
    loop.run(200)
    loop.agent.save(tmp_path / "n.npz")
    rel = loop.agent.rule.relevance
    again = make_closed_loop(cfg.with_overrides({"load": str(tmp_path / "n.npz")}), engine="numpy")
    assert again.agent.loaded["restored"] == ["relevance"]
    np.testing.assert_array_equal(again.agent.rule.relevance.mean_abs, rel.mean_abs)
    assert again.agent.rule.relevance.count == rel.count
    # gdm's own rows are raw; the saved network was trained on sar's mirror differences
    into_gdm = {"load": str(tmp_path / "n.npz"), "rule.name": "gdm"}
    into_gdm["world.predictor_mode"] = "mirror"
    gdm = make_closed_loop(cfg.with_overrides(into_gdm), engine="numpy")
    assert gdm.agent.loaded["restored"] == []  # another rule: weights only


# ---------------------------------------------------------------------- the command line


def follow(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["follow", "--no-progress", *args])
    return result.exit_code, result.output


def test_cli_train_then_frozen_elsewhere(tmp_path: Path) -> None:
    train, test = tmp_path / "train", tmp_path / "test"
    code, text = follow(
        "--layers", "6,2", "--track", "circle", "--steps", "400", "--out", str(train)
    )
    assert code == 0, text
    code, text = follow(
        "--load", str(train), "--freeze", "--track", "oval", "--steps", "300", "--out", str(test)
    )
    assert code == 0, text
    summary = json.loads((test / "summary.json").read_text())
    net = train / "network.npz"
    assert summary["loaded"]["path"] == str(net.resolve())
    assert summary["loaded"]["sha256"] == file_sha256(net)
    assert summary["frozen"] is True
    assert summary["config"]["network"]["layers"] == [6, 2]  # adopted from the file
    assert summary["weight_change"] == [0.0, 0.0]
    saved, after = Network.load(net), Network.load(test / "network.npz")
    for a, b in zip(saved.weights, after.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert "loaded" in text and "frozen" in text
    last = text.strip().splitlines()[-1]
    assert last.startswith("report: file://") and last.endswith("report.html")
    assert (test / "report.html").is_file()


def test_cli_mismatch_is_one_line_exit_2(trained: Path, tmp_path: Path) -> None:
    code, text = follow("--load", str(trained), "--layers", "4,2", "--steps", "10")
    assert code == 2
    assert "error:" in text and "saved 360 inputs -> layers [6, 2]" in text
    assert "Traceback" not in text
    code, text = follow("--load", str(tmp_path / "missing.npz"), "--steps", "10")
    assert code == 2 and "not found" in text


def test_cli_resume_refuses_load(tmp_path: Path, trained: Path) -> None:
    code, text = follow("--resume", str(tmp_path), "--load", str(trained))
    assert code == 2 and "--resume" in text


def test_cli_live_prints_its_address(tmp_path: Path) -> None:
    code, text = follow(
        "--layers", "6,2", "--track", "circle", "--steps", "300", "--live", "--out",
        str(tmp_path / "r"),
    )  # fmt: skip
    assert code == 0, text
    assert "live view: http://127.0.0.1:" in text
    assert text.strip().splitlines()[-1].startswith("report: file://")
