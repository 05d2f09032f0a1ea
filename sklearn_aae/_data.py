"""The training data: dense, sparse or memory-mapped rows, with their labels.

Everything that knows how rows are stored lives here: :class:`_Data` (rows and
labels as one tensor on the device, or streamed a batch at a time), the
memory-map helpers, the float32-range check and how an epoch is cut into
batches.
"""

import contextlib
import mmap
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.validation import (
    _num_samples,
    check_array,
    column_or_1d,
    validate_data,
)

# Rows per chunk at inference (transform, inverse_transform, sample).
_INFERENCE_CHUNK = 4096

# The largest share of a device's free memory that dense training data may
# take as one tensor; the rest is left to the networks, their activations, the
# optimisers and the regulariser's buffers. Larger data are streamed.
_DEVICE_DATA_SHARE = 0.5


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


# --------------------------------------------------------------- device memory
def _free_device_memory(device):
    """Bytes that new tensors may take on ``device``, or None where unbounded.

    On CUDA: the driver's free memory plus what torch's caching allocator holds
    unused on that device (it reuses that first). Elsewhere None: CPU training
    data are copied to float32 in host memory, which already holds them.
    """
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return free + cached


def _fits_on_device(nbytes, free_bytes, share=_DEVICE_DATA_SHARE):
    """Whether ``nbytes`` of training data may live on a device as one tensor.

    They may when they take at most ``share`` of the ``free_bytes`` (None:
    unbounded, always), leaving the rest to the networks and their buffers.

    Examples
    --------
    >>> _fits_on_device(4 * 2**30, 10 * 2**30)
    True
    >>> _fits_on_device(6 * 2**30, 10 * 2**30)
    False
    >>> _fits_on_device(6 * 2**30, None)
    True
    """
    return free_bytes is None or nbytes <= share * free_bytes


# ------------------------------------------------------------------ validation
_FLOAT32_SQUARE_LIMIT = float(np.sqrt(np.finfo(np.float32).max))


def _check_float32_range(values):
    """Refuse float64 values whose squares float32 (the networks' dtype) cannot hold.

    The reconstruction loss squares every value, so anything above
    ``sqrt(float32 max)``, about 1.8e19, would overflow to inf in the first epoch
    and end in a divergence error; refuse it here, naming the fix.
    """
    if values.dtype != np.float64 or values.size == 0:
        return
    largest = float(np.max(np.abs(values)))
    if largest > _FLOAT32_SQUARE_LIMIT:
        raise ValueError(
            f"X has values up to {largest:.3g}, whose squares overflow float32 "
            f"(the networks compute in float32; the limit is about "
            f"{_FLOAT32_SQUARE_LIMIT:.2g}); scale the data first, for example "
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


def _output_dtype(X):
    """The dtype of the outputs for the validated rows ``X``: float32 or float64
    as ``X``, float64 for other dtypes (an integer memory map).

    Examples
    --------
    >>> _output_dtype(np.zeros(1, np.float32)), _output_dtype(np.zeros(1, np.uint8))
    (dtype('float32'), dtype('float64'))
    """
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _validate_rows(estimator, X, reset=False, **kwargs):
    """``validate_data``, then a check that float32 training can hold X.

    A memory-mapped X is checked a chunk at a time, releasing the pages read,
    so that validation does not pull the whole file into memory; it keeps its
    dtype (an integer map is cast to float32 a batch at a time when it is
    streamed, never converted whole).
    """
    mapped = isinstance(X, np.ndarray) and _is_memory_mapped(X)
    keep = mapped and X.dtype.kind in "biuf"
    X = validate_data(
        estimator,
        X,
        accept_sparse=["csr", "csc"],
        dtype=None if keep else [np.float64, np.float32],
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


def _no_dask_ml_placeholder(y):
    """``y``, or None for the placeholder that dask-ml passes instead of None.

    ``dask_ml.wrappers.Incremental(...).fit(X)`` without ``y`` calls
    ``partial_fit(block, ('', i))``: its task graph names y's block ``i`` by the
    key ``(y_name, i)`` with ``y_name = ''``, which no task computes, so the
    tuple arrives as it is (unsupervised scikit-learn estimators ignore ``y``).

    Examples
    --------
    >>> _no_dask_ml_placeholder(("", 3)) is None, _no_dask_ml_placeholder([0, 1])
    (True, [0, 1])
    """
    if (
        isinstance(y, tuple)
        and len(y) == 2
        and isinstance(y[0], str)
        and y[0] == ""
        and isinstance(y[1], Integral)
    ):
        return None
    return y


def _refuse_missing_labels(labels, name="y"):
    """A ValueError when ``labels`` hold NaN or None: a missing label is no class.

    Examples
    --------
    >>> _refuse_missing_labels(np.array(["a", "b"]))
    >>> try:
    ...     _refuse_missing_labels(np.array([0.0, np.nan]))
    ... except ValueError as exc:
    ...     print(str(exc).split(":")[0])
    y has 1 missing labels (NaN or None)
    """

    def missing(v):
        try:
            return v is None or bool(v != v)
        except (TypeError, ValueError):  # pandas.NA: no truth value
            return True

    if labels.dtype.kind == "f":
        n_missing = int(np.count_nonzero(np.isnan(labels)))
    elif labels.dtype == object:
        n_missing = sum(missing(v) for v in labels.tolist())
    else:
        return
    if n_missing:
        raise ValueError(
            f"{name} has {n_missing} missing labels (NaN or None): a missing "
            "label is not a class. Give every row a label (-1 marks an "
            "unlabelled row where the estimator takes them)."
        )


def _declared_classes(classes, n_classes, prior_name="the prior"):
    """``partial_fit``'s ``classes`` as the ``classes_`` they stand for.

    ``n_classes`` is the prior's ``_n_classes()``: for ``'any'``, the sorted
    unique values; for an int ``K``, the values must be labels ``0..K-1`` and
    ``classes_`` is ``arange(K)`` (the prior's components).

    Examples
    --------
    >>> _declared_classes(["b", "a", "b"], "any").tolist()
    ['a', 'b']
    >>> _declared_classes([0, 2], 3).tolist()
    [0, 1, 2]
    """
    classes = column_or_1d(np.asarray(classes))
    if classes.size == 0:
        raise ValueError("classes must hold at least one class, got none.")
    if n_classes == "any":
        _refuse_missing_labels(classes, "classes")
        try:
            return np.unique(classes)
        except TypeError as exc:
            raise TypeError(
                f"classes cannot be sorted ({exc}); use classes of one type."
            ) from None
    _integer_labels(classes, n_classes, prior_name)
    return np.arange(n_classes)


def _known_classes(classes, n_classes, before, prior_name="the prior"):
    """The classes that labels must be among, ``partial_fit``'s ``classes``
    checked against ``before`` (the first call's ``classes_``, or None).

    ``before`` when there is one (``classes`` given again must declare the same
    classes, as scikit-learn's ``partial_fit`` classifiers ask), else the
    declared ``classes`` (:func:`_declared_classes`), else None.

    Examples
    --------
    >>> import numpy as np
    >>> _known_classes(["b", "a"], "any", None).tolist()
    ['a', 'b']
    >>> _known_classes([1, 0], "any", np.array([0, 1])).tolist()
    [0, 1]
    """
    if classes is None:
        return before
    declared = _declared_classes(classes, n_classes, prior_name)
    if before is None:
        return declared
    if not np.array_equal(declared, before):
        raise ValueError(
            f"classes={np.asarray(classes).tolist()[:10]} differs from "
            f"classes_ {before.tolist()[:10]} of the first call; "
            "partial_fit keeps the classes of the first call."
        )
    return before


# The label of an unlabelled row (scikit-learn's semi-supervised convention).
UNLABELLED = -1


def _unlabelled_mask(y):
    """Where the 1-D labels ``y`` are ``-1`` (numeric, or -1 in an object array).

    String labels holding ``'-1'`` are refused: NumPy makes strings of a list
    that mixes strings with the integer ``-1`` (``["a", -1]``), and the
    unlabelled rows would silently become a class ``'-1'``.

    Examples
    --------
    >>> _unlabelled_mask(np.array(["a", -1], dtype=object)).tolist()
    [False, True]
    """
    if y.dtype.kind in "iuf" or y.dtype == object:
        return np.asarray(y == UNLABELLED, dtype=bool)
    if y.dtype.kind in "US" and np.any(y == np.asarray(str(UNLABELLED), y.dtype)):
        raise ValueError(
            "y holds the string '-1': an unlabelled row is the integer -1, and "
            "NumPy turns a list mixing strings with -1 into strings. Give y as "
            "an object array, for example np.asarray(y, dtype=object), with "
            "the integer -1 for unlabelled rows."
        )
    return np.zeros(y.shape[0], dtype=bool)  # strings, booleans: all labelled


# The least share of a batch's regulariser given to its labelled rows.
# Weighting every row equally (the share n_labelled / n) lets a few labels
# drown: with 10% of labels the codes of a class often settled in another
# class's component (a local minimum where the unlabelled codes still match the
# whole prior), for the MMD and the adversarial regulariser alike.
LABELLED_SHARE = 0.5


def _label_weights(labelled, dtype=torch.float32):
    """Per-row weights ``(w_labelled, w_unlabelled)`` of a batch, summing to 1.

    The labelled rows (``labelled``, a boolean tensor) share ``s = max(n_L / n,
    LABELLED_SHARE)`` of the weight (``0`` when there are none), the unlabelled
    rows the rest: every row weighs ``1 / n`` once half the batch is labelled.
    Tensors of shape ``()`` and ``dtype``, without a host synchronisation.
    """
    n = labelled.shape[0]
    n_labelled = labelled.sum().to(dtype)
    share = torch.where(
        n_labelled > 0,
        (n_labelled / n).clamp_min(LABELLED_SHARE),
        torch.zeros_like(n_labelled),
    )
    w_labelled = share / n_labelled.clamp_min(1.0)
    w_unlabelled = (1.0 - share) / (n - n_labelled).clamp_min(1.0)
    return w_labelled, w_unlabelled


def _integer_labels(labels, n_classes, prior_name):
    """Labels that index a prior's ``n_classes`` components, as int64, or an error."""

    def integer_like(v):
        if isinstance(v, bool | np.bool_) or not isinstance(v, Integral | Real):
            return False
        return isinstance(v, Integral) or (np.isfinite(v) and v == round(v))

    if labels.dtype.kind not in "iu":
        bad = [v for v in labels.tolist() if not integer_like(v)]
        if not bad:
            labels = labels.astype(np.float64)
    else:
        bad = []
    if bad:
        example = bad[0]
        raise TypeError(
            f"{prior_name} matches labels to its {n_classes} components by index: "
            f"y must hold integers 0..{n_classes - 1}, and -1 for unlabelled rows; "
            f"got {labels.dtype} labels such as {example!r}. Encode other labels "
            "first, for example with sklearn.preprocessing.LabelEncoder."
        )
    labels = labels.astype(np.int64)
    outside = np.unique(labels[(labels < 0) | (labels >= n_classes)])
    if outside.size:
        raise ValueError(
            f"y has labels {outside.tolist()[:10]} but {prior_name} has "
            f"{n_classes} components: labels must be 0..{n_classes - 1}, or -1 "
            "for unlabelled rows."
        )
    return labels


def _label_codes(y, n_classes, classes=None, prior_name="the prior", declared=False):
    """Labels as codes ``0..K-1`` of their classes, ``-1`` for unlabelled rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; ``-1`` (numeric, or the int -1 in an object array) marks an
        unlabelled row.
    n_classes : int or 'any'
        What the prior makes of labels (its ``_n_classes()``): an int ``K``,
        labels are the indices ``0..K-1`` of its components (integer-like
        values; ``classes_`` is ``arange(K)``, so a class may be absent); or
        ``'any'``, labels are any sortable values, coded in sorted order
        (``classes_`` the sorted unique labelled values, as scikit-learn's
        classifiers have them).
    classes : ndarray or None, default=None
        The ``classes_`` of an earlier fit (``warm_start``, ``partial_fit``):
        labels must then be among them (a subset is fine).
    prior_name : str, default='the prior'
        Named in error messages.
    declared : bool, default=False
        Whether ``classes`` are those given to ``partial_fit``'s first call
        (``classes=``) rather than an earlier fit's: named in error messages.

    Returns
    -------
    codes : ndarray of int64 of shape (n_samples,) or None
        ``None`` when no row is labelled: training is then that of ``fit(X)``.
    classes : ndarray or None
        The classes, ``classes`` unchanged when no row is labelled.

    Examples
    --------
    >>> codes, classes = _label_codes([2, -1, 0], 3)
    >>> codes.tolist(), classes.tolist()
    ([2, -1, 0], [0, 1, 2])
    >>> codes, classes = _label_codes(np.array(["b", "a", "b"], dtype=object), "any")
    >>> codes.tolist(), classes.tolist()
    ([1, 0, 1], ['a', 'b'])
    """
    y = column_or_1d(y, warn=True)
    if n_classes == "any":
        _refuse_missing_labels(y)
    unlabelled = _unlabelled_mask(y)
    if unlabelled.all():
        return None, classes
    labels = y[~unlabelled]
    if n_classes == "any":
        try:
            found = np.unique(labels)
        except TypeError as exc:
            raise TypeError(
                f"The labels of y cannot be sorted ({exc}); use labels of one "
                "type, such as all strings or all integers."
            ) from None
        if classes is None:
            classes = found
        elif np.setdiff1d(found, classes).size:
            missing = np.setdiff1d(found, classes).tolist()[:10]
            if declared:
                raise ValueError(
                    f"y has classes {missing} not in the classes= given to "
                    f"partial_fit, {classes.tolist()[:10]}; give every class "
                    "that y may hold over all the calls."
                )
            raise ValueError(
                f"y has classes {missing} not in classes_ "
                f"{classes.tolist()[:10]} of the earlier fit; "
                "warm_start and partial_fit keep the classes of the first fit."
            )
        values = np.searchsorted(classes, labels)
    else:
        values = _integer_labels(labels, n_classes, prior_name)
        if classes is not None and len(classes) != n_classes:
            raise ValueError(
                f"{prior_name} has {n_classes} components but the estimator was "
                f"fit with {len(classes)} classes; warm_start and partial_fit "
                "keep the classes of the first fit."
            )
        classes = np.arange(n_classes) if classes is None else classes
    codes = np.full(y.shape[0], UNLABELLED, dtype=np.int64)
    codes[~unlabelled] = values
    return codes, classes


def _stratified_split(codes, n_val, rng):
    """``(train_idx, val_idx)``, sorted, with ``n_val`` rows held out per class.

    Each class (and the unlabelled rows, ``-1``, as one more group) gives the
    validation set its share of ``n_val`` (largest remainders, ties broken at
    random), but a class keeps at least one training row while another group
    can give the row instead: with few labels, no class is wholly held out.

    Parameters
    ----------
    codes : ndarray of int of shape (n_samples,)
    n_val : int
        Validation rows, ``0 < n_val < n_samples``.
    rng : numpy.random.RandomState

    Returns
    -------
    train_idx, val_idx : ndarray of int

    Examples
    --------
    >>> codes = np.array([0, 0, 1, 1, 1, 1, -1, -1, -1, -1])
    >>> train, val = _stratified_split(codes, 5, np.random.RandomState(0))
    >>> np.bincount(codes[val] + 1).tolist()  # 2 unlabelled, one 0, two 1s
    [2, 1, 2]
    """
    groups, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    n = codes.shape[0]
    quota = counts * n_val / n
    take = np.floor(quota).astype(np.int64)
    keep_one = np.where(groups >= 0, np.maximum(counts - 1, 0), counts)
    take = np.minimum(take, keep_one)
    order = np.lexsort((rng.rand(groups.size), -(quota - np.floor(quota))))
    for limit in (keep_one, counts):  # relax "keep one" only if nothing else fits
        for g in np.resize(order, order.size * int(n_val)):
            if take.sum() == n_val:
                break
            if take[g] < limit[g]:
                take[g] += 1
    rows = [rng.permutation(np.flatnonzero(inverse == g)) for g in range(groups.size)]
    val = [r[:t] for r, t in zip(rows, take, strict=True)]
    val_idx = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(n), val_idx), val_idx


def _check_codes(Z, n_components, name):
    """Codes to decode: a float array with ``n_components`` columns."""
    # (writeable: the values of a pandas frame are read-only under
    # copy-on-write, and torch warns about those)
    Z = check_array(Z, dtype=[np.float64, np.float32], force_writeable=True)
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
    (its rows read in sorted order, for locality), densified, cast to float32,
    copied to the device and put back in the batch's own order, so that
    training sees the same batches, row for row, as from a dense array (per-row
    noise falls on the same rows). Dense arrays whose float32 copy (with the
    labels) would take more than ``_DEVICE_DATA_SHARE`` of the device's free
    memory (:func:`_fits_on_device`) are streamed the same way, their rows
    gathered in the batch's own order; ``too_large`` then holds ``(bytes
    needed, bytes free)``. With ``stream=True`` (inference) dense arrays are
    streamed too, a chunk at a time, so that neither a whole float32 copy on
    the host nor the whole array on the GPU is ever made.

    Labels ``y`` (one per row, or None) travel with their rows: ``batch(idx)``
    gathers both with the same indices, in the batch's order. They are small,
    so they always live on the device as one tensor.

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
        y = _label_array(y)
        # Sparse and memory-mapped rows are read in sorted order.
        self._sorted = sparse.issparse(X) or _is_memory_mapped(X)
        self.streamed = stream or self._sorted
        self.too_large = None
        if not self.streamed:
            needed = 4 * X.shape[0] * X.shape[1] + (0 if y is None else y.nbytes)
            free = _free_device_memory(device)
            if not _fits_on_device(needed, free):
                self.streamed, self.too_large = True, (needed, free)
        self._mapping = None
        if self.streamed:
            self.X = X.tocsr() if sparse.issparse(X) else X
            if not sparse.issparse(X):
                self._mapping = _releasable_mapping(X)
        else:
            X = np.ascontiguousarray(X, dtype=np.float32)
            # torch shares the memory of the array (on the CPU) and warns
            # about a read-only one: copy that only.
            self.X = torch.as_tensor(
                X if X.flags.writeable else X.copy(), device=device
            )
        self.y = None if y is None else torch.as_tensor(y, device=device)

    def index(self, idx):
        """Row indices (NumPy) in the form :meth:`batch` reads without a host sync:
        a NumPy array for streamed rows (gathered on the host), a device tensor
        otherwise."""
        return (
            np.asarray(idx)
            if self.streamed
            else torch.as_tensor(idx, device=self.device)
        )

    def batch(self, idx):
        """Rows ``idx`` and their labels: ``(xb, yb)``, ``yb`` None without labels.

        ``idx`` is a tensor of row indices on the device (or a NumPy array).
        """
        if self.streamed:
            idx = idx.cpu().numpy() if torch.is_tensor(idx) else np.asarray(idx)
            if self._sorted:
                # Read in sorted order (locality), returned in the batch's own:
                # per-row noise (a Gaussian encoder's draws, the consistency
                # term's) then falls on the rows the dense path gives it.
                # (on the host: the batch is small once read, and the device
                # gets one copy and no indexing of its own)
                order = np.argsort(idx, kind="stable")
                back = np.empty_like(order)  # the inverse permutation
                back[order] = np.arange(len(order))
                xb = self._rows_to_device(self.X[idx[order]][back])
            else:
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
