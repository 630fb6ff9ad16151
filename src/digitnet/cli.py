"""The ``digitnet`` command line: thin wiring from options to the Python API.

Core commands live here; each concern adds its own in its ``commands.py`` (``register(app)``):
vision (predict, read), evaluate (report, compare, explain), serve (serve, export), bench (bench, ensemble).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from digitnet.assets import MODEL_HELP
from digitnet.utils import DigitnetError

app = typer.Typer(
    name="digitnet",
    help="Train, evaluate, explain and serve handwritten-digit recognizers on MNIST.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error and exit: users see what went wrong and what to do, not a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def train(
    arch: str = typer.Option("fastnet", "--arch", "-a", help="Architecture (see `digitnet models`)."),
    width: int | None = typer.Option(None, help="Channel width of fastnet/bestnet/resnet (their `width` argument)."),
    epochs: int | None = typer.Option(None, help="Epochs (default: the architecture's recipe)."),
    batch_size: int | None = typer.Option(None, "--batch-size", "-b", help="Batch size."),
    lr: float | None = typer.Option(None, help="Learning rate (peak LR for onecycle/cosine)."),
    optimizer: str | None = typer.Option(None, help="adam, adamw, sgd, rmsprop or adadelta."),
    momentum: float | None = typer.Option(None, help="Momentum for sgd."),
    nesterov: bool | None = typer.Option(None, "--nesterov/--no-nesterov", help="Nesterov momentum (sgd)."),
    weight_decay: float | None = typer.Option(None, "--weight-decay", help="Weight decay on weight matrices."),
    l2: float | None = typer.Option(None, help="Keras-style L2 penalty on weight matrices."),
    label_smoothing: float | None = typer.Option(None, "--label-smoothing", help="Label smoothing, 0..1."),
    schedule: str | None = typer.Option(None, help="none, plateau, step, cosine or onecycle."),
    warmup: float = typer.Option(0.2, help="Fraction of steps to warm up (onecycle, cosine)."),
    plateau_factor: float = typer.Option(0.2, "--plateau-factor", help="LR factor on plateau."),
    plateau_patience: int = typer.Option(3, "--plateau-patience", help="Epochs without improvement before cutting LR."),
    step_size: int = typer.Option(1, "--step-size", help="Epochs between LR cuts (step schedule)."),
    step_gamma: float = typer.Option(0.7, "--step-gamma", help="LR factor per cut (step schedule)."),
    early_stopping: int | None = typer.Option(None, "--early-stopping", help="Patience in epochs (off if unset)."),
    restore_best: bool | None = typer.Option(
        None, "--restore-best/--keep-last",
        help="Save the best-validation epoch's weights, or the last epoch's. Default: best with early stopping or "
        "a none/step/plateau schedule, last for onecycle/cosine."),
    monitor: str = typer.Option("val_accuracy", help="Metric for plateau/early stopping: val_accuracy or val_loss."),
    augment: str | None = typer.Option(None, help="Augmentation: none, light, robust or strong."),
    val_size: int = typer.Option(5000, "--val-size", help="Validation images from the end of training (0: none)."),
    train_subset: int | None = typer.Option(None, "--train-subset", help="Train on the first N images only."),
    seed: int = typer.Option(0, help="Random seed (runs are deterministic on CPU)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int | None = typer.Option(None, help="CPU threads for PyTorch."),
    amp: bool | None = typer.Option(None, "--amp/--no-amp", help="bf16 mixed precision (default: on CUDA only)."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model (pays off on GPUs)."),
    data: str | None = typer.Option(None, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
    download: bool = typer.Option(False, help="Allow downloading MNIST if it is not installed."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default runs/ARCH-TIME)."),
    resume: bool = typer.Option(False, help="Continue the run in --out exactly where it stopped."),
    tensorboard: bool = typer.Option(False, help="Write TensorBoard logs into the run directory."),
    plots: bool = typer.Option(True, help="Write curves, confusion matrix, galleries and report.html."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
    json_out: bool = typer.Option(False, "--json", help="Print the final metrics as one JSON object."),
) -> None:
    """Train a model on MNIST and save it (weights, metadata, history, metrics) in a run directory."""
    from digitnet.train import TrainConfig
    from digitnet.train import train as run_training

    cfg = TrainConfig(
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
        nesterov=nesterov, weight_decay=weight_decay, l2=l2, label_smoothing=label_smoothing, schedule=schedule,
        warmup=warmup, plateau_factor=plateau_factor, plateau_patience=plateau_patience, step_size=step_size,
        step_gamma=step_gamma, early_stopping=early_stopping, restore_best=restore_best, monitor=monitor,
        augment=augment, val_size=val_size,
        train_subset=train_subset, seed=seed, device=device, threads=threads, amp=amp, compile=compile_model,
        data=data, download=download,
        out=str(out) if out else None, resume=resume, tensorboard=tensorboard, plots=plots,
        arch_kwargs={"width": width} if width else {},
    )
    result = run_training(cfg, quiet=quiet)
    if json_out:
        print(json.dumps({"run_dir": str(result.run_dir), **result.metrics}))
    if result.interrupted:
        raise typer.Exit(130)


@app.command()
def evaluate(
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: accuracy, loss, per_class, confusion."),
    data: str | None = typer.Option(None, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
    subset: int | None = typer.Option(None, help="Evaluate on the first N test images only."),
    calibrated: bool = typer.Option(False, help="Report the loss with the model's calibration temperature."),
) -> None:
    """Evaluate a model on the 10,000 MNIST test images."""
    import torch

    from digitnet.data import load_mnist
    from digitnet.evaluate import evaluate_model
    from digitnet.saved_model import load_model

    loaded = load_model(model)
    mnist = load_mnist(data)
    images, labels = mnist.test_images, mnist.test_labels
    if subset:
        images, labels = images[:subset], labels[:subset]
    metrics = evaluate_model(loaded.model, torch.from_numpy(images), torch.from_numpy(labels.astype("int64")),
                             loaded.spec, temperature=loaded.temperature if calibrated else 1.0)
    metrics = {"model": str(loaded.path), "arch": loaded.arch, **metrics}
    if json_out:
        print(json.dumps(metrics))
        return
    console.print(f"[bold]{loaded.arch}[/] from {loaded.path}: accuracy [bold green]{metrics['accuracy']:.4%}[/], "
                  f"loss {metrics['loss']:.4f}, {metrics['errors']} errors of {metrics['num_samples']}")
    table = Table("digit", "precision", "recall", "f1", "support", title="Per class")
    for row in metrics["per_class"]:
        table.add_row(str(row["digit"]), f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                      str(row["support"]))
    console.print(table)
    confusion = Table("true \\ pred", *[str(d) for d in range(10)], title="Confusion matrix")
    for d, row in enumerate(metrics["confusion"]):
        confusion.add_row(str(d), *[f"[bold]{v}[/]" if i == d else (str(v) if v else "·") for i, v in enumerate(row)])
    console.print(confusion)


@app.command("models")
def models_command(json_out: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """List the architectures in the model zoo."""
    from digitnet.models import count_parameters, create_model, get_spec, list_models

    rows = []
    for name in list_models():
        spec = get_spec(name)
        rows.append({"name": name, "parameters": count_parameters(create_model(name)), "input_size": spec.input_size,
                     "normalization": spec.normalization, "description": spec.description})
    if json_out:
        print(json.dumps(rows))
        return
    table = Table("name", "params", "input", "normalization", "description", title="digitnet model zoo")
    for r in rows:
        table.add_row(r["name"], f"{r['parameters']:,}", f"{r['input_size']}×{r['input_size']}", r["normalization"],
                      r["description"])
    console.print(table)


@app.command()
def summary(
    arch: str = typer.Argument(..., help="Architecture name (see `digitnet models`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the layers as JSON."),
) -> None:
    """Keras-style summary of an architecture: each layer, its output shape and parameters."""
    from digitnet.models.summary import summarize

    info = summarize(arch)
    if json_out:
        print(json.dumps(info))
        return
    table = Table("layer (type)", "output shape", "params", title=f"Model: {arch}")
    for layer in info["layers"]:
        table.add_row(layer["name"], str(tuple(layer["output_shape"])), f"{layer['params']:,}")
    console.print(table)
    console.print(f"Total params: {info['total_params']:,}\nTrainable params: {info['trainable_params']:,}\n"
                  f"Non-trainable params: {info['total_params'] - info['trainable_params']:,}")


def _register_subcommands() -> None:
    # Each concern owns its commands; the CLI only collects them.
    from digitnet.bench import commands as bench_commands
    from digitnet.evaluate import commands as evaluate_commands
    from digitnet.serve import commands as serve_commands
    from digitnet.vision import commands as vision_commands

    for module in (vision_commands, evaluate_commands, serve_commands, bench_commands):
        module.register(app)


_register_subcommands()


def main() -> None:
    """Entry point: run the app, turning expected errors into one clean line."""
    try:
        app()
    except DigitnetError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
