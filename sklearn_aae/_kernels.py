"""Pure tensor functions: RBF kernels, closed-form kernel means, MMD estimators.

Conventions
-----------
The RBF kernel with bandwidth ``l`` is ``k_l(x, y) = exp(-|x - y|^2 / (2 l^2))``.
A *multi-scale* RBF kernel with bandwidths ``l_1..l_B`` is their **mean**,
``k(x, y) = mean_b k_{l_b}(x, y)``, so that ``k(x, x) = 1`` whatever the number
of scales. Everything here works on tensors of shape ``(n, d)`` and keeps the
autograd graph; nothing here touches global torch state.

For a Gaussian component ``N(mu, S)`` the kernel mean is

    E_{y ~ N(mu, S)} k_l(x, y)
        = det(I + S / l^2)^(-1/2) exp(-(x - mu)^T (S + l^2 I)^(-1) (x - mu) / 2),

and for two independent components ``N(mu_j, S_j)``, ``N(mu_k, S_k)``

    E k_l(y, y') = det(I + (S_j + S_k) / l^2)^(-1/2)
                   exp(-(mu_j - mu_k)^T (S_j + S_k + l^2 I)^(-1) (mu_j - mu_k) / 2).

Mixtures sum these over components with their weights, in log space.

Factorised priors (independent Laplace or uniform coordinates) have kernel
means that are products over coordinates of 1-D closed forms (erfc/erfcx for
Laplace, erf differences for the uniform), evaluated in log space so that points
far in the tails give finite values.

Discrete priors have finite sums: one-hot vertices ``e_k`` with probabilities
``w_k`` give ``sum_k w_k k_l(z, e_k)``, independent bits a product over
coordinates of two-term sums. A product of independent blocks multiplies the
blocks' kernel means for each bandwidth (the RBF kernel factorises over blocks
of coordinates), so these functions return per-scale log means, shape
``(B, n)``, and mixtures per-scale and per-component terms, ``(B, n, K)``.

A *weighted* multi-scale RBF kernel ``sum_b w_b k_{l_b}`` generalises the mean;
every closed form here takes optional ``scale_weights``. The inverse
multiquadratic (IMQ) kernel is such a mixture of RBFs (see
:func:`imq_rbf_quadrature`), so its prior-side terms come from the RBF ones.
"""

import math
from typing import NamedTuple

import numpy as np
import torch

_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_PI_2 = 0.5 * math.log(math.pi / 2)

# IMQ as a mixture of RBFs: 1 / (1 + a) = int_R exp(s - e^s) exp(-e^s a) ds
# (t = e^s in int_0^inf e^{-t} e^{-t a} dt), discretised by the trapezoidal rule
# on s in [-23, 3.7] with step 0.55 (49 nodes). The rule converges exponentially
# in 1 / step for this integrand; cutting the range at s = -23 costs a relative
# error of about e^{-23} (1 + a). Measured maximum relative error of the
# quadrature against 1 / (1 + a): 2.8e-7 for a <= 1e2, 8.0e-7 for a <= 1e4,
# 7.8e-6 for a <= 1e5, 7.7e-5 for a <= 1e6, 7.6e-3 for a <= 1e8; beyond
# a ~ 1e9 it decays too fast (relative error 0.5 at a = 1e10). Here
# a = |x - y|^2 / (2 l^2), so the error is below 1e-6 up to |x - y| = 141 l.
# (A 20-node Gauss-Laguerre rule, for comparison: 2e-14 for a <= 1, but 5e-3 at
# a = 10 and 98% at a = 100.)
_IMQ_STEP = 0.55
_IMQ_LOG_NODES = np.arange(-23.0, 3.7 + 1e-9, _IMQ_STEP)


def _as_bandwidths(
    bandwidth, expected="a positive float or a non-empty list of positive floats"
):
    """Kernel bandwidths as a 1-D float64 array, or a ValueError naming ``expected``."""
    bw = np.atleast_1d(np.asarray(bandwidth, dtype=np.float64))
    if bw.ndim != 1 or bw.size == 0 or not np.all(np.isfinite(bw)) or np.any(bw <= 0):
        raise ValueError(f"bandwidth must be {expected}, got {bandwidth!r}.")
    return bw


def squared_distances(X, Y=None):
    """Pairwise squared Euclidean distances with one matrix product.

    Parameters
    ----------
    X : Tensor of shape (n, d)
    Y : Tensor of shape (m, d), default=None
        ``None`` means ``Y = X``.

    Returns
    -------
    D : Tensor of shape (n, m), clamped at zero (round-off can leave small
        positive values on the diagonal when ``Y`` is ``None``).

    Examples
    --------
    >>> import torch
    >>> squared_distances(torch.tensor([[0.0, 0.0], [3.0, 4.0]]))
    tensor([[ 0., 25.],
            [25.,  0.]])
    """
    x2 = (X * X).sum(1)
    if Y is None:
        Y, y2 = X, x2
    else:
        y2 = (Y * Y).sum(1)
    return (x2[:, None] + y2[None, :] - 2.0 * (X @ Y.T)).clamp_min(0.0)


def _floor_log(log_values):
    """Replace ``-inf`` (overflowed squared distances) by the most negative float.

    ``logsumexp`` over entries that are all ``-inf`` has a NaN gradient; floored,
    the value is still 0 after ``exp`` and the gradient is 0.
    """
    return log_values.clamp_min(torch.finfo(log_values.dtype).min / 2)


def _average_scales(values, scale_weights):
    """Mean over the leading (scale) axis, or the sum weighted by scale_weights."""
    if scale_weights is None:
        return values.mean(0)
    return torch.tensordot(scale_weights.to(values), values, dims=1)


def rbf_kernel(D, bandwidths, scale_weights=None):
    """Multi-scale RBF kernel from squared distances.

    Parameters
    ----------
    D : Tensor of any shape
        Squared distances.
    bandwidths : Tensor of shape (B,)
        Kernel bandwidths ``l_b``; the kernel is the mean over them.
    scale_weights : Tensor of shape (B,), default=None
        Weights ``w_b`` of the scales; the kernel is then ``sum_b w_b k_{l_b}``.

    Returns
    -------
    K : Tensor of the shape of ``D``.

    Examples
    --------
    >>> import torch
    >>> rbf_kernel(torch.tensor([0.0, 2.0]), torch.tensor([1.0]))
    tensor([1.0000, 0.3679])
    """
    gamma = 0.5 / bandwidths.to(D.dtype) ** 2
    if gamma.numel() == 1 and scale_weights is None:
        return torch.exp(-gamma[0] * D)
    K = torch.exp(-D.unsqueeze(-1) * gamma)
    if scale_weights is None:
        return K.mean(-1)
    return K @ scale_weights.to(K)


def imq_kernel(D, bandwidths):
    """Multi-scale inverse multiquadratic (IMQ) kernel from squared distances.

    ``k_l(x, y) = C / (C + |x - y|^2)`` with ``C = 2 l^2``, so that it agrees
    with the RBF kernel of bandwidth ``l`` to first order in ``|x - y|^2``; with
    several bandwidths the kernel is the mean over them.

    Parameters
    ----------
    D : Tensor of any shape
        Squared distances.
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    K : Tensor of the shape of ``D``.

    Examples
    --------
    >>> import torch
    >>> imq_kernel(torch.tensor([0.0, 2.0]), torch.tensor([1.0]))
    tensor([1.0000, 0.5000])
    """
    two_l2 = 2.0 * bandwidths.to(D.dtype) ** 2
    if two_l2.numel() == 1:
        return 1.0 / (1.0 + D / two_l2[0])
    return (1.0 / (1.0 + D.unsqueeze(-1) / two_l2)).mean(-1)


def kernel_from_distances(D, bandwidths, kernel="rbf"):
    """The multi-scale ``'rbf'`` or ``'imq'`` kernel from squared distances.

    Parameters
    ----------
    D : Tensor of any shape
    bandwidths : Tensor of shape (B,)
    kernel : {'rbf', 'imq'}, default='rbf'

    Returns
    -------
    K : Tensor of the shape of ``D``.

    Examples
    --------
    >>> import torch
    >>> kernel_from_distances(torch.tensor([2.0]), torch.tensor([1.0]), "imq")
    tensor([0.5000])
    """
    if kernel == "rbf":
        return rbf_kernel(D, bandwidths)
    if kernel == "imq":
        return imq_kernel(D, bandwidths)
    raise ValueError(f"kernel must be 'rbf' or 'imq', got {kernel!r}.")


def imq_rbf_quadrature(bandwidths):
    """RBF bandwidths and weights whose weighted RBF kernel is the IMQ kernel.

    ``1 / (1 + a) = int_0^inf e^{-t} e^{-t a} dt`` with ``a = |x - y|^2 / (2 l^2)``
    writes each IMQ kernel as a mixture of RBF kernels of bandwidths
    ``l / sqrt(t)``. The integral is discretised with ``t = e^s`` by a
    fixed 49-node trapezoidal rule in ``s``, whose relative error is below
    ``1e-6`` for ``|x - y| <= 141 l`` (``a <= 1e4``), below ``1e-4`` up to
    ``|x - y| = 1400 l`` and grows beyond ``|x - y| ~ 10^4 l``, where the
    quadrature decays faster than the IMQ kernel.

    Parameters
    ----------
    bandwidths : Tensor of shape (B,)
        IMQ bandwidths ``l_b`` (the multi-scale IMQ kernel is their mean).

    Returns
    -------
    rbf_bandwidths : Tensor of shape (B * 49,)
    scale_weights : Tensor of shape (B * 49,)
        Positive weights summing to about one (exactly: 1 - 5e-6).

    Examples
    --------
    >>> import torch
    >>> l = torch.tensor([1.0], dtype=torch.float64)
    >>> bw, w = imq_rbf_quadrature(l)
    >>> tuple(bw.shape), tuple(w.shape)
    ((49,), (49,))
    >>> D = torch.tensor([0.0, 2.0, 200.0], dtype=torch.float64)
    >>> torch.allclose(rbf_kernel(D, bw, w), imq_kernel(D, l), rtol=1e-6)
    True
    """
    t = torch.from_numpy(np.exp(_IMQ_LOG_NODES)).to(bandwidths)
    w = _IMQ_STEP * t * torch.exp(-t) / bandwidths.numel()
    rbf_bandwidths = (bandwidths[:, None] / torch.sqrt(t)).reshape(-1)
    return rbf_bandwidths, w.repeat(bandwidths.numel())


class GaussianRBFFactors(NamedTuple):
    """Precomputed pieces of the closed-form kernel mean of a Gaussian mixture.

    One column per (scale, component) pair ``p = (b, k)``, with
    ``A_p = (S_k + l_b^2 I)^{-1}``: ``quad`` holds ``A_p`` (its diagonal when
    every ``A_p`` is diagonal), ``lin`` is ``-2 A_p mu_k``, ``const`` is
    ``mu_k^T A_p mu_k`` and ``log_const`` is
    ``log w_b + log pi_k - 1/2 log det(I + S_k / l_b^2)``. Means are taken
    relative to ``center`` (the mixture's mean), which is subtracted from the
    codes first, so that expanding the quadratic forms loses no precision for
    priors far from the origin.
    """

    center: torch.Tensor  # (d,)
    quad: torch.Tensor  # (d, P) if diagonal else (d * d, P)
    lin: torch.Tensor  # (d, P)
    const: torch.Tensor  # (P,)
    log_const: torch.Tensor  # (P,)
    diagonal: bool

    def to(self, device, dtype):
        """The same factors as tensors of ``dtype`` on ``device``."""
        return GaussianRBFFactors(
            *(t.to(device, dtype) for t in self[:5]), diagonal=self.diagonal
        )


def _inverse_and_log_scale(covariances, bandwidths):
    """``(S_k + l_b^2 I)^{-1}`` of shape (B, K, d, d) and
    ``-1/2 log det(I + S_k / l_b^2)`` of shape (B, K)."""
    d = covariances.shape[-1]
    l2 = (bandwidths**2).to(covariances.dtype)
    eye = torch.eye(d, dtype=covariances.dtype, device=covariances.device)
    L = torch.linalg.cholesky(covariances[None] + l2[:, None, None, None] * eye)
    logdet = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    return torch.cholesky_inverse(L), -0.5 * (logdet - d * torch.log(l2)[:, None])


def _log_scale_weights(bandwidths, scale_weights, dtype):
    if scale_weights is None:
        B = bandwidths.shape[0]
        return torch.full((B,), -math.log(B), dtype=dtype, device=bandwidths.device)
    return torch.log(scale_weights.to(dtype))


def gaussian_mixture_rbf_factors(
    means, covariances, log_weights, bandwidths, scale_weights=None
):
    """Precompute the closed-form kernel mean of a Gaussian mixture (see above).

    The kernel mean is ``sum_p exp(log_const_p - q_p(z) / 2)`` with the
    quadratic forms ``q_p(z) = (z - mu_k)^T A_p (z - mu_k)`` expanded as
    ``z^T A_p z - 2 z^T A_p mu_k + mu_k^T A_p mu_k``, so that a batch of codes
    needs two matrix products, whatever the number of scales and components.

    Parameters
    ----------
    means : Tensor of shape (K, d)
    covariances : Tensor of shape (K, d, d)
        Component covariances (positive semi-definite).
    log_weights : Tensor of shape (K,)
    bandwidths : Tensor of shape (B,)
    scale_weights : Tensor of shape (B,), default=None
        Weights of the RBF scales (``None``: their mean).

    Returns
    -------
    factors : GaussianRBFFactors

    Examples
    --------
    >>> import torch
    >>> f = gaussian_mixture_rbf_factors(torch.zeros(1, 2), torch.eye(2)[None],
    ...                                  torch.zeros(1), torch.tensor([1.0, 2.0]))
    >>> tuple(f.quad.shape), f.diagonal
    ((2, 2), True)
    """
    K, d = means.shape
    B = bandwidths.shape[0]
    center = log_weights.exp() @ means
    means = means - center
    A, log_scale = _inverse_and_log_scale(covariances, bandwidths)
    log_sw = _log_scale_weights(bandwidths, scale_weights, covariances.dtype)
    A_mu = torch.einsum("bkij,kj->bki", A, means)  # (B, K, d)
    diag = torch.diagonal(A, dim1=-2, dim2=-1)  # (B, K, d)
    diagonal = bool(torch.equal(A, torch.diag_embed(diag)))
    quad = diag.reshape(B * K, d) if diagonal else A.reshape(B * K, d * d)
    return GaussianRBFFactors(
        center=center,
        quad=quad.T.contiguous(),
        lin=(-2.0 * A_mu).reshape(B * K, d).T.contiguous(),
        const=torch.einsum("bki,ki->bk", A_mu, means).reshape(B * K),
        log_const=(log_sw[:, None] + log_weights + log_scale).reshape(B * K),
        diagonal=diagonal,
    )


def gaussian_mixture_rbf_log_terms(Z, factors):
    """Log kernel-mean terms of a Gaussian mixture, one per (scale, component).

    Column ``p = b * K + k`` is ``log w_b + log pi_k + log E_{y ~ N_k} k_{l_b}(z_i, y)``
    (``w_b`` the scale weights the factors were built with); reshaped to
    ``(n, B, K)`` it gives the per-scale and per-component terms that products of
    priors and class-conditional matching need.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    factors : GaussianRBFFactors
        From :func:`gaussian_mixture_rbf_factors`, of the dtype and device of Z.

    Returns
    -------
    log_terms : Tensor of shape (n, B * K)
        ``-inf`` where a term underflows (see :func:`_floor_log`).

    Examples
    --------
    >>> import torch
    >>> cov = torch.eye(2).repeat(3, 1, 1)
    >>> f = gaussian_mixture_rbf_factors(torch.zeros(3, 2), cov, torch.zeros(3),
    ...                                  torch.tensor([1.0, 2.0]))
    >>> tuple(gaussian_mixture_rbf_log_terms(torch.zeros(5, 2), f).shape)
    (5, 6)
    """
    n, d = Z.shape
    Z = Z - factors.center
    if factors.diagonal:
        features = Z * Z
    else:
        features = (Z[:, :, None] * Z[:, None, :]).reshape(n, d * d)
    q = torch.addmm(factors.const, features, factors.quad).addmm_(Z, factors.lin)
    return torch.add(factors.log_const, q.clamp_min(0.0), alpha=-0.5)


def gaussian_mixture_rbf_mean(Z, factors):
    """Closed-form ``E_{y ~ p} k(z_i, y)`` for a Gaussian mixture ``p``.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    factors : GaussianRBFFactors
        From :func:`gaussian_mixture_rbf_factors`, of the dtype and device of Z.

    Returns
    -------
    m : Tensor of shape (n,)

    Examples
    --------
    >>> import torch
    >>> f = gaussian_mixture_rbf_factors(torch.zeros(1, 1), torch.eye(1)[None],
    ...                                  torch.zeros(1), torch.tensor([1.0]))
    >>> round(float(gaussian_mixture_rbf_mean(torch.zeros(1, 1), f)), 4)  # 1/sqrt(2)
    0.7071
    """
    log_terms = _floor_log(gaussian_mixture_rbf_log_terms(Z, factors))
    return torch.logsumexp(log_terms, dim=1).exp()


def gaussian_mixture_rbf_log_mean_prior(means, covariances, log_weights, bandwidths):
    """``log E_{y, y' ~ p} k_l(y, y')`` per RBF scale for a Gaussian mixture ``p``.

    Parameters
    ----------
    means : Tensor of shape (K, d)
    covariances : Tensor of shape (K, d, d)
    log_weights : Tensor of shape (K,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> v = gaussian_mixture_rbf_log_mean_prior(
    ...     torch.zeros(1, 1), torch.eye(1)[None], torch.zeros(1), torch.ones(2))
    >>> tuple(v.shape)
    (2,)
    """
    K, d = means.shape
    pair_cov = (covariances[:, None] + covariances[None, :]).reshape(K * K, d, d)
    pair_diff = (means[:, None] - means[None, :]).reshape(K * K, d)
    A, log_scale = _inverse_and_log_scale(pair_cov, bandwidths)
    quad = torch.einsum("ki,bkij,kj->bk", pair_diff, A, pair_diff)
    log_w = (log_weights[:, None] + log_weights[None, :]).reshape(K * K)
    return torch.logsumexp(log_w + log_scale - 0.5 * quad, dim=-1)


def gaussian_rbf_log_mean_prior_by_component(covariances, bandwidths):
    """``log E_{y, y' ~ N_k} k_l(y, y')`` per RBF scale and Gaussian component.

    Two independent draws of one component ``N(mu_k, S_k)`` differ by a
    ``N(0, 2 S_k)`` vector, so the term is ``-1/2 log det(I + 2 S_k / l^2)``;
    the prior-prior terms of a class-conditional MMD.

    Parameters
    ----------
    covariances : Tensor of shape (K, d, d)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, K)

    Examples
    --------
    >>> import torch
    >>> v = gaussian_rbf_log_mean_prior_by_component(
    ...     torch.eye(1)[None].double(), torch.ones(1).double())
    >>> round(float(v.exp()), 4)  # 1 / sqrt(3)
    0.5774
    """
    _, log_scale = _inverse_and_log_scale(2.0 * covariances, bandwidths)
    return log_scale


def gaussian_mixture_rbf_mean_prior(
    means, covariances, log_weights, bandwidths, scale_weights=None
):
    """Closed-form ``E_{y, y' ~ p} k(y, y')`` for a Gaussian mixture ``p``.

    Parameters
    ----------
    means : Tensor of shape (K, d)
    covariances : Tensor of shape (K, d, d)
    log_weights : Tensor of shape (K,)
    bandwidths : Tensor of shape (B,)
    scale_weights : Tensor of shape (B,), default=None
        Weights of the RBF scales (``None``: their mean).

    Returns
    -------
    value : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> v = gaussian_mixture_rbf_mean_prior(torch.zeros(1, 1), torch.eye(1)[None],
    ...                                     torch.zeros(1), torch.tensor([1.0]))
    >>> round(float(v), 4)  # 1 / sqrt(3)
    0.5774
    """
    log_mean = gaussian_mixture_rbf_log_mean_prior(
        means, covariances, log_weights, bandwidths
    )
    return _average_scales(log_mean.exp(), scale_weights)


class _RBFUStatistic(torch.autograd.Function):
    """``mean_{i != j} k(z_i, z_j)`` for the multi-scale RBF, with a hand-written
    backward: a few large operations instead of a graph of many small ones."""

    @staticmethod
    def forward(ctx, Z, gammas, weights):
        n = Z.shape[0]
        x2 = (Z * Z).sum(1)
        D = (x2[:, None] + x2[None, :]).addmm_(Z, Z.T, alpha=-2.0).clamp_min_(0.0)
        K = torch.exp(D.unsqueeze(0) * (-gammas)[:, None, None])  # (B, n, n)
        K.diagonal(dim1=1, dim2=2).zero_()
        ctx.save_for_backward(Z, K, gammas, weights)
        return torch.tensordot(weights, K, dims=1).sum() / (n * (n - 1))

    @staticmethod
    def backward(ctx, grad):
        Z, K, gammas, weights = ctx.saved_tensors
        n = Z.shape[0]
        # d/dz_i sum_{j != i} k(z_i, z_j), twice (the sum is symmetric).
        M = torch.tensordot(weights * gammas, K, dims=1)  # (n, n)
        grad_Z = (M @ Z - M.sum(1, keepdim=True) * Z) * (4.0 / (n * (n - 1)))
        return grad * grad_Z, None, None


def rbf_u_statistic(Z, bandwidths, scale_weights=None):
    """U-statistic ``mean_{i != j} k(z_i, z_j)`` of the multi-scale RBF kernel.

    Equal to ``rbf_kernel(squared_distances(Z), bandwidths)`` averaged over the
    off-diagonal pairs, with a hand-written gradient (about 3x faster than
    autograd through the kernel matrix on small batches).

    Parameters
    ----------
    Z : Tensor of shape (n, d), n >= 2
    bandwidths : Tensor of shape (B,)
    scale_weights : Tensor of shape (B,), default=None
        Weights of the scales (``None``: their mean).

    Returns
    -------
    value : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> Z = torch.tensor([[0.0], [1.0]])
    >>> round(float(rbf_u_statistic(Z, torch.tensor([1.0]))), 4)  # exp(-1/2)
    0.6065
    """
    bandwidths = bandwidths.to(Z)
    gammas = 0.5 / bandwidths**2
    if scale_weights is None:
        weights = torch.full_like(bandwidths, 1.0 / bandwidths.shape[0])
    else:
        weights = scale_weights.to(Z)
    return _RBFUStatistic.apply(Z, gammas, weights)


def mmd2_unbiased(Z, bandwidths, prior_mean, prior_prior, Y=None, kernel="rbf"):
    """Unbiased squared MMD between codes ``Z`` and a prior.

    ``MMD^2 = E_qq k - 2 E_qp k + E_pp k``. The code-code term is the U-statistic
    over pairs ``i != j``. The prior terms are given in closed form
    (``prior_mean`` of shape (n,), ``prior_prior`` a scalar), or, when ``Y``
    (samples from the prior) is given instead, estimated from it: the cross term
    as a mean over all pairs, the prior-prior term as a U-statistic.

    Parameters
    ----------
    Z : Tensor of shape (n, d), n >= 2
    bandwidths : Tensor of shape (B,)
    prior_mean : Tensor of shape (n,) or None
    prior_prior : Tensor of shape () or None
    Y : Tensor of shape (m, d), default=None
    kernel : {'rbf', 'imq'}, default='rbf'
        The kernel of every term computed from ``Z`` and ``Y`` (see
        :func:`kernel_from_distances`); closed-form prior terms must be for the
        same kernel (see :func:`prior_kernel_terms`).

    Returns
    -------
    mmd2 : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> Z, Y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    >>> abs(float(mmd2_unbiased(Z, torch.tensor([1.0]), None, None, Y=Y))) < 0.01
    True
    """
    qq = _u_statistic(Z, bandwidths, kernel)
    if Y is None:
        return qq - 2.0 * prior_mean.mean() + prior_prior
    qp = kernel_from_distances(squared_distances(Z, Y), bandwidths, kernel).mean()
    return qq - 2.0 * qp + _u_statistic(Y, bandwidths, kernel)


def _u_statistic(Z, bandwidths, kernel):
    if kernel == "rbf":
        return rbf_u_statistic(Z, bandwidths)
    n = Z.shape[0]
    K = kernel_from_distances(squared_distances(Z), bandwidths, kernel)
    return (K.sum() - K.diagonal().sum()) / (n * (n - 1))


def prior_kernel_terms(tprior, bandwidths, kernel="rbf"):
    """Closed-form prior terms ``(mean_fn, pp)`` of the MMD, or ``None``.

    ``mean_fn(Z) = E_{y ~ p} k(z_i, y)`` and ``pp = E_{y, y' ~ p} k(y, y')`` for
    the multi-scale ``'rbf'`` kernel, or for the ``'imq'`` kernel through the RBF
    scale mixture of :func:`imq_rbf_quadrature`. ``None`` when the tensor-side
    prior has no closed form (``tprior.rbf_terms is None``).

    Parameters
    ----------
    tprior : tensor-side prior
        With ``rbf_terms(bandwidths, scale_weights=None)`` or ``rbf_terms = None``.
    bandwidths : Tensor of shape (B,)
        float64 on the CPU.
    kernel : {'rbf', 'imq'}, default='rbf'

    Returns
    -------
    terms : tuple (mean_fn, pp) or None

    Examples
    --------
    >>> import torch
    >>> from sklearn_aae._torch_priors import tensor_prior
    >>> from sklearn_aae.priors import GaussianPrior
    >>> tprior = tensor_prior(GaussianPrior(), 2, dtype=torch.float64)
    >>> mean_fn, pp = prior_kernel_terms(tprior, torch.tensor([1.0]), "imq")
    >>> tuple(mean_fn(torch.zeros(3, 2, dtype=torch.float64)).shape)
    (3,)
    """
    if kernel not in ("rbf", "imq"):
        raise ValueError(f"kernel must be 'rbf' or 'imq', got {kernel!r}.")
    if tprior.rbf_terms is None:
        return None
    bandwidths = bandwidths.to(torch.float64).cpu()
    if kernel == "rbf":
        return tprior.rbf_terms(bandwidths)
    return tprior.rbf_terms(*imq_rbf_quadrature(bandwidths))


def prior_class_kernel_terms(tprior, bandwidths, kernel="rbf"):
    """Closed-form per-class prior terms ``(mean_fn, pp)``, or ``None``.

    For a prior whose classes are its components ``p_k`` (see
    ``log_rbf_class_terms`` in ``sklearn_aae/_torch_priors.py``):
    ``mean_fn(Z, codes)`` is ``E_{y ~ p_{c_i}} k(z_i, y)`` for each row, with
    ``c_i`` the row's class code, and ``pp`` of shape ``(K,)`` is
    ``E_{y, y' ~ p_k} k(y, y')``; for the ``'rbf'`` kernel (the mean over the
    bandwidths) or the ``'imq'`` kernel (through :func:`imq_rbf_quadrature`).
    ``None`` when the prior has no such closed form.

    Parameters
    ----------
    tprior : tensor-side prior
        With ``log_rbf_class_terms(bandwidths)``, or without it (or ``None``).
    bandwidths : Tensor of shape (B,)
    kernel : {'rbf', 'imq'}, default='rbf'

    Returns
    -------
    terms : tuple (mean_fn, pp) or None

    Examples
    --------
    >>> import torch
    >>> from sklearn_aae._torch_priors import tensor_prior
    >>> from sklearn_aae.priors import CategoricalPrior
    >>> tprior = tensor_prior(CategoricalPrior(3), dtype=torch.float64)
    >>> mean_fn, pp = prior_class_kernel_terms(tprior, torch.tensor([1.0]))
    >>> mean_fn(torch.eye(3, dtype=torch.float64), torch.tensor([0, 1, 2])).tolist()
    [1.0, 1.0, 1.0]
    >>> pp.tolist()
    [1.0, 1.0, 1.0]
    """
    if kernel not in ("rbf", "imq"):
        raise ValueError(f"kernel must be 'rbf' or 'imq', got {kernel!r}.")
    class_terms = getattr(tprior, "log_rbf_class_terms", None)
    if class_terms is None:
        return None
    bandwidths = bandwidths.to(torch.float64).cpu()
    if kernel == "rbf":
        bw, sw = bandwidths, torch.full_like(bandwidths, 1.0 / bandwidths.numel())
    else:
        bw, sw = imq_rbf_quadrature(bandwidths)
    log_mean_fn, log_pp64 = class_terms(bw)
    log_sw64 = torch.log(sw)
    pp = torch.logsumexp(log_pp64 + log_sw64[:, None], 0).exp()
    pp = pp.to(tprior.device, tprior.dtype)
    log_sw = log_sw64.to(tprior.device, tprior.dtype)[:, None]

    def mean_fn(Z, codes):
        log_terms = log_mean_fn(Z)  # (B, n, K)
        index = codes.reshape(1, -1, 1).expand(log_terms.shape[0], -1, 1)
        own = _floor_log(log_terms.gather(2, index).squeeze(2))  # (B, n)
        return torch.logsumexp(own + log_sw, 0).exp()

    return mean_fn, pp


def _group_pair_means(Z, H, counts, bandwidths, kernel):
    """Per group, the mean of ``k(z_i, z_j)`` over its pairs ``i != j``.

    ``H`` is the ``(n, G)`` one-hot matrix of the rows' groups. A group of one
    row gets ``k(z, z) = 1`` (its V-statistic); an empty one 1 too (unused).
    """
    n = Z.shape[0]
    K = kernel_from_distances(squared_distances(Z), bandwidths, kernel)
    K = K * (1.0 - torch.eye(n, dtype=K.dtype, device=K.device))
    sums = ((H.T @ K) * H.T).sum(1)
    pairs = counts * (counts - 1.0)
    return torch.where(counts >= 2, sums / pairs.clamp_min(1.0), torch.ones_like(sums))


def grouped_mmd2_sum(
    Z,
    groups,
    n_groups,
    bandwidths,
    prior_mean,
    prior_prior,
    Y=None,
    Y_groups=None,
    kernel="rbf",
    group_weights=None,
):
    """``sum_g w_g n_g MMD^2(Z_g, p_g)``: each group of codes against its own prior.

    The rows of group ``g`` (``n_g`` of them) are compared with the
    distribution ``p_g`` by the unbiased squared MMD of :func:`mmd2_unbiased`
    (the code-code term a U-statistic over the group's pairs); a group of one
    row, which has no pair, by its V-statistic ``1 - 2 E_p k(z, .) + E_pp k``,
    the squared distance between the code's kernel embedding and ``p_g``'s
    (the code-code term is ``k(z, z) = 1``, so its gradient is the cross term
    alone). The terms are weighted by the groups' row counts ``n_g`` times
    ``group_weights`` (default 1) and summed; with weights ``1 / n`` they are
    the mean over rows. Shapes are fixed (masks, no indexing), so there is no
    host synchronisation.

    The prior side is closed-form, ``prior_mean`` (shape ``(n,)``, each row's
    ``E_{y ~ p_{g_i}} k(z_i, y)``) and ``prior_prior`` (shape ``(n_groups,)``),
    or sampled: ``Y`` with its groups ``Y_groups``, at least two samples for
    every group that has rows (the cross term a mean over the group's pairs of
    code and sample, the prior-prior term a U-statistic over its samples).

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    groups : Tensor of int64 of shape (n,)
        Group of each row, in ``0..n_groups - 1``.
    n_groups : int
    bandwidths : Tensor of shape (B,)
    prior_mean : Tensor of shape (n,) or None
    prior_prior : Tensor of shape (n_groups,) or None
    Y : Tensor of shape (m, d), default=None
    Y_groups : Tensor of int64 of shape (m,), default=None
    kernel : {'rbf', 'imq'}, default='rbf'
    group_weights : Tensor of shape (n_groups,), default=None
        Weight of each row of a group (``None``: 1).

    Returns
    -------
    total : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> Z, Y = torch.randn(400, 2, generator=g), torch.randn(400, 2, generator=g)
    >>> groups = torch.arange(400) % 2
    >>> total = grouped_mmd2_sum(Z, groups, 2, torch.tensor([1.0]), None, None,
    ...                          Y=Y, Y_groups=groups)
    >>> abs(float(total)) / 400 < 0.01
    True
    """
    H = torch.nn.functional.one_hot(groups, n_groups).to(Z.dtype)
    counts = H.sum(0)
    qq = _group_pair_means(Z, H, counts, bandwidths, kernel)
    if Y is None:
        cross = H.T @ prior_mean  # sum over each group's rows
        pp = prior_prior
    else:
        HY = torch.nn.functional.one_hot(Y_groups, n_groups).to(Z.dtype)
        m = HY.sum(0)
        KZY = kernel_from_distances(squared_distances(Z, Y), bandwidths, kernel)
        cross = ((H.T @ KZY) * HY.T).sum(1) / m.clamp_min(1.0)
        pp = _group_pair_means(Y, HY, m, bandwidths, kernel)
    if group_weights is not None:
        counts, cross = counts * group_weights, cross * group_weights
    return (counts * (qq + pp)).sum() - 2.0 * cross.sum()


# ----------------------------------------------------------- factorised priors
def _log_erfcx(u):
    return torch.log(torch.special.erfcx(u))


def _log1mexp(x):
    """``log(1 - e^x)`` for ``x < 0``, accurate on both sides of ``-log 2``."""
    x = x.clamp_max(-torch.finfo(x.dtype).tiny)
    near = x > -math.log(2.0)
    return torch.where(
        near,
        torch.log(-torch.expm1(torch.where(near, x, -1.0))),
        torch.log1p(-torch.exp(torch.where(near, -1.0, x))),
    )


def _log_erf_diff(p, q):
    """``log(erf(q) - erf(p))`` for ``p < q``, finite far in either tail."""
    flip = (p + q) < 0  # erf(q) - erf(p) = erf(-p) - erf(-q): use the right tail
    p, q = torch.where(flip, -q, p), torch.where(flip, -p, q)
    tail = p > 0  # 0 < p < q: erfc(p) - erfc(q) = erfc(p) (1 - erfc(q) / erfc(p))
    pt, qt = torch.where(tail, p, 0.0), torch.where(tail, q, 1.0)
    log_ratio = _log_erfcx(qt) - _log_erfcx(pt) - (qt - pt) * (qt + pt)
    in_tail = _log_erfcx(pt) - pt * pt + _log1mexp(log_ratio)
    # p <= 0 < q: erf(q) + erf(-p), a sum of non-negative terms.
    ps, qs = torch.where(tail, 0.0, p), torch.where(tail, 1.0, q)
    straddling = torch.log(torch.erf(qs) - torch.erf(ps))
    return torch.where(tail, in_tail, straddling)


def _laplace_log_half(t, scale, bw):
    """``log(e^{-t^2 / 2 l^2} erfcx(u))`` with ``u = (l^2 / b - t) / (sqrt(2) l)``."""
    u = (bw * bw / scale - t) / (_SQRT2 * bw)
    pos = -0.5 * (t / bw) ** 2 + _log_erfcx(u.clamp_min(0.0))
    # For u < 0: the same quantity, l^2 / 2b^2 - t / b + log erfc(u), erfc(u) in (1, 2].
    neg = 0.5 * (bw / scale) ** 2 - t / scale + torch.log(torch.erfc(u.clamp_max(0.0)))
    return torch.where(u >= 0, pos, neg)


def laplace_rbf_log_mean(T, scale, bandwidths):
    """``log E_{y} k_l(t_i, y)`` per RBF scale for independent Laplace coordinates.

    ``y`` has independent coordinates ``Laplace(0, b_j)`` (density
    ``exp(-|y| / b) / 2b``), and for one coordinate

        E k_l(t, y) = (l / 2b) sqrt(pi / 2) (A(t) + A(-t)),
        A(t) = exp(-t^2 / 2 l^2) erfcx((l^2 / b - t) / (sqrt(2) l)),

    evaluated in log space; the log means add over coordinates.

    Parameters
    ----------
    T : Tensor of shape (n, d)
        Points minus the prior's location.
    scale : Tensor of shape (d,) or (n, d)
        The scales ``b_j``, shared or one row per point (a class's scales).
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, n)

    Examples
    --------
    >>> import torch
    >>> lm = laplace_rbf_log_mean(torch.zeros(4, 3), torch.ones(3), torch.ones(2))
    >>> tuple(lm.shape)
    (2, 4)
    """
    bw = bandwidths.to(T)[:, None, None]
    log_c = torch.log(bw / (2.0 * scale)) + _LOG_SQRT_PI_2
    T = T[None]
    halves = torch.logaddexp(
        _laplace_log_half(T, scale, bw), _laplace_log_half(-T, scale, bw)
    )
    return (log_c + halves).sum(-1)


def laplace_rbf_log_mean_prior(scale, bandwidths):
    """``log E_{y, y'} k_l(y, y')`` per RBF scale for independent Laplace coordinates.

    For one coordinate, with ``v = l / (sqrt(2) b)``,
    ``E k_l(y, y') = v^2 + (sqrt(pi) / 2) v (1 - 2 v^2) erfcx(v)``
    (its asymptotic series ``1 - 1/v^2 + 9/4v^4 - 15/2v^6 + 525/16v^8`` where
    ``v >= 50``, which avoids cancellation); the logs add over coordinates.

    Parameters
    ----------
    scale : Tensor of shape (d,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> v = laplace_rbf_log_mean_prior(torch.ones(1, dtype=torch.float64),
    ...                                torch.tensor([1.0], dtype=torch.float64))
    >>> round(float(v.exp()), 6)  # E k for l = b = 1: 1/2
    0.5
    """
    v = bandwidths.to(scale)[:, None] / (_SQRT2 * scale)
    big = v >= 50.0
    vb = torch.where(big, v, 50.0)
    w = 1.0 / (vb * vb)
    series = 1.0 - w + 2.25 * w**2 - 7.5 * w**3 + 32.8125 * w**4
    vs = torch.where(big, 1.0, v)
    direct = vs * vs + 0.5 * math.sqrt(math.pi) * vs * (1.0 - 2.0 * vs * vs) * (
        torch.special.erfcx(vs)
    )
    return torch.log(torch.where(big, series, direct)).sum(-1)


def uniform_rbf_log_mean(Z, low, high, bandwidths):
    """``log E_{y} k_l(z_i, y)`` per RBF scale for a uniform box ``[low, high]``.

    For one coordinate, ``E k_l(z, y) = (l / w) sqrt(pi / 2) (erf(q) - erf(p))``
    with ``w = high - low``, ``p = (low - z) / (sqrt(2) l)``,
    ``q = (high - z) / (sqrt(2) l)``; the erf difference is taken in log space
    (through erfcx in the tails); the log means add over coordinates.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    low, high : Tensors of shape (d,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, n)

    Examples
    --------
    >>> import torch
    >>> lm = uniform_rbf_log_mean(torch.zeros(4, 3), -torch.ones(3), torch.ones(3),
    ...                           torch.ones(2))
    >>> tuple(lm.shape)
    (2, 4)
    """
    bw = bandwidths.to(Z)[:, None, None]
    s = _SQRT2 * bw
    log_c = torch.log(bw / (high - low)) + _LOG_SQRT_PI_2
    return (log_c + _log_erf_diff((low - Z) / s, (high - Z) / s)).sum(-1)


def uniform_rbf_log_mean_prior(width, bandwidths):
    """``log E_{y, y'} k_l(y, y')`` per RBF scale for a uniform box.

    For one coordinate of width ``w``, with ``x = w / (sqrt(2) l)``,
    ``E k_l(y, y') = sqrt(pi) erf(x) / x - (1 - e^{-x^2}) / x^2``; the logs add
    over coordinates.

    Parameters
    ----------
    width : Tensor of shape (d,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> v = uniform_rbf_log_mean_prior(torch.ones(2), torch.ones(3))
    >>> tuple(v.shape)
    (3,)
    """
    x = width / (_SQRT2 * bandwidths.to(width)[:, None])
    value = math.sqrt(math.pi) * torch.erf(x) / x + torch.expm1(-x * x) / (x * x)
    return torch.log(value).sum(-1)


# ------------------------------------------------------------- discrete priors
def categorical_rbf_log_terms(Z, log_weights, bandwidths):
    """``log(w_k k_l(z_i, e_k))`` per RBF scale and category (one-hot vertices).

    A one-hot prior puts mass ``w_k`` on the vertex ``e_k`` of ``R^K``, so
    ``E_{y} k_l(z, y) = sum_k w_k exp(-|z - e_k|^2 / 2 l^2)``, a finite sum with
    ``|z - e_k|^2 = |z|^2 - 2 z_k + 1``. Terms are floored (see
    :func:`_floor_log`), so a log-sum-exp over them has finite gradients.

    Parameters
    ----------
    Z : Tensor of shape (n, K)
    log_weights : Tensor of shape (K,)
        Log probabilities of the categories (``-inf`` for an empty one).
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_terms : Tensor of shape (B, n, K)
        Their log-sum-exp over the last axis is the log kernel mean per scale.

    Examples
    --------
    >>> import torch
    >>> lt = categorical_rbf_log_terms(torch.eye(3), torch.log(torch.ones(3) / 3),
    ...                                torch.tensor([0.5, 1.0]))
    >>> tuple(lt.shape)
    (2, 3, 3)
    """
    sq = ((Z * Z).sum(1, keepdim=True) - 2.0 * Z + 1.0).clamp_min(0.0)  # (n, K)
    gamma = 0.5 / bandwidths.to(Z) ** 2
    return _floor_log(log_weights.to(Z) - sq[None] * gamma[:, None, None])


def categorical_rbf_log_mean_prior(weights, bandwidths):
    """``log E_{y, y'} k_l(y, y')`` per RBF scale for one-hot vertices.

    Two independent draws coincide with probability ``s = sum_k w_k^2`` and are
    otherwise at squared distance 2, so ``E k_l(y, y') = s + (1 - s) e^{-1/l^2}``.

    Parameters
    ----------
    weights : Tensor of shape (K,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> w = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> v = categorical_rbf_log_mean_prior(w, torch.tensor([1.0], dtype=torch.float64))
    >>> round(float(v.exp()), 4)  # (1 + e^-1) / 2
    0.6839
    """
    s = (weights * weights).sum()
    far = torch.exp(-1.0 / bandwidths.to(weights) ** 2)
    return torch.log(s + (1.0 - s) * far)


def bernoulli_rbf_log_mean(Z, p, bandwidths):
    """``log E_{y} k_l(z_i, y)`` per RBF scale for independent bits ``y_j ~ B(p_j)``.

    The kernel factorises over coordinates: ``E k_l(z, y)`` is
    ``prod_j [(1 - p_j) e^{-z_j^2 / 2 l^2} + p_j e^{-(z_j - 1)^2 / 2 l^2}]``,
    evaluated as a sum over ``j`` of log-sum-exps of two floored terms, finite
    (with finite gradients) far from the cube and where ``p_j`` is 0 or 1.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    p : Tensor of shape (d,)
        Probabilities of a 1, in [0, 1].
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, n)

    Examples
    --------
    >>> import torch
    >>> lm = bernoulli_rbf_log_mean(torch.zeros(4, 3), torch.full((3,), 0.5),
    ...                             torch.ones(2))
    >>> tuple(lm.shape)
    (2, 4)
    """
    p = p.to(Z)
    gamma = (0.5 / bandwidths.to(Z) ** 2)[:, None, None]
    zero = _floor_log(torch.log1p(-p) - gamma * (Z * Z)[None])
    one = _floor_log(torch.log(p) - gamma * ((Z - 1.0) ** 2)[None])
    return torch.logaddexp(zero, one).sum(-1)


def bernoulli_rbf_log_mean_prior(p, bandwidths):
    """``log E_{y, y'} k_l(y, y')`` per RBF scale for independent bits.

    Per coordinate two draws differ with probability ``2 p (1 - p)``, and then
    the kernel is ``e^{-1 / 2 l^2}``: ``E k = 1 - 2 p (1 - p) (1 - e^{-1 / 2 l^2})``;
    the logs add over coordinates.

    Parameters
    ----------
    p : Tensor of shape (d,)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,)

    Examples
    --------
    >>> import torch
    >>> v = bernoulli_rbf_log_mean_prior(torch.full((2,), 0.5), torch.ones(3))
    >>> tuple(v.shape)
    (3,)
    """
    one_minus_far = -torch.expm1(-0.5 / bandwidths.to(p)[:, None] ** 2)  # (B, 1)
    return torch.log1p(-2.0 * p * (1.0 - p) * one_minus_far).sum(-1)


# ------------------------------------------------- class-conditional factorised
def diagonal_gaussian_rbf_log_mean(T, scale, bandwidths):
    """``log E_{y} k_l(t_i, y)`` per RBF scale for ``y ~ N(0, diag(scale^2))``.

    For one coordinate ``E k_l(t, y) = (l^2 / (l^2 + s^2))^(1/2)
    exp(-t^2 / 2 (l^2 + s^2))``; the logs add over coordinates. Differentiable
    in ``T`` and ``scale`` (a learned per-class scale, row by row).

    Parameters
    ----------
    T : Tensor of shape (n, d)
        Points minus the distribution's location.
    scale : Tensor of shape (d,) or (n, d)
        Standard deviations, shared or one row per point.
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B, n)

    Examples
    --------
    >>> import torch
    >>> v = diagonal_gaussian_rbf_log_mean(torch.zeros(1, 1), torch.ones(1),
    ...                                    torch.ones(1))
    >>> round(float(v.exp()), 4)  # (1 / 2)^(1/2)
    0.7071
    """
    l2 = bandwidths.to(T)[:, None, None] ** 2
    v = l2 + scale * scale
    return (0.5 * torch.log(l2 / v) - T[None] ** 2 / (2.0 * v)).sum(-1)


def diagonal_gaussian_rbf_log_mean_prior(scale, bandwidths):
    """``log E_{y, y'} k_l(y, y')`` per RBF scale for ``N(0, diag(scale^2))``.

    Two independent draws differ by ``N(0, 2 diag(scale^2))``: per coordinate
    ``(l^2 / (l^2 + 2 s^2))^(1/2)``, the logs added over coordinates. As
    :func:`laplace_rbf_log_mean_prior`, a ``scale`` of shape ``(K, 1, d)``
    gives the terms of ``K`` distributions at once.

    Parameters
    ----------
    scale : Tensor of shape (d,) or (K, 1, d)
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    log_mean : Tensor of shape (B,) or (K, B)

    Examples
    --------
    >>> import torch
    >>> v = diagonal_gaussian_rbf_log_mean_prior(torch.ones(1), torch.ones(1))
    >>> round(float(v.exp()), 4)  # 1 / sqrt(3)
    0.5774
    """
    l2 = bandwidths.to(scale)[:, None] ** 2
    return (0.5 * torch.log(l2 / (l2 + 2.0 * scale * scale))).sum(-1)


def _within_group_pair_means(Z, groups, counts, bandwidths, kernel):
    """Per group, the mean of ``k(z_i, z_j)`` over its pairs ``i != j``.

    The rows are gathered into a ``(G, m, d)`` block, ``m`` the largest group
    (one host synchronisation), so that only pairs within a group are formed. A
    group of one row gets ``k(z, z) = 1``, its V-statistic; an empty one 0.
    """
    n_groups, d = counts.shape[0], Z.shape[1]
    order = torch.argsort(groups, stable=True)
    sorted_groups = groups[order]
    starts = torch.cumsum(counts, 0) - counts
    position = torch.arange(Z.shape[0], device=Z.device) - starts[sorted_groups].long()
    m = int(counts.max())
    block = Z.new_zeros(n_groups, m, d).index_put((sorted_groups, position), Z[order])
    filled = torch.zeros(n_groups, m, dtype=torch.bool, device=Z.device)
    filled[sorted_groups, position] = True
    x2 = (block * block).sum(-1)
    D = x2[:, :, None] + x2[:, None, :] - 2.0 * block @ block.transpose(1, 2)
    pairs = filled[:, :, None] & filled[:, None, :]
    pairs &= ~torch.eye(m, dtype=torch.bool, device=Z.device)
    K = kernel_from_distances(D.clamp_min(0.0), bandwidths, kernel)
    sums = torch.where(pairs, K, 0.0).sum((1, 2))
    n_pairs = counts * (counts - 1.0)
    return torch.where(counts >= 2, sums / n_pairs.clamp_min(1.0), (counts == 1).to(Z))


def grouped_mmd2_mean(
    Z, groups, n_groups, bandwidths, log_mean, log_pp, scale_weights=None, kernel="rbf"
):
    """Mean over the groups present of each group's unbiased MMD^2 to its own law.

    Group ``g`` (the rows with ``groups == g``, ``n_g`` of them) is compared with
    its distribution ``p_g`` by ``MMD^2_g = E_qq k - 2 E_qp k + E_pp k``: the
    code-code term a U-statistic over the group's pairs (a group of one row,
    which has none, by its V-statistic ``k(z, z) = 1``), the prior terms from
    their logs per kernel scale. The result is ``mean_g MMD^2_g`` over the
    groups that have rows, each group with the same weight whatever its size
    (as the segments of nonlinear ICA are weighted). The pairs are
    formed within groups only (:func:`_within_group_pair_means`: one host
    synchronisation, for the size of the largest group).

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    groups : Tensor of int64 of shape (n,)
        Group codes in ``0..n_groups-1``.
    n_groups : int
    bandwidths : Tensor of shape (B,)
        For ``kernel='rbf'``, the kernel's bandwidths; for ``'imq'``, the IMQ
        bandwidths (``log_mean`` and ``log_pp`` then come from the RBF
        quadrature of :func:`imq_rbf_quadrature`, with its ``scale_weights``).
    log_mean : Tensor of shape (B', n)
        ``log E_{y ~ p_{g_i}} k_b(z_i, y)`` per RBF scale ``b`` of the kernel.
    log_pp : Tensor of shape (B', n_groups)
        ``log E_{y, y' ~ p_g} k_b(y, y')``.
    scale_weights : Tensor of shape (B',), default=None
        Weights of the RBF scales of ``log_mean`` and ``log_pp``; ``None``: their
        mean.
    kernel : {'rbf', 'imq'}, default='rbf'
        The kernel of the code-code term.

    Returns
    -------
    mmd2 : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> Z = torch.randn(400, 2, generator=g, dtype=torch.float64)
    >>> Z[200:] *= 3.0  # group 1 is N(0, 9 I)
    >>> groups = torch.arange(400) // 200
    >>> bw = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> scale = torch.tensor([[1.0, 1.0], [3.0, 3.0]], dtype=torch.float64)
    >>> log_mean = diagonal_gaussian_rbf_log_mean(Z, scale[groups], bw)
    >>> log_pp = diagonal_gaussian_rbf_log_mean_prior(scale[:, None], bw).T
    >>> abs(float(grouped_mmd2_mean(Z, groups, 2, bw, log_mean, log_pp))) < 0.01
    True
    """
    B = log_mean.shape[0]
    if scale_weights is None:
        log_sw = torch.full((B, 1), -math.log(B), dtype=Z.dtype, device=Z.device)
    else:
        log_sw = torch.log(scale_weights.to(Z))[:, None]
    counts = torch.bincount(groups, minlength=n_groups).to(Z.dtype)
    present = counts > 0
    group_weight = present.to(Z.dtype) / present.sum().clamp_min(1).to(Z.dtype)
    row_weight = (group_weight / counts.clamp_min(1.0))[groups]  # c_g / n_g
    qp = (torch.logsumexp(_floor_log(log_mean) + log_sw, 0).exp() * row_weight).sum()
    pp = (torch.logsumexp(log_pp + log_sw, 0).exp() * group_weight).sum()
    qq = _within_group_pair_means(Z, groups, counts, bandwidths.to(Z), kernel)
    return (group_weight * qq).sum() - 2.0 * qp + pp
