"""BaseAutoencoder: the one training loop and everything the estimators share."""

import contextlib
import copy
import math
import mmap
import time
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from scipy import sparse
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._networks import ACTIVATIONS, build_networks
from .priors import _check_n_samples, _check_prior, _seed_from, _torch_prior

# Rows per chunk at inference (transform, inverse_transform, sample).
_INFERENCE_CHUNK = 4096
# Noise draws averaged for the mean code of the 'universal' encoder.
_UNIVERSAL_MEAN_DRAWS = 16
# Importance samples per row in score_samples, and the share drawn from the prior.
_N_IMPORTANCE = 128
_DEFENSIVE_PRIOR_SHARE = 0.125


def _resolve_device(device):
    """``'auto'`` -> CUDA when available, else CPU; other devices are checked.

    A CUDA device without an index gets the current one, so that the networks
    and every later batch stay on one GPU whatever the current device becomes.
    """
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine; use device='auto' (CUDA when available, else CPU) "
                "or 'cpu'."
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise ValueError(
                f"device={device!r} was requested but this machine has {count} "
                f"CUDA device(s), cuda:0 to cuda:{count - 1}."
            )
        dev = torch.device("cuda", index)
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    return dev


def _warn_if_bfloat16_is_emulated(precision, device):
    """bfloat16 on a GPU older than Ampere runs emulated: slower, not faster."""
    if precision != "bfloat16" or device.type != "cuda":
        return
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        warnings.warn(
            f"precision='bfloat16' was requested on {device} (compute capability "
            f"{major}.{minor}), which has no native bfloat16 arithmetic: training "
            "will likely be slower than with precision='float32'.",
            UserWarning,
            stacklevel=3,
        )


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


def _check_memmap_values(X, chunk_bytes=64 * 2**20):
    """The finite (and float32-range) check, a chunk of a memory-mapped X at a time."""
    mapping = _releasable_mapping(X)
    step = max(1, chunk_bytes // max(1, X.itemsize * X.shape[1]))
    limit = np.finfo(np.float32).max
    for start in range(0, X.shape[0], step):
        chunk = X[start : start + step]
        finite = np.isfinite(chunk.sum()) or np.isfinite(chunk).all()
        largest = float(np.max(np.abs(chunk))) if X.dtype == np.float64 else 0.0
        _release_pages(mapping)
        if not finite:
            raise ValueError("Input X contains NaN or infinity.")
        if largest > limit:
            raise ValueError(_too_large_message(largest))


def _too_large_message(largest):
    return (
        f"X has values up to {largest:.3g}, beyond float32's range (the networks "
        "compute in float32); scale the data first, for example with "
        "sklearn.preprocessing.StandardScaler."
    )


class _Data:
    """The training rows, as one tensor on the device or streamed a batch at a time.

    For training, dense in-memory arrays become one float32 tensor on the
    training device and batches are index slices of it. Sparse matrices and
    memory-mapped arrays stay where they are: each batch is gathered on the host
    (rows in sorted order), densified, cast to float32 and copied to the device.
    With ``stream=True`` (inference) dense arrays are streamed too, a chunk at a
    time, so that neither a whole float32 copy on the host nor the whole array
    on the GPU is ever made.
    """

    def __init__(self, X, device, stream=False):
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

    def batch(self, idx):
        if not self.streamed:
            return self.X.index_select(0, idx)
        idx = np.sort(idx.cpu().numpy()) if torch.is_tensor(idx) else idx
        return self._to_device(self.X[idx])

    def _to_device(self, rows):
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
                yield self._to_device(rows)
            else:
                yield self.X[start:stop]


class BaseAutoencoder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base class of the autoencoders with a latent prior.

    Subclasses provide the regulariser ``D(q(z), p(z))`` through
    :meth:`_make_regularizer`; this class owns validation, the training loop,
    inference, scoring and pickling. Not meant to be used directly.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "prior": [None, HasMethods(["sample"])],
        "reg_weight": [Interval(Real, 0, None, closed="left")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "encoder": [StrOptions({"deterministic", "gaussian", "universal"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=1.0,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        encoder="deterministic",
        batch_size=100,
        max_iter=300,
        learning_rate_init=2e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=15,
        tol=1e-4,
        device="auto",
        precision="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.n_components = n_components
        self.prior = prior
        self.reg_weight = reg_weight
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _make_regularizer(self, tprior, generator):
        """Return the regulariser used for one call to fit.

        ``tprior`` is the tensor-side prior on the training device, ``generator``
        the fit's ``torch.Generator``. The returned callable maps a batch of codes
        ``Z`` (with autograd) to a dict of scalar tensors whose key
        ``'regularization'`` is added, times ``reg_weight``, to the
        reconstruction loss; other keys are per-batch diagnostics (detached)
        recorded in ``history_``. Its ``evaluate(Z)`` method gives the value used
        on the validation set.
        """

    def _init_fitted_regularizer(self, seed):
        """Build learned state of the regulariser at a fresh fit (default: none).

        ``seed`` is the int that seeded the encoder and decoder initialisation.
        """

    def _regularizer_modules(self):
        """Fitted modules owned by the regulariser (moved and pickled with the rest)."""
        return {}

    # ------------------------------------------------------------- properties
    @property
    def _n_features_out(self):
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse matrices and memory-mapped arrays are streamed
            to the device a batch at a time.
        y : Ignored
            Not used, present for API consistency.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit(X, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Train for one epoch on ``X``, continuing from the current state.

        The optimiser state is kept between calls to ``partial_fit`` (but not in
        a pickle). Early stopping does not apply.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        self : object
        """
        return self._fit(X, incremental=True)

    def _fit(self, X, incremental):
        fresh = not hasattr(self, "encoder_") or not (incremental or self.warm_start)
        X = self._validate_X(X, reset=fresh, ensure_min_samples=2)
        hidden = self._check_hidden_layer_sizes()
        rng = check_random_state(self.random_state)
        init_seed, loop_seed, split_seed = (
            int(s) for s in rng.randint(2**31 - 1, size=3)
        )
        previous_device = getattr(self, "device_", None)
        self.device_ = _resolve_device(self.device)
        _warn_if_bfloat16_is_emulated(self.precision, self.device_)
        self.prior_ = _check_prior(self.prior, self.n_components)
        generator = torch.Generator(device=self.device_)
        generator.manual_seed(
            (loop_seed + (0 if fresh else self.n_iter_)) % (2**31 - 1)
        )

        if fresh:
            self.encoder_, self.decoder_ = build_networks(
                self.n_features_in_,
                self.n_components,
                hidden,
                self.activation,
                self.encoder,
                init_seed,
            )
            self._init_fitted_regularizer(init_seed)
            self.n_iter_ = 0
            self.loss_curve_ = []
            self.history_ = {}
            self.validation_loss_curve_ = [] if self.early_stopping else None
        else:
            self._check_warm_start_shapes(hidden)
            if self.early_stopping and self.validation_loss_curve_ is None:
                self.validation_loss_curve_ = []
        if fresh or not incremental or previous_device != self.device_:
            # (an optimiser's state lives on the device it was made on)
            self._release_optimizers()
        self._to_device(self.device_)

        if getattr(self, "_optimizer", None) is None:
            params = [*self.encoder_.parameters(), *self.decoder_.parameters()]
            self._optimizer = _adam(params, self.learning_rate_init)
        tprior = _torch_prior(self.prior_, self.n_components, self.device_)
        regularizer = self._make_regularizer(tprior, generator)

        n = X.shape[0]
        data = _Data(X, self.device_)
        val_idx = None
        if self.early_stopping and not incremental:
            n_val = int(math.ceil(self.validation_fraction * n))
            if n_val < 2 or n - n_val < 2:
                raise ValueError(
                    f"The validation set is too small: validation_fraction="
                    f"{self.validation_fraction} of n_samples={n} leaves {n_val} "
                    "validation and "
                    f"{n - n_val} training samples; both need at least 2."
                )
            perm = np.random.RandomState(split_seed).permutation(n)
            val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        else:
            train_idx = np.arange(n)
        train_idx_t = torch.as_tensor(train_idx, device=self.device_)

        n_epochs = 1 if incremental else self.max_iter
        best = math.inf
        no_improvement = 0
        best_state = None
        good_state = self._state()
        stopped_early = False
        try:
            for _ in range(n_epochs):
                t0 = time.perf_counter()
                record = self._run_epoch(data, train_idx_t, regularizer, generator)
                epoch = self.n_iter_ + 1
                if not (
                    all(math.isfinite(v) for v in record.values())
                    and self._parameters_finite()
                ):
                    self._load_state(good_state)
                    self._release_optimizers()  # their moments hold NaN too
                    self._finish_fit(data, train_idx)
                    raise FloatingPointError(
                        f"Training diverged at epoch {epoch}: the loss is "
                        f"{record['loss']}. The estimator keeps the weights of "
                        f"epoch {epoch - 1}. Try a smaller learning_rate_init, "
                        "a smaller reg_weight or scaling the input."
                    )
                self.n_iter_ = epoch
                self.loss_curve_.append(record["loss"])
                for key, value in record.items():
                    if key != "loss":
                        self.history_.setdefault(key, []).append(value)
                if val_idx is not None:
                    current = self._validation_loss(data, val_idx, regularizer)
                    self.validation_loss_curve_.append(current)
                else:
                    current = record["loss"]
                if self.verbose:
                    extra = ", ".join(f"{k} = {v:.6g}" for k, v in record.items())
                    val = (
                        f", validation loss = {current:.6g}"
                        if val_idx is not None
                        else ""
                    )
                    print(
                        f"Epoch {epoch}: {extra}{val} "
                        f"({time.perf_counter() - t0:.2f} s)"
                    )
                if incremental:
                    break
                good_state = self._state()
                if current > best - self.tol:
                    no_improvement += 1
                else:
                    no_improvement = 0
                if current < best:
                    best = current
                    if val_idx is not None:
                        best_state = good_state
                if no_improvement > self.n_iter_no_change:
                    stopped_early = True
                    if self.verbose:
                        what = "Validation" if val_idx is not None else "Training"
                        print(
                            f"{what} loss did not improve more than tol={self.tol} "
                            f"for {self.n_iter_no_change} consecutive epochs. "
                            "Stopping."
                        )
                    break
        except KeyboardInterrupt:
            warnings.warn(
                f"Training interrupted by the user after {self.n_iter_} epochs; "
                "the estimator keeps its current weights.",
                UserWarning,
            )
        else:
            if not incremental and not stopped_early:
                warnings.warn(
                    f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                    "reached and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                )
        if best_state is not None:
            self._load_state(best_state)
        self.best_loss_ = best if math.isfinite(best) else None
        self._finish_fit(data, train_idx)
        if not incremental:
            self._release_optimizers()  # free the optimisers' state after fit
            if self.device_.type == "cuda":
                # Drop the training copies first, so that the cache can shrink.
                del data, good_state, best_state, regularizer
                torch.cuda.empty_cache()
        return self

    def _validate_X(self, X, reset=False, **kwargs):
        """``validate_data``, then a check that float32 training can hold X.

        A memory-mapped X is checked a chunk at a time, releasing the pages read,
        so that validation does not pull the whole file into memory.
        """
        mapped = isinstance(X, np.ndarray) and _is_memory_mapped(X)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            reset=reset,
            ensure_all_finite=not mapped,
            **kwargs,
        )
        if mapped:
            _check_memmap_values(X)
        elif X.dtype == np.float64:
            values = X.data if sparse.issparse(X) else X
            largest = float(np.max(np.abs(values))) if values.size else 0.0
            if largest > np.finfo(np.float32).max:
                raise ValueError(_too_large_message(largest))
        return X

    def _parameters_finite(self):
        """Whether every fitted weight is finite (one host synchronisation)."""
        flags = [
            torch.isfinite(p).all()
            for m in self._modules().values()
            for p in m.parameters()
        ]
        return bool(torch.stack(flags).all())

    def _check_hidden_layer_sizes(self, name="hidden_layer_sizes"):
        value = getattr(self, name)
        hidden = [value] if isinstance(value, Integral) else list(np.ravel(value))
        if not all(isinstance(h, Integral) and h >= 1 for h in hidden):
            raise ValueError(
                f"{name} must be a sequence of positive integers, got {value!r}."
            )
        return tuple(int(h) for h in hidden)

    def _check_warm_start_shapes(self, hidden):
        first = self.decoder_[0] if hidden else self.decoder_[-1]
        if first.in_features != self.n_components:
            raise ValueError(
                f"n_components changed from {first.in_features} to "
                f"{self.n_components} since the last fit; warm_start and "
                "partial_fit need the same architecture."
            )

    def _run_epoch(self, data, train_idx, regularizer, generator):
        """One pass over the training rows; returns the epoch's mean losses."""
        n = train_idx.shape[0]
        perm = train_idx[
            torch.randperm(n, generator=generator, device=train_idx.device)
        ]
        sums = None
        for idx in perm.tensor_split(_n_batches(n, self.batch_size)):
            losses = self._train_step(data.batch(idx), regularizer, generator)
            stacked = torch.stack(list(losses.values())) * idx.shape[0]
            sums = stacked if sums is None else sums + stacked
        # One host synchronisation per epoch.
        return dict(zip(losses.keys(), (sums / n).tolist(), strict=True))

    def _train_step(self, xb, regularizer, generator):
        """One optimiser step on a batch: encode once, decode, loss, step."""
        with self._autocast():
            z = self._encode_train(xb, generator)
            xhat = self.decoder_(z)
        # Losses and the regulariser work in float32 whatever the precision.
        z = z.float()
        recon = torch.nn.functional.mse_loss(xhat.float(), xb)
        losses = {"reconstruction": recon}
        if self.reg_weight > 0:
            reg = regularizer(z)
            loss = recon + self.reg_weight * reg["regularization"]
            losses.update(reg)
        else:
            loss = recon
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._optimizer.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}}

    def _autocast(self):
        """bfloat16 autocast of the network passes in training, when asked for."""
        if self.precision == "bfloat16":
            return torch.autocast(self.device_.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _encode_train(self, X, generator):
        """Codes for training: the deterministic code, or a draw from q(z|x)."""
        if self.encoder == "gaussian":
            mean, log_var = self.encoder_(X)
            eps = torch.randn(
                mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
            )
            return mean + torch.exp(0.5 * log_var) * eps
        if self.encoder == "universal":
            shape = (X.shape[0], self.encoder_.n_noise)
            eps = torch.randn(shape, generator=generator, device=X.device)
            return self.encoder_(X, eps.to(X.dtype))
        return self.encoder_(X)

    def _encode_mean(self, X):
        """The mean of q(z|x): deterministic whatever the encoder kind.

        For the ``'universal'`` encoder it is the average over a fixed set of
        noise draws (common to all rows, from a fixed seed).
        """
        if self.encoder == "gaussian":
            return self.encoder_(X)[0]
        if self.encoder == "universal":
            # Drawn on the CPU: the same codes on every device.
            g = torch.Generator().manual_seed(0)
            S, m = _UNIVERSAL_MEAN_DRAWS, self.encoder_.n_noise
            noise = torch.randn(S, m, generator=g).to(X.device, X.dtype)
            Z = self.encoder_(X.repeat_interleave(S, dim=0), noise.repeat(len(X), 1))
            return Z.reshape(len(X), S, -1).mean(1)
        return self.encoder_(X)

    @torch.no_grad()
    def _validation_loss(self, data, val_idx, regularizer):
        total, count = 0.0, 0
        for idx in np.array_split(val_idx, _n_batches(len(val_idx), self.batch_size)):
            xb = data.batch(torch.as_tensor(idx, device=self.device_))
            z = self._encode_mean(xb)
            loss = torch.nn.functional.mse_loss(self.decoder_(z), xb)
            if self.reg_weight > 0:
                loss = loss + self.reg_weight * regularizer.evaluate(z)
            total = total + loss.double() * len(idx)  # no host sync per batch
            count += len(idx)
        return float(total) / count

    @torch.no_grad()
    def _finish_fit(self, data, train_idx):
        """Estimate ``noise_variance_`` from the training residuals."""
        sq, count = 0.0, 0
        for start in range(0, len(train_idx), _INFERENCE_CHUNK):
            idx = train_idx[start : start + _INFERENCE_CHUNK]
            xb = data.batch(torch.as_tensor(idx, device=self.device_))
            r = xb - self.decoder_(self._encode_mean(xb))
            sq = sq + (r * r).sum(dtype=torch.float64)  # no host sync per chunk
            count += r.numel()
        # Floor: a perfect reconstruction must not give an infinite likelihood.
        self.noise_variance_ = max(float(sq) / count, 1e-8)

    # --------------------------------------------------------- state, devices
    # Optimisers: kept between partial_fit calls, dropped after fit and in pickles.
    _optimizer_attributes = ("_optimizer",)

    def _release_optimizers(self):
        for name in self._optimizer_attributes:
            setattr(self, name, None)

    def _modules(self):
        return {
            "encoder_": self.encoder_,
            "decoder_": self.decoder_,
            **self._regularizer_modules(),
        }

    def _state(self):
        return {
            name: {k: v.detach().clone() for k, v in m.state_dict().items()}
            for name, m in self._modules().items()
        }

    def _load_state(self, state):
        for name, m in self._modules().items():
            m.load_state_dict(state[name])

    def _to_device(self, device):
        for m in self._modules().values():
            m.to(device)

    def __getstate__(self):
        # object.__getstate__ returns the live __dict__ on Python >= 3.11: copy it.
        state = dict(super().__getstate__())
        for name in self._optimizer_attributes:
            state.pop(name, None)
        for key, value in state.items():
            if isinstance(value, torch.nn.Module) and any(
                t.device.type != "cpu" for t in value.state_dict().values()
            ):
                # Pickles hold CPU tensors: a GPU-trained model loads anywhere.
                state[key] = _cpu_copy(value)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        device = getattr(self, "device_", None)
        if device is not None and device.type != "cpu":
            try:
                _resolve_device(str(device))
            except ValueError:
                self.device_ = torch.device("cpu")
            else:
                self._to_device(device)

    # -------------------------------------------------------------- inference
    def _check_codes(self, Z):
        Z = check_array(Z, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"Z has {Z.shape[1]} features, but {self.__class__.__name__} is "
                f"expecting {self.n_components} features (n_components) as input."
            )
        return Z

    @torch.no_grad()
    def transform(self, X):
        """Encode ``X``: the mean of q(z|x) for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Of the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        data = _Data(X, self.device_, stream=True)
        out = [self._encode_mean(xb).cpu() for xb in data.chunks()]
        return torch.cat(out).numpy().astype(X.dtype, copy=False)

    @torch.no_grad()
    def _decode(self, Z, dtype):
        out = [
            self.decoder_(
                torch.as_tensor(
                    Z[s : s + _INFERENCE_CHUNK],
                    dtype=torch.float32,
                    device=self.device_,
                )
            ).cpu()
            for s in range(0, Z.shape[0], _INFERENCE_CHUNK)
        ]
        return torch.cat(out).numpy().astype(dtype, copy=False)

    def inverse_transform(self, X):
        """Decode codes back to the data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, for example from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's output (the mean of p(x|z)), of the dtype of the input.
        """
        check_is_fitted(self)
        Z = self._check_codes(X)
        return self._decode(Z, Z.dtype)

    def sample(self, n_samples=1, random_state=None):
        """Generate data: decode codes drawn from the prior.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draw from the prior.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Decoder outputs (means of p(x|z)), float64.
        """
        check_is_fitted(self)
        n_samples = _check_n_samples(n_samples)
        # Drawn on the CPU (then decoded on device_): the same samples on every
        # device for an int random_state.
        g = torch.Generator().manual_seed(_seed_from(random_state))
        cpu = torch.device("cpu")
        Z = _torch_prior(self.prior_, self.n_components, cpu).sample(n_samples, g)
        return self._decode(Z, np.float64)

    def score_samples(self, X):
        """Log-likelihood of each row under the fitted generative model.

        The model is ``z ~ prior``, ``x | z ~ N(decoder(z), noise_variance_ I)``,
        and ``log p(x) = log E_{z ~ prior} N(x; decoder(z), noise_variance_ I)``
        is estimated by importance sampling. The proposal for each row is a
        defensive mixture: with probability 1/8 the prior, otherwise a Gaussian
        at one Gauss-Newton step from the encoder's code, with covariance
        ``(J^T J / noise_variance_ + I / var_prior)^{-1}`` (``J`` the decoder's
        Jacobian there, ``var_prior`` the prior's mean variance). For a linear
        decoder and a Gaussian prior this proposal is the exact posterior.
        128 importance samples per row are common random numbers from a fixed
        seed (``random_state`` when it is an int, else 0), so the estimate is a
        deterministic function of each row, whatever else is in ``X``. It does
        not depend on ``reg_weight``, so scores of models with different
        regularisation strengths compare fairly.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)
            Natural log-density of each row (higher is better).
        """
        check_is_fitted(self)
        X = self._validate_X(X)
        seed = self.random_state if isinstance(self.random_state, Integral) else 0
        d, S = self.n_components, _N_IMPORTANCE
        n_prior = int(round(_DEFENSIVE_PRIOR_SHARE * S))
        # Common random numbers, drawn on the CPU: the same on every device.
        g = torch.Generator().manual_seed(int(seed))
        cpu_prior = _torch_prior(self.prior_, d, torch.device("cpu"))
        z_prior = cpu_prior.sample(n_prior, g).to(self.device_)  # shared by all rows
        eps = torch.randn(S - n_prior, d, generator=g).to(self.device_)
        tprior = _torch_prior(self.prior_, d, self.device_)
        prior_precision = 1.0 / tprior.variance()
        chunk = max(1, 65536 // S)
        data = _Data(X, self.device_, stream=True)
        out = [
            self._score_chunk(xb, tprior, z_prior, eps, prior_precision)
            for xb in data.chunks(chunk)
        ]
        return torch.cat(out).numpy().astype(np.float64)

    def _score_chunk(self, x, tprior, z_prior, eps, prior_precision):
        n, p = x.shape
        d = self.n_components
        var = self.noise_variance_
        with torch.no_grad():
            z0 = self._encode_mean(x)
        # Gauss-Newton step on log p(z) + log p(x|z) from the encoder's code.
        J = torch.func.vmap(torch.func.jacfwd(self.decoder_))(z0)  # (n, p, d)
        with torch.enable_grad():
            z0g = z0.detach().requires_grad_(True)
            try:
                grad_prior = torch.autograd.grad(tprior.log_prob(z0g).sum(), z0g)[0]
            except (AttributeError, RuntimeError):
                grad_prior = torch.zeros_like(z0)
        with torch.no_grad():
            r = x - self.decoder_(z0)
            eye = torch.eye(d, device=x.device)
            H = J.transpose(1, 2) @ J / var + prior_precision * eye
            grad = (J.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1) / var + grad_prior
            Lh = torch.linalg.cholesky(H)  # H = Lh Lh^T; cov = H^{-1}
            mu = z0 + torch.cholesky_solve(grad.unsqueeze(-1), Lh).squeeze(-1)
            # z = mu + Lh^{-T} eps has covariance H^{-1}.
            z_q = mu[:, None, :] + torch.linalg.solve_triangular(
                Lh.transpose(1, 2), eps.T.expand(n, d, eps.shape[0]), upper=True
            ).transpose(1, 2)
            z = torch.cat([z_prior.expand(n, *z_prior.shape), z_q], dim=1)  # (n, S, d)
            S = z.shape[1]
            # log q(z | x) = log N(z; mu, H^{-1}).
            y = (z - mu[:, None, :]) @ Lh  # (n, S, d): Lh^T (z - mu)
            log_det_h = 2 * torch.log(torch.diagonal(Lh, dim1=-2, dim2=-1)).sum(-1)
            log_q = -0.5 * (y * y).sum(-1) + 0.5 * log_det_h[:, None]
            log_q = log_q - 0.5 * d * math.log(2 * math.pi)
            log_p = tprior.log_prob(z.reshape(n * S, d)).reshape(n, S)
            share = z_prior.shape[0] / S
            log_r = torch.logaddexp(math.log(share) + log_p, math.log1p(-share) + log_q)
            recon = self.decoder_(z.reshape(n * S, d)).reshape(n, S, p)
            sq = ((x[:, None, :] - recon) ** 2).sum(-1)
            log_lik = -0.5 * sq / var - 0.5 * p * math.log(2 * math.pi * var)
            log_w = log_p + log_lik - log_r
            return (torch.logsumexp(log_w, dim=1) - math.log(S)).cpu()

    def score(self, X, y=None):
        """Mean log-likelihood of ``X`` (see :meth:`score_samples`); higher is better.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : Ignored

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))


def _cpu_copy(module):
    """A deep copy of ``module`` on the CPU, made tensor by tensor.

    ``copy.deepcopy(module).cpu()`` would first duplicate every tensor on the
    module's device; here each parameter and buffer is copied straight to host
    memory and the deep copy reuses those copies.
    """
    memo = {}
    for t in (*module.parameters(), *module.buffers()):
        host = t.detach().to("cpu", copy=True)
        if isinstance(t, torch.nn.Parameter):
            host = torch.nn.Parameter(host, requires_grad=t.requires_grad)
        memo[id(t)] = host
    return copy.deepcopy(module, memo)


def _n_batches(n, batch_size):
    """How many nearly equal batches to cut ``n`` rows into.

    None is larger than ``batch_size`` and none has a single row unless
    ``n == 1`` (the MMD U-statistic needs two), so ``batch_size=1`` acts as 2.
    """
    return max(1, min(-(-n // batch_size), n // 2))


def _adam(params, lr):
    """Adam, fused where this torch build supports it on the parameters' device."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
