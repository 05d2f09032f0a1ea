"""Priors over the latent codes.

A prior is a small scikit-learn style parameter object: its constructor stores
its parameters, so ``clone``, ``get_params`` and nested grid keys such as
``prior__scale`` work. Every prior here has

- ``sample(n_samples=1, random_state=None)`` -> ndarray of shape (n_samples, d),
- ``log_prob(Z)`` -> ndarray of shape (n_samples,) (not :class:`SwissRollPrior`,
  which has no density),

and all but :class:`SwissRollPrior` have the closed-form kernel means that
:class:`~sklearn_aae.MMDAutoencoder` uses instead of sampling:

- ``rbf_kernel_mean(Z, bandwidth)``: ``E_{y ~ p} k(z_i, y)`` for each row,
- ``rbf_kernel_mean_prior(bandwidth)``: ``E_{y, y' ~ p} k(y, y')``,

with ``k(x, y) = mean_b exp(-|x - y|^2 / (2 l_b^2))`` over the bandwidths ``l_b``.
The IMQ kernel reaches them too, as a mixture of RBF kernels.

Your own prior
--------------
Any object with a ``sample(n_samples, random_state)`` method returning an array
of shape ``(n_samples, n_components)`` works as the ``prior`` of both
estimators: they draw prior samples where they need them (the MMD then
estimates its prior terms from as many samples as the batch has rows).
``score_samples`` and ``score`` additionally need ``log_prob(Z)``. Give it
``get_params`` (for example by subclassing :class:`sklearn.base.BaseEstimator`)
for ``clone`` and grid searches to see its parameters.

Closed forms are a private, tensor-side protocol that may change: subclass
:class:`BasePrior` and implement ``_n_dims()`` (the prior's dimension, or
``None`` when scalar parameters broadcast to any) and
``_make_torch(n_dims, device, dtype)``, which returns an object with

- ``n_dims``, ``device``, ``dtype`` attributes;
- ``sample(n, generator)``: a ``(n, n_dims)`` tensor drawn with only the given
  ``torch.Generator``;
- ``log_prob(Z)``: a ``(n,)`` tensor;
- ``variance()``: the mean per-coordinate variance, a float;
- ``rbf_terms(bandwidths, scale_weights=None)``: ``(mean_fn, pp)`` where
  ``mean_fn(Z)`` is ``E_{y ~ p} sum_b w_b exp(-|z - y|^2 / 2 l_b^2)`` (``w_b``
  the weights, or ``1 / B``) with autograd, and ``pp`` the same for two
  independent prior draws; or ``rbf_terms = None`` when there is no closed form.

``BasePrior`` then provides the NumPy ``sample``, ``log_prob`` and kernel-mean
methods. The private ``_TorchLaplace`` and ``_TorchUniform`` classes below are
short worked examples.

Examples
--------
>>> import numpy as np
>>> from sklearn_aae import mmd_to_prior
>>> class ShiftedNormal:
...     def __init__(self, shift=1.0):
...         self.shift = shift
...     def sample(self, n_samples, random_state=None):
...         rng = np.random.RandomState(random_state)
...         return rng.normal(size=(n_samples, 2)) + self.shift
>>> Z = np.random.RandomState(0).normal(size=(500, 2))
>>> mmd_to_prior(Z, ShiftedNormal()) > 0.05
True
"""

import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_array

from ._kernels import (
    _floor_log,
    gaussian_mixture_rbf_factors,
    gaussian_mixture_rbf_mean,
    gaussian_mixture_rbf_mean_prior,
    laplace_rbf_log_mean,
    laplace_rbf_log_mean_prior,
    uniform_rbf_log_mean,
    uniform_rbf_log_mean_prior,
)

__all__ = [
    "BasePrior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "LaplacePrior",
    "UniformPrior",
    "SwissRollPrior",
]


def _seed_from(random_state):
    """An int seed for a torch.Generator, from anything check_random_state takes."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _as_bandwidths(
    bandwidth, expected="a positive float or a non-empty list of positive floats"
):
    """Kernel bandwidths as a 1-D float64 array, or a ValueError naming ``expected``."""
    bw = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    if bw.ndim != 1 or bw.size == 0 or not np.all(np.isfinite(bw)) or np.any(bw <= 0):
        raise ValueError(f"bandwidth must be {expected}, got {bandwidth!r}.")
    return bw


class BasePrior(BaseEstimator):
    """Base class of the priors with a tensor-side counterpart.

    Subclasses implement ``_n_dims()`` (``None`` when scalar parameters
    broadcast to any dimension) and ``_make_torch(n_dims, device, dtype)``,
    which returns the tensor-side prior used in training (see the module
    docstring for its interface). This class provides the NumPy methods.

    Examples
    --------
    >>> from sklearn_aae.priors import BasePrior, GaussianPrior
    >>> isinstance(GaussianPrior(), BasePrior)
    True
    """

    def _n_dims(self):
        return None

    def _make_torch(self, n_dims, device, dtype):  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_dims(self, n_dims):
        own = self._n_dims()
        if own is not None and own != n_dims:
            raise ValueError(
                f"The prior {self!r} has dimension {own}, but the codes have "
                f"dimension n_components={n_dims}."
            )

    def _to_torch(self, n_dims=None, device="cpu", dtype=torch.float32):
        """The tensor-side counterpart used in training (see ``_TorchMixture``)."""
        self._validate_params()
        if n_dims is None:
            n_dims = self._n_dims() or 1
        self._check_dims(n_dims)
        return self._make_torch(n_dims, device, dtype)

    def _closed_form(self, n_dims):
        p = self._to_torch(n_dims, dtype=torch.float64)
        if p.rbf_terms is None:
            raise AttributeError(
                f"{self.__class__.__name__} has no closed-form kernel means; "
                "the MMD estimates its prior terms from samples instead."
            )
        return p

    def sample(self, n_samples=1, random_state=None):
        """Draw samples from the prior.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None

        Returns
        -------
        Z : ndarray of shape (n_samples, n_dims)
            A prior with scalar parameters is one-dimensional on its own; inside
            an estimator it broadcasts to ``n_components`` dimensions.
        """
        n_samples = _check_n_samples(n_samples)
        g = torch.Generator().manual_seed(_seed_from(random_state))
        p = self._to_torch(dtype=torch.float64)
        return p.sample(n_samples, g).numpy()

    def log_prob(self, Z):
        """Log density of the prior at each row of ``Z``.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_dims)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        Z = check_array(Z, dtype=np.float64)
        p = self._to_torch(Z.shape[1], dtype=torch.float64)
        with torch.no_grad():
            return p.log_prob(torch.from_numpy(Z)).numpy()

    def rbf_kernel_mean(self, Z, bandwidth=1.0):
        """Closed-form ``E_{y ~ p} k(z_i, y)`` for the (multi-scale) RBF kernel.

        Parameters
        ----------
        Z : array-like of shape (n_samples, n_dims)
        bandwidth : float or list of float, default=1.0
            One bandwidth, or several whose kernels are averaged.

        Returns
        -------
        mean : ndarray of shape (n_samples,)
        """
        Z = check_array(Z, dtype=np.float64)
        p = self._closed_form(Z.shape[1])
        mean_fn, _ = p.rbf_terms(torch.from_numpy(_as_bandwidths(bandwidth)))
        with torch.no_grad():
            return mean_fn(torch.from_numpy(Z)).numpy()

    def rbf_kernel_mean_prior(self, bandwidth=1.0, n_dims=None):
        """Closed-form ``E_{y, y' ~ p} k(y, y')`` for the (multi-scale) RBF kernel.

        Parameters
        ----------
        bandwidth : float or list of float, default=1.0
        n_dims : int, default=None
            Dimension for a prior with scalar parameters (default 1).

        Returns
        -------
        value : float
        """
        p = self._closed_form(n_dims)
        _, pp = p.rbf_terms(torch.from_numpy(_as_bandwidths(bandwidth)))
        return float(pp)


def _check_n_samples(n_samples):
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}.")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    return int(n_samples)


def _vector(value, name, n_dims, positive=False):
    """A scalar or 1-D parameter as a float64 vector of length n_dims."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    if positive and np.any(v <= 0):
        raise ValueError(f"{name} must be positive, got {value!r}.")
    return np.broadcast_to(v, (n_dims,)).copy()


def _broadcast_n_dims(**params):
    """Dimension of a prior with scalar-or-vector parameters (None: any)."""
    sizes = {np.size(v) for v in params.values()} - {1}
    if len(sizes) > 1:
        names = " and ".join(params)
        lengths = " and ".join(str(np.size(v)) for v in params.values())
        raise ValueError(f"{names} have different lengths: {lengths}.")
    if sizes:
        return sizes.pop()
    if any(np.ndim(v) == 1 for v in params.values()):
        return 1
    return None


class _LocScalePrior(BasePrior):
    """Independent coordinates with a location and a scale, scalar or per dimension.

    Scalar ``loc`` and ``scale`` broadcast to any dimension; vectors fix it.
    """

    _parameter_constraints = {
        "loc": ["array-like", Real],
        "scale": ["array-like", Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, loc=0.0, scale=1.0):
        self.loc = loc
        self.scale = scale

    def _n_dims(self):
        return _broadcast_n_dims(loc=self.loc, scale=self.scale)

    def _loc_scale(self, n_dims):
        """``loc`` and ``scale`` as validated float64 vectors of length n_dims."""
        loc = _vector(self.loc, "loc", n_dims)
        return loc, _vector(self.scale, "scale", n_dims, positive=True)


class GaussianPrior(_LocScalePrior):
    """Independent Gaussian prior ``N(loc, diag(scale^2))``.

    Parameters
    ----------
    loc : float or array-like of shape (n_dims,), default=0.0
        Mean.
    scale : float or array-like of shape (n_dims,), default=1.0
        Standard deviation of each coordinate.

    Notes
    -----
    With scalar ``loc`` and ``scale`` the prior broadcasts to the estimator's
    ``n_components``; with vectors its dimension must equal ``n_components``.

    Examples
    --------
    >>> from sklearn_aae.priors import GaussianPrior
    >>> prior = GaussianPrior(scale=[1.0, 2.0])
    >>> prior.sample(5, random_state=0).shape
    (5, 2)
    >>> prior.log_prob([[0.0, 0.0]]).shape
    (1,)
    """

    def _mixture_params(self, n_dims):
        loc, scale = self._loc_scale(n_dims)
        return loc[None], np.diag(scale**2)[None], np.ones(1)

    def _make_torch(self, n_dims, device, dtype):
        return _TorchMixture(*self._mixture_params(n_dims), device, dtype)


class GaussianMixturePrior(BasePrior):
    """Gaussian mixture prior ``sum_k w_k N(means_k, covariances_k)``.

    Parameters
    ----------
    means : array-like of shape (n_mixture_components, n_dims)
    covariances : array-like, default=1.0
        Shape ``(K, d, d)`` full, ``(K, d)`` diagonal, ``(K,)`` one variance per
        component, or a scalar variance shared by all.
    weights : array-like of shape (n_mixture_components,), default=None
        Mixture weights (normalised to sum to one); ``None`` is uniform.

    See Also
    --------
    GaussianMixturePrior.ring : the 10-component 2-D mixture of the adversarial
        autoencoder paper.

    Examples
    --------
    >>> from sklearn_aae.priors import GaussianMixturePrior
    >>> prior = GaussianMixturePrior(means=[[-2.0, 0.0], [2.0, 0.0]], covariances=0.5)
    >>> prior.sample(4, random_state=0).shape
    (4, 2)
    >>> GaussianMixturePrior.ring().sample(3, random_state=0).shape
    (3, 2)
    """

    _parameter_constraints = {
        "means": ["array-like"],
        "covariances": ["array-like", Interval(Real, 0, None, closed="neither")],
        "weights": ["array-like", None],
    }

    def __init__(self, means, covariances=1.0, weights=None):
        self.means = means
        self.covariances = covariances
        self.weights = weights

    @classmethod
    def ring(
        cls, n_mixture_components=10, radius=1.4, radial_std=0.5, tangential_std=0.1
    ):
        """The 2-D mixture of the adversarial-autoencoder paper (Makhzani et al.).

        ``n_mixture_components`` Gaussians with centres on a circle of the given
        radius, each elongated along its radius (standard deviation
        ``radial_std``) and narrow across it (``tangential_std``), equal weights.

        Parameters
        ----------
        n_mixture_components : int, default=10
        radius : float, default=1.4
        radial_std : float, default=0.5
        tangential_std : float, default=0.1

        Returns
        -------
        prior : GaussianMixturePrior

        Examples
        --------
        >>> from sklearn_aae.priors import GaussianMixturePrior
        >>> GaussianMixturePrior.ring().means.shape
        (10, 2)
        """
        angles = 2 * np.pi * np.arange(n_mixture_components) / n_mixture_components
        u = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # radial directions
        v = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
        covariances = radial_std**2 * np.einsum("ki,kj->kij", u, u)
        covariances += tangential_std**2 * np.einsum("ki,kj->kij", v, v)
        return cls(means=radius * u, covariances=covariances)

    def _n_dims(self):
        means = np.asarray(self.means)
        if means.ndim != 2 or means.shape[0] == 0 or means.shape[1] == 0:
            raise ValueError(
                f"means must be a non-empty 2-D array (n_mixture_components, "
                f"n_dims), got shape {means.shape}."
            )
        return means.shape[1]

    def _mixture_params(self, n_dims):
        means = np.asarray(self.means, dtype=np.float64)
        K, d = means.shape
        if not np.all(np.isfinite(means)):
            raise ValueError("means must be finite.")
        cov = np.asarray(self.covariances, dtype=np.float64)
        if cov.ndim == 0 or cov.shape == (K,):
            cov = cov.reshape(-1, 1, 1) * np.eye(d) * np.ones((K, 1, 1))
        elif cov.shape == (K, d):
            cov = np.einsum("ki,ij->kij", cov, np.eye(d))
        elif cov.shape != (K, d, d):
            raise ValueError(
                f"covariances must have shape ({K}, {d}, {d}), ({K}, {d}), ({K},) "
                f"or be a scalar, got shape {cov.shape}."
            )
        if not np.all(np.isfinite(cov)):
            raise ValueError("covariances must be finite.")
        if not np.allclose(cov, np.swapaxes(cov, 1, 2)):
            raise ValueError("covariances must be symmetric.")
        if np.any(np.linalg.eigvalsh(cov) <= 0):
            raise ValueError("covariances must be positive definite.")
        if self.weights is None:
            weights = np.full(K, 1.0 / K)
        else:
            weights = np.asarray(self.weights, dtype=np.float64)
            if (
                weights.shape != (K,)
                or not np.all(np.isfinite(weights))
                or np.any(weights < 0)
                or weights.sum() <= 0
            ):
                raise ValueError(
                    f"weights must be {K} non-negative finite numbers with a "
                    f"positive sum, got {self.weights!r}."
                )
            weights = weights / weights.sum()
        return means, cov, weights

    def _make_torch(self, n_dims, device, dtype):
        return _TorchMixture(*self._mixture_params(n_dims), device, dtype)


class LaplacePrior(_LocScalePrior):
    """Prior with independent Laplace coordinates, ``Laplace(loc, scale)``.

    Each coordinate has density ``exp(-|z - loc| / scale) / (2 scale)``
    (scipy's ``laplace(loc, scale)``), variance ``2 scale^2``. The closed-form
    RBF kernel means factorise over coordinates (erfc/erfcx in log space, finite
    far in the tails), so the MMD needs no prior samples.

    Parameters
    ----------
    loc : float or array-like of shape (n_dims,), default=0.0
        Location (median) of each coordinate.
    scale : float or array-like of shape (n_dims,), default=1.0
        Scale of each coordinate.

    Notes
    -----
    With scalar ``loc`` and ``scale`` the prior broadcasts to the estimator's
    ``n_components``; with vectors its dimension must equal ``n_components``.
    A heavy-tailed, sparse prior with independent coordinates: a natural choice
    for (nonlinear) independent component analysis.

    Examples
    --------
    >>> from sklearn_aae.priors import LaplacePrior
    >>> prior = LaplacePrior(scale=[1.0, 0.5])
    >>> prior.sample(5, random_state=0).shape
    (5, 2)
    >>> prior.rbf_kernel_mean([[0.0, 0.0], [1.0, 2.0]], bandwidth=1.0).shape
    (2,)
    """

    def _make_torch(self, n_dims, device, dtype):
        return _TorchLaplace(*self._loc_scale(n_dims), device, dtype)


class UniformPrior(BasePrior):
    """Uniform prior on the box ``[low, high]`` (independent coordinates).

    ``log_prob`` is ``-sum log(high - low)`` inside the box and ``-inf``
    outside. The closed-form RBF kernel means factorise over coordinates (erf
    differences, in log space), so the MMD needs no prior samples.

    Parameters
    ----------
    low : float or array-like of shape (n_dims,), default=-1.0
        Lower corner of the box.
    high : float or array-like of shape (n_dims,), default=1.0
        Upper corner of the box; each coordinate must exceed ``low``'s.

    Notes
    -----
    With scalar ``low`` and ``high`` the prior broadcasts to the estimator's
    ``n_components``; with vectors its dimension must equal ``n_components``.

    Examples
    --------
    >>> from sklearn_aae.priors import UniformPrior
    >>> prior = UniformPrior(low=0.0, high=[1.0, 2.0])
    >>> prior.sample(5, random_state=0).shape
    (5, 2)
    >>> prior.log_prob([[0.5, 0.5], [2.0, 0.5]])
    array([-0.69314718,        -inf])
    """

    _parameter_constraints = {
        "low": ["array-like", Real],
        "high": ["array-like", Real],
    }

    def __init__(self, low=-1.0, high=1.0):
        self.low = low
        self.high = high

    def _n_dims(self):
        return _broadcast_n_dims(low=self.low, high=self.high)

    def _make_torch(self, n_dims, device, dtype):
        low = _vector(self.low, "low", n_dims)
        high = _vector(self.high, "high", n_dims)
        if np.any(high <= low):
            raise ValueError(
                f"high must exceed low in every coordinate, got low={self.low!r} "
                f"and high={self.high!r}."
            )
        return _TorchUniform(low, high, device, dtype)


class SwissRollPrior(BasePrior):
    """The 2-D swiss roll of the adversarial-autoencoder paper (sample only).

    ``u ~ Uniform(0, 1)``, ``s = sqrt(u)``, and the point
    ``radius * s * (cos(2 pi n_turns s), sin(2 pi n_turns s))``, plus isotropic
    Gaussian noise of standard deviation ``noise``: a spiral whose density
    along its length is uniform in area (Makhzani et al., 2015, as in the
    authors' and common re-implementations: ``radius=3``, two turns).

    It has no closed-form kernel means (the MMD samples it) and no density
    (``log_prob``, hence the estimators' ``score_samples``, raise an error).

    Parameters
    ----------
    radius : float, default=3.0
        Radius of the outer end of the spiral.
    n_turns : float, default=2.0
        Number of turns.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to each coordinate.

    Examples
    --------
    >>> from sklearn_aae.priors import SwissRollPrior
    >>> SwissRollPrior().sample(5, random_state=0).shape
    (5, 2)
    """

    _parameter_constraints = {
        "radius": [Interval(Real, 0, None, closed="neither")],
        "n_turns": [Interval(Real, 0, None, closed="neither")],
        "noise": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, radius=3.0, n_turns=2.0, noise=0.0):
        self.radius = radius
        self.n_turns = n_turns
        self.noise = noise

    def _n_dims(self):
        return 2

    def log_prob(self, Z):
        """Not available: the swiss roll has no density.

        Parameters
        ----------
        Z : array-like of shape (n_samples, 2)

        Raises
        ------
        AttributeError
        """
        return self._to_torch(2).log_prob(None)

    def _make_torch(self, n_dims, device, dtype):
        return _TorchSwissRoll(
            float(self.radius), float(self.n_turns), float(self.noise), device, dtype
        )


class _TorchMixture:
    """Tensor-side Gaussian mixture on a device: sampling, log density, kernel means.

    Built from float64 NumPy parameters; factorisations are done in float64 and
    then cast to ``dtype``.
    """

    def __init__(self, means, covariances, weights, device, dtype):
        cov64 = torch.from_numpy(covariances)
        self._cov64 = cov64
        self._means64 = torch.from_numpy(means)
        with np.errstate(divide="ignore"):
            self._logw64 = torch.from_numpy(np.log(weights))
        self.n_dims = means.shape[1]
        self.device, self.dtype = device, dtype
        tril = torch.linalg.cholesky(cov64)
        self.means = self._means64.to(device, dtype)
        self.scale_tril = tril.to(device, dtype)
        self.weights = torch.from_numpy(weights).to(device, dtype)
        self.log_weights = self._logw64.to(device, dtype)
        self._log_norm = (
            -torch.log(torch.diagonal(tril, dim1=-2, dim2=-1)).sum(-1)
            - 0.5 * self.n_dims * math.log(2 * math.pi)
        ).to(device, dtype)
        self._single = means.shape[0] == 1

    def sample(self, n, generator):
        eps = torch.randn(
            n, self.n_dims, generator=generator, device=self.device, dtype=self.dtype
        )
        if self._single:
            return self.means[0] + eps @ self.scale_tril[0].T
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.means[comp] + torch.einsum("nij,nj->ni", self.scale_tril[comp], eps)

    def log_prob(self, Z):
        diff = (Z[:, None, :] - self.means[None]).unsqueeze(-1)  # (n, K, d, 1)
        L = self.scale_tril.expand(Z.shape[0], *self.scale_tril.shape)
        y = torch.linalg.solve_triangular(L, diff, upper=False).squeeze(-1)
        log_terms = self.log_weights + self._log_norm - 0.5 * (y * y).sum(-1)
        return torch.logsumexp(log_terms, dim=-1)

    def variance(self):
        """Mean per-coordinate variance of the mixture (float)."""
        w = self._logw64.exp()
        mean = w @ self._means64
        second = torch.einsum("k,kii->", w, self._cov64) + torch.einsum(
            "k,ki,ki->", w, self._means64, self._means64
        )
        return float((second - mean @ mean) / self.n_dims)

    def rbf_terms(self, bandwidths, scale_weights=None):
        """``(mean_fn, pp)``: ``mean_fn(Z) = E_p k(Z, .)`` and ``pp = E_pp k``."""
        bw64 = bandwidths.to(torch.float64).cpu()
        sw64 = None if scale_weights is None else scale_weights.to(bw64)
        factors = gaussian_mixture_rbf_factors(
            self._means64, self._cov64, self._logw64, bw64, sw64
        ).to(self.device, self.dtype)
        pp = gaussian_mixture_rbf_mean_prior(
            self._means64, self._cov64, self._logw64, bw64, sw64
        ).to(self.device, self.dtype)

        def mean_fn(Z):
            return gaussian_mixture_rbf_mean(Z, factors)

        return mean_fn, pp


class _TorchFactorized:
    """Tensor-side prior with independent coordinates and 1-D closed forms.

    Subclasses set ``n_dims``, ``device``, ``dtype`` and implement ``sample``,
    ``log_prob``, ``variance``, ``_log_rbf_mean(Z, bandwidths)`` (shape
    ``(B, n)``, the log kernel mean per scale, in the dtype of ``Z``) and
    ``_log_rbf_mean_prior(bandwidths)`` (shape ``(B,)``, float64).
    """

    def rbf_terms(self, bandwidths, scale_weights=None):
        """``(mean_fn, pp)``: ``mean_fn(Z) = E_p k(Z, .)`` and ``pp = E_pp k``."""
        bw64 = bandwidths.to(torch.float64).cpu()
        if scale_weights is None:
            log_sw64 = torch.full_like(bw64, -math.log(bw64.numel()))
        else:
            log_sw64 = torch.log(scale_weights.to(bw64))
        pp = torch.logsumexp(self._log_rbf_mean_prior(bw64) + log_sw64, 0).exp()
        pp = pp.to(self.device, self.dtype)
        bw = bw64.to(self.device, self.dtype)
        log_sw = log_sw64.to(self.device, self.dtype)[:, None]

        def mean_fn(Z):
            log_mean = _floor_log(self._log_rbf_mean(Z, bw))
            return torch.logsumexp(log_mean + log_sw, 0).exp()

        return mean_fn, pp


class _TorchLaplace(_TorchFactorized):
    """Tensor-side independent Laplace prior."""

    def __init__(self, loc, scale, device, dtype):
        self.n_dims, self.device, self.dtype = loc.shape[0], device, dtype
        self._scale64 = torch.from_numpy(scale)
        self.loc = torch.from_numpy(loc).to(device, dtype)
        self.scale = self._scale64.to(device, dtype)
        self._log_norm = float(np.log(2 * scale).sum())

    def sample(self, n, generator):
        e = torch.empty(2, n, self.n_dims, device=self.device, dtype=self.dtype)
        e.exponential_(generator=generator)  # difference of exponentials: Laplace
        return self.loc + self.scale * (e[0] - e[1])

    def log_prob(self, Z):
        return -(torch.abs(Z - self.loc) / self.scale).sum(-1) - self._log_norm

    def variance(self):
        return float((2 * self._scale64**2).mean())

    def _log_rbf_mean(self, Z, bandwidths):
        return laplace_rbf_log_mean(Z - self.loc, self.scale, bandwidths)

    def _log_rbf_mean_prior(self, bandwidths):
        return laplace_rbf_log_mean_prior(self._scale64, bandwidths)


class _TorchUniform(_TorchFactorized):
    """Tensor-side uniform prior on a box."""

    def __init__(self, low, high, device, dtype):
        self.n_dims, self.device, self.dtype = low.shape[0], device, dtype
        self._width64 = torch.from_numpy(high - low)
        self.low = torch.from_numpy(low).to(device, dtype)
        self.high = torch.from_numpy(high).to(device, dtype)
        self.width = self._width64.to(device, dtype)
        self._log_volume = float(np.log(high - low).sum())

    def sample(self, n, generator):
        u = torch.rand(
            n, self.n_dims, generator=generator, device=self.device, dtype=self.dtype
        )
        return self.low + self.width * u

    def log_prob(self, Z):
        inside = ((Z >= self.low) & (Z <= self.high)).all(-1)
        inside_value = torch.full_like(Z[:, 0], -self._log_volume)
        # Z * 0 keeps the (zero) gradient with respect to Z.
        return torch.where(inside, inside_value, -math.inf) + (Z * 0).sum(-1)

    def variance(self):
        return float((self._width64**2 / 12).mean())

    def _log_rbf_mean(self, Z, bandwidths):
        return uniform_rbf_log_mean(Z, self.low, self.high, bandwidths)

    def _log_rbf_mean_prior(self, bandwidths):
        return uniform_rbf_log_mean_prior(self._width64, bandwidths)


class _TorchSwissRoll:
    """Tensor-side swiss roll: sampling only (no density, no closed forms)."""

    n_dims = 2

    def __init__(self, radius, n_turns, noise, device, dtype):
        self.radius, self.n_turns, self.noise = radius, n_turns, noise
        self.device, self.dtype = device, dtype

    def sample(self, n, generator):
        kw = dict(generator=generator, device=self.device, dtype=self.dtype)
        s = torch.sqrt(torch.rand(n, **kw))
        angle = 2 * math.pi * self.n_turns * s
        Z = self.radius * s[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
        if self.noise > 0:
            Z = Z + self.noise * torch.randn(n, 2, **kw)
        return Z

    def log_prob(self, Z):
        raise AttributeError(
            "SwissRollPrior has no density (log_prob), which score_samples and "
            "score need; use a prior with a density to score the model."
        )

    def variance(self):
        # s = sqrt(u) has density 2 s on [0, 1]: exact Gauss-Legendre moments.
        x, w = np.polynomial.legendre.leggauss(64)
        s, w = (x + 1) / 2, w / 2 * 2 * (x + 1) / 2
        angle = 2 * np.pi * self.n_turns * s
        mean = self.radius * np.array(
            [w @ (s * np.cos(angle)), w @ (s * np.sin(angle))]
        )
        second = self.radius**2 * (w @ s**2)  # E|z|^2 without noise
        return float((second - mean @ mean) / 2 + self.noise**2)

    rbf_terms = None  # no closed form: the MMD samples from the prior


class _SampledPrior:
    """Tensor-side wrapper of a user's prior that only knows how to ``sample``."""

    def __init__(self, prior, n_dims, device, dtype):
        self.prior, self.n_dims, self.device, self.dtype = prior, n_dims, device, dtype

    def sample(self, n, generator):
        seed = int(
            torch.randint(2**31 - 1, (1,), generator=generator, device=self.device)
        )
        Z = np.asarray(self.prior.sample(n, random_state=seed), dtype=np.float64)
        return torch.as_tensor(Z, dtype=self.dtype, device=self.device)

    def log_prob(self, Z):
        if not hasattr(self.prior, "log_prob"):
            raise AttributeError(
                f"The prior {self.prior!r} has no log_prob method, which "
                "score_samples and score need."
            )
        out = np.asarray(self.prior.log_prob(Z.detach().cpu().double().numpy()))
        return torch.as_tensor(out, dtype=self.dtype, device=self.device)

    def variance(self):
        Z = np.asarray(self.prior.sample(2048, random_state=0), dtype=np.float64)
        return float(Z.var(axis=0).mean())

    rbf_terms = None  # no closed form: the MMD samples from the prior


def _check_prior(prior, n_dims):
    """Validate ``prior`` for codes of dimension ``n_dims`` and return a copy.

    ``None`` gives a standard normal :class:`GaussianPrior`. Any object with a
    ``sample(n_samples, random_state)`` method is accepted; its samples must have
    ``n_dims`` columns.
    """
    if prior is None:
        return GaussianPrior()
    if isinstance(prior, BasePrior):
        prior = clone(prior)
        # Validates the parameters and their dimension against n_dims.
        prior._to_torch(n_dims, dtype=torch.float64)
        return prior
    if not callable(getattr(prior, "sample", None)):
        raise TypeError(
            f"prior must be None, a prior from sklearn_aae.priors, or an object "
            f"with a sample(n_samples, random_state) method; got {prior!r}."
        )
    prior = clone(prior, safe=False)
    Z = np.asarray(prior.sample(2, random_state=0))
    if Z.shape != (2, n_dims):
        raise ValueError(
            f"prior.sample(2) returned an array of shape {Z.shape}; expected "
            f"(2, {n_dims}) for n_components={n_dims}."
        )
    return prior


def _torch_prior(prior, n_dims, device, dtype=torch.float32):
    """The tensor-side counterpart of a checked prior (see ``_check_prior``)."""
    if isinstance(prior, BasePrior):
        return prior._to_torch(n_dims, device, dtype)
    return _SampledPrior(prior, n_dims, device, dtype)
