"""Train every zoo model with its recipe and print the README's table (accuracy, epochs, time on this CPU).

    python benchmarks/zoo_table.py [--out runs/zoo] [--only mlp,lenet5] [--json]

ResNets are expensive on a CPU (about 50 images/s for ResNet-18 on 2 cores), so by default they train one
epoch on the first 10,000 images; the table says so.
"""

from __future__ import annotations

import argparse
import json
import time

from digitnet import TrainConfig, train
from digitnet.data import load_mnist

# arch → overrides of the family's recipe (None: its defaults)
BUDGETS: dict[str, dict] = {
    "mlp": {},
    "lenet5": {},
    "lenet5-bn": {"early_stopping": 6},
    "lenet-500": {"epochs": 5},
    "cnn-bn": {"epochs": 5},
    "fastnet": {"epochs": 3},
    "bestnet": {"epochs": 1},
    "resnet18": {"epochs": 1, "train_subset": 10000},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="runs/zoo")
    parser.add_argument("--only", default=None, help="comma-separated architectures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    mnist = load_mnist()
    rows = []
    for arch, overrides in BUDGETS.items():
        if args.only and arch not in args.only.split(","):
            continue
        start = time.perf_counter()
        result = train(TrainConfig(arch=arch, out=f"{args.out}/{arch}", plots=False, **overrides), mnist=mnist,
                       quiet=True)
        m = result.metrics
        rows.append({"arch": arch, "params": sum(p.numel() for p in result.model.parameters()),
                     "epochs": m["epochs_run"], "train_images": overrides.get("train_subset", 55000),
                     "test_accuracy": m["test_accuracy"], "train_seconds": round(m["train_seconds"], 1),
                     "wall_seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        print(json.dumps(rows))
    print("\n| model | params | epochs | test accuracy | training time (2-core CPU) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        note = f" on {r['train_images']:,} images" if r["train_images"] != 55000 else ""
        print(f"| `{r['arch']}` | {r['params']:,} | {r['epochs']}{note} | {r['test_accuracy']:.2%} | "
              f"{r['train_seconds']:.0f} s |")


if __name__ == "__main__":
    main()
