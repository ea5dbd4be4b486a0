"""`sarlearn classify`: train an MLP or a LeNet-style CNN on digits / MNIST / Fashion-MNIST with
backprop, SaR or a bio-plausible peer (needs the ``torch`` extra)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sarlearn.cli.checks import check_output_path, check_positive
from sarlearn.errors import ConfigError, SarlearnError
from sarlearn.runs.preflight import memory_limit

if TYPE_CHECKING:
    from rich.console import Console


def classify(
    dataset: Annotated[
        str, typer.Option(help="digits (bundled with scikit-learn), mnist or fashion-mnist.")
    ] = "digits",
    data: Annotated[
        Path | None,
        typer.Option(
            help="mnist/fashion-mnist: a folder with the four IDX files, or an .npz "
            "(fashion-mnist default: Debian's dataset-fashion-mnist package)."
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="mlp or lenet.")] = "mlp",
    rule: Annotated[
        str,
        typer.Option(
            help="gdm (alias bp), sar, sar-local, sar-exact, sign-only, relevance-only, fa, "
            "dfa or sign-symmetry."
        ),
    ] = "sar",
    loss: Annotated[
        str | None,
        typer.Option(
            help="cross-entropy, or hinge (Crammer-Singer: sparse, signed error); "
            "default: the rule's best on digits."
        ),
    ] = None,
    relevance: Annotated[
        str, typer.Option(help="SaR family's relevance: error, normalised or loss.")
    ] = "normalised",
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the rule's).")] = None,
    optimiser: Annotated[str, typer.Option(help="adam or sgd (momentum 0.9).")] = "adam",
    epochs: Annotated[int, typer.Option(help="Passes over the training set.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 32,
    width: Annotated[int, typer.Option(help="MLP: units per hidden layer.")] = 100,
    depth: Annotated[int, typer.Option(help="MLP: number of hidden layers.")] = 2,
    activation: Annotated[str, typer.Option(help="relu, tanh or logistic.")] = "relu",
    seed: Annotated[int, typer.Option(help="Seed of weights, feedback matrices, order.")] = 0,
    train_subset: Annotated[
        int | None, typer.Option(help="Use only the first N training images.")
    ] = None,
    test_subset: Annotated[
        int | None, typer.Option(help="Use only the first N test images.")
    ] = None,
    validation: Annotated[
        bool,
        typer.Option(help="Test on 20% held out of the training set (for tuning rates)."),
    ] = False,
    # str, not Path: a Path would turn an empty --out into the current folder
    out: Annotated[
        str | None, typer.Option(help="Output folder (default: runs/classify-…).")
    ] = None,
    json_path: Annotated[
        str | None, typer.Option("--json", help="Also write the JSON summary here.")
    ] = None,
    plot: Annotated[bool, typer.Option(help="Write learning.png.")] = True,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
) -> None:
    """Train a classifier with backprop, SaR or a peer; print and save the test accuracy.

    Writes summary.json (test_accuracy, config, curves) and learning.png to --out.
    """
    from rich.console import Console

    console = Console()
    try:
        from sarlearn.datasets import load_dataset
        from sarlearn.torch.train import ClassifyConfig

        cfg = ClassifyConfig(
            rule=rule,
            model=model,
            width=width,
            depth=depth,
            activation=activation,
            lr=lr,
            optimiser=optimiser,
            epochs=epochs,
            batch_size=batch_size,
            relevance=relevance,
            loss=loss,
            seed=seed,
        )
        cfg.check()
        _check_options(lr, train_subset, test_subset, threads, width, depth)
        default_out = Path("runs") / f"classify-{dataset}-{model}-{rule}-s{seed}"
        # before training, not after it
        out_dir = check_output_path(default_out if out is None else out, "--out")
        json_file = (
            None if json_path is None else check_output_path(json_path, "--json", folder=False)
        )
        images = load_dataset(dataset, data).subset(train_subset, test_subset)
        if validation:
            images = images.validation_split(0.2, seed=0)
        result = _run(cfg, images, threads, progress, console)
        _write(result, out_dir, json_file, plot)
    except (SarlearnError, ValueError, OSError, ArithmeticError) as exc:
        _fail(str(exc))
    console.print(
        f"{rule} on {images.name} ({model}): test accuracy "
        f"[bold]{result['test_accuracy']:.4f}[/] (error {result['test_error_percent']:.2f} %), "
        f"{result['seconds']:.1f} s; outputs in {out_dir}",
        highlight=False,
        soft_wrap=True,
    )


#: The largest learning rate accepted: far beyond any that trains, and small enough that the
#: optimiser's arithmetic (float32 in torch) does not overflow.
MAX_LR = 1e6


def _check_options(
    lr: float | None,
    train_subset: int | None,
    test_subset: int | None,
    threads: int,
    width: int,
    depth: int,
) -> None:
    """ConfigError naming the first option out of range (before any data is read)."""
    if lr is not None and math.isfinite(lr) and lr > MAX_LR:
        raise ConfigError(f"--lr {lr:g} is too large (at most {MAX_LR:g}); try 1e-3")
    for value, option in ((train_subset, "--train-subset"), (test_subset, "--test-subset")):
        check_positive(value, option)
    check_positive(threads, "--threads", allow_none=False)
    check_positive(width, "--width", allow_none=False)
    if depth < 0:
        raise ConfigError(f"--depth must be 0 or more, got {depth}")
    # The MLP's weights (28 x 28 inputs at most), their gradients and the optimiser's two
    # moments, in float32: refused before torch allocates them.
    weights = 784 * width + width * width * max(0, depth - 1) + width * 10
    need = 4 * 4 * weights
    limit, source = memory_limit()
    if limit is not None and need > limit:
        raise ConfigError(
            f"--width {width:,} and --depth {depth:,} make about {weights:,} weights, "
            f"{need / 1e9:.3g} GB with their gradients and the optimiser's state; the limit "
            f"is {limit / 1e9:.3g} GB ({source})"
        )


def _run(cfg: Any, images: Any, threads: int, progress: bool, console: Console) -> dict:
    import torch

    from sarlearn.progress import progress_bar
    from sarlearn.torch.train import summary, train_classifier

    torch.set_num_threads(max(1, threads))
    bar = progress_bar(
        f"{cfg.rule} epochs",
        "loss {task.fields[loss]}",
        "test {task.fields[acc]}",
        console=console,
    )
    if not progress:
        _, history = train_classifier(cfg, images)
        return summary(cfg, images, history)
    with bar:
        task = bar.add_task("train", total=cfg.epochs, loss="-", acc="-")

        def on_epoch(epoch: int, history: Any) -> None:
            bar.update(
                task,
                advance=1,
                loss=f"{history.train_loss[-1]:.3f}",
                acc=f"{history.test_accuracy[-1]:.3f}",
            )

        _, history = train_classifier(cfg, images, on_epoch=on_epoch)
    return summary(cfg, images, history)


def _write(result: dict, out_dir: Path, json_path: Path | None, plot: bool) -> None:
    from sarlearn.atomic import atomic_write_bytes

    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2).encode()
    atomic_write_bytes(out_dir / "summary.json", text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json_path, text)
    if plot:
        _plot(result, out_dir / "learning.png")


def _plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sarlearn.atomic import atomic_write_with

    curves = result["curves"]
    epochs = range(1, len(curves["test_accuracy"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(epochs, curves["train_loss"])
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log")
    ax_acc.plot(epochs, curves["train_accuracy"], label="train")
    ax_acc.plot(epochs, curves["test_accuracy"], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    ax_acc.legend()
    cfg = result["config"]
    fig.suptitle(
        f"{cfg['rule']} · {result['dataset']} · {cfg['model']} · {cfg['loss']} · lr {cfg['lr']:g}"
    )
    fig.tight_layout()
    atomic_write_with(path, lambda p: fig.savefig(p, format="png", dpi=110))
    plt.close(fig)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
