"""MNIST from offline and online sources, IDX files, splits and batched augmentation."""

from digitnet.data.idx import IDXError, parse_idx, read_idx, write_idx
from digitnet.data.sources import MNIST, DataError, default_data_dir, load_mnist
from digitnet.data.splits import DEFAULT_VAL_SIZE, Split, Splits, make_splits

__all__ = ["DEFAULT_VAL_SIZE", "MNIST", "DataError", "IDXError", "Split", "Splits", "default_data_dir", "load_mnist",
           "make_splits", "parse_idx", "read_idx", "write_idx"]
