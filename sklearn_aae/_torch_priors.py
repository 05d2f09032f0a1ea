"""The tensor side of the priors: sampling, log densities and kernel means in torch.

:mod:`sklearn_aae.priors` holds the public parameter objects; training, the MMD
and scoring work with their tensor-side counterparts, built here by

- :func:`tensor_prior` ``(prior, n_dims, device, dtype)``: the counterpart of
  any prior, on a device, in a dtype; a prior from :mod:`sklearn_aae.priors`
  (or any subclass of :class:`~sklearn_aae.priors.BasePrior`) builds its own
  through the hook ``_build_tensor_prior(n_dims, device, dtype)``, a user's
  prior that only has ``sample`` is wrapped in :class:`_SampledPrior`;
- :func:`closed_form_tensor_prior` ``(prior, n_dims)``: the float64 CPU
  counterpart, or an ``AttributeError`` when the prior has no closed-form
  kernel means.

A tensor-side prior has

- ``n_dims``, ``device``, ``dtype`` attributes;
- ``sample(n, generator)``: a ``(n, n_dims)`` tensor drawn with only the given
  ``torch.Generator``;
- ``log_prob(Z)``: a ``(n,)`` tensor;
- ``variance()``: the mean per-coordinate variance, a float;
- ``rbf_terms(bandwidths, scale_weights=None)``: ``(mean_fn, pp)`` where
  ``mean_fn(Z)`` is ``E_{y ~ p} sum_b w_b exp(-|z - y|^2 / 2 l_b^2)`` (``w_b``
  the weights, or ``1 / B``) with autograd, and ``pp`` the same for two
  independent prior draws; or ``rbf_terms = None`` when there is no closed form
  (the MMD then samples the prior);
- ``log_rbf_scale_terms(bandwidths)``: ``(log_mean_fn, log_pp)``, the same
  kernel means per scale and in log space, before the scales are weighted:
  ``log_mean_fn(Z)`` of shape ``(B, n)`` is ``log E_{y ~ p} k_{l_b}(z_i, y)``
  (``-inf`` where it underflows; callers floor it), ``log_pp`` of shape
  ``(B,)`` (float64, on the CPU) the prior-prior term; or ``None`` with
  ``rbf_terms``. Products of priors add these over their blocks (the RBF kernel
  factorises over blocks of coordinates), and :class:`_PerScaleClosedForm`
  derives ``rbf_terms`` from them.

Mixtures of components (:class:`_TorchMixture`, :class:`_TorchCategorical`)
also have ``log_rbf_component_terms(bandwidths)``, a function of ``Z`` giving
the ``(B, n, K)`` terms ``log(pi_k E_{y ~ p_k} k_{l_b}(z_i, y))`` per scale and
component (floored): their log-sum-exp over ``K`` is ``log_mean_fn``, and a
class-conditional MMD reads one component's column.

Priors whose labels mean something (a public prior's ``_n_classes()`` is not
``None``; see :mod:`sklearn_aae.priors`) have, on the tensor side,

- ``sample_classes(codes, generator)``: a ``(n, n_dims)`` tensor whose row
  ``i`` is drawn from class ``codes[i]``'s component (codes in ``0..K-1``), for
  the adversarial regulariser and the sampled MMD;
- ``log_rbf_class_terms(bandwidths)``: ``(log_mean_fn, log_pp)``, the kernel
  means of each class's component alone (not weighted by its mixture weight):
  ``log_mean_fn(Z)`` of shape ``(B, n, K)`` is
  ``log E_{y ~ p_k} k_{l_b}(z_i, y)`` (floored) and ``log_pp`` of shape
  ``(B, K)`` (float64, on the CPU) is ``log E_{y, y' ~ p_k} k_{l_b}(y, y')``;
  or ``log_rbf_class_terms = None`` when there is no closed form (the MMD then
  samples each class with ``sample_classes``).

Discrete priors and products also have ``support()``, the blocks of their
codes as a list of ``(width, kind)``, ``kind`` one of :data:`BLOCK_KINDS`
(:func:`code_support` reads it; a prior without it is ``'real'``), and the
discrete ones ``enumerate_support()``, ``(values, log_pmf)`` over the points
of their support (as :mod:`torch.distributions` does): the encoder picks its
output heads, and ``score_samples`` its strategy, from them.

:class:`_TorchLaplace` and :class:`_TorchUniform` are short worked examples.

A :class:`~sklearn_aae.priors.ConditionalPrior` has learned per-class scales:
:class:`_LearnedLogScales` holds them (a module trained with the networks),
:func:`class_scale_rbf_log_terms` gives its closed-form kernel means per class,
differentiable in the scales, and :class:`_TorchScaleMixture` is the fitted
prior (the mixture over classes) that ``sample`` and ``score_samples`` use.
"""

import math

import numpy as np
import torch

from ._kernels import (
    _floor_log,
    bernoulli_rbf_log_mean,
    bernoulli_rbf_log_mean_prior,
    categorical_rbf_log_mean_prior,
    categorical_rbf_log_terms,
    diagonal_gaussian_rbf_log_mean,
    diagonal_gaussian_rbf_log_mean_prior,
    gaussian_mixture_rbf_factors,
    gaussian_mixture_rbf_log_mean_prior,
    gaussian_mixture_rbf_log_terms,
    gaussian_mixture_rbf_mean,
    gaussian_mixture_rbf_mean_prior,
    gaussian_rbf_log_mean_prior_by_component,
    laplace_rbf_log_mean,
    laplace_rbf_log_mean_prior,
    uniform_rbf_log_mean,
    uniform_rbf_log_mean_prior,
)

# The kinds of code blocks: real coordinates, one-hot vertices, independent bits.
BLOCK_KINDS = ("real", "one_hot", "binary")


def code_support(tprior):
    """The blocks of a tensor-side prior's codes, as a list of ``(width, kind)``.

    ``kind`` is ``'real'`` (any real values), ``'one_hot'`` (the vertices
    ``e_k`` of a categorical block) or ``'binary'`` (each coordinate in {0, 1}).
    A product lists its blocks in order; a prior that does not describe its
    support (a user's own, the continuous ones) is one real block.

    Examples
    --------
    >>> from sklearn_aae.priors import BernoulliPrior, GaussianPrior, ProductPrior
    >>> code_support(tensor_prior(GaussianPrior(), 3))
    [(3, 'real')]
    >>> prior = ProductPrior([("bits", BernoulliPrior(2)), ("style", GaussianPrior())])
    >>> code_support(tensor_prior(prior, 4))
    [(2, 'binary'), (2, 'real')]
    """
    support = getattr(tprior, "support", None)
    return [(tprior.n_dims, "real")] if support is None else list(support())


def tensor_prior(prior, n_dims=None, device="cpu", dtype=torch.float32):
    """The tensor-side counterpart of a prior, on ``device`` in ``dtype``.

    Parameters
    ----------
    prior : prior object
        A subclass of :class:`~sklearn_aae.priors.BasePrior` (its parameters and
        dimension are validated here), or a user's object with ``sample``
        (checked by ``priors._check_prior``), wrapped in :class:`_SampledPrior`.
    n_dims : int, default=None
        The code width; ``None`` is the prior's own width (1 for a prior whose
        scalar parameters broadcast to any width). Required for a user's prior.
    device : str or torch.device, default='cpu'
    dtype : torch.dtype, default=torch.float32

    Returns
    -------
    tprior : tensor-side prior (see the module docstring)

    Examples
    --------
    >>> import torch
    >>> from sklearn_aae.priors import GaussianPrior
    >>> tprior = tensor_prior(GaussianPrior(), 3, dtype=torch.float64)
    >>> tuple(tprior.sample(4, torch.Generator().manual_seed(0)).shape)
    (4, 3)
    """
    build = getattr(prior, "_build_tensor_prior", None)
    if build is None:
        return _SampledPrior(prior, n_dims, device, dtype)
    n_dims = prior._checked_n_dims(n_dims)
    return build(n_dims, device, dtype)


def closed_form_tensor_prior(prior, n_dims=None):
    """The float64 CPU counterpart of a prior that has closed-form kernel means.

    Parameters
    ----------
    prior : BasePrior
    n_dims : int, default=None
        As in :func:`tensor_prior`.

    Returns
    -------
    tprior : tensor-side prior whose ``rbf_terms`` is not ``None``

    Raises
    ------
    AttributeError
        When the prior has no closed-form kernel means.

    Examples
    --------
    >>> from sklearn_aae.priors import LaplacePrior
    >>> closed_form_tensor_prior(LaplacePrior(), 2).n_dims
    2
    """
    tprior = tensor_prior(prior, n_dims, dtype=torch.float64)
    if tprior.rbf_terms is None:
        raise AttributeError(
            f"{prior.__class__.__name__} has no closed-form kernel means; "
            "the MMD estimates its prior terms from samples instead."
        )
    return tprior


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
        # L^{-1} per component (float64, then cast): log_prob whitens with one
        # (n, K, d) contraction instead of a batched solve over (n, K, d, d).
        eye = torch.eye(self.n_dims, dtype=tril.dtype).expand_as(tril)
        self._tril_inv = torch.linalg.solve_triangular(tril, eye, upper=False).to(
            device, dtype
        )
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

    def sample_classes(self, codes, generator):
        """Row ``i`` drawn from the component ``codes[i]``."""
        eps = torch.randn(
            codes.shape[0],
            self.n_dims,
            generator=generator,
            device=self.device,
            dtype=self.dtype,
        )
        return self.means[codes] + torch.einsum(
            "nij,nj->ni", self.scale_tril[codes], eps
        )

    def log_prob(self, Z):
        diff = Z[:, None, :] - self.means[None]  # (n, K, d)
        white = torch.einsum("kij,nkj->nki", self._tril_inv, diff)  # L^{-1} diff
        log_terms = self.log_weights + self._log_norm - 0.5 * (white * white).sum(-1)
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

    def log_rbf_component_terms(self, bandwidths):
        """``Z -> (B, n, K)`` floored log terms per scale and component."""
        bw64 = bandwidths.to(torch.float64).cpu()
        unweighted = torch.ones_like(bw64)  # the scales are weighted by the caller
        factors = gaussian_mixture_rbf_factors(
            self._means64, self._cov64, self._logw64, bw64, unweighted
        ).to(self.device, self.dtype)
        B, K = bw64.shape[0], self._means64.shape[0]

        def log_terms_fn(Z):
            log_terms = _floor_log(gaussian_mixture_rbf_log_terms(Z, factors))
            return log_terms.reshape(Z.shape[0], B, K).transpose(0, 1)

        return log_terms_fn

    def log_rbf_class_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per scale and component, unweighted."""
        bw64 = bandwidths.to(torch.float64).cpu()
        B, K = bw64.shape[0], self._means64.shape[0]
        # Equal weights (a well-centred expansion), removed again below.
        log_k = math.log(K)
        factors = gaussian_mixture_rbf_factors(
            self._means64,
            self._cov64,
            torch.full((K,), -log_k, dtype=torch.float64),
            bw64,
            torch.ones_like(bw64),
        ).to(self.device, self.dtype)

        def log_mean_fn(Z):
            log_terms = gaussian_mixture_rbf_log_terms(Z, factors) + log_k
            return _floor_log(log_terms).reshape(Z.shape[0], B, K).transpose(0, 1)

        return log_mean_fn, gaussian_rbf_log_mean_prior_by_component(self._cov64, bw64)

    def log_rbf_scale_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per RBF scale (see the module docstring)."""
        bw64 = bandwidths.to(torch.float64).cpu()
        log_terms_fn = self.log_rbf_component_terms(bw64)
        log_pp = gaussian_mixture_rbf_log_mean_prior(
            self._means64, self._cov64, self._logw64, bw64
        )

        def log_mean_fn(Z):
            return torch.logsumexp(log_terms_fn(Z), dim=-1)

        return log_mean_fn, log_pp


class _PerScaleClosedForm:
    """Mixin: ``rbf_terms`` from the per-scale log kernel means.

    Subclasses implement ``log_rbf_scale_terms(bandwidths)`` (see the module
    docstring); this weights the scales, in log space.
    """

    def rbf_terms(self, bandwidths, scale_weights=None):
        """``(mean_fn, pp)``: ``mean_fn(Z) = E_p k(Z, .)`` and ``pp = E_pp k``."""
        bw64 = bandwidths.to(torch.float64).cpu()
        if scale_weights is None:
            log_sw64 = torch.full_like(bw64, -math.log(bw64.numel()))
        else:
            log_sw64 = torch.log(scale_weights.to(bw64))
        log_mean_fn, log_pp64 = self.log_rbf_scale_terms(bw64)
        pp = torch.logsumexp(log_pp64 + log_sw64, 0).exp()
        pp = pp.to(self.device, self.dtype)
        log_sw = log_sw64.to(self.device, self.dtype)[:, None]

        def mean_fn(Z):
            log_mean = _floor_log(log_mean_fn(Z))
            return torch.logsumexp(log_mean + log_sw, 0).exp()

        return mean_fn, pp


class _TorchFactorized(_PerScaleClosedForm):
    """Tensor-side prior with independent coordinates and 1-D closed forms.

    Subclasses set ``n_dims``, ``device``, ``dtype`` and implement ``sample``,
    ``log_prob``, ``variance``, ``_log_rbf_mean(Z, bandwidths)`` (shape
    ``(B, n)``, the log kernel mean per scale, in the dtype of ``Z``) and
    ``_log_rbf_mean_prior(bandwidths)`` (shape ``(B,)``, float64).
    """

    def log_rbf_scale_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per RBF scale (see the module docstring)."""
        bw64 = bandwidths.to(torch.float64).cpu()
        bw = bw64.to(self.device, self.dtype)

        def log_mean_fn(Z):
            return self._log_rbf_mean(Z, bw)

        return log_mean_fn, self._log_rbf_mean_prior(bw64)


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
    """Tensor-side swiss roll: sampling only (no density, no closed forms).

    With ``n_segments`` ``K``, the classes are ``K`` segments of equal mass,
    segment ``k`` the points with ``u`` in ``[k / K, (k + 1) / K)``:
    ``sample_classes`` draws ``u`` uniformly within each row's segment (the
    MMD then samples each class, as it has no closed form).
    """

    n_dims = 2
    log_rbf_class_terms = None  # no closed form: the MMD samples each class

    def __init__(self, radius, n_turns, noise, device, dtype, n_segments=None):
        self.radius, self.n_turns, self.noise = radius, n_turns, noise
        self.n_segments = n_segments
        self.device, self.dtype = device, dtype

    def _points(self, u, generator):
        """The roll's points at the positions ``u`` in [0, 1), plus the noise."""
        s = torch.sqrt(u)
        angle = 2 * math.pi * self.n_turns * s
        Z = self.radius * s[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
        if self.noise > 0:
            noise = torch.randn(
                u.shape[0], 2, generator=generator, device=self.device, dtype=self.dtype
            )
            Z = Z + self.noise * noise
        return Z

    def sample(self, n, generator):
        u = torch.rand(n, generator=generator, device=self.device, dtype=self.dtype)
        return self._points(u, generator)

    def sample_classes(self, codes, generator):
        """Row ``i`` drawn from the segment ``codes[i]``: ``u`` uniform in
        ``[k / K, (k + 1) / K)`` (without segments, ``K = 1``: the whole roll)."""
        K = self.n_segments or 1
        r = torch.rand(
            codes.shape[0], generator=generator, device=self.device, dtype=self.dtype
        )
        u = (codes.to(self.dtype) + r) / K
        return self._points(u.clamp_max(1.0), generator)

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
    log_rbf_scale_terms = None


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
        if out.shape != (Z.shape[0],):
            raise ValueError(
                f"The prior's log_prob returned an array of shape {out.shape} for "
                f"{Z.shape[0]} codes; expected ({Z.shape[0]},), one per row."
            )
        return torch.as_tensor(out, dtype=self.dtype, device=self.device)

    def variance(self):
        Z = np.asarray(self.prior.sample(2048, random_state=0), dtype=np.float64)
        return float(Z.var(axis=0).mean())

    rbf_terms = None  # no closed form: the MMD samples from the prior
    log_rbf_scale_terms = None
    log_prob_has_gradient = False  # the user's log_prob runs in NumPy


def _on_support(Z, inside):
    """``0`` where ``inside``, ``-inf`` elsewhere, with a (zero) gradient in Z."""
    zero = (Z * 0).sum(-1)  # keeps the graph: d log p / dZ is 0 on a pmf
    return torch.where(inside, zero, -math.inf)


class _TorchCategorical(_PerScaleClosedForm):
    """Tensor-side one-hot prior: probability ``w_k`` on the vertex ``e_k``."""

    def __init__(self, weights, device, dtype):
        self.n_dims, self.device, self.dtype = weights.shape[0], device, dtype
        self._weights64 = torch.from_numpy(weights)
        with np.errstate(divide="ignore"):
            self._logw64 = torch.from_numpy(np.log(weights))
        self.weights = self._weights64.to(device, dtype)
        self.log_weights = self._logw64.to(device, dtype)

    def sample(self, n, generator):
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        return self.sample_classes(k, generator)

    def sample_classes(self, codes, generator):
        """The vertex ``e_k`` for each code ``k`` (nothing is random)."""
        return torch.nn.functional.one_hot(codes, self.n_dims).to(self.dtype)

    def log_prob(self, Z):
        """The pmf: ``log w_k`` at the vertex ``e_k``, ``-inf`` off the vertices."""
        binary = ((Z == 0) | (Z == 1)).all(-1)
        vertex = binary & (Z.sum(-1) == 1)
        return _on_support(Z, vertex) + self.log_weights[Z.argmax(-1)]

    def variance(self):
        w = self._weights64
        return float((w * (1 - w)).mean())

    def support(self):
        return [(self.n_dims, "one_hot")]

    def enumerate_support(self):
        """``(values, log_pmf)``: the ``K`` vertices (rows of ``I_K``) and ``log w``."""
        eye = torch.eye(self.n_dims, device=self.device, dtype=self.dtype)
        return eye, self.log_weights

    def log_rbf_component_terms(self, bandwidths):
        """``Z -> (B, n, K)`` floored log terms per scale and category."""
        bw = bandwidths.to(self.device, self.dtype)

        def log_terms_fn(Z):
            return categorical_rbf_log_terms(Z, self.log_weights, bw)

        return log_terms_fn

    def log_rbf_scale_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per RBF scale (see the module docstring)."""
        bw64 = bandwidths.to(torch.float64).cpu()
        log_terms_fn = self.log_rbf_component_terms(bw64)

        def log_mean_fn(Z):
            return torch.logsumexp(log_terms_fn(Z), dim=-1)

        return log_mean_fn, categorical_rbf_log_mean_prior(self._weights64, bw64)

    def log_rbf_class_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)``: ``log k_l(z, e_k)`` and ``k(e_k, e_k) = 1``."""
        bw64 = bandwidths.to(torch.float64).cpu()
        bw = bw64.to(self.device, self.dtype)
        zero = torch.zeros(self.n_dims, device=self.device, dtype=self.dtype)

        def log_mean_fn(Z):
            return categorical_rbf_log_terms(Z, zero, bw)

        return log_mean_fn, torch.zeros(bw64.shape[0], self.n_dims, dtype=torch.float64)


class _TorchBernoulli(_PerScaleClosedForm):
    """Tensor-side independent bits in {0, 1}, ``P(z_j = 1) = p_j``."""

    def __init__(self, p, device, dtype):
        self.n_dims, self.device, self.dtype = p.shape[0], device, dtype
        self._p64 = torch.from_numpy(p)
        self.p = self._p64.to(device, dtype)
        with np.errstate(divide="ignore"):
            self._log_p = torch.from_numpy(np.log(p)).to(device, dtype)
            self._log_q = torch.from_numpy(np.log1p(-p)).to(device, dtype)

    def sample(self, n, generator):
        u = torch.rand(
            n, self.n_dims, generator=generator, device=self.device, dtype=self.dtype
        )
        return (u < self.p).to(self.dtype)

    def log_prob(self, Z):
        """The pmf: ``sum_j log P(z_j)`` on ``{0, 1}^d``, ``-inf`` off it."""
        binary = ((Z == 0) | (Z == 1)).all(-1)
        log_pmf = torch.where(Z == 1, self._log_p, self._log_q).sum(-1)
        return _on_support(Z, binary) + log_pmf

    def variance(self):
        return float((self._p64 * (1 - self._p64)).mean())

    def support(self):
        return [(self.n_dims, "binary")]

    def enumerate_support(self):
        """``(values, log_pmf)``: the ``2^d`` bit patterns (binary counting order)."""
        codes = torch.arange(2**self.n_dims, device=self.device)
        powers = 2 ** torch.arange(self.n_dims - 1, -1, -1, device=self.device)
        values = ((codes[:, None] // powers) % 2).to(self.dtype)
        return values, self.log_prob(values)

    def log_rbf_scale_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per RBF scale (see the module docstring)."""
        bw64 = bandwidths.to(torch.float64).cpu()
        bw = bw64.to(self.device, self.dtype)

        def log_mean_fn(Z):
            return bernoulli_rbf_log_mean(Z, self.p, bw)

        return log_mean_fn, bernoulli_rbf_log_mean_prior(self._p64, bw64)


class _TorchProduct:
    """Tensor-side product of independent blocks, concatenated along columns.

    Sampling, ``log_prob`` (the sum of the blocks') and ``variance``; no closed
    form unless every block has one (see :class:`_TorchClosedFormProduct`).
    """

    rbf_terms = None  # some block has no closed form: the MMD samples
    log_rbf_scale_terms = None

    def __init__(self, blocks, device, dtype):
        self.blocks, self.device, self.dtype = list(blocks), device, dtype
        ends = np.cumsum([b.n_dims for b in self.blocks])
        self.slices = [
            slice(int(end - b.n_dims), int(end))
            for b, end in zip(self.blocks, ends, strict=True)
        ]
        self.n_dims = int(ends[-1])

    def sample(self, n, generator):
        return torch.cat([b.sample(n, generator) for b in self.blocks], dim=1)

    def log_prob(self, Z):
        return sum(
            b.log_prob(Z[:, s]) for b, s in zip(self.blocks, self.slices, strict=True)
        )

    def variance(self):
        return sum(b.n_dims * b.variance() for b in self.blocks) / self.n_dims

    def support(self):
        return [block for b in self.blocks for block in code_support(b)]


class _TorchClosedFormProduct(_PerScaleClosedForm, _TorchProduct):
    """A product whose blocks all have closed forms: the RBF kernel factorises.

    ``k_l(z, y) = prod_blocks k_l(z_block, y_block)`` and the blocks are
    independent, so per scale the log kernel means add over blocks; the scales
    are weighted afterwards (:class:`_PerScaleClosedForm`).
    """

    def log_rbf_scale_terms(self, bandwidths):
        """``(log_mean_fn, log_pp)`` per RBF scale (see the module docstring)."""
        terms = [b.log_rbf_scale_terms(bandwidths) for b in self.blocks]
        log_pp = sum(pp for _, pp in terms)

        def log_mean_fn(Z):
            return sum(
                fn(Z[:, s]) for (fn, _), s in zip(terms, self.slices, strict=True)
            )

        return log_mean_fn, log_pp


def _product_tensor_prior(blocks, device, dtype):
    """The product of tensor-side blocks, closed-form when every block is."""
    if all(b.log_rbf_scale_terms is not None for b in blocks):
        return _TorchClosedFormProduct(blocks, device, dtype)
    return _TorchProduct(blocks, device, dtype)


# ------------------------------------------------- conditional (learned) scales
class _LearnedLogScales(torch.nn.Module):
    """Per-class log-scales of a conditional prior, learned with the networks.

    ``forward()`` gives them centred over the classes, coordinate by
    coordinate (``sum_k log s_kj = 0``: the geometric mean over classes of each
    coordinate's scale is 1), which fixes the scale indeterminacy between the
    encoder and the prior. They start at 0: every class starts as the base.
    """

    def __init__(self, n_classes, n_dims):
        super().__init__()
        self.log_scale = torch.nn.Parameter(torch.zeros(n_classes, n_dims))

    def forward(self):
        return self.log_scale - self.log_scale.mean(0, keepdim=True)


def class_scale_rbf_log_terms(kind, T, row_scale, class_scale, bandwidths):
    """Per-class closed-form RBF kernel means of a factorised law with class scales.

    The class-``k`` law has independent coordinates, Gaussian with standard
    deviations ``class_scale[k]`` (``kind='gaussian'``) or Laplace with scales
    ``class_scale[k]`` (``'laplace'``), centred at 0 (``T`` is the codes minus
    the location). Differentiable in the scales.

    Parameters
    ----------
    kind : {'gaussian', 'laplace'}
    T : Tensor of shape (n, d)
    row_scale : Tensor of shape (n, d)
        Each row's class scales, ``class_scale[codes]``.
    class_scale : Tensor of shape (K, d)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, n)
        ``log E_{y ~ p_{c_i}} k_b(t_i, y)``.
    log_pp : Tensor of shape (B, K)
        ``log E_{y, y' ~ p_k} k_b(y, y')``.
    """
    if kind == "gaussian":
        log_mean = diagonal_gaussian_rbf_log_mean(T, row_scale, bandwidths)
        log_pp = diagonal_gaussian_rbf_log_mean_prior(class_scale[:, None], bandwidths)
    else:
        log_mean = laplace_rbf_log_mean(T, row_scale, bandwidths)
        log_pp = laplace_rbf_log_mean_prior(class_scale[:, None], bandwidths)
    return log_mean, log_pp.T


class _TorchScaleMixture:
    """Tensor-side mixture over classes of a factorised law with per-class scales.

    Component ``k`` has independent coordinates ``loc + scales[k] * e`` with
    ``e`` standard normal (``kind='gaussian'``) or standard Laplace
    (``'laplace'``, density ``exp(-|e|) / 2``), and weight ``weights[k]``. The
    fitted prior of a :class:`~sklearn_aae.priors.ConditionalPrior` (sampling,
    ``log_prob`` and ``variance``; no closed form is needed outside training).
    """

    rbf_terms = None
    log_rbf_scale_terms = None

    def __init__(self, kind, loc, scales, weights, device, dtype):
        self.kind, self.device, self.dtype = kind, device, dtype
        self.n_dims = loc.shape[0]
        self._scales64 = torch.from_numpy(scales)
        self._weights64 = torch.from_numpy(weights)
        self.loc = torch.from_numpy(loc).to(device, dtype)
        self.scales = self._scales64.to(device, dtype)
        self.weights = self._weights64.to(device, dtype)
        with np.errstate(divide="ignore"):
            self.log_weights = torch.from_numpy(np.log(weights)).to(device, dtype)

    def sample(self, n, generator):
        codes = torch.multinomial(
            self.weights, n, replacement=True, generator=generator
        )
        return self.sample_classes(codes, generator)

    def sample_classes(self, codes, generator):
        """Row ``i`` drawn from the class ``codes[i]``."""
        shape = (codes.shape[0], self.n_dims)
        kw = dict(generator=generator, device=self.device, dtype=self.dtype)
        if self.kind == "gaussian":
            e = torch.randn(*shape, **kw)
        else:
            e = torch.empty(2, *shape, device=self.device, dtype=self.dtype)
            e = e.exponential_(generator=generator)
            e = e[0] - e[1]
        return self.loc + self.scales[codes] * e

    def log_prob(self, Z):
        white = (Z[:, None, :] - self.loc) / self.scales  # (n, K, d)
        if self.kind == "gaussian":
            log_e = -0.5 * white * white - 0.5 * math.log(2 * math.pi)
        else:
            log_e = -torch.abs(white) - math.log(2.0)
        log_terms = (log_e - torch.log(self.scales)).sum(-1) + self.log_weights
        return torch.logsumexp(log_terms, dim=-1)

    def variance(self):
        second = self._weights64 @ self._scales64**2  # (d,)
        return float((second if self.kind == "gaussian" else 2 * second).mean())
