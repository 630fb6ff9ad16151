"""The run report: ``curves.png``, ``confusion.png``, ``errors.png``, ``samples.png`` and ``report.html``.

Training writes it at the end of every run (unless ``--no-plots``) through :class:`ReportCallback`, from the
test logits the trainer computed once; ``digitnet report RUN_DIR`` rebuilds it
from what the run directory holds: the saved model, ``history.csv``, ``config.json`` and the MNIST test set.
``report.html`` is one self-contained page: the images are embedded as base64 data URIs, so it can be mailed
or attached to a ticket without its folder.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from digitnet.data.splits import Split
from digitnet.evaluate.plots import Plot, plot_confusion, plot_curves, plot_errors, plot_line_alignment, plot_samples
from digitnet.train.callbacks import Callback, Fit
from digitnet.train.metrics import classification_metrics, predict_logits
from digitnet.utils import DigitnetError, atomic_write_bytes, atomic_write_text

PLOT_FILES = {"curves": "curves.png", "confusion": "confusion.png", "errors": "errors.png", "samples": "samples.png"}
LINE_PLOT_FILES = {"curves": "curves.png", "lines": "lines.png"}  # a line recognizer's report
LINE_SAMPLES = 16  # test lines drawn with their alignment in a line recognizer's report
REPORT_FILE = "report.html"


def read_history(run_dir: str | os.PathLike) -> list[dict]:
    """The rows of ``history.csv`` with numbers parsed; an empty cell (not measured) becomes None."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            row: dict = {}
            for key, value in raw.items():
                try:
                    row[key] = None if value in ("", None) else (int(value) if key == "epoch" else float(value))
                except ValueError:
                    raise DigitnetError(f"{path}: {key}={value!r} is not a number") from None
            rows.append(row)
    return rows


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DigitnetError(f"{path}: corrupt JSON ({exc})") from None
    return data if isinstance(data, dict) else {}


def make_plots(history: list[dict], images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray,
               confusion: list | np.ndarray) -> dict[str, Plot]:
    """The four report figures from a run's history and its test-set predictions."""
    plots = {}
    if history:
        plots["curves"] = plot_curves(history)
    plots["confusion"] = plot_confusion(confusion)
    plots["errors"] = plot_errors(images, labels, probabilities)
    plots["samples"] = plot_samples(images, labels, probabilities.argmax(1))
    return plots


def write_report(run_dir: str | os.PathLike, model: nn.Module, test: Split, temperature: float = 1.0,
                 logits: torch.Tensor | None = None) -> Path:
    """Evaluate ``model`` on ``test``, write the plots and ``report.html`` into ``run_dir``; return the page.

    ``logits``: the model's logits on ``test`` when the caller has them already (the trainer does).
    """
    run_dir = Path(run_dir)
    images, labels = test.images.cpu(), test.labels.cpu()
    logits = predict_logits(model, images, model.spec) if logits is None else logits.float().cpu()
    metrics = classification_metrics(logits, labels)
    probabilities = torch.softmax(logits / temperature, 1).numpy()
    history = read_history(run_dir)
    plots = make_plots(history, images.numpy(), labels.numpy(), probabilities, metrics["confusion"])
    pngs = {}
    for name, plot in plots.items():
        pngs[name] = plot.png()
        atomic_write_bytes(run_dir / PLOT_FILES[name], pngs[name])
        plot.figure.clear()  # figures are not tracked by pyplot; clearing frees their artists at once
    page = render_html(
        run_dir, metrics, pngs, history,
        config=_read_json(run_dir / "config.json"), saved_metrics=_read_json(run_dir / "metrics.json"),
        metadata=_read_json(run_dir / "model.json"), environment=_read_json(run_dir / "environment.json"),
    )
    return atomic_write_text(run_dir / REPORT_FILE, page)


def report_run_dir(run_dir: str | os.PathLike, data: str | None = None) -> Path:
    """Rebuild the report of a finished run from its directory (``digitnet report``)."""
    from digitnet.data import load_mnist
    from digitnet.saved_model import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DigitnetError(f"{run_dir}: no such run directory")
    loaded = load_model(run_dir)
    config = _read_json(run_dir / "config.json")
    mnist = load_mnist(data or config.get("data"))
    # Evaluate on the same test images the run was evaluated on (a quick run may have used a subset).
    limit = config.get("test_subset")
    test = Split(torch.from_numpy(np.ascontiguousarray(mnist.test_images[:limit])),
                 torch.from_numpy(mnist.test_labels[:limit].astype(np.int64)))
    if loaded.spec.task == "lines":
        from digitnet.train.lines import evaluate_lines, test_lines

        # The same test lines as training drew (drawn from the same test digits with the same seed).
        lines = test_lines(test)
        return write_line_report(run_dir, loaded.model, lines, evaluate_lines(loaded.model, lines))
    return write_report(run_dir, loaded.model, test, loaded.temperature)


def write_line_report(run_dir: str | os.PathLike, model: nn.Module, lines, metrics: dict) -> Path:
    """A line recognizer's report: learning curves and test lines with their CTC alignment (``lines``: a
    :class:`digitnet.data.lines.LineBatch` of test lines), and ``report.html``."""
    from digitnet.models.crnn import greedy_decode, output_lengths

    run_dir = Path(run_dir)
    history = read_history(run_dir)
    pngs = {}
    if history:
        pngs["curves"] = plot_curves(history).png()
    count = min(LINE_SAMPLES, len(lines.texts))
    model.eval()
    with torch.no_grad():
        probabilities = torch.softmax(model(lines.images[:count]).float(), 2).cpu().numpy()
    images, reads, spans = [], [], []
    for k, length in enumerate(output_lengths(lines.widths[:count].cpu()).tolist()):
        decoded = greedy_decode(probabilities[k, :length])
        images.append(lines.images[k, 0, :, :int(lines.widths[k])].cpu().numpy())
        reads.append(decoded.text)
        spans.append(decoded.spans)
    pngs["lines"] = plot_line_alignment(images, lines.texts[:count], reads, spans,
                                        title="test lines: each character over the columns CTC read it in").png()
    for name, png in pngs.items():
        atomic_write_bytes(run_dir / LINE_PLOT_FILES[name], png)
    page = render_html(
        run_dir, metrics, pngs, history,
        config=_read_json(run_dir / "config.json"), saved_metrics=_read_json(run_dir / "metrics.json"),
        metadata=_read_json(run_dir / "model.json"), environment=_read_json(run_dir / "environment.json"),
    )
    return atomic_write_text(run_dir / REPORT_FILE, page)


class ReportCallback(Callback):
    """Writes the run report when training ends (``digitnet train`` without ``--no-plots``)."""

    writes = True

    def on_fit_end(self, fit: Fit, test_logits: torch.Tensor | None, metrics: dict) -> None:
        if fit.run.lines is not None:
            test = {"accuracy": metrics["test_accuracy"], "errors": metrics["test_errors"],
                    "num_samples": metrics["test_samples"], "loss": metrics["test_loss"],
                    "char_error_rate": metrics["test_char_error_rate"]}
            write_line_report(fit.run_dir, fit.model, fit.run.lines.test_lines(), test)
            return
        write_report(fit.run_dir, fit.model, fit.run.splits.test, float(metrics.get("temperature") or 1.0),
                     logits=test_logits)


def error_gallery_png(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> bytes:
    """``errors.png``'s gallery of the most confident mistakes as PNG bytes (TensorBoard shows it too)."""
    plot = plot_errors(images, labels, probabilities)
    png = plot.png()
    plot.figure.clear()
    return png


def config_callbacks(cfg) -> list[Callback]:
    """The callbacks a training config asks for that need this layer: the report (``plots``) and, for
    ``tensorboard``, the TensorBoard callback with its gallery of mistakes (drawn here)."""
    callbacks: list[Callback] = []
    if cfg.tensorboard:
        from digitnet.train.tensorboard import TensorBoardCallback

        callbacks.append(TensorBoardCallback(error_gallery=error_gallery_png))
    if cfg.plots:
        callbacks.append(ReportCallback())
    return callbacks


# --------------------------------------------------------------------------- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1320px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; margin-top: 2rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6rem 1rem; min-width: 9rem; }
.card .v { font-size: 1.4rem; font-weight: 600; } .card .k { color: #666; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.7rem; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; }
.row { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{html.escape(alt)}">'


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "—" if value is None else str(value)


def _key_value_table(data: dict) -> str:
    rows = "".join(f'<tr><th class="l">{html.escape(str(k))}</th><td class="l">{html.escape(_fmt(v))}</td></tr>'
                   for k, v in data.items())
    return f"<table>{rows}</table>"


def render_html(run_dir: Path, metrics: dict, pngs: dict[str, bytes], history: list[dict], config: dict,
                saved_metrics: dict, metadata: dict, environment: dict) -> str:
    """The report page: summary, plots, per-class table, configuration and environment."""
    arch = metadata.get("arch") or config.get("arch") or "model"
    lines = "lines" in pngs
    cards = [
        ("test lines read exactly" if lines else "test accuracy", f"{metrics['accuracy']:.2%}"),
        ("test errors", f"{metrics['errors']:,} / {metrics['num_samples']:,}"),
        *([("character error rate", f"{metrics['char_error_rate']:.2%}")] if lines else []),
        ("test loss", f"{metrics['loss']:.4f}"),
        ("epochs", str(len(history)) if history else "—"),
        ("training time", f"{saved_metrics['train_seconds']:.1f} s" if saved_metrics.get("train_seconds") else "—"),
        ("parameters", f"{metadata['num_parameters']:,}" if metadata.get("num_parameters") else "—"),
        ("calibration T", f"{metadata['temperature']:.3f}" if metadata.get("temperature") else "—"),
    ]
    card_html = "".join(f'<div class="card"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}'
                        f"</div></div>" for k, v in cards)
    per_class = "".join(
        f"<tr><td>{r['digit']}</td><td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td><td>{r['f1']:.4f}</td>"
        f"<td>{r['support']:,}</td></tr>" for r in metrics.get("per_class", []))
    sections = []
    if "curves" in pngs:
        sections.append(f"<h2>Learning curves</h2>{_img(pngs['curves'], 'learning curves')}")
    if lines:
        sections.append(f"<h2>Test lines and their CTC alignment</h2>{_img(pngs['lines'], 'test lines')}")
    else:
        sections.append(
            f'<h2>Test set</h2><div class="row"><div>{_img(pngs["confusion"], "confusion matrix")}</div>'
            f'<div><h3>Per class</h3><table><tr><th>digit</th><th>precision</th><th>recall</th><th>F1</th>'
            f"<th>support</th></tr>{per_class}</table></div></div>")
        sections.append(f"<h2>Most confident mistakes</h2>{_img(pngs['errors'], 'most confident mistakes')}")
        sections.append(f"<h2>Sample predictions</h2>{_img(pngs['samples'], 'sample predictions')}")
    if config:
        sections.append(f"<h2>Configuration</h2>{_key_value_table(config)}")
    if environment:
        sections.append(f"<h2>Environment</h2>{_key_value_table(environment)}")
    title = f"digitnet report: {arch} ({run_dir.name})"
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="sub">{html.escape(str(run_dir.resolve()))} · report written {time.strftime("%Y-%m-%d %H:%M:%S")}</p>
<div class="cards">{card_html}</div>
{"".join(sections)}
</body>
</html>
"""
