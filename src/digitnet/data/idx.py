"""Read and write the IDX format that MNIST is distributed in.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data in C order. We check every part of the header against
the file's length, so a truncated or foreign file fails loudly instead of yielding garbage.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

from digitnet.utils import atomic_write_bytes

# Type code → numpy dtype (big-endian where it matters), per the format's specification.
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str if dt.itemsize > 1 else dt.str: code for code, dt in _DTYPES.items()}


class IDXError(ValueError):
    """An IDX file is malformed: bad magic, unknown type, or a size that disagrees with its header."""


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (raw, or gzip-compressed) into a numpy array in native byte order."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise IDXError(f"{name}: corrupt gzip stream ({exc})") from None
    if len(data) < 4:
        raise IDXError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise IDXError(f"{name}: bad magic number 0x{data[:4].hex()} (not an IDX file)")
    if type_code not in _DTYPES:
        raise IDXError(f"{name}: unknown IDX data type 0x{type_code:02x}")
    if ndim == 0:
        raise IDXError(f"{name}: IDX header declares zero dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise IDXError(f"{name}: truncated header ({len(data)} of {header_len} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_len])
    dtype = _DTYPES[type_code]
    expected = header_len + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise IDXError(f"{name}: file {kind}: {len(data)} bytes, header {shape} needs {expected}")
    array = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) from disk."""
    path = Path(path)
    return parse_idx(path.read_bytes(), name=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode an array as uncompressed IDX bytes."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=").str if array.dtype.itemsize > 1 else array.dtype.str
    if key not in _CODES:
        raise IDXError(f"dtype {array.dtype} cannot be stored in IDX")
    code = _CODES[key]
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically; gzip when ``compress`` or the name ends in .gz."""
    path = Path(path)
    payload = encode_idx(array)
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    atomic_write_bytes(path, payload)
    return path
