"""``digitnet compare``: several architectures under one budget, side by side.

Each architecture trains for the same number of epochs on the same images (or an earlier run with the same
settings is reused), then is measured the same way: test accuracy and loss, and inference throughput at batch
1024 over the test set. The results go to ``compare.csv``, ``compare.md`` and ``compare.png``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from digitnet.data.sources import MNIST, load_mnist
from digitnet.evaluate.plots import plot_compare
from digitnet.models.registry import count_parameters, get_spec
from digitnet.train.metrics import classification_metrics, predict_logits
from digitnet.train.run_folder import inspect_run
from digitnet.utils import DigitnetError, atomic_write_text, pick_device

DEFAULT_ARCHS = ("mlp", "lenet5", "lenet5-bn", "cnn-bn", "resnet18")
FIELDS = ["arch", "parameters", "epochs", "train_seconds", "test_accuracy", "test_loss", "images_per_second",
          "run_dir"]
INFERENCE_BATCH = 1024
# Settings that must match for an earlier run to stand in for a new one.
REUSE_KEYS = ("arch", "epochs", "train_subset", "test_subset", "seed", "val_size")


def parse_archs(text: str) -> list[str]:
    """``"mlp, lenet5"`` → ``["mlp", "lenet5"]``, checked against the model zoo, duplicates dropped."""
    archs = list(dict.fromkeys(a.strip() for a in text.split(",") if a.strip()))
    if not archs:
        raise DigitnetError("--archs is empty; give a comma-separated list such as mlp,lenet5")
    for arch in archs:
        if get_spec(arch).composite:  # get_spec raises a one-line error naming the valid choices
            raise DigitnetError(f"--archs: {arch!r} is made from trained models, not trained; leave it out")
    return archs


def measure(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """Test accuracy and loss, and inference images/s at batch 1024, from one timed pass over ``images``."""
    spec = model.spec
    predict_logits(model, images[:INFERENCE_BATCH], spec, batch_size=INFERENCE_BATCH)  # warm-up: allocations
    device = next(model.parameters()).device
    start = time.perf_counter()
    logits = predict_logits(model, images, spec, batch_size=INFERENCE_BATCH)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    metrics = classification_metrics(logits, labels)
    return {"test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
            "images_per_second": len(labels) / max(seconds, 1e-9)}


def _same_settings(run_dir: Path, wanted: dict) -> bool:
    """Whether the run in ``run_dir`` was started with ``wanted``'s settings (those that change the result)."""
    try:
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(config, dict) and all(config.get(key) == wanted[key] for key in REUSE_KEYS)


def _reusable(run_dir: Path, wanted: dict) -> dict | None:
    """The saved metrics of a finished run in ``run_dir`` trained with ``wanted`` settings, else None."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not (run_dir / "model.json").is_file() or metrics.get("interrupted"):
        return None
    return metrics if _same_settings(run_dir, wanted) else None


def _continue_or_replace(run_dir: Path, cfg, reuse: bool, console: Console) -> None:
    """A run folder that cannot be reused is continued (an interrupted run with the same settings) or replaced,
    saying so: never silently."""
    existing = inspect_run(run_dir)
    if existing is None:
        return
    if reuse and (run_dir / "last.pt").is_file() and _same_settings(run_dir, cfg.to_dict()):
        cfg.resume = True
        console.print(f"[bold]{cfg.arch}[/]: continuing {existing.describe()} in {run_dir}")
    else:
        cfg.overwrite = True
        why = "--no-reuse" if reuse is False else "other settings"
        console.print(f"[bold]{cfg.arch}[/]: replacing {existing.describe()} in {run_dir} ({why})")


def compare_models(
    archs: list[str],
    epochs: int = 3,
    train_subset: int | None = None,
    runs_dir: str | os.PathLike = "runs/compare",
    out: str | os.PathLike | None = None,
    reuse: bool = True,
    mnist: MNIST | None = None,
    test_subset: int | None = None,
    seed: int = 0,
    device: str = "auto",
    threads: int | None = None,
    console: Console | None = None,
    quiet: bool = False,
) -> list[dict]:
    """Train (or reuse) each architecture for ``epochs`` epochs, measure it, and write the comparison files."""
    from digitnet.saved_model import load_model
    from digitnet.train import TrainConfig, train

    if epochs < 1:
        raise DigitnetError(f"--epochs must be at least 1, got {epochs}")
    console = console or Console(stderr=True, quiet=quiet, soft_wrap=True)  # one line each in a log too
    runs_dir = Path(runs_dir)
    out_dir = Path(out) if out else runs_dir
    mnist = mnist or load_mnist()  # once, for every model
    test_images = torch.from_numpy(np.ascontiguousarray(mnist.test_images[:test_subset]))
    test_labels = torch.from_numpy(mnist.test_labels[:test_subset].astype(np.int64))
    rows = []
    for arch in archs:
        run_dir = runs_dir / arch
        # plots=False: the comparison is the report here; `digitnet report RUN_DIR` draws a run's plots later.
        cfg = TrainConfig(arch=arch, epochs=epochs, train_subset=train_subset, test_subset=test_subset, seed=seed,
                          device=device, threads=threads, out=str(run_dir), plots=False)
        saved = _reusable(run_dir, cfg.to_dict()) if reuse else None
        if saved is not None:
            console.print(f"[bold]{arch}[/]: reusing {run_dir} (trained {saved['train_seconds']:.1f}s)")
            model = load_model(run_dir, device=pick_device(device)).model
            train_seconds, epochs_run = saved["train_seconds"], saved["epochs_run"]
        else:
            _continue_or_replace(run_dir, cfg, reuse, console)
            result = train(cfg, mnist=mnist, console=console, quiet=quiet)
            if result.interrupted:
                # Finished runs are reused next time, so rerunning the same command picks up from here.
                raise DigitnetError(f"interrupted while training {arch}; run the same command again to continue")
            model = result.model
            train_seconds, epochs_run = result.metrics["train_seconds"], result.metrics["epochs_run"]
        rows.append({"arch": arch, "parameters": count_parameters(model), "epochs": epochs_run,
                     "train_seconds": train_seconds, **measure(model, test_images, test_labels),
                     "run_dir": str(run_dir)})
        del model  # a ResNet's weights and buffers need not wait for the next model
    write_comparison(rows, out_dir, train_size=train_subset, test_size=len(test_labels))
    return rows


def write_comparison(rows: list[dict], out_dir: Path, train_size: int | None = None,
                     test_size: int | None = None) -> None:
    """``compare.csv`` (raw numbers), ``compare.md`` (a readable table) and ``compare.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(out_dir / "compare.csv", buffer.getvalue())
    atomic_write_text(out_dir / "compare.md", markdown_table(rows, train_size, test_size))
    plot = plot_compare(rows)
    plot.save(out_dir / "compare.png")
    plot.figure.clear()


def _formatted(row: dict) -> list[str]:
    return [row["arch"], f"{row['parameters']:,}", str(row["epochs"]), f"{row['train_seconds']:.1f}",
            f"{row['test_accuracy']:.2%}", f"{row['test_loss']:.4f}", f"{row['images_per_second']:,.0f}"]


HEADERS = ["arch", "parameters", "epochs", "training (s)", "test accuracy", "test loss", "inference (img/s)"]


def markdown_table(rows: list[dict], train_size: int | None = None, test_size: int | None = None) -> str:
    """The comparison as a Markdown table, with a line saying what was measured."""
    lines = [
        "# digitnet compare", "",
        f"Trained on {'all' if train_size is None else f'{train_size:,}'} MNIST training images; "
        f"tested on {test_size:,} test images; inference measured at batch {INFERENCE_BATCH}. "
        f"{time.strftime('%Y-%m-%d %H:%M')}.", "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_formatted(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rich_table(rows: list[dict]) -> Table:
    """The comparison for the terminal (short headers: it must fit 80 columns); the most accurate in bold."""
    table = Table("arch", "params", "epochs", "train s", "test acc", "test loss", "img/s", title="digitnet compare")
    for column in table.columns[1:]:
        column.justify = "right"
    best = max(rows, key=lambda r: r["test_accuracy"])["arch"] if rows else None
    for row in rows:
        table.add_row(*_formatted(row), style="bold" if row["arch"] == best else None)
    return table
