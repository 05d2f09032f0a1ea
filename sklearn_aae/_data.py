"""The training data: dense, sparse or memory-mapped rows, with their labels.

Everything that knows how rows are stored lives here: :class:`_Data` (rows and
labels as one tensor on the device, or streamed a batch at a time), the
memory-map helpers, the float32-range check and how an epoch is cut into
batches.
"""

import contextlib
import mmap

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.validation import _num_samples, check_array, validate_data

# Rows per chunk at inference (transform, inverse_transform, sample).
_INFERENCE_CHUNK = 4096


def _n_batches(n, batch_size):
    """How many nearly equal batches to cut ``n`` rows into.

    None is larger than ``batch_size`` and none has a single row unless
    ``n == 1`` (the MMD U-statistic needs two), so ``batch_size=1`` acts as 2.
    """
    return max(1, min(-(-n // batch_size), n // 2))


# ----------------------------------------------------------------- memory maps
def _bases(X):
    """``X`` and the objects whose memory it views (``X.base``, its base, ...)."""
    while X is not None:
        yield X
        X = getattr(X, "base", None)


def _is_memory_mapped(X):
    """Whether a NumPy array is a view on a memory-mapped file."""
    return any(isinstance(b, np.memmap | mmap.mmap) for b in _bases(X))


def _releasable_mapping(X):
    """The ``mmap`` under a memory-mapped array whose pages may be dropped, or None.

    Copy-on-write maps are excluded: dropping their pages would discard the
    user's in-memory edits.
    """
    for b in _bases(X):
        if isinstance(b, np.memmap) and getattr(b, "mode", "c") in {"c", "copyonwrite"}:
            return None
        if isinstance(b, mmap.mmap):
            return b
    return None


def _release_pages(mapping):
    """Drop a mapping's pages from this process's RSS (the OS page cache keeps them).

    Streaming a memory-mapped file would otherwise leave every page read resident
    in the process, so peak memory would grow to the file's size.
    """
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            mapping.madvise(mmap.MADV_DONTNEED)


# ------------------------------------------------------------------ validation
def _check_float32_range(values):
    """Refuse float64 values that float32 (the networks' dtype) cannot hold."""
    if values.dtype != np.float64 or values.size == 0:
        return
    largest = float(np.max(np.abs(values)))
    if largest > float(np.finfo(np.float32).max):
        raise ValueError(
            f"X has values up to {largest:.3g}, beyond float32's range (the "
            "networks compute in float32); scale the data first, for example "
            "with sklearn.preprocessing.StandardScaler."
        )


def _check_memmap_values(X, chunk_bytes=64 * 2**20):
    """The finite and float32-range checks, a chunk of a memory-mapped X at a time."""
    mapping = _releasable_mapping(X)
    step = max(1, chunk_bytes // max(1, X.itemsize * X.shape[1]))
    for start in range(0, X.shape[0], step):
        chunk = X[start : start + step]
        try:
            if not (np.isfinite(chunk.sum()) or np.isfinite(chunk).all()):
                raise ValueError("Input X contains NaN or infinity.")
            _check_float32_range(chunk)
        finally:
            _release_pages(mapping)


def _validate_rows(estimator, X, reset=False, **kwargs):
    """``validate_data``, then a check that float32 training can hold X.

    A memory-mapped X is checked a chunk at a time, releasing the pages read,
    so that validation does not pull the whole file into memory.
    """
    mapped = isinstance(X, np.ndarray) and _is_memory_mapped(X)
    X = validate_data(
        estimator,
        X,
        accept_sparse=["csr", "csc"],
        dtype=[np.float64, np.float32],
        reset=reset,
        ensure_all_finite=not mapped,
        **kwargs,
    )
    if mapped:
        _check_memmap_values(X)
    else:
        _check_float32_range(X.data if sparse.issparse(X) else X)
    return X


def _check_labels(y, n_samples):
    """``y`` unchanged, after checking that it has one entry per row (or is None)."""
    if y is not None and _num_samples(y) != n_samples:
        raise ValueError(
            f"y has {_num_samples(y)} entries but X has {n_samples} rows; fit "
            "needs one label per row (or y=None)."
        )
    return y


def _check_codes(Z, n_components, name):
    """Codes to decode: a float array with ``n_components`` columns."""
    Z = check_array(Z, dtype=[np.float64, np.float32])
    if Z.shape[1] != n_components:
        raise ValueError(
            f"Z has {Z.shape[1]} features, but {name} is expecting "
            f"{n_components} features (n_components) as input."
        )
    return Z


def _label_array(y):
    """Labels as a NumPy array a tensor can hold, or None.

    Integers become int64, floats float32 (the networks' dtype; MPS has no
    float64), booleans stay booleans; other labels (strings, objects) become
    int64 codes in order of first appearance. The estimators give labels
    their meaning (and their codes) before this.
    """
    if y is None:
        return None
    y = np.asarray(y)
    if y.dtype.kind == "b":
        return y
    if y.dtype.kind in "iu":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        return y.astype(np.float32)
    codes = {}
    flat = [codes.setdefault(label, len(codes)) for label in y.ravel().tolist()]
    return np.asarray(flat, dtype=np.int64).reshape(y.shape)


# ------------------------------------------------------------------------ data
class _Data:
    """Rows (and their labels), as one tensor on the device or streamed.

    For training, dense in-memory arrays become one float32 tensor on the
    training device and batches are index slices of it. Sparse matrices and
    memory-mapped arrays stay where they are: each batch is gathered on the host
    (rows in sorted order), densified, cast to float32 and copied to the device.
    With ``stream=True`` (inference) dense arrays are streamed too, a chunk at a
    time, so that neither a whole float32 copy on the host nor the whole array
    on the GPU is ever made.

    Labels ``y`` (one per row, or None) travel with their rows: ``batch(idx)``
    gathers both with the same indices, so a streamed batch, whose indices are
    sorted, keeps each row with its own label. They are small, so they always
    live on the device as one tensor.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Validated rows.
    device : torch.device
    y : array-like of shape (n_samples, ...), default=None
        Labels, converted by :func:`_label_array`.
    stream : bool, default=False
        Stream dense in-memory rows too (inference).
    """

    def __init__(self, X, device, y=None, stream=False):
        self.device = device
        self.n = X.shape[0]
        self.streamed = stream or sparse.issparse(X) or _is_memory_mapped(X)
        self._mapping = None
        if self.streamed:
            self.X = X.tocsr() if sparse.issparse(X) else X
            if not sparse.issparse(X):
                self._mapping = _releasable_mapping(X)
        else:
            self.X = torch.as_tensor(
                np.ascontiguousarray(X, dtype=np.float32), device=device
            )
        y = _label_array(y)
        self.y = None if y is None else torch.as_tensor(y, device=device)

    def batch(self, idx):
        """Rows ``idx`` and their labels: ``(xb, yb)``, ``yb`` None without labels.

        ``idx`` is a tensor of row indices on the device (or a NumPy array).
        """
        if self.streamed:
            idx = np.sort(idx.cpu().numpy()) if torch.is_tensor(idx) else idx
            xb = self._rows_to_device(self.X[idx])
        else:
            xb = self.X.index_select(0, idx)
        if self.y is None:
            return xb, None
        return xb, self.y[torch.as_tensor(idx, device=self.device)]

    def _rows_to_device(self, rows):
        """Host rows (a copy, never a view of the file) as float32 on the device."""
        rows = rows.toarray() if sparse.issparse(rows) else rows
        out = torch.from_numpy(np.asarray(rows, dtype=np.float32))
        _release_pages(self._mapping)  # rows are a copy: the file's pages can go
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                return out.pin_memory().to(self.device, non_blocking=True)
        return out.to(self.device)

    def chunks(self, chunk=None):
        """Consecutive row chunks, in order (for inference)."""
        chunk = chunk or _INFERENCE_CHUNK
        for start in range(0, self.n, chunk):
            stop = min(start + chunk, self.n)
            if self.streamed:
                rows = self.X[start:stop]
                if not sparse.issparse(rows):
                    # A slice is a view (of the file, or of read-only memory):
                    # copy it unless the float32 cast already did.
                    rows = np.asarray(rows, dtype=np.float32)
                    if not rows.flags.writeable or _is_memory_mapped(rows):
                        rows = rows.copy()
                yield self._rows_to_device(rows)
            else:
                yield self.X[start:stop]
