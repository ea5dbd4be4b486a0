"""`sarlearn classify`: train an MLP or a LeNet-style CNN on digits / MNIST / Fashion-MNIST with
backprop, SaR or a bio-plausible peer (needs the ``torch`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from sarlearn.errors import SarlearnError

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
            help="bp, sar, sar-local, sign-only, relevance-only, fa, dfa or sign-symmetry."
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
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: runs/classify-…).")
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the JSON summary here.")
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
        images = load_dataset(dataset, data).subset(train_subset, test_subset)
        if validation:
            images = images.validation_split(0.2, seed=0)
        out_dir = out or Path("runs") / f"classify-{dataset}-{model}-{rule}-s{seed}"
        result = _run(cfg, images, threads, progress, console)
        _write(result, out_dir, json_path, plot)
    except (SarlearnError, ValueError, OSError) as exc:
        _fail(str(exc))
    console.print(
        f"{rule} on {images.name} ({model}): test accuracy "
        f"[bold]{result['test_accuracy']:.4f}[/] (error {result['test_error_percent']:.2f} %), "
        f"{result['seconds']:.1f} s; outputs in {out_dir}",
        highlight=False,
        soft_wrap=True,
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
