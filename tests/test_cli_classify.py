"""`sarlearn classify`: learns above chance on a digits subset; MNIST files; clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from sarlearn.cli import app
from sarlearn.datasets import DEBIAN_FASHION_MNIST
from test_datasets import write_fake_mnist

runner = CliRunner()


@pytest.mark.parametrize("rule", ["sar", "bp"])
def test_digits_subset_learns_above_chance(tmp_path: Path, rule: str) -> None:
    out, js = tmp_path / "run", tmp_path / "summary.json"
    result = runner.invoke(
        app,
        ["classify", "--rule", rule, "--train-subset", "400", "--test-subset", "200",
         "--epochs", "4", "--lr", "3e-3", "--seed", "1", "--out", str(out), "--json", str(js),
         "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(js.read_text())
    assert summary["n_train"] == 400 and summary["n_test"] == 200
    assert summary["test_accuracy"] > 0.5  # chance is 0.1
    assert len(summary["curves"]["test_accuracy"]) == 4
    assert (out / "learning.png").stat().st_size > 0
    assert json.loads((out / "summary.json").read_text()) == summary


def test_lenet_on_mnist_idx_files(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "mnist", n_train=64, n_test=32)
    js = tmp_path / "s.json"
    result = runner.invoke(
        app,
        ["classify", "--dataset", "mnist", "--data", str(tmp_path / "mnist"), "--model",
         "lenet", "--rule", "dfa", "--epochs", "1", "--out", str(tmp_path / "o"), "--json",
         str(js), "--no-plot"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(js.read_text())
    assert summary["dataset"] == "mnist" and 0 <= summary["test_accuracy"] <= 1
    assert not (tmp_path / "o" / "learning.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "mnist"], "--data"),
        (["--dataset", "mnist", "--data", "/no/such/dir"], "does not exist"),
        (["--rule", "backprop"], "known rules"),
        (["--model", "resnet"], "unknown model"),
        (["--loss", "mse"], "unknown loss"),
        (["--lr", "-1"], "lr must be"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["classify", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"Debian's Fashion-MNIST is not installed ({DEBIAN_FASHION_MNIST}): "
    "apt-get install dataset-fashion-mnist",
)
def test_fashion_mnist_from_the_debian_package_learns(tmp_path: Path) -> None:
    """A tiny real-data run: SaR's MLP on 2,000 Fashion-MNIST images beats chance (10 %)."""
    js = tmp_path / "s.json"
    result = runner.invoke(
        app,
        ["classify", "--dataset", "fashion-mnist", "--rule", "sar", "--train-subset", "2000",
         "--test-subset", "500", "--epochs", "2", "--out", str(tmp_path / "run"),
         "--json", str(js), "--no-progress", "--no-plot"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(js.read_text())
    assert summary["dataset"] == "fashion-mnist" and summary["n_train"] == 2000
    assert summary["test_accuracy"] > 0.6
