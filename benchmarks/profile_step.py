"""Where the time of one training step goes: torch.profiler over the real step of a recipe.

The step is the trainer's (:func:`digitnet.train.setup.build_run`, ``Run.make_batch`` + ``Run.train_step``):
batch gathering, augmentation, memory format, optimizer and schedule included.

    python benchmarks/profile_step.py --arch fastnet-s            # the speed-record recipe
    python benchmarks/profile_step.py --arch fastnet --threads 1  # the bundled default model's net

Prints the operators by self CPU time (grouped by input shape) and the images/s of the profiled steps.
Single-threaded CPU-time figures (``--threads 1``) are the stable ones on a shared machine.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from digitnet.data.splits import Split, Splits
from digitnet.train.config import TrainConfig
from digitnet.train.setup import build_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="fastnet-s")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # The trainer's own set-up and step (digitnet.train.setup), on random digits: what `digitnet train` runs.
    cfg = TrainConfig(arch=args.arch, batch_size=args.batch_size, device="cpu", val_size=0).resolved()
    images = torch.randint(0, 256, (cfg.batch_size, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (cfg.batch_size,))
    run = build_run(cfg, Splits(train=Split(images, labels), val=None, test=Split(images[:0], labels[:0])),
                    torch.device("cpu"))
    run.train_model.train()

    def step() -> None:
        x, y = run.make_batch(next(iter(run.epoch_batches())))  # the whole pool: one batch a step
        run.train_step(x, y)

    for _ in range(5):
        step()
    start_cpu, start = time.process_time(), time.perf_counter()
    for _ in range(args.steps):
        step()
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(f"{args.arch}, batch {cfg.batch_size}, {torch.get_num_threads()} threads: "
          f"{args.steps * cfg.batch_size / wall:,.0f} img/s wall, {args.steps * cfg.batch_size / cpu:,.0f} img/s "
          f"per CPU-second")
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(args.steps):
            step()
    print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=args.rows,
                                                             max_name_column_width=32, max_shapes_column_width=56))


if __name__ == "__main__":
    main()
