"""CLI commands for benchmarks, added to the main app by ``register(app)``: ``bench``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from digitnet.bench.run import BenchOptions

# Option defaults are BenchOptions' own, so the CLI and the Python API cannot drift apart.
DEFAULTS = BenchOptions()


def register(app: typer.Typer) -> None:
    """Add this concern's commands to ``app``."""
    app.command()(bench)


def bench(
    quick: bool = typer.Option(DEFAULTS.quick,
                               help="CI smoke version (< 1 min): 1 seed, reference capped at 100 steps."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as one JSON object."),
    out: Path = typer.Option(Path("bench.json"), "--out", "-o", help="Also write the JSON here."),
    seeds: int = typer.Option(DEFAULTS.seeds, min=1, help="Seeds per recipe; the median is reported."),
    target: float = typer.Option(DEFAULTS.target, help="Test accuracy to reach, above 0 and at most 1."),
    eval_every: float = typer.Option(DEFAULTS.eval_every, "--eval-every",
                                     help="Epochs between test evaluations (clock stopped, more than 0), the same for "
                                          "both recipes; the per-epoch figure (the original's rule) is reported too."),
    reference: bool = typer.Option(DEFAULTS.reference, "--reference/--no-reference",
                                   help="Also time the PyTorch examples recipe."),
    reference_max_epochs: int = typer.Option(DEFAULTS.reference_max_epochs, "--reference-max-epochs",
                                             help="Cap on the reference's epochs."),
    reference_max_steps: int | None = typer.Option(DEFAULTS.reference_max_steps, "--reference-max-steps",
                                                   help="Cap on the reference's steps."),
    arch: str = typer.Option(DEFAULTS.arch, "--arch", "-a",
                             help="Architecture of our recipe (its registered defaults)."),
    epochs: int | None = typer.Option(DEFAULTS.epochs, help="Override the recipe's schedule length in epochs."),
    batch_size: int | None = typer.Option(DEFAULTS.batch_size, "--batch-size", "-b",
                                          help="Override the recipe's batch size."),
    lr: float | None = typer.Option(DEFAULTS.lr, help="Override the recipe's peak learning rate."),
    train_subset: int | None = typer.Option(DEFAULTS.train_subset, "--train-subset",
                                            help="Train on the first N images only."),
    throughput: bool = typer.Option(DEFAULTS.throughput, "--throughput/--no-throughput",
                                    help="Measure img/s, latency, memory."),
    archs: str | None = typer.Option(None, help="Comma-separated architectures for throughput (default: all)."),
    device: str = typer.Option(DEFAULTS.device, help="auto, cpu or cuda[:N]."),
    threads: int | None = typer.Option(DEFAULTS.threads, help="CPU threads for PyTorch."),
    amp: bool | None = typer.Option(DEFAULTS.amp, "--amp/--no-amp", help="bf16 autocast (default: on CUDA only)."),
    compile_model: bool = typer.Option(DEFAULTS.compile, "--compile",
                                       help="torch.compile our model (compile time counts)."),
    cpu_clock: bool = typer.Option(DEFAULTS.cpu_clock, "--cpu-clock", help="One thread, CPU seconds: for a machine "
                                   "shared with other jobs (an idle 1-core machine's wall time)."),
    model: Path | None = typer.Option(None, "--model", "-m", help="Model for the latency figure (default: bundled)."),
    data: str | None = typer.Option(None, help="MNIST from a folder of IDX files or a Keras mnist.npz."),
) -> None:
    """Benchmark: time to 99% test accuracy against the PyTorch examples recipe, throughput, latency, memory."""
    from rich.console import Console

    from digitnet.bench.run import run_benchmark
    from digitnet.data import load_mnist
    from digitnet.evaluate.compare import parse_archs
    from digitnet.saved_model import check_new_output_file
    from digitnet.utils import atomic_write_json

    if not 0 < target <= 1:  # NaN too
        raise typer.BadParameter(f"{target} is not an accuracy in (0, 1], such as 0.99",
                                 param_hint="--target")
    if not 0 < eval_every < math.inf:
        raise typer.BadParameter(f"{eval_every} is not a number of epochs above 0",
                                 param_hint="--eval-every")
    # Before the benchmark's minutes, not after; bench.json is replaced run after run, a model's own files never.
    check_new_output_file(out, overwrite=True)
    err = Console(stderr=True, soft_wrap=True)  # a progress line stays one line in a log
    opts = BenchOptions(
        quick=quick, seeds=seeds, target=target, eval_every=eval_every,
        reference=reference, reference_max_epochs=reference_max_epochs, reference_max_steps=reference_max_steps,
        arch=arch, epochs=epochs, batch_size=batch_size, lr=lr, train_subset=train_subset, throughput=throughput,
        archs=parse_archs(archs) if archs else None, device=device, threads=threads,
        amp=amp, compile=compile_model, cpu_clock=cpu_clock, model=str(model) if model else None,
    )
    results = run_benchmark(opts, load_mnist(data), say=lambda line: err.print(line, highlight=False))
    atomic_write_json(out, results)
    if json_out:
        print(json.dumps(results))
        return
    print_results(results)
    Console().print(f"Results written to {out}")


def print_results(results: dict) -> None:
    """The benchmark as tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()

    def seconds(value: float | None) -> str:
        return f"{value:.2f}" if value is not None else "not reached"

    target = results["target"]
    table = Table("recipe", "evaluated every", f"time to {target:.1%} (s, median)", "per seed (s)",
                  title=f"Time to {target:.1%} MNIST test accuracy (training clock)")
    ours = f"digitnet {results['recipe']['arch']}"
    every = f"{results['eval_every_epochs']:.3g} epoch"
    table.add_row(ours, every, seconds(results["time_to_99_s"]),
                  ", ".join(seconds(r["time_s"]) for r in results["runs"]))
    table.add_row(ours, "1 epoch (same runs)", seconds(results["time_to_99_per_epoch_eval_s"]), "")
    if results["reference_runs"]:
        table.add_row("pytorch/examples mnist", every, seconds(results["reference_time_to_99_s"]),
                      ", ".join(seconds(r["time_s"]) for r in results["reference_runs"]))
        table.add_row("pytorch/examples mnist", "1 epoch (same runs, the original's rule)",
                      seconds(results["reference_time_to_99_per_epoch_eval_s"]), "")
    console.print(table)
    if results["speedup"]:
        per_epoch = results.get("speedup_per_epoch_eval")
        console.print(f"[bold]Speed-up: {results['speedup']:.1f}×[/] (both evaluated every {every})"
                      + (f"; {per_epoch:.1f}× with both read at epoch ends" if per_epoch else ""))
    for note in results["notes"]:
        console.print(f"[dim]· {note}[/]")
    if "throughput" in results:
        t = results["throughput"]
        table = Table("architecture", "train img/s", "infer img/s @1", "@64", "@1024", title="Throughput")
        for arch, rate in t["train_images_per_s"].items():
            inf = t["inference_images_per_s"][arch]
            table.add_row(arch, f"{rate:,}", f"{inf['1']:,}", f"{inf['64']:,}", f"{inf['1024']:,}")
        console.print(table)
        lat = t["latency"]
        console.print(f"Single-image latency ({lat['call']}, {lat['arch']}): {lat['median_ms']:.2f} ms (median)")
    console.print(f"Peak memory (RSS): {results['peak_rss_mib']:.0f} MiB · load average "
                  f"{results['environment']['load_average']} → {results['environment'].get('load_average_end')} · "
                  f"{results['bench_seconds']:.0f} s in all")

