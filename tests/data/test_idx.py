import gzip
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from digitnet.data.idx import IDXError, encode_idx, parse_idx, read_idx, write_idx


@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
                  shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=6)))
def test_roundtrip_any_array(array):
    back = parse_idx(encode_idx(array))
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_gzip_files_are_read_transparently(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    path = write_idx(tmp_path / "x-idx3-ubyte.gz", images)
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(path), images)


def test_official_header_layout():
    blob = encode_idx(np.zeros((3, 28, 28), np.uint8))
    assert blob[:4] == bytes([0, 0, 0x08, 3])  # the magic number of train-images-idx3-ubyte
    assert struct.unpack(">3I", blob[4:16]) == (3, 28, 28)


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "too short"),
        (b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX data type"),
        (b"\x00\x00\x08\x03" + struct.pack(">I", 10), "truncated header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 9, "truncated"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 10) + b"\x00" * 11, "trailing bytes"),
        (b"\x1f\x8b" + b"not really gzip", "corrupt gzip"),
    ],
)
def test_malformed_files_are_rejected_with_a_clear_message(blob, message):
    with pytest.raises(IDXError, match=message):
        parse_idx(blob, name="bad.idx")


def test_truncated_gzip_member(tmp_path):
    blob = gzip.compress(encode_idx(np.zeros((10, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(IDXError, match="cut.gz"):
        read_idx(path)
