"""Figures of a run: learning curves, confusion matrix, digit galleries, model comparison, explanations.

Every function builds a :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so nothing depends on a
display or on global figure state, and returns a :class:`Plot`: the figure plus the numbers it shows, which
tests and reports read instead of parsing pixels. Digit galleries are drawn as one montage image with text
labels rather than one subplot per digit: dozens of axes would cost about a second per figure.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from digitnet.utils import atomic_write_bytes

DPI = 100
WRONG = "#c62828"  # the red of wrong predictions
RIGHT = "#222222"
TILE = 28  # MNIST digits are 28×28
GAP_X = 6  # canvas pixels between the tiles of a gallery


@dataclass
class Plot:
    """A figure and the data it plots."""

    figure: Figure
    data: dict = field(default_factory=dict)

    def png(self) -> bytes:
        """The figure as PNG bytes."""
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
        return buffer.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the figure as a PNG (atomically)."""
        return atomic_write_bytes(path, self.png())


# --------------------------------------------------------------------------- learning curves


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Epochs and values of ``key``, skipping epochs where it was not measured."""
    points = [(int(row["epoch"]), float(row[key])) for row in history if row.get(key) not in (None, "")]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(history: list[dict]) -> Plot:
    """Loss, accuracy and learning rate per epoch (train, validation, and test when tracked)."""
    # Fixed margins instead of a layout engine: these figures are drawn after every run, and a layout
    # engine doubles the drawing time.
    fig = Figure(figsize=(13, 3.8))
    fig.subplots_adjust(left=0.055, right=0.99, bottom=0.13, top=0.92, wspace=0.25)
    ax_loss, ax_acc, ax_lr = fig.subplots(1, 3)
    data: dict[str, tuple[list[int], list[float]]] = {}
    styles = {"train": dict(color="#1f77b4", marker="o"), "val": dict(color="#ff7f0e", marker="s"),
              "test": dict(color="#2ca02c", marker="^")}
    for split in ("train", "val"):
        epochs, values = _series(history, f"{split}_loss")
        if epochs:
            data[f"{split}_loss"] = (epochs, values)
            ax_loss.plot(epochs, values, label=split, **styles[split])
    for split in ("train", "val", "test"):
        epochs, values = _series(history, f"{split}_accuracy")
        if epochs:
            data[f"{split}_accuracy"] = (epochs, values)
            ax_acc.plot(epochs, [100 * v for v in values], label=split, **styles[split])
    epochs, values = _series(history, "lr")
    data["lr"] = (epochs, values)
    ax_lr.plot(epochs, values, color="#9467bd", marker="o")
    # Schedules like onecycle span orders of magnitude: a log axis keeps the tail visible.
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax_lr.set_yscale("log")
    else:
        if values and max(values) - min(values) <= 0.01 * max(values):
            ax_lr.set_ylim(0, 1.5 * max(values))  # a constant rate: a flat line, not a zoom into rounding noise
        # 1.0 ×10⁻³ rather than 0.0010: short tick labels that leave room for the axis label.
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3), useMathText=True)
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    ax_lr.set(title="Learning rate (end of epoch)", xlabel="epoch", ylabel="learning rate")
    ax_acc.yaxis.set_major_formatter(PercentFormatter(decimals=1))
    all_epochs = [int(row["epoch"]) for row in history]
    for ax in (ax_loss, ax_acc, ax_lr):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if all_epochs:  # half an epoch of margin: a one-epoch run gets one tick, "1", not 0.95…1.05
            ax.set_xlim(min(all_epochs) - 0.5, max(all_epochs) + 0.5)
        ax.grid(alpha=0.3)
    for ax in (ax_loss, ax_acc):
        if ax.lines:
            ax.legend()
    return Plot(fig, data)


# --------------------------------------------------------------------------- confusion matrix


def plot_confusion(confusion: np.ndarray | list) -> Plot:
    """Heatmap of the confusion matrix normalized per true class, annotated with the raw counts."""
    counts = np.asarray(confusion, dtype=np.int64)
    k = counts.shape[0]
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else 0.0
    fig = Figure(figsize=(7.2, 6.2))
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.08, top=0.94)
    ax = fig.subplots()
    # A power norm stretches the small off-diagonal shares so that mistakes show up next to a ~99% diagonal.
    image = ax.imshow(share, cmap="Blues", norm=PowerNorm(gamma=0.4, vmin=0, vmax=1))
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                dark = share[i, j] > 0.45
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8 if i == j else 9,
                        color="white" if dark else (RIGHT if i == j else WRONG),
                        fontweight="normal" if i == j else "bold")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set(xlabel="predicted digit", ylabel="true digit",
           title=f"Confusion matrix: {total:,} test digits, {accuracy:.2%} correct")
    colorbar = fig.colorbar(image, ax=ax, shrink=0.85)
    colorbar.set_label("share of the true digit's images")
    return Plot(fig, {"counts": counts, "share": share})


# --------------------------------------------------------------------------- digit galleries


def _gallery(images: np.ndarray, labels: list[str], colors: list[str], cols: int, title: str,
             label_lines: int = 1) -> Figure:
    """One montage of 28×28 digits (white on black, as the model sees them) with a label above each."""
    n = len(images)
    rows = max(1, math.ceil(n / cols))
    gap_y = 4 + 5 * label_lines  # canvas pixels above each tile (one is 2.8 screen pixels): room for its label
    cell_w, cell_h = TILE + GAP_X, TILE + gap_y
    # NaN is drawn in the colormap's "bad" color: white gaps between black tiles.
    canvas = np.full((rows * cell_h, cols * cell_w), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = r * cell_h + gap_y, c * cell_w + GAP_X // 2
        canvas[top:top + TILE, left:left + TILE] = image
    scale = 0.028  # inches per canvas pixel: a digit is about 0.8 inch wide
    width, height, title_height = canvas.shape[1] * scale, canvas.shape[0] * scale, 0.3
    fig = Figure(figsize=(width + 0.2, height + title_height + 0.1))
    # An axes box with exactly the canvas' aspect, placed by hand: no blank bands around the montage.
    fig_w, fig_h = fig.get_size_inches()
    ax = fig.add_axes((0.1 / fig_w, 0.1 / fig_h, width / fig_w, height / fig_h))
    cmap = colormaps["gray"].with_extremes(bad="white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=255, interpolation="nearest", aspect="auto")
    for i, (label, color) in enumerate(zip(labels, colors, strict=True)):
        r, c = divmod(i, cols)
        ax.text(c * cell_w + cell_w / 2, r * cell_h + gap_y - 1.5, label, ha="center", va="bottom", fontsize=9,
                color=color, linespacing=1.0)
    ax.set_axis_off()
    fig.text(0.5, 1 - 0.08 / fig_h, title, ha="center", va="top", fontsize=11)
    return fig


def plot_errors(images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, limit: int = 30,
                cols: int = 10) -> Plot:
    """The most confidently wrong predictions: the digit, "true → predicted" and the model's confidence."""
    labels = np.asarray(labels)
    predicted = probabilities.argmax(1)
    confidence = probabilities.max(1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    data = {"indices": order, "true": labels[order], "predicted": predicted[order],
            "confidence": confidence[order], "errors": len(wrong), "total": len(labels)}
    if len(order) == 0:
        fig = Figure(figsize=(6, 1.5), layout="constrained")
        ax = fig.subplots()
        ax.text(0.5, 0.5, f"No mistakes on {len(labels):,} test digits", ha="center", va="center", fontsize=12)
        ax.set_axis_off()
        return Plot(fig, data)
    texts = [f"{t} → {p}\n{c:.1%}" for t, p, c in zip(data["true"], data["predicted"], data["confidence"], strict=True)]
    title = (f"The {len(order)} most confident mistakes of {len(wrong):,} on {len(labels):,} test digits "
             "(true → predicted, confidence)")
    fig = _gallery(np.asarray(images)[order], texts, [WRONG] * len(order), min(cols, len(order)), title,
                   label_lines=2)
    return Plot(fig, data)


def plot_samples(images: np.ndarray, labels: np.ndarray, predicted: np.ndarray, count: int = 50, cols: int = 10,
                 seed: int = 0) -> Plot:
    """A fixed random sample of test digits titled "true → predicted", the wrong ones in red."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    # A seeded sample: the same digits in every report, so reports of different models compare side by side.
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(labels), size=min(count, len(labels)), replace=False))
    wrong = predicted[indices] != labels[indices]
    texts = [f"{t} → {p}" for t, p in zip(labels[indices], predicted[indices], strict=True)]
    colors = [WRONG if w else RIGHT for w in wrong]
    errors = int(wrong.sum())
    title = f"{len(indices)} random test digits (true → predicted): " + (
        f"{errors} wrong, in red" if errors else "all correct")
    fig = _gallery(np.asarray(images)[indices], texts, colors, min(cols, max(len(indices), 1)), title)
    return Plot(fig, {"indices": indices, "true": labels[indices], "predicted": predicted[indices], "wrong": wrong})


# --------------------------------------------------------------------------- comparison of models


def plot_line_alignment(images: list[np.ndarray], truths: list[str], reads: list[str],
                        spans: list[list[tuple[int, int]]], reduction: int = 4, title: str = "") -> Plot:
    """Line images (H, W) in 0..1 (ink bright) as the recognizer saw them, each character it read shaded over
    the output columns CTC aligned it to and written above them; the line's truth and reading beside it."""
    rows = len(images)
    width = max((image.shape[1] for image in images), default=1)
    height = images[0].shape[0] if images else 32
    scale = 0.035  # inches per line pixel
    title_inches = 0.3 + 0.2 * title.count("\n")  # room for every line of the title
    fig = Figure(figsize=(width * scale + 2.6, rows * (height * scale + 0.32) + 0.4 + title_inches))
    palette = ["#1e88e5", "#fb8c00"]  # alternate, so neighbouring characters stay apart
    for k, (image, truth, read, line_spans) in enumerate(zip(images, truths, reads, spans, strict=True)):
        ax = fig.add_subplot(rows, 1, k + 1)
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest", aspect="equal",
                  extent=(0, image.shape[1], height, 0))
        for j, ((t0, t1), char) in enumerate(zip(line_spans, read, strict=True)):
            x0, x1 = t0 * reduction, (t1 + 1) * reduction
            ax.axvspan(x0, x1, color=palette[j % 2], alpha=0.35, lw=0)
            ax.text((x0 + x1) / 2, -1, "␣" if char == " " else char, ha="center", va="bottom", fontsize=9,
                    color=palette[j % 2])
        ax.set_xlim(0, width)
        ax.set_axis_off()
        color = RIGHT if read == truth else WRONG
        ax.text(width + 4, height / 2, f"{truth!r}\n→ {read!r}", va="center", fontsize=9, color=color,
                family="monospace")
    if title:
        fig.suptitle(title, fontsize=11)
    fig_width, fig_height = fig.get_size_inches()
    fig.subplots_adjust(left=0.02, right=1 - 2.5 / fig_width, top=1 - (0.3 + title_inches) / fig_height,
                        bottom=0.02, hspace=0.9)
    return Plot(fig, {"truths": list(truths), "reads": list(reads), "spans": [list(s) for s in spans]})


def _minor_log_label(ax, value: float, _position) -> str:
    low, high = ax.get_xlim()
    if value <= 0 or high / max(low, 1e-12) > 30:  # three decades or more: the powers of ten are enough
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return f"{value:g}" if round(mantissa) in (2, 5) else ""


def plot_compare(rows: list[dict]) -> Plot:
    """Test accuracy per architecture (bars) and accuracy against training time (log-x scatter)."""
    names = [r["arch"] for r in rows]
    accuracy = [100 * r["test_accuracy"] for r in rows]
    seconds = [max(r["train_seconds"], 1e-3) for r in rows]
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    ax_bar, ax_time = fig.subplots(1, 2)
    colors = [f"C{i}" for i in range(len(rows))]
    bars = ax_bar.bar(names, accuracy, color=colors)
    ax_bar.bar_label(bars, labels=[f"{a:.2f}%" for a in accuracy], padding=2, fontsize=9)
    # MNIST accuracies crowd near 100%: start the axis just below the worst model so differences show.
    low = max(0.0, math.floor(min(accuracy, default=0) - 1))
    high = max(accuracy, default=100)
    ax_bar.set_ylim(low, min(100.5, high + 0.12 * (high - low) + 0.3))
    ax_bar.set(title=f"Test accuracy (axis starts at {low:g}%)", xlabel="architecture", ylabel="test accuracy (%)")
    ax_bar.tick_params(axis="x", rotation=20)
    ax_time.scatter(seconds, accuracy, c=colors, s=60, zorder=3)
    for name, x, y in zip(names, seconds, accuracy, strict=True):
        ax_time.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=9)
    ax_time.set_xscale("log")
    ax_time.margins(x=0.2, y=0.12)  # room for the labels of the outermost points
    # Plain numbers (0.1, 1, 10 rather than 10⁻¹); over a short span also 2 and 5 times a power of ten.
    ax_time.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax_time.xaxis.set_minor_formatter(FuncFormatter(partial(_minor_log_label, ax_time)))
    ax_time.tick_params(axis="x", which="minor", labelsize=8)
    epochs = sorted({r["epochs"] for r in rows})
    budget = "/".join(map(str, epochs)) + (" epoch" if epochs == [1] else " epochs")
    ax_time.set(title=f"Accuracy vs training time ({budget})", xlabel="training time (s, log scale)",
                ylabel="test accuracy (%)")
    for ax in (ax_bar, ax_time):
        ax.grid(alpha=0.3, axis="y" if ax is ax_bar else "both")
    return Plot(fig, {"arch": names, "accuracy": accuracy, "train_seconds": seconds})


# --------------------------------------------------------------------------- one explained digit


def plot_explanation(image: np.ndarray, probabilities: np.ndarray, saliency: np.ndarray, method: str,
                     title: str = "") -> Plot:
    """Three panels: the 28×28 input the model saw, its probability per digit, and the saliency map."""
    predicted = int(np.argmax(probabilities))
    fig = Figure(figsize=(12.5, 4.2), layout="constrained")
    ax_in, ax_prob, ax_sal = fig.subplots(1, 3, width_ratios=[1, 1.3, 1.2])
    ax_in.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax_in.set_title("What the model saw: the 28×28 input", fontsize=11)
    ax_in.set(xticks=[], yticks=[])

    colors = [WRONG if d == predicted else "#90a4ae" for d in range(10)]
    bars = ax_prob.bar(range(10), 100 * probabilities, color=colors)
    ax_prob.bar_label(bars, labels=[f"{p:.0%}" if p >= 0.005 else "" for p in probabilities], fontsize=8)
    ax_prob.set_xticks(range(10))
    ax_prob.set_ylim(0, 110)
    ax_prob.set_title(f"Prediction: {predicted} ({probabilities[predicted]:.1%})", fontsize=11)
    ax_prob.set(xlabel="digit", ylabel="probability (%)")
    ax_prob.grid(alpha=0.3, axis="y")

    heat = ax_sal.imshow(saliency, cmap="inferno", vmin=0, vmax=max(float(saliency.max()), 1e-12),
                         interpolation="nearest")
    # The digit's outline on top of the heat map: where the evidence lies relative to the strokes.
    if image.max() > 127:
        ax_sal.contour(image, levels=[127.5], colors="#4fc3f7", linewidths=1.0)
    names = {"gradient": "input gradients (SmoothGrad)", "occlusion": "occlusion"}
    ax_sal.set_title(f"Saliency for {predicted}: {names.get(method, method)}", fontsize=11)
    ax_sal.set(xticks=[], yticks=[])
    colorbar = fig.colorbar(heat, ax=ax_sal, shrink=0.85)
    colorbar.set_label("importance (relative); blue: digit outline")
    if title:
        fig.suptitle(title)
    return Plot(fig, {"image": image, "probabilities": probabilities, "saliency": saliency, "predicted": predicted})
