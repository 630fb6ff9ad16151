"""How fast do `digitnet predict` and `digitnet read` go through a folder of phone photos?

Writes (once per seed and size) a folder of the photo benchmark's pictures as JPEG files, drawn from MNIST test
digits: DIR/digits (one digit each, for predict) and DIR/numbers (2-6 digits each, for read). Then runs the real
CLI on each folder (``python -m digitnet predict --json DIR/digits``) and times every JSON line as it arrives:
start-up is the time to the first line (imports, model, workers, first picture), the rate is pictures per second
after it, and the end-to-end rate counts the start-up too. CPU seconds of the command and its workers are given
too, since on a shared machine wall time also measures the neighbours (the load average at the start says how
busy it was).

    python benchmarks/folder_speed.py [--dir DIR] [--n 2000] [--numbers 500] [--seed 0] [--workers N]
                                      [--reader line|ctc|segment|both] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_digits import digit_picture, number_picture  # noqa: E402

from digitnet.data import load_mnist  # noqa: E402


def write_folder(directory: Path, n: int, numbers: int, seed: int) -> dict[str, list[str]]:
    """DIR/digits/NNNNN.jpg and DIR/numbers/NNNNN.jpg, written only if the folder lacks them (same seed, same n)."""
    marker = directory / "made.json"
    wanted = {"seed": seed, "n": n, "numbers": numbers}
    if not marker.is_file() or json.loads(marker.read_text()) != wanted:
        rng = np.random.default_rng(seed)
        mnist = load_mnist()
        images = mnist.test_images
        (directory / "digits").mkdir(parents=True, exist_ok=True)
        (directory / "numbers").mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(rng.choice(len(images), size=n, replace=n > len(images))):
            (directory / "digits" / f"{k:05d}.jpg").write_bytes(digit_picture(images[i], rng))
        for k in range(numbers):
            index = rng.choice(len(images), size=int(rng.integers(2, 7)), replace=False)
            (directory / "numbers" / f"{k:05d}.jpg").write_bytes(number_picture([images[i] for i in index], rng)[0])
        marker.write_text(json.dumps(wanted))
    return {kind: sorted(str(p) for p in (directory / kind).glob("*.jpg"))[:count]
            for kind, count in (("digits", n), ("numbers", numbers))}


def time_command(command: str, folder: str, count: int, workers: int | None, model: str | None,
                 extra: tuple[str, ...] = ()) -> dict:
    """Run ``digitnet COMMAND --json FOLDER`` and time its lines: start-up, then pictures per second."""
    args = [sys.executable, "-m", "digitnet", command, "--json", folder, *extra]
    args += ["--workers", str(workers)] if workers is not None else []
    args += ["--model", model] if model else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps, failed = [], 0
    for line in process.stdout:
        stamps.append(time.perf_counter())
        failed += json.loads(line)["error"] is not None
    process.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if len(stamps) != count or failed:
        raise SystemExit(f"{command}: {len(stamps)} lines for {count} pictures, {failed} errors; "
                         f"exit {process.returncode}: {process.stderr.read()[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pictures": count, "startup_s": round(stamps[0] - started, 2),
            "pictures_per_s": round((count - 1) / max(stamps[-1] - stamps[0], 1e-9), 1),
            "total_s": round(stamps[-1] - started, 2),
            "end_to_end_pictures_per_s": round(count / max(stamps[-1] - started, 1e-9), 1),  # start-up included
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_picture": round(1000 * cpu / count, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default=None, help="where the pictures are (default: a folder in the temp dir)")
    parser.add_argument("--n", type=int, default=2000, help="single-digit photos (for predict)")
    parser.add_argument("--numbers", type=int, default=500, help="photos of numbers (for read); 0 skips read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="--workers for the CLI (default: its own)")
    parser.add_argument("--model", default=None, help="model directory (default: the bundled model)")
    parser.add_argument("--reader", default=None, help="read's --reader (default: its own)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")
    args = parser.parse_args(argv)
    directory = Path(args.dir or Path(tempfile.gettempdir()) / f"digitnet-folder-speed-{args.seed}")
    paths = write_folder(directory, args.n, args.numbers, args.seed)
    result = {"dir": str(directory), "seed": args.seed, "workers": args.workers, "cpus": os.cpu_count(),
              "load_average": round(os.getloadavg()[0], 2)}
    if args.n:
        result["predict"] = time_command("predict", str(directory / "digits"), len(paths["digits"]), args.workers,
                                         args.model)
    if args.numbers:
        result["read"] = time_command("read", str(directory / "numbers"), len(paths["numbers"]), args.workers,
                                      args.model, ("--reader", args.reader) if args.reader else ())
    if not args.json:
        for command in ("predict", "read"):
            if command in result:
                r = result[command]
                print(f"{command:8} {r['pictures']} pictures: start-up {r['startup_s']} s, then "
                      f"{r['pictures_per_s']} pictures/s, {r['end_to_end_pictures_per_s']} end to end "
                      f"({r['cpu_ms_per_picture']} CPU ms per picture, "
                      f"load average {result['load_average']})", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
