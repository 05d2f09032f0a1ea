"""Priors over the latent codes.

A prior is a small scikit-learn style parameter object: its constructor stores
its parameters, so ``clone``, ``get_params`` and nested grid keys such as
``prior__scale`` work. Every prior here has

- ``sample(n_samples=1, random_state=None)`` -> ndarray of shape (n_samples, d),
- ``log_prob(Z)`` -> ndarray of shape (n_samples,) (not :class:`SwissRollPrior`,
  which has no density): a log density, or for the discrete
  :class:`CategoricalPrior` and :class:`BernoulliPrior` the log probability
  mass of each row (``-inf`` off the support),

and all but :class:`SwissRollPrior` (and a :class:`ProductPrior` with a swiss
roll block) have the closed-form kernel means that
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
``None`` when scalar parameters broadcast to any) and the hook
``_build_tensor_prior(n_dims, device, dtype)``, which returns the tensor-side
prior described in ``sklearn_aae/_torch_priors.py`` (``sample`` with a
``torch.Generator``, ``log_prob``, ``variance`` and ``rbf_terms``, the
closed-form kernel means, or ``rbf_terms = None``). ``BasePrior`` then provides
the NumPy ``sample``, ``log_prob`` and kernel-mean methods. The hook
``_n_classes()`` says what labels ``y`` mean to the prior (``None``, the
default: nothing, ``y`` is ignored; an int ``K``: the indices of its ``K``
components; ``'any'``: any sortable labels); a prior with classes also gives
its tensor side ``sample_classes`` and ``log_rbf_class_terms``. The private
``_TorchLaplace`` and ``_TorchUniform`` classes there are short worked examples.
A discrete prior's tensor side also describes its support (``support()``, the
blocks ``(width, kind)`` that choose the encoder's output heads, and
``enumerate_support()`` for ``score_samples``); without them a prior is real.

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

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_array

from ._kernels import _as_bandwidths
from ._torch_priors import (
    _product_tensor_prior,
    _TorchBernoulli,
    _TorchCategorical,
    _TorchLaplace,
    _TorchMixture,
    _TorchScaleMixture,
    _TorchSwissRoll,
    _TorchUniform,
    closed_form_tensor_prior,
    tensor_prior,
)
from ._utils import _check_n_samples, _seed_from, _set_missing_parameters

__all__ = [
    "BasePrior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "LaplacePrior",
    "UniformPrior",
    "SwissRollPrior",
    "CategoricalPrior",
    "BernoulliPrior",
    "ProductPrior",
    "ConditionalPrior",
]


class BasePrior(BaseEstimator):
    """Base class of the priors with a tensor-side counterpart.

    Subclasses implement ``_n_dims()`` (``None`` when scalar parameters
    broadcast to any dimension) and the hook
    ``_build_tensor_prior(n_dims, device, dtype)``, which returns the
    tensor-side prior used in training (see ``sklearn_aae/_torch_priors.py``
    for its interface). This class provides the NumPy methods.

    Read more in the :ref:`User Guide <custom_prior>`.

    Examples
    --------
    >>> from sklearn_aae.priors import BasePrior, GaussianPrior
    >>> isinstance(GaussianPrior(), BasePrior)
    True
    """

    def __setstate__(self, state):
        """Unpickle; a parameter the state lacks takes its default.

        A prior pickled (inside a fitted estimator, say) before one of its
        parameters existed loads with that parameter at the value that keeps
        the earlier behaviour: its default, or its entry in
        ``_defaults_before`` where the default is another.
        """
        super().__setstate__(state)
        _set_missing_parameters(self, self._defaults_before)

    # Parameters whose default differs from the value that kept the behaviour
    # of the states written before they existed: {name: that value}.
    _defaults_before = {}

    def _n_dims(self):
        return None

    def _build_tensor_prior(self, n_dims, device, dtype):  # pragma: no cover
        raise NotImplementedError

    def _n_classes(self):
        """What this prior makes of labels ``y`` in ``fit(X, y)``.

        ``None`` (the default): the prior ignores labels, as PCA ignores ``y``.
        An int ``K``: labels are the indices ``0..K-1`` of its components, and
        labelled codes of class ``k`` are matched to component ``k`` (its
        tensor side then has ``sample_classes`` and ``log_rbf_class_terms``,
        see ``sklearn_aae/_torch_priors.py``). ``'any'``: labels are any
        sortable values, coded ``0..K-1`` in sorted order, and the prior
        adapts to their number (a conditional prior).
        """
        return None

    def _checked_n_dims(self, n_dims=None):
        """Validate the parameters and the code width ``n_dims`` (None: default)."""
        self._validate_params()
        own = self._n_dims()
        if n_dims is None:
            return own or 1
        if own is not None and own != n_dims:
            raise ValueError(
                f"The prior {self!r} has dimension {own}, but the codes have "
                f"dimension n_components={n_dims}."
            )
        return n_dims

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
        p = tensor_prior(self, dtype=torch.float64)
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
        Z = check_array(Z, dtype=np.float64, force_writeable=True)
        p = tensor_prior(self, Z.shape[1], dtype=torch.float64)
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
        Z = check_array(Z, dtype=np.float64, force_writeable=True)
        p = closed_form_tensor_prior(self, Z.shape[1])
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
        if n_dims is not None and (
            not isinstance(n_dims, Integral) or isinstance(n_dims, bool) or n_dims < 1
        ):
            raise ValueError(f"n_dims must be None or an int >= 1, got {n_dims!r}.")
        p = closed_form_tensor_prior(self, n_dims)
        _, pp = p.rbf_terms(torch.from_numpy(_as_bandwidths(bandwidth)))
        return float(pp)


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
    for name, value in params.items():
        if np.size(value) == 0:
            raise ValueError(f"{name} must not be empty, got {value!r}.")
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

    Read more in the :ref:`User Guide <closed_form_mmd>`.

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

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchMixture(*self._mixture_params(n_dims), device, dtype)


class GaussianMixturePrior(BasePrior):
    """Gaussian mixture prior ``sum_k w_k N(means_k, covariances_k)``.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

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
        K = n_mixture_components
        if not isinstance(K, Integral) or isinstance(K, bool) or K < 1:
            raise ValueError(f"n_mixture_components must be an int >= 1, got {K!r}.")
        if not (isinstance(radius, Real) and 0 <= radius < np.inf):  # NaN fails
            raise ValueError(f"radius must be finite and >= 0, got {radius!r}.")
        for name, std in [
            ("radial_std", radial_std),
            ("tangential_std", tangential_std),
        ]:
            if not (isinstance(std, Real) and 0 < std < np.inf):
                raise ValueError(f"{name} must be finite and > 0, got {std!r}.")
        angles = 2 * np.pi * np.arange(K) / K
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

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchMixture(*self._mixture_params(n_dims), device, dtype)

    def _n_classes(self):
        """Labels ``0..K-1`` are the components: class ``k`` to component ``k``."""
        return int(np.asarray(self.means).shape[0])


class LaplacePrior(_LocScalePrior):
    """Prior with independent Laplace coordinates, ``Laplace(loc, scale)``.

    Each coordinate has density ``exp(-|z - loc| / scale) / (2 scale)``
    (scipy's ``laplace(loc, scale)``), variance ``2 scale^2``. The closed-form
    RBF kernel means factorise over coordinates (erfc/erfcx in log space, finite
    far in the tails), so the MMD needs no prior samples.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

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

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchLaplace(*self._loc_scale(n_dims), device, dtype)


class UniformPrior(BasePrior):
    """Uniform prior on the box ``[low, high]`` (independent coordinates).

    ``log_prob`` is ``-sum log(high - low)`` inside the box and ``-inf``
    outside. The closed-form RBF kernel means factorise over coordinates (erf
    differences, in log space), so the MMD needs no prior samples.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

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

    def _build_tensor_prior(self, n_dims, device, dtype):
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

    With ``n_segments=K`` the roll is cut into ``K`` segments of equal
    probability mass, segment ``k`` the points with ``u`` in
    ``[k / K, (k + 1) / K)`` (from the centre outwards; the inner segments
    are shorter, as the roll is denser there), and its samples carry a class:
    ``fit(X, y)`` matches the codes of the rows labelled ``k`` to segment
    ``k`` and the unlabelled rows (``-1``) to the whole roll, as the paper's
    Fig. 4c does (see :ref:`labels`). ``sample`` draws from the whole roll,
    whatever ``n_segments``.

    Read more in the :ref:`User Guide <swiss_roll_segments>`.

    Parameters
    ----------
    radius : float, default=3.0
        Radius of the outer end of the spiral.
    n_turns : float, default=2.0
        Number of turns.
    noise : float, default=0.0
        Standard deviation of the Gaussian noise added to each coordinate.
    n_segments : int, default=None
        Number of segments ``K``, the classes of labels ``0..K-1``; ``None``:
        no classes, labels are ignored.

    Examples
    --------
    >>> from sklearn_aae.priors import SwissRollPrior
    >>> SwissRollPrior().sample(5, random_state=0).shape
    (5, 2)
    >>> import numpy as np
    >>> from sklearn_aae import MMDAutoencoder
    >>> X = np.random.RandomState(0).normal(size=(60, 4))
    >>> y = np.tile([0, 1, 2, -1], 15)  # segments 0..2, -1 unlabelled
    >>> est = MMDAutoencoder(prior=SwissRollPrior(n_segments=3), max_iter=2,
    ...                      random_state=0).fit(X, y)
    >>> est.classes_.shape, est.transform(X).shape
    ((3,), (60, 2))
    """

    _parameter_constraints = {
        "radius": [Interval(Real, 0, None, closed="neither")],
        "n_turns": [Interval(Real, 0, None, closed="neither")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "n_segments": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, radius=3.0, n_turns=2.0, noise=0.0, n_segments=None):
        self.radius = radius
        self.n_turns = n_turns
        self.noise = noise
        self.n_segments = n_segments

    def _n_dims(self):
        return 2

    def _n_classes(self):
        """Labels ``0..K-1`` are the segments (None without ``n_segments``)."""
        return None if self.n_segments is None else int(self.n_segments)

    def log_prob(self, Z):
        """Not available: the swiss roll has no density.

        Parameters
        ----------
        Z : array-like of shape (n_samples, 2)

        Raises
        ------
        AttributeError
        """
        return tensor_prior(self, 2).log_prob(None)

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchSwissRoll(
            float(self.radius),
            float(self.n_turns),
            float(self.noise),
            device,
            dtype,
            n_segments=self._n_classes(),
        )


class CategoricalPrior(BasePrior):
    """One-hot prior: the vertex ``e_k`` of ``R^K`` with probability ``w_k``.

    Codes of this prior are discrete class labels, one-hot encoded: its
    dimension is ``n_categories``. ``log_prob`` is the probability mass function,
    ``log w_k`` at the vertex ``e_k`` and ``-inf`` anywhere else. The kernel
    means are finite sums over the vertices,
    ``E_{y ~ p} k_l(z, y) = sum_k w_k exp(-|z - e_k|^2 / 2 l^2)`` and
    ``E_{y, y'} k_l(y, y') = s + (1 - s) exp(-1 / l^2)`` with
    ``s = sum_k w_k^2``, so the MMD needs no prior samples.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

    Parameters
    ----------
    n_categories : int
        Number of categories ``K``, the dimension of the codes.
    weights : array-like of shape (n_categories,), default=None
        Probabilities of the categories: non-negative, summing to 1. ``None``
        is uniform.

    See Also
    --------
    ProductPrior : a one-hot block beside continuous ones, e.g. a class and a
        style.

    Examples
    --------
    >>> from sklearn_aae.priors import CategoricalPrior
    >>> prior = CategoricalPrior(3, weights=[0.5, 0.25, 0.25])
    >>> prior.sample(4, random_state=0).shape
    (4, 3)
    >>> prior.log_prob([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]]).shape
    (2,)
    """

    _parameter_constraints = {
        "n_categories": [Interval(Integral, 1, None, closed="left")],
        "weights": ["array-like", None],
    }

    def __init__(self, n_categories, weights=None):
        self.n_categories = n_categories
        self.weights = weights

    def _n_dims(self):
        return int(self.n_categories)

    def _weights(self):
        """The category probabilities as a validated float64 vector."""
        K = int(self.n_categories)
        if self.weights is None:
            return np.full(K, 1.0 / K)
        weights = np.asarray(self.weights, dtype=np.float64)
        if weights.shape != (K,):
            raise ValueError(
                f"weights must have n_categories={K} entries, got shape "
                f"{weights.shape}."
            )
        if not np.all(np.isfinite(weights)) or np.any(weights < 0):
            raise ValueError(
                f"weights must be non-negative and finite, got {self.weights!r}."
            )
        if abs(weights.sum() - 1.0) > 1e-6:
            raise ValueError(
                f"weights must sum to 1, got {self.weights!r} (sum "
                f"{weights.sum():.6g})."
            )
        return weights / weights.sum()

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchCategorical(self._weights(), device, dtype)

    def _n_classes(self):
        """Labels ``0..K-1`` are the categories: class ``k`` to the vertex ``e_k``."""
        return int(self.n_categories)


class BernoulliPrior(BasePrior):
    """Independent binary factors: ``z_j`` in {0, 1} with ``P(z_j = 1) = p_j``.

    ``log_prob`` is the probability mass function on the vertices of the cube
    ``{0, 1}^n_dims`` and ``-inf`` anywhere else. The RBF kernel factorises over
    coordinates, so the kernel mean is a product of two-term sums,
    ``E_{y ~ p} k_l(z, y) = prod_j [(1 - p_j) exp(-z_j^2 / 2 l^2)
    + p_j exp(-(z_j - 1)^2 / 2 l^2)]``, and
    ``E_{y, y'} k_l(y, y') = prod_j [1 - 2 p_j (1 - p_j) (1 - exp(-1 / 2 l^2))]``:
    the MMD needs no prior samples.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

    Parameters
    ----------
    n_dims : int
        Number of binary factors, the dimension of the codes.
    p : float or array-like of shape (n_dims,), default=0.5
        Probability of a 1, in [0, 1], shared or per factor.

    Examples
    --------
    >>> from sklearn_aae.priors import BernoulliPrior
    >>> prior = BernoulliPrior(4, p=[0.5, 0.5, 0.1, 0.9])
    >>> prior.sample(3, random_state=0).shape
    (3, 4)
    >>> prior.log_prob([[0.0, 1.0, 0.0, 1.0], [0.5, 1.0, 0.0, 1.0]]).shape
    (2,)
    """

    _parameter_constraints = {
        "n_dims": [Interval(Integral, 1, None, closed="left")],
        "p": ["array-like", Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, n_dims, p=0.5):
        self.n_dims = n_dims
        self.p = p

    def _n_dims(self):
        return int(self.n_dims)

    def _p(self):
        """``p`` as a validated float64 vector of length n_dims."""
        p = np.asarray(self.p, dtype=np.float64)
        if p.ndim > 1 or (p.ndim == 1 and p.shape[0] != self.n_dims):
            raise ValueError(
                f"p must be a scalar or have n_dims={self.n_dims} entries, got "
                f"shape {p.shape}."
            )
        if not np.all((p >= 0) & (p <= 1)):  # also rejects NaN
            raise ValueError(f"p must lie in [0, 1], got {self.p!r}.")
        return np.broadcast_to(p, (int(self.n_dims),)).copy()

    def _build_tensor_prior(self, n_dims, device, dtype):
        return _TorchBernoulli(self._p(), device, dtype)


class ProductPrior(_BaseComposition, BasePrior):
    """Independent named blocks of coordinates, concatenated.

    ``z = (z_block1, z_block2, ...)`` with each block drawn from its own prior,
    independently: ``sample`` concatenates the blocks' samples (in the order
    given) and ``log_prob`` is the sum of the blocks' ``log_prob``. For example
    ``[("class", CategoricalPrior(10)), ("style", GaussianPrior())]`` is a
    one-hot class beside a Gaussian style. The blocks are named, as the steps of
    a :class:`~sklearn.pipeline.Pipeline`, so nested parameters reach them:
    ``get_params`` lists ``style__scale``, and inside an estimator
    ``set_params(prior__style__scale=2.0)`` and grid keys such as
    ``"prior__style__scale"`` work.

    Closed forms: the RBF kernel factorises over blocks of coordinates,
    ``k_l(z, y) = prod_blocks k_l(z_block, y_block)``, so for each bandwidth the
    kernel means are the products of the blocks' kernel means (a sum of logs),
    averaged over the bandwidths afterwards; the IMQ kernel reaches them through
    its RBF scale mixture. When a block has no closed form (a
    :class:`SwissRollPrior`), the MMD samples the whole product instead.

    Read more in the :ref:`User Guide <closed_form_mmd>`.

    Parameters
    ----------
    blocks : list of (str, prior) tuples
        The named blocks, in the order of their coordinates. Each prior is a
        prior of this module (another ``ProductPrior`` included, not a
        :class:`ConditionalPrior`); names are unique, without ``'__'``.

    Notes
    -----
    **Width.** The code width (the estimator's ``n_components``) is the sum of
    the blocks' widths. A block whose parameters fix its dimension
    (``CategoricalPrior(10)``: 10, ``BernoulliPrior(4)``: 4,
    ``GaussianPrior(scale=[1, 2])``: 2, a mixture: its means' width) keeps it. At
    most one block may have scalar parameters that broadcast to any dimension
    (``GaussianPrior()``, ``LaplacePrior(scale=0.5)``, ``UniformPrior()``): that
    block takes the remaining ``n_components`` minus the fixed widths, at least
    1. So ``[("class", CategoricalPrior(10)), ("style", GaussianPrior())]`` with
    ``n_components=12`` has a 2-D style, and ``n_components`` must be at least
    11. On its own (``sample`` with no ``n_components``) the free block is 1-D
    (a nested product: its own smallest width).

    Examples
    --------
    >>> from sklearn_aae.priors import CategoricalPrior, GaussianPrior, ProductPrior
    >>> prior = ProductPrior([("class", CategoricalPrior(3)),
    ...                       ("style", GaussianPrior(scale=[1.0, 2.0]))])
    >>> prior.sample(5, random_state=0).shape
    (5, 5)
    >>> prior.log_prob(prior.sample(2, random_state=0)).shape
    (2,)
    >>> prior.set_params(style__scale=[0.5, 0.5]).get_params()["style__scale"]
    [0.5, 0.5]
    """

    _parameter_constraints = {"blocks": [list]}

    def __init__(self, blocks):
        self.blocks = blocks

    def get_params(self, deep=True):
        """Parameters of the product and, with ``deep``, of its named blocks.

        Parameters
        ----------
        deep : bool, default=True
            Also return the blocks (by name) and their parameters
            (``name__param``).

        Returns
        -------
        params : dict
        """
        return self._get_params("blocks", deep=deep)

    def set_params(self, **params):
        """Set parameters: ``blocks``, a block by name, or ``name__param``.

        Parameters
        ----------
        **params : dict

        Returns
        -------
        self : ProductPrior
        """
        self._set_params("blocks", **params)
        return self

    def _validated_blocks(self):
        """The blocks as (names, priors), or a clear error."""
        self._validate_params()
        blocks = self.blocks
        if not blocks or not all(isinstance(b, tuple) and len(b) == 2 for b in blocks):
            raise ValueError(
                f"blocks must be a non-empty list of (name, prior) tuples, got "
                f"{blocks!r}."
            )
        names, priors = zip(*blocks, strict=True)
        if not all(isinstance(name, str) and name for name in names):
            raise ValueError(f"block names must be non-empty strings, got {names}.")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"block names must be unique; repeated: {duplicates}.")
        bad = [name for name in names if "__" in name or name == "blocks"]
        if bad:
            raise ValueError(
                f"block names must not contain '__' nor be 'blocks', got {bad}."
            )
        for name, prior in blocks:
            if not isinstance(prior, BasePrior):
                raise TypeError(
                    f"block {name!r} must be a prior from sklearn_aae.priors "
                    f"(a BasePrior instance), got {prior!r}."
                )
            if isinstance(prior, ConditionalPrior):
                raise TypeError(
                    f"block {name!r} is a ConditionalPrior, whose per-class scales "
                    f"a product cannot learn; use it as the estimator's prior."
                )
            prior._validate_params()  # before its width is read
        return names, priors

    def _block_widths(self, n_dims=None):
        """Each block's width for codes of width ``n_dims`` (None: the default)."""
        names, priors = self._validated_blocks()
        own = [prior._n_dims() for prior in priors]
        free = [name for name, width in zip(names, own, strict=True) if width is None]
        if len(free) > 1:
            raise ValueError(
                f"At most one block of a ProductPrior may have a free width "
                f"(scalar parameters that broadcast); {free} all do. Fix the "
                f"width of all but one, e.g. GaussianPrior(loc=np.zeros(8))."
            )
        fixed = sum(width for width in own if width is not None)
        if not free:
            if n_dims is not None and n_dims != fixed:
                raise ValueError(
                    f"The prior {self!r} has dimension {fixed} (the sum of its "
                    f"blocks' widths), but the codes have dimension "
                    f"n_components={n_dims}."
                )
            return own
        if n_dims is None:  # its own default: 1-D, or a nested product's least
            rest = priors[own.index(None)]._checked_n_dims()
        else:
            rest = n_dims - fixed
        if rest < 1:
            raise ValueError(
                f"The blocks of fixed width of {self!r} take {fixed} dimensions, "
                f"which leaves none for its block {free[0]!r} in codes of "
                f"dimension n_components={n_dims}; n_components must be at "
                f"least {fixed + 1}."
            )
        return [rest if width is None else width for width in own]

    def _n_dims(self):
        _, priors = self._validated_blocks()
        own = [prior._n_dims() for prior in priors]
        return None if None in own else sum(own)

    def _checked_n_dims(self, n_dims=None):
        return sum(self._block_widths(n_dims))

    def _build_tensor_prior(self, n_dims, device, dtype):
        _, priors = self._validated_blocks()
        widths = self._block_widths(n_dims)
        blocks = [
            tensor_prior(prior, width, device, dtype)
            for prior, width in zip(priors, widths, strict=True)
        ]
        return _product_tensor_prior(blocks, device, dtype)


class ConditionalPrior(BasePrior):
    """Conditionally factorial prior: given a label, independent coordinates
    whose scales are learned for each class.

    For nonlinear independent component analysis with an auxiliary variable
    ``u`` (a time segment, a recording, a condition): fit with ``y=u``, and the
    codes of the rows of class ``k`` are matched to the law with independent
    coordinates ``loc + s_k * scale * e``, where ``e`` follows the ``base``'s
    standardised law (standard normal for a :class:`GaussianPrior`, standard
    Laplace for a :class:`LaplacePrior`) and ``s_k`` is a vector of per-class,
    per-coordinate scale factors **learned with the networks**. Changing
    scales across classes is what makes the sources identifiable (Hyvarinen &
    Morioka 2016; Khemakhem et al. 2020): see the user guide.

    **Normalisation.** An encoder can trade a scale with the prior, so the
    factors are normalised: their logarithms are centred over the classes,
    coordinate by coordinate, ``sum_k log s_kj = 0``. The geometric mean over
    classes of each coordinate's scale is thus the base's ``scale``. Every
    class starts at ``s_k = 1``, that is, as the base.

    The learned factors are fitted attributes of the estimator, never of this
    object (which stays a parameter): ``prior_scales_``, the factors ``s_k``
    of shape ``(n_classes, n_components)``, and ``prior_weights_``, the
    classes' frequencies in the training labels. The fitted estimator's
    ``sample`` draws codes from the mixture over classes with these weights and
    scales, and ``score_samples`` uses that mixture's density; ``transform``
    needs no labels.

    Only :class:`~sklearn_aae.MMDAutoencoder` trains with this prior (the kernel
    means of each class are in closed form and differentiable in the scales);
    :class:`~sklearn_aae.AdversarialAutoencoder` refuses it. ``fit`` needs a
    label for every row (any hashable, sortable labels: integers, strings).

    Read more in the :ref:`User Guide <nonlinear_ica>`.

    Parameters
    ----------
    base : GaussianPrior or LaplacePrior, default=None
        The law of each class before its scale factors: its ``loc`` is shared
        by all classes and its ``scale`` is the geometric mean of the classes'
        scales. ``None`` is the standard normal ``GaussianPrior()``. Its
        parameters are nested: ``prior__base__scale`` in a grid.
    contrastive_weight : float, default=0.01
        Weight of a time-contrastive term (Hyvarinen & Morioka 2016) added to
        the training objective: the cross-entropy of each row's class ``k``
        under the classes' own laws, ``p(k | z)`` proportional to ``w_k
        p_k(z)`` with the learned scales and the classes' frequencies ``w_k``
        in the training labels (``prior_weights_``). It asks
        the codes' scales, not only their laws, to tell the classes apart,
        which is what identifies the sources. Recorded in ``history_`` as
        ``'contrastive'``; 0 turns it off. Measured on the nonlinear-ICA
        benchmark (``benchmarks/bench_ica.py``, 5 seeds, held-out MCC, 0.01
        against 0): 4-layer mixings 0.949 against 0.924 (4 sources) and
        0.902 against 0.841 (10 sources); 2-layer mixings 0.979 against 0.981
        and 0.982. 0.03 gave 0.954 and 0.879 at 4 layers, and lost 0.008 and
        0.024 at 2. See the user guide.

    Notes
    -----
    On its own (unfitted), ``sample`` and ``log_prob`` are those of the
    ``base``, the prior of every class before training; the closed-form kernel
    means too. The fitted mixture is reached through the estimator.

    References
    ----------
    A. Hyvarinen, H. Morioka. Unsupervised feature extraction by
    time-contrastive learning and nonlinear ICA. NeurIPS 2016.

    I. Khemakhem, D. Kingma, R. Monti, A. Hyvarinen. Variational autoencoders
    and nonlinear ICA: a unifying framework. AISTATS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_aae import MMDAutoencoder
    >>> from sklearn_aae.priors import ConditionalPrior, GaussianPrior
    >>> rng = np.random.RandomState(0)
    >>> u = np.repeat(["a", "b", "c"], 50)
    >>> X = rng.normal(size=(150, 3)) * np.repeat(rng.uniform(0.5, 2, (3, 3)), 50, 0)
    >>> est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(GaussianPrior()),
    ...                      max_iter=2, random_state=0)
    >>> est.fit(X, y=u).prior_scales_.shape
    (3, 3)
    >>> est.transform(X).shape
    (150, 3)
    >>> est.get_params()["prior__base__scale"]
    1.0
    """

    _parameter_constraints = {
        "base": [None, GaussianPrior, LaplacePrior],
        "contrastive_weight": [Interval(Real, 0, None, closed="left")],
    }

    # (states pickled before the term existed trained without it)
    _defaults_before = {"contrastive_weight": 0.0}

    def __init__(self, base=None, contrastive_weight=0.01):
        self.base = base
        self.contrastive_weight = contrastive_weight

    def _base(self):
        """The validated base prior."""
        self._validate_params()
        base = GaussianPrior() if self.base is None else self.base
        base._validate_params()
        return base

    def _n_dims(self):
        return self._base()._n_dims()

    def _n_classes(self):
        """Any labels: one learned scale vector per class of ``y``."""
        return "any"

    def _build_tensor_prior(self, n_dims, device, dtype):
        return tensor_prior(self._base(), n_dims, device, dtype)

    def _factors(self, n_dims):
        """``(kind, loc, scale)``: the base's law and parameters as vectors."""
        base = self._base()
        kind = "gaussian" if isinstance(base, GaussianPrior) else "laplace"
        loc, scale = base._loc_scale(base._checked_n_dims(n_dims))
        return kind, loc, scale

    def _fitted_tensor_prior(self, scales, weights, device, dtype):
        """The mixture over classes with the fitted ``scales`` (K, d) and weights."""
        kind, loc, scale = self._factors(scales.shape[1])
        return _TorchScaleMixture(kind, loc, scale * scales, weights, device, dtype)


def _prior_n_classes(prior):
    """A validated prior's ``_n_classes()``: None, an int or 'any' (None without it)."""
    n_classes = getattr(prior, "_n_classes", None)
    return None if n_classes is None else n_classes()


def _check_prior(prior, n_dims):
    """Validate ``prior`` for codes of dimension ``n_dims`` and return a copy.

    ``None`` gives a standard normal :class:`GaussianPrior`. Any object with a
    ``sample(n_samples, random_state)`` method is accepted; its samples must have
    ``n_dims`` columns.
    """
    if prior is None:
        return GaussianPrior()
    if isinstance(prior, type):
        raise TypeError(
            f"prior must be an instance, got the class {prior.__name__}; use "
            f"{prior.__name__}() or pass its parameters."
        )
    if isinstance(prior, BasePrior):
        prior = clone(prior)
        # Validates the parameters and their dimension against n_dims.
        tensor_prior(prior, n_dims, dtype=torch.float64)
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
    if not np.all(np.isfinite(Z)):
        raise ValueError(f"prior.sample(2) returned non-finite values: {Z!r}.")
    return prior
