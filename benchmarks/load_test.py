"""Load test of ``digitnet serve``: many concurrent clients on loopback, bounded in time and requests.

    python benchmarks/load_test.py [--clients 16] [--seconds 10] [--max-requests 100000]
                                   [--mode pixels|png] [--workers 1] [--threads 1] [--no-batch] [--json]

Starts ``digitnet serve`` on a free 127.0.0.1 port (or uses ``--url``, which must be loopback), then runs
``--clients`` keep-alive HTTP/1.1 connections that each send one single-image ``POST /api/predict`` after
another: MNIST test digits as JSON pixels (``--mode pixels``, what the drawing page sends) or as PNG uploads
(``--mode png``). Every answer is checked: status 200, and the digit against the MNIST label ("wrong digits"
are the model's own test errors, about 1% of these images, not server faults). Reports requests/s, latency
percentiles, errors, wrong answers, the server's memory (RSS of the server process and its workers) and its
CPU time per request, which depends much less than requests/s on whatever else runs on the machine.

The clients are a small asyncio HTTP client rather than httpx: the load generator shares the CPU with the
server, and a lean client leaves more of it to what is measured. Its own CPU time is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "digitnet", "serve", "--port", str(port), "--workers", str(args.workers),
               "--threads", str(args.threads)]
    if args.model:
        command += ["--model", args.model]
    if not args.batch:
        command.append("--no-batch")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited: {proc.stderr.read().decode(errors='replace')}")
        try:
            get_json(url + "/api/health")
            # With several workers, wait until each has loaded its model (any one answers health first).
            time.sleep(0.5 * args.workers)
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("server did not start within 120 s")


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's worker processes)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of the server: ``pid`` and its worker processes."""
    total = 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) used so far by the server and its worker processes."""
    ticks = 0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def build_requests(mode: str, host: str, count: int = 1000) -> tuple[list[bytes], np.ndarray]:
    """Raw HTTP requests for the first ``count`` MNIST test digits, and their labels."""
    from PIL import Image

    from digitnet.data import load_mnist

    mnist = load_mnist()
    images, labels = mnist.test_images[:count], mnist.test_labels[:count]
    requests = []
    for image in images:
        if mode == "pixels":
            body = json.dumps({"pixels": image.tolist()}, separators=(",", ":")).encode()
            content_type = b"application/json"
        else:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "PNG")
            boundary = b"digitnetloadtest"
            body = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="d.png"\r\n'
                    b"Content-Type: image/png\r\n\r\n" + buffer.getvalue() + b"\r\n--" + boundary + b"--\r\n")
            content_type = b"multipart/form-data; boundary=" + boundary
        head = (b"POST /api/predict HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: " + content_type
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        requests.append(head + body)
    return requests, labels


class Stats:
    def __init__(self):
        self.latencies: list[float] = []
        self.errors = 0
        self.wrong = 0
        self.first_error: str | None = None


async def client(host: str, port: int, requests, labels, start: int, stop_at: float, measure_from: float,
                 budget: list[int], stats: Stats) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            k = i % len(requests)
            i += 1
            sent = time.perf_counter()
            writer.write(requests[k])
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            done = time.perf_counter()
            if sent < measure_from:
                continue  # warm-up: not counted
            status = int(head[9:12])
            if status != 200:
                stats.errors += 1
                stats.first_error = stats.first_error or f"{status}: {body[:200]!r}"
                continue
            stats.latencies.append(done - sent)
            if json.loads(body)["digit"] != labels[k]:
                stats.wrong += 1
    except (OSError, asyncio.IncompleteReadError) as exc:
        stats.errors += 1
        stats.first_error = stats.first_error or f"connection: {exc!r}"
    finally:
        writer.close()


async def run_load(url: str, args, requests, labels, server_pid: int | None) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    stats = Stats()
    start = time.perf_counter()
    measure_from = start + args.warmup
    stop_at = measure_from + args.seconds
    budget = [args.max_requests]
    peak = [rss_bytes(server_pid) if server_pid else 0]

    async def sample_memory():
        while time.perf_counter() < stop_at:
            await asyncio.sleep(0.5)
            if server_pid:
                peak[0] = max(peak[0], rss_bytes(server_pid))

    server_cpu = [0.0]

    async def measure_cpu():
        # The server's CPU over the measured window: requests/s depends on what else runs on the machine,
        # CPU time per request much less.
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        before = cpu_seconds(server_pid)
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        server_cpu[0] = cpu_seconds(server_pid) - before

    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    sampler = asyncio.create_task(sample_memory())
    cpu_task = asyncio.create_task(measure_cpu()) if server_pid else None
    await asyncio.gather(*(client(host, port, requests, labels, c * 97, stop_at, measure_from, budget, stats)
                           for c in range(args.clients)))
    elapsed = min(time.perf_counter(), stop_at) - measure_from
    sampler.cancel()
    if cpu_task:
        await cpu_task if time.perf_counter() >= stop_at else cpu_task.cancel()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    lat = np.array(stats.latencies) * 1000 if stats.latencies else np.zeros(1)
    return {
        "mode": args.mode, "clients": args.clients, "seconds": round(elapsed, 2), "requests": len(stats.latencies),
        "requests_per_s": round(len(stats.latencies) / elapsed, 1),
        "latency_ms": {"p50": round(float(np.percentile(lat, 50)), 2), "p90": round(float(np.percentile(lat, 90)), 2),
                       "p99": round(float(np.percentile(lat, 99)), 2), "max": round(float(lat.max()), 2)},
        "errors": stats.errors, "first_error": stats.first_error, "wrong_digits": stats.wrong,
        "server_rss_mb": round(rss_bytes(server_pid) / 2**20, 1) if server_pid else None,
        "server_peak_rss_mb": round(peak[0] / 2**20, 1) if server_pid else None,
        "server_cpu_ms_per_request": round(1000 * server_cpu[0] / max(1, len(stats.latencies)), 3),
        "load_generator_cpu_s": round(cpu_after.ru_utime + cpu_after.ru_stime
                                      - cpu_before.ru_utime - cpu_before.ru_stime, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running server on loopback (default: start one)")
    parser.add_argument("--model", help="model directory for the started server")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration (at most 120)")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    parser.add_argument("--max-requests", type=int, default=100_000, help="stop after this many requests")
    parser.add_argument("--mode", choices=("pixels", "png"), default="pixels")
    parser.add_argument("--workers", type=int, default=1, help="server processes (started server only)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker (started server only)")
    parser.add_argument("--batch", action=argparse.BooleanOptionalAction, default=True,
                        help="server micro-batching (started server only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.seconds = min(max(args.seconds, 0.5), 120.0)  # bounded, whatever is asked
    args.clients = min(max(args.clients, 1), 256)

    proc = None
    if args.url:
        host = urlsplit(args.url).hostname
        if host not in LOOPBACK:
            sys.exit(f"--url must be a loopback address ({', '.join(sorted(LOOPBACK))}), not {host}")
        url = args.url.rstrip("/")
        server_pid = get_json(url + "/api/health").get("pid")  # same machine: loopback only
    else:
        proc, url = start_server(args)
        server_pid = proc.pid
    try:
        requests, labels = build_requests(args.mode, urlsplit(url).netloc)
        before = get_json(url + "/api/health").get("batcher")
        # The generator's own garbage collections would pause every client at once and show up as server
        # latency: take the setup's objects out of collection first.
        gc.collect()
        gc.freeze()
        result = asyncio.run(run_load(url, args, requests, labels.tolist(), server_pid))
        after = get_json(url + "/api/health").get("batcher")
        if before and after and after["passes"] > before["passes"]:
            result["mean_batch"] = round((after["images"] - before["images"]) / (after["passes"] - before["passes"]), 2)
        result.update(workers=args.workers if proc else None, threads=args.threads if proc else None,
                      batch=args.batch if proc else None, cpus=os.cpu_count())
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
    if args.json:
        print(json.dumps(result))
        return
    lat = result["latency_ms"]
    print(f"{result['requests']} {args.mode} requests in {result['seconds']} s from {args.clients} clients: "
          f"{result['requests_per_s']} req/s")
    print(f"latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
    print(f"errors {result['errors']}  wrong digits {result['wrong_digits']}  "
          f"server RSS {result['server_rss_mb']} MB (peak {result['server_peak_rss_mb']} MB)  "
          f"mean batch {result.get('mean_batch', '-')}")
    print(f"server CPU {result['server_cpu_ms_per_request']} ms/request  "
          f"load generator CPU {result['load_generator_cpu_s']} s  (machine load average {os.getloadavg()[0]:.1f})")
    if result["first_error"]:
        print(f"first error: {result['first_error']}")
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
