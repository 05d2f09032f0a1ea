"""Priors over the latent codes.

A prior is a small scikit-learn style parameter object: its constructor stores
its parameters, so ``clone``, ``get_params`` and nested grid keys such as
``prior__scale`` work. Every prior has

- ``sample(n_samples=1, random_state=None)`` -> ndarray of shape (n_samples, d),
- ``log_prob(Z)`` -> ndarray of shape (n_samples,),

and the Gaussian priors here also have the closed-form kernel means that
:class:`~sklearn_aae.MMDAutoencoder` uses instead of sampling:

- ``rbf_kernel_mean(Z, bandwidth)``: ``E_{y ~ p} k(z_i, y)`` for each row,
- ``rbf_kernel_mean_prior(bandwidth)``: ``E_{y, y' ~ p} k(y, y')``,

with ``k(x, y) = mean_b exp(-|x - y|^2 / (2 l_b^2))`` over the bandwidths ``l_b``.

A user's own prior needs only ``sample(n_samples, random_state)``: both
estimators then draw prior samples where they need them (and
``score_samples`` additionally needs ``log_prob``).
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
    gaussian_mixture_rbf_factors,
    gaussian_mixture_rbf_mean,
    gaussian_mixture_rbf_mean_prior,
)

__all__ = ["GaussianPrior", "GaussianMixturePrior"]


def _seed_from(random_state):
    """An int seed for a torch.Generator, from anything check_random_state takes."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _as_bandwidths(bandwidth):
    bw = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    if bw.ndim != 1 or bw.size == 0 or not np.all(np.isfinite(bw)) or np.any(bw <= 0):
        raise ValueError(
            f"bandwidth must be a positive float or a non-empty list of positive "
            f"floats, got {bandwidth!r}."
        )
    return bw


class BasePrior(BaseEstimator):
    """Base class of the priors shipped with sklearn_aae.

    Subclasses implement ``_mixture_params(n_dims)`` returning the means
    ``(K, d)``, full covariances ``(K, d, d)`` and weights ``(K,)`` of the
    Gaussian mixture they are, and ``_n_dims()`` (``None`` when scalar
    parameters broadcast to any dimension).
    """

    def _n_dims(self):  # pragma: no cover - abstract
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
        means, covariances, weights = self._mixture_params(n_dims)
        return _TorchMixture(means, covariances, weights, device, dtype)

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
        p = self._to_torch(Z.shape[1], dtype=torch.float64)
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
        p = self._to_torch(n_dims, dtype=torch.float64)
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


class GaussianPrior(BasePrior):
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

    _parameter_constraints = {
        "loc": ["array-like", Real],
        "scale": ["array-like", Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, loc=0.0, scale=1.0):
        self.loc = loc
        self.scale = scale

    def _n_dims(self):
        sizes = {np.size(self.loc), np.size(self.scale)} - {1}
        if len(sizes) > 1:
            raise ValueError(
                f"loc and scale have different lengths: {np.size(self.loc)} "
                f"and {np.size(self.scale)}."
            )
        if sizes:
            return sizes.pop()
        if np.ndim(self.loc) == 1 or np.ndim(self.scale) == 1:
            return 1
        return None

    def _mixture_params(self, n_dims):
        loc = _vector(self.loc, "loc", n_dims)
        scale = _vector(self.scale, "scale", n_dims, positive=True)
        return loc[None], np.diag(scale**2)[None], np.ones(1)


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

    def rbf_terms(self, bandwidths):
        """``(mean_fn, pp)``: ``mean_fn(Z) = E_p k(Z, .)`` and ``pp = E_pp k``."""
        bw64 = bandwidths.to(torch.float64).cpu()
        whiten, log_scale = gaussian_mixture_rbf_factors(self._cov64, bw64)
        whiten = whiten.to(self.device, self.dtype)
        log_scale = log_scale.to(self.device, self.dtype)
        pp = gaussian_mixture_rbf_mean_prior(
            self._means64, self._cov64, self._logw64, bw64
        ).to(self.device, self.dtype)

        def mean_fn(Z):
            return gaussian_mixture_rbf_mean(
                Z, self.means, self.log_weights, whiten, log_scale
            )

        return mean_fn, pp


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
        prior._validate_params()
        prior._check_dims(n_dims)
        prior._to_torch(n_dims, dtype=torch.float64)  # validates the parameters
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
