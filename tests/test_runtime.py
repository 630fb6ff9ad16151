"""The models' forward passes in ONNX Runtime: the same answers as PyTorch, exported once, PyTorch where it cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from digitnet import runtime
from digitnet.data.lines import draw_lines
from digitnet.recognizer import Recognizer
from digitnet.saved_model import load_model
from digitnet.utils import DigitnetError

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DIGITNET_ENGINE", raising=False)
    return tmp_path / "cache"


def test_onnx_runtime_classifies_as_pytorch_does(cache, mnist):
    fast, plain = Recognizer.from_pretrained(line_model=None), Recognizer.from_pretrained(line_model=None,
                                                                                          engine="torch")
    assert (fast.engine, plain.engine) == ("onnxruntime", "torch")
    images = mnist.test_images[:300]
    ours, theirs = fast.classify(images), plain.classify(images)
    assert np.abs(ours - theirs).max() < 1e-4
    assert (ours.argmax(1) == theirs.argmax(1)).all()
    floats = images[:5].astype(np.float32) / 255  # float pixels take the same way in
    assert np.abs(fast.classify(floats) - plain.classify(floats)).max() < 1e-4
    assert fast.classify(images[:0]).shape == (0, 10)


def test_onnx_runtime_reads_lines_as_pytorch_does(cache, mnist):
    fast, plain = Recognizer.from_pretrained(), Recognizer.from_pretrained(engine="torch")
    assert fast._line_onnx is not None and plain._line_onnx is None
    images, labels = torch.from_numpy(mnist.test_images[:300]), torch.from_numpy(mnist.test_labels[:300])
    # 24 lines in the heaviest augmentation: the bundled model reads 14-19 of such 24 exactly (seeds 3-8), noise none
    batch = draw_lines(images, labels, torch.Generator().manual_seed(3), count=24)
    lines = [image[0, :, :width].numpy() for image, width in zip(batch.images, batch.widths.tolist(), strict=True)]
    ours, theirs = fast.recognize_lines(lines), plain.recognize_lines(lines)
    assert [d.text for d in ours] == [d.text for d in theirs]
    assert sum(d.text == t for d, t in zip(ours, batch.texts, strict=True)) >= 12  # lines, read: not noise
    for a, b in zip(ours, theirs, strict=True):
        assert a.spans == b.spans and np.allclose(a.confidences, b.confidences, atol=1e-4)


def test_a_model_is_exported_once_and_then_opened_from_the_cache(cache, monkeypatch):
    loaded = load_model(None)
    first = runtime.onnx_model(loaded)
    assert first is not None and first.path.parent == cache and first.path.is_file()

    def export_again(*args):
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "_export_to", export_again)
    again = runtime.onnx_model(load_model(None))
    assert again is not None and again.path == first.path
    # no temporary file left beside it (the lock the exporters share stays)
    assert sorted(p.name for p in cache.iterdir()) == sorted([first.path.name, first.path.with_suffix(".lock").name])


def test_processes_that_start_together_export_a_model_once(cache, monkeypatch):
    """A folder's workers load the same models at the same moment: one exports, the others wait and open its file."""
    pytest.importorskip("fcntl")  # without it (Windows) each exports, as before
    import threading
    import time

    exports = []
    real_export = runtime._export_to

    def slow_export(loaded, path):
        exports.append(path)
        time.sleep(0.5)  # the others arrive while this one is still writing
        real_export(loaded, path)

    monkeypatch.setattr(runtime, "_export_to", slow_export)
    models = [load_model(None) for _ in range(3)]
    opened = [None] * 3

    def load(k):
        opened[k] = runtime.onnx_model(models[k])

    threads = [threading.Thread(target=load, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(exports) == 1 and all(model is not None and model.path == exports[0] for model in opened)


@pytest.mark.parametrize("damage", ["cut short", "another model's graph"])
def test_a_damaged_or_foreign_cache_file_is_exported_again(cache, mnist, damage):
    loaded = load_model(None)
    path = runtime.onnx_model(loaded).path
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:1000])
    else:  # a valid graph that is not this model's (other weights)
        other = load_model(None)
        with torch.no_grad():
            for parameter in other.model.parameters():
                parameter.mul_(0.5)
        path.write_bytes(runtime.onnx_bytes(*runtime.onnx_graph(other)))
    mended = runtime.onnx_model(loaded)
    assert mended is not None and mended.path == path
    images = mnist.test_images[:20, None]
    with torch.inference_mode():
        expected = runtime.onnx_graph(loaded)[0](torch.from_numpy(images))[0].numpy()
    assert np.abs(mended(images) - expected).max() < 1e-3


def test_other_weights_in_memory_are_another_graph(cache):
    loaded = load_model(None)
    first = runtime.onnx_model(loaded).path
    with torch.no_grad():
        next(loaded.model.parameters()).add_(0.01)  # same file, same checksum in model.json: other weights
    assert runtime.onnx_model(loaded).path != first


def test_an_unknown_engine_is_refused_in_one_line(cache, monkeypatch):
    with pytest.raises(DigitnetError, match="engine 'onnx': choose one of auto, torch, onnxruntime"):
        Recognizer.from_pretrained(line_model=None, engine="onnx")
    monkeypatch.setenv("DIGITNET_ENGINE", "bogus")
    with pytest.warns(UserWarning, match="DIGITNET_ENGINE='bogus' is none of"):
        assert runtime.check_engine(None) == "auto"


def test_folder_workers_run_the_models_as_their_recognizer_does(cache, monkeypatch):
    import digitnet.recognizer as recognizer_module

    started = []
    monkeypatch.setattr(recognizer_module, "WorkerPool", lambda count, initializer, args: started.append(args[0]))
    Recognizer.from_pretrained(engine="torch")._pool_for(2, 100)
    assert started and started[0].engine == "torch"


def test_pytorch_runs_what_onnx_runtime_cannot_or_is_told_not_to(cache, tmp_path, monkeypatch):
    loaded = load_model(None)
    assert runtime.onnx_model(loaded, "torch") is None
    monkeypatch.setenv("DIGITNET_ENGINE", "torch")
    assert runtime.onnx_model(loaded) is None and Recognizer.from_pretrained(line_model=None)._onnx is None
    monkeypatch.delenv("DIGITNET_ENGINE")
    # A model built in this process has no weights checksum to name its export by.
    unsaved = load_model(None)
    unsaved.metadata = {k: v for k, v in unsaved.metadata.items() if k != "weights_sha256"}
    assert runtime.onnx_model(unsaved) is None
    # A cache that cannot be written: a warning, and PyTorch.
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("DIGITNET_CACHE", str(blocked / "onnx"))
    with pytest.warns(UserWarning, match="running in PyTorch"):
        assert runtime.onnx_model(loaded) is None


def test_a_cache_on_a_file_system_without_locks_still_runs_onnx_runtime(cache, monkeypatch):
    fcntl = pytest.importorskip("fcntl")

    def no_locks(*args):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    opened = runtime.onnx_model(load_model(None))
    assert opened is not None and opened.path.is_file()  # exported unguarded, not handed back to PyTorch


def test_a_lock_file_that_cannot_be_opened_does_not_stop_the_export(cache):
    loaded = load_model(None)
    cache.mkdir(parents=True)
    path = cache / f"{loaded.arch}-{runtime._graph_key(loaded, __import__('onnxruntime').__version__)[:24]}.onnx"
    path.with_suffix(".lock").mkdir()  # not a file: it cannot be opened (as another user's, in a shared cache)
    opened = runtime.onnx_model(loaded)
    assert opened is not None and opened.path == path and path.is_file()
