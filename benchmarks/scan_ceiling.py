"""How much of a digit does a coarse scan keep? A model trained on nothing but such scans, as a yardstick.

``real_world.py`` renders MNIST digits as coarse scans (8×8 to 16×16 cells, 17 or 2 gray levels, the digit filling
its cell or keeping MNIST's frame) and asks the default model, which must also read every other kind of picture,
to read them. This script asks what any small model could: it trains a CNN on that one kind of scan only, drawn
with ``real_world.scan_cells`` from the first 55,000 MNIST *training* digits (each drawn ``--repeats`` times, with
fresh thresholds), and reads the same kind of scan of other digits — the 5,000 held-out training digits
(``--digits val``) or the MNIST *test* digits. A scan the yardstick reads at 87% will not be read at 95% by a model
that learned everything else too: where it stops is a property of the scan, not of the default model.

    python benchmarks/scan_ceiling.py --cell 8 --levels 2 --frame [--digits val] [--seed 0] [--json]

The yardstick sees the scan's own cells (not upscaled to 28×28): nothing is lost to resampling.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

import photo_digits  # noqa: E402
import real_world  # noqa: E402


def scans(images: np.ndarray, cell: int, levels: int, fill: bool, repeats: int,
          rng: np.random.Generator) -> torch.Tensor:
    """Each digit scanned ``repeats`` times (N × repeats, 1, cell, cell), ink in 0..1."""
    cells = [real_world.scan_cells(digit, cell, levels, fill, rng) for _ in range(repeats) for digit in images]
    return torch.from_numpy(np.stack(cells).astype(np.float32) / 255)[:, None]


def yardstick(cell: int) -> nn.Module:
    """Three 3×3 convolutions at the scan's own size, then two dense layers: ~0.1–0.3 M parameters."""
    return nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(128 * cell * cell, 256), nn.ReLU(), nn.Dropout(0.3), nn.Linear(256, 10))


def run(cell: int, levels: int, fill: bool, digits: str = "val", seed: int = 0, train_digits: int = 30_000,
        repeats: int = 2, epochs: int = 8, batch: int = 128, progress: bool = False) -> dict:
    """Train the yardstick on scans of training digits, then read scans of ``digits`` (val or test): accuracy."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    train_images, train_labels = photo_digits.benchmark_digits("train")
    pick = rng.choice(len(train_labels), size=min(train_digits, len(train_labels)), replace=False)
    x = scans(train_images[pick], cell, levels, fill, repeats, rng)
    y = torch.from_numpy(np.tile(train_labels[pick], repeats).astype(np.int64))
    images, labels = photo_digits.benchmark_digits(digits)
    x_eval, y_eval = scans(images, cell, levels, fill, 1, rng), torch.from_numpy(labels.astype(np.int64))
    model = yardstick(cell)
    steps = epochs * -(-len(y) // batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(y))
        for start in range(0, len(y), batch):
            k = order[start:start + batch]
            loss = F.cross_entropy(model(x[k]), y[k])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        if progress:
            print(f"epoch {epoch + 1}/{epochs} · loss {loss.item():.3f} · {time.perf_counter() - started:.0f} s",
                  file=sys.stderr)
    model.eval()
    with torch.no_grad():
        read = torch.cat([model(x_eval[s:s + 2000]).argmax(1) for s in range(0, len(x_eval), 2000)])
    return {"set": f"scan {cell}×{cell} {levels} levels {'fill' if fill else 'frame'}", "digits": digits,
            "seed": seed, "n": len(labels), "accuracy": float((read == y_eval).float().mean()),
            "trained_on": len(y), "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell", type=int, default=8, choices=real_world.CELLS, help="cells a side")
    parser.add_argument("--levels", type=int, default=2, choices=(2, real_world.BLOCK ** 2 + 1), help="gray levels")
    parser.add_argument("--frame", action="store_true", help="keep MNIST's frame (default: the digit fills its cell)")
    parser.add_argument("--digits", default="val", choices=("val", "test"),
                        help="read scans of the held-out training digits or of the MNIST test digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-digits", type=int, default=30_000, help="training digits drawn (of 55,000)")
    parser.add_argument("--repeats", type=int, default=2, help="scans of each training digit")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    for name in ("train_digits", "repeats", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.cell, args.levels, not args.frame, args.digits, args.seed, args.train_digits, args.repeats,
                 args.epochs, progress=not args.json)
    if not args.json:
        print(f"{result['set']}: a model trained on such scans only reads {result['accuracy']:.1%} of "
              f"{result['n']:,} {args.digits} digits (seed {args.seed}, {result['seconds']:.0f} s)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
