"""benchmarks/vs_cpp_paired.py: the paired engine-vs-C++ rounds, with a stand-in C++ module."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench_scripts import load_benchmark


def load_script() -> Any:
    return load_benchmark("vs_cpp_paired")


class FakeNet:
    """The few calls of the C++ library's network the script makes."""

    def __init__(self, n_in: int, layers: list[int], n_filters: int, *periods: float) -> None:
        self.layers, self.steps = layers, 0

    def initWeights(self, *args: Any) -> None:
        pass

    def setLearningRate(self, lr: float) -> None:
        pass

    def getNumLayers(self) -> int:
        return len(self.layers)

    def getLayer(self, i: int) -> Any:
        return SimpleNamespace(setUseThreads=lambda on: None)

    def doStep(self, x: Any, e: Any) -> None:
        self.steps += 1

    def getOutput(self, k: int) -> float:
        return 0.0


FAKE = SimpleNamespace(
    IntVector=list,
    DoubleVector=list,
    FeedforwardClosedloopLearningWithFilterbank=FakeNet,
    FCLNeuron=SimpleNamespace(MAX_OUTPUT_RANDOM=0),
)


def test_without_the_library_it_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mod = load_script()
    monkeypatch.setattr(mod, "import_cpp", lambda: (None, "not installed; pip install ..."))
    monkeypatch.setattr(sys, "argv", ["vs_cpp_paired.py"])
    assert mod.main() == 2
    assert "not installed" in capsys.readouterr().err


def test_rounds_pair_each_engine_chunk_with_a_cpp_chunk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mod = load_script()
    monkeypatch.setattr(mod, "import_cpp", lambda: (FAKE, ""))
    out = tmp_path / "paired.json"
    argv = ["vs_cpp_paired.py", "--rounds", "3", "--steps", "60", "--cpp-steps", "20",
            "--rule", "sar", "--out", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    assert mod.main() == 0
    data = json.loads(out.read_text())
    assert data["layers"] == [10] * 10 + [2] and len(data["rounds"]) == 3
    assert data["machine"]["cpu"]
    for mode in ("single", "dense", "learner"):
        s = data["summary"][f"sar {mode}/cpp"]
        ratios = [r[f"sar {mode}"] / r["cpp"] for r in data["rounds"]]
        assert s["median"] == pytest.approx(statistics.median(ratios))
        assert s["min"] <= s["median"] <= s["max"]
        assert s["rounds_at_least_6x"] == sum(x >= 6 for x in ratios)
    assert 0.0 <= data["summary"]["sar single update_fraction"] <= 1.0
    assert data["summary"]["sar dense update_fraction"] > 0.5  # the dense floor: all learn
