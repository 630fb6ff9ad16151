"""CLI commands for evaluation, added to the main app by ``register(app)``:
evaluate, ensemble, report, compare, explain."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from digitnet.assets import MODEL_HELP

DATA_HELP = "MNIST from a folder of IDX files or a Keras mnist.npz."
# `compare`'s defaults are compare.DEFAULT_ARCHS and compare_models' defaults, spelled out because importing
# digitnet.evaluate.compare loads matplotlib (~0.5 s on every `digitnet` call); tests/test_cli.py checks they agree.
DEFAULT_ARCHS = "mlp,lenet5,lenet5-bn,cnn-bn,resnet18"


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    for command in (evaluate, ensemble, report, compare, explain):
        app.command()(command)


def evaluate(
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object: accuracy, loss, per_class, confusion."),
    data: str | None = typer.Option(None, help=DATA_HELP),
    subset: int | None = typer.Option(None, min=1, help="Evaluate on the first N test images only (N ≥ 1; leave "
                                      "it out for all 10,000)."),
    calibrated: bool = typer.Option(False, help="Report the loss with the model's calibration temperature."),
) -> None:
    """Evaluate a model on the 10,000 MNIST test images."""
    from digitnet.evaluate import evaluate as evaluate_on_mnist

    metrics = evaluate_on_mnist(model, data=data, subset=subset, calibrated=calibrated)
    if json_out:
        print(json.dumps(metrics))
        return
    console = Console(soft_wrap=True)
    console.print(f"[bold]{metrics['arch']}[/] from {metrics['model']}: accuracy "
                  f"[bold green]{metrics['accuracy']:.4%}[/], loss {metrics['loss']:.4f}, "
                  f"{metrics['errors']} errors of {metrics['num_samples']}")
    table = Table("digit", "precision", "recall", "f1", "support", title="Per class")
    for row in metrics["per_class"]:
        table.add_row(str(row["digit"]), f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                      str(row["support"]))
    console.print(table)
    confusion = Table("true \\ pred", *[str(d) for d in range(10)], title="Confusion matrix")
    for d, row in enumerate(metrics["confusion"]):
        confusion.add_row(str(d), *[f"[bold]{v}[/]" if i == d else (str(v) if v else "·") for i, v in enumerate(row)])
    console.print(confusion)


def ensemble(
    models: str = typer.Option(..., "--models", help="Comma-separated model directories."),
    tta: bool = typer.Option(False, help="Test-time augmentation: average over shifted and rotated views."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Save the ensemble here as one model (calibrated on the validation split, scored "
        "once on test) that every command takes as --model."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model already in --out (else refused)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    subset: int | None = typer.Option(None, min=1, help="Evaluate on the first N test images only (N ≥ 1; leave "
                                      "it out for all 10,000)."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    data: str | None = typer.Option(None, help=DATA_HELP),
) -> None:
    """Evaluate an ensemble: average several models' probabilities (optionally with TTA) on MNIST test; with
    --out, save it as one model."""
    from digitnet.evaluate.ensemble import evaluate_model_dirs, save_ensemble

    paths = [p.strip() for p in models.split(",") if p.strip()]
    if not paths:
        raise typer.BadParameter("give at least one model directory", param_hint="--models")
    if out is not None:
        if tta or subset is not None:
            raise typer.BadParameter("a saved ensemble reads each image once, on the whole test set: leave out "
                                     "--tta and --subset", param_hint="--out")
        metrics = save_ensemble(paths, out, data=data, device=device, overwrite=overwrite)
        if json_out:
            print(json.dumps({"out": str(out), **metrics}))
            return
        console = Console()
        table = Table("model", "arch", "val accuracy", title=f"Ensemble saved to {out}")
        for m in metrics["members"]:
            table.add_row(m["model"], m["arch"], "" if m["val_accuracy"] is None else f"{m['val_accuracy']:.2%}")
        table.add_row("[bold]ensemble[/]", "ensemble", f"[bold]{metrics['val_accuracy']:.2%}[/]")
        console.print(table)
        console.print(f"test accuracy {metrics['test_accuracy']:.2%} ({metrics['test_errors']} errors); calibration "
                      f"temperature {metrics['temperature']:.3f}")
        return
    report = evaluate_model_dirs(paths, tta=tta, data=data, subset=subset, device=device)
    if json_out:
        print(json.dumps(report))
        return
    console = Console()
    table = Table("model", "arch", "accuracy", title=f"Ensemble on {report['num_samples']:,} MNIST test images"
                  + (f" (TTA, {report['tta_views']} views)" if tta else ""))
    for m in report["members"]:
        table.add_row(m["model"], m["arch"], f"{m['accuracy']:.4%}")
    table.add_row("[bold]ensemble[/]", "", f"[bold]{report['accuracy']:.4%}[/]")
    console.print(table)
    console.print(f"{report['errors']} errors of {report['num_samples']}")


def report(
    run_dir: Path = typer.Argument(..., help="A training run directory (the --out of `digitnet train`)."),
    data: str | None = typer.Option(None, help=DATA_HELP),
) -> None:
    """Rebuild a run's plots and report.html from its directory (model, history.csv, config.json)."""
    from digitnet.evaluate.report import LINE_PLOT_FILES, PLOT_FILES, report_run_dir

    page = report_run_dir(run_dir, data)
    written = [name for name in {**PLOT_FILES, **LINE_PLOT_FILES}.values() if (run_dir / name).is_file()]
    typer.echo(f"wrote {page} (with {', '.join(written)})")


def compare(
    archs: str = typer.Option(DEFAULT_ARCHS, "--archs", help="Comma-separated architectures."),
    epochs: int = typer.Option(3, help="Epochs for every architecture: one budget for all."),
    train_subset: int | None = typer.Option(None, "--train-subset", help="Train on the first N images only."),
    runs_dir: Path = typer.Option(Path("runs/compare"), "--runs-dir", help="Where each model's run is kept."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where compare.md/.csv/.png go (default: --runs-dir)."),
    reuse: bool = typer.Option(True, "--reuse/--no-reuse",
                               help="Reuse finished runs with the same settings."),
    seed: int = typer.Option(0, help="Random seed for every run."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
    threads: int | None = typer.Option(None, help="CPU threads for PyTorch."),
    data: str | None = typer.Option(None, help=DATA_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress output."),
) -> None:
    """Train several architectures under one budget and compare accuracy, training time and speed."""
    from digitnet.data import load_mnist
    from digitnet.evaluate.compare import compare_models, parse_archs, rich_table

    names = parse_archs(archs)  # check every name before training anything
    rows = compare_models(names, epochs=epochs, train_subset=train_subset, runs_dir=runs_dir, out=out,
                          reuse=reuse, mnist=load_mnist(data), seed=seed, device=device, threads=threads,
                          quiet=quiet)
    Console().print(rich_table(rows))
    target = out or runs_dir
    typer.echo(f"wrote {target / 'compare.md'}, {target / 'compare.csv'} and {target / 'compare.png'}")


def explain(
    image: Path = typer.Argument(..., help="A picture of one digit (any size; 28×28 MNIST-like is used as is)."),
    model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output PNG (default: IMAGE-explained.png here)."),
    method: str = typer.Option("occlusion", help="Saliency: occlusion or gradient (SmoothGrad)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the file already at --out (else refused; a "
                                   "model's own files never are)."),
) -> None:
    """Show what the model saw, its probabilities, and which pixels drove its answer, as one PNG."""
    from digitnet.evaluate.explain import explain_picture
    from digitnet.recognizer import Recognizer
    from digitnet.saved_model import check_new_output_file

    target = check_new_output_file(out or Path(f"{image.stem}-explained.png"), overwrite)  # before the model loads
    recognizer = Recognizer.from_pretrained(model)
    check_new_output_file(target, overwrite, recognizer.loaded.path)  # and never inside the model being read
    explanation = explain_picture(recognizer, image, method)
    path = explanation.save(target)
    digit = explanation.predicted
    typer.echo(f"{image}: {digit} ({explanation.probabilities[digit]:.1%}) → {path}")
