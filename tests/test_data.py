"""The data path: rows and their labels in a batch, for every kind of input."""

import numpy as np
import pytest
import torch
from scipy import sparse

from sklearn_aae import _data
from sklearn_aae._data import (
    _Data,
    _fits_on_device,
    _free_device_memory,
    _label_array,
    _n_batches,
)

N_ROWS = 50


def _rows_with_ids(n=N_ROWS):
    """Rows whose first column is the row's index (exact in float32)."""
    X = np.random.RandomState(0).uniform(size=(n, 4))
    X[:, 0] = np.arange(n)
    return X


def _memmap(X, tmp_path):
    path = tmp_path / "X.dat"
    writable = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    writable[:] = X
    writable.flush()
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


INPUTS = {
    "dense": lambda X, tmp_path: X,
    "csr": lambda X, tmp_path: sparse.csr_matrix(X),
    "csc": lambda X, tmp_path: sparse.csc_matrix(X),
    "memmap": _memmap,
}


@pytest.mark.parametrize("kind", INPUTS)
def test_batch_returns_each_row_with_its_own_label(kind, tmp_path):
    X = _rows_with_ids()
    y = 1000 + np.arange(N_ROWS)  # label = 1000 + row index
    data = _Data(INPUTS[kind](X, tmp_path), torch.device("cpu"), y=y)
    assert data.streamed == (kind != "dense")
    idx = torch.as_tensor([7, 3, 41, 0, 19])  # not sorted
    xb, yb = data.batch(idx)
    ids = xb[:, 0].to(torch.int64)
    # Streamed input reads the rows in sorted order but returns them, as dense
    # input does, in the given one.
    torch.testing.assert_close(ids, idx)
    torch.testing.assert_close(yb, 1000 + ids)
    torch.testing.assert_close(xb, torch.as_tensor(X[ids.numpy()], dtype=torch.float32))


@pytest.mark.parametrize(
    "nbytes, free, share, expected",
    [
        (50, 100, 0.5, True),  # exactly the share
        (51, 100, 0.5, False),
        (0, 0, 0.5, True),
        (80, 100, 0.8, True),
        (10**15, None, 0.5, True),  # unbounded (the CPU)
    ],
)
def test_fits_on_device(nbytes, free, share, expected):
    assert _fits_on_device(nbytes, free, share) is expected


def test_free_device_memory_is_unbounded_on_the_cpu():
    assert _free_device_memory(torch.device("cpu")) is None


def test_dense_rows_too_large_for_the_device_are_streamed(monkeypatch):
    # 50 x 4 float32 rows (800 bytes) plus 50 int64 labels (400 bytes): 1,200
    # bytes, more than half of 2,399 free and not more than half of 2,400.
    X, y = _rows_with_ids(), 1000 + np.arange(N_ROWS)
    monkeypatch.setattr(_data, "_free_device_memory", lambda device: 2400)
    data = _Data(X, torch.device("cpu"), y=y)
    assert not data.streamed and data.too_large is None
    monkeypatch.setattr(_data, "_free_device_memory", lambda device: 2399)
    data = _Data(X, torch.device("cpu"), y=y)
    assert data.streamed and data.too_large == (1200, 2399)
    assert isinstance(data.X, np.ndarray)  # no whole float32 copy
    # Rows come in the batch's own order, as from the whole copy, with labels.
    idx = torch.as_tensor([7, 3, 41, 0, 19])
    xb, yb = data.batch(idx)
    torch.testing.assert_close(xb[:, 0].to(torch.int64), idx)
    torch.testing.assert_close(yb, 1000 + idx)
    torch.testing.assert_close(xb, torch.as_tensor(X[idx.numpy()], dtype=torch.float32))


def test_batch_without_labels_gives_none():
    xb, yb = _Data(_rows_with_ids(), torch.device("cpu")).batch(torch.arange(5))
    assert xb.shape == (5, 4) and yb is None


@pytest.mark.parametrize(
    "y, dtype",
    [
        (np.array([3, -1, 2]), np.int64),
        (np.array([3, -1, 2], dtype=np.int8), np.int64),
        (np.array([0.5, 1.5, np.nan]), np.float32),
        (np.array([True, False, True]), np.bool_),
        ([1, 2, 3], np.int64),
    ],
)
def test_label_array_keeps_numeric_labels(y, dtype):
    out = _label_array(y)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, np.asarray(y).astype(dtype))


def test_label_array_codes_other_labels_by_first_appearance():
    np.testing.assert_array_equal(
        _label_array(np.array(["b", "a", "b", "c"])), [0, 1, 0, 2]
    )
    np.testing.assert_array_equal(_label_array(["x", 1, "x"]), [0, 1, 0])
    assert _label_array(None) is None


@pytest.mark.parametrize(
    "n, batch_size, expected", [(10, 3, 4), (10, 1, 5), (1, 4, 1), (100, 128, 1)]
)
def test_n_batches(n, batch_size, expected):
    assert _n_batches(n, batch_size) == expected
