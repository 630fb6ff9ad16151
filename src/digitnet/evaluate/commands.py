"""CLI commands of this concern, added to the main app by ``register(app)``: report, compare, explain."""

from __future__ import annotations

from pathlib import Path

import typer

from digitnet.assets import MODEL_HELP

# As digitnet.evaluate.compare.DEFAULT_ARCHS, spelled out so that `digitnet --help` need not import torch.
DEFAULT_ARCHS = "mlp,lenet5,lenet5-bn,cnn-bn,resnet18"


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""

    @app.command()
    def report(
        run_dir: Path = typer.Argument(..., help="A training run directory (the --out of `digitnet train`)."),
        data: str | None = typer.Option(None, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
    ) -> None:
        """Rebuild a run's plots and report.html from its directory (model, history.csv, config.json)."""
        from digitnet.evaluate.report import PLOT_FILES, report_run_dir

        page = report_run_dir(run_dir, data)
        written = [name for name in PLOT_FILES.values() if (run_dir / name).is_file()]
        typer.echo(f"wrote {page} (with {', '.join(written)})")

    @app.command()
    def compare(
        archs: str = typer.Option(DEFAULT_ARCHS, "--archs", help="Comma-separated architectures."),
        epochs: int = typer.Option(3, help="Epochs for every architecture: one budget for all."),
        train_subset: int | None = typer.Option(None, "--train-subset", help="Train on the first N images only."),
        runs_dir: Path = typer.Option(Path("runs/compare"), "--runs-dir", help="Where each model's run is kept."),
        out: Path | None = typer.Option(None, "--out", "-o",
                                        help="Where compare.md/.csv/.png go (default: --runs-dir)."),
        reuse: bool = typer.Option(True, "--reuse/--no-reuse", help="Reuse finished runs with the same settings."),
        seed: int = typer.Option(0, help="Random seed for every run."),
        device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:N or mps."),
        threads: int | None = typer.Option(None, help="CPU threads for PyTorch."),
        data: str | None = typer.Option(None, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress output."),
    ) -> None:
        """Train several architectures under one budget and compare accuracy, training time and speed."""
        from rich.console import Console

        from digitnet.data import load_mnist
        from digitnet.evaluate.compare import compare_models, parse_archs, rich_table

        names = parse_archs(archs)  # check every name before training anything
        rows = compare_models(names, epochs=epochs, train_subset=train_subset, runs_dir=runs_dir, out=out,
                              reuse=reuse, mnist=load_mnist(data), seed=seed, device=device, threads=threads,
                              quiet=quiet)
        Console().print(rich_table(rows))
        target = out or runs_dir
        typer.echo(f"wrote {target / 'compare.md'}, {target / 'compare.csv'} and {target / 'compare.png'}")

    @app.command()
    def explain(
        image: Path = typer.Argument(..., help="A picture of one digit (any size; 28×28 MNIST-like is used as is)."),
        model: Path | None = typer.Option(None, "--model", "-m", help=MODEL_HELP),
        out: Path | None = typer.Option(None, "--out", "-o", help="Output PNG (default: IMAGE-explained.png here)."),
        method: str = typer.Option("occlusion", help="Saliency: occlusion or gradient (SmoothGrad)."),
    ) -> None:
        """Show what the model saw, its probabilities, and which pixels drove its answer, as one PNG."""
        from digitnet.evaluate.explain import explain_picture
        from digitnet.recognizer import Recognizer

        recognizer = Recognizer.from_pretrained(model)
        explanation = explain_picture(recognizer, image, method)
        path = explanation.save(out or Path(f"{image.stem}-explained.png"))
        digit = explanation.predicted
        typer.echo(f"{image}: {digit} ({explanation.probabilities[digit]:.1%}) → {path}")

