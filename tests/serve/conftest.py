"""A real ``digitnet serve`` process on a free loopback port, and pictures to send it."""

from __future__ import annotations

import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

NUMBER = (0, 1, 2, 3)  # MNIST test images 7, 2, 1, 0: the number "7210" in the photo fixtures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(log_path: Path, *args: str) -> Iterator[str]:
    """Base URL of ``python -m digitnet serve *args`` (the real CLI, uvicorn) on a free loopback port.

    Stopped at the end; it must never have logged a traceback, whatever the tests sent it.
    """
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "digitnet", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # torch import on a busy 2-core machine can take a while
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"digitnet serve exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"digitnet serve did not start in time:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> str:
    """Base URL of ``python -m digitnet serve`` with the bundled model and the default settings."""
    with running_server(tmp_path_factory.mktemp("serve") / "server.log") as url:
        yield url


@contextmanager
def serving(app) -> Iterator[str]:
    """Base URL of ``app`` served by a real uvicorn on a free loopback port, in a thread of this process (so a
    test can instrument the app's model)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def client(server):
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def png_of_size(width: int, height: int, pixels: bool = True) -> bytes:
    """A valid 8-bit gray PNG of ``width``×``height`` black pixels: a few hundred KB, however many MP it has
    (a decompression bomb when it is large). ``pixels=False``: the header alone, with no image data (a
    picture refused from its header is never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + black pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush() if pixels else b""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def photo_of(mnist, indices, scale: int = 5, seed: int = 0) -> bytes:
    """A phone-photo-like JPEG of MNIST test digits side by side: dark ink on uneven, noisy, off-white paper."""
    rng = np.random.default_rng(seed)
    side = 28 * scale
    margin = side // 2
    height, width = side + 2 * margin, side * len(indices) + 2 * margin
    ys, xs = np.mgrid[:height, :width]
    paper = 225 + 20 * (xs / width) - 12 * (ys / height)  # light falling from one side
    ink = np.zeros((height, width))
    for k, index in enumerate(indices):
        digit = Image.fromarray(mnist.test_images[index]).resize((side, side), Image.Resampling.BICUBIC)
        ink[margin:margin + side, margin + k * side:margin + (k + 1) * side] = np.asarray(digit) / 255
    gray = paper * (1 - 0.85 * ink) + rng.normal(0, 4, (height, width))
    rgb = np.clip(np.stack([gray * 0.97, gray * 0.98, gray * 1.02], axis=-1), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=88)
    return buffer.getvalue()


def page_of_lines(mnist, lines: list[tuple[int, ...]], scale: int = 4, spacing: int = 3) -> bytes:
    """A PNG of white paper with lines of MNIST test digits (indices), dark ink, the lines ``spacing`` digit
    heights apart (top to bottom)."""
    side = 28 * scale
    margin = side // 2
    width = 2 * margin + side * max(len(line) for line in lines)
    height = 2 * margin + side + side * spacing * (len(lines) - 1)
    ink = np.zeros((height, width), np.float32)
    for row, indices in enumerate(lines):
        top = margin + row * side * spacing
        for k, index in enumerate(indices):
            digit = Image.fromarray(mnist.test_images[index]).resize((side, side), Image.Resampling.BICUBIC)
            ink[top:top + side, margin + k * side:margin + (k + 1) * side] = np.asarray(digit, np.float32) / 255
    buffer = io.BytesIO()
    Image.fromarray((255 * (1 - 0.85 * ink)).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def number_photo(mnist) -> tuple[bytes, str]:
    """(JPEG bytes, the number written on it)."""
    return photo_of(mnist, NUMBER), "".join(str(mnist.test_labels[i]) for i in NUMBER)


@pytest.fixture(scope="session")
def digit_photo(mnist) -> tuple[bytes, int]:
    """(JPEG bytes of one handwritten digit on paper, the digit)."""
    return photo_of(mnist, (4,), seed=1), int(mnist.test_labels[4])
