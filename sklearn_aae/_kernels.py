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
"""

import torch


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


def rbf_kernel(D, bandwidths):
    """Multi-scale RBF kernel from squared distances.

    Parameters
    ----------
    D : Tensor of any shape
        Squared distances.
    bandwidths : Tensor of shape (B,)
        Kernel bandwidths ``l_b``; the kernel is the mean over them.

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
    if gamma.numel() == 1:
        return torch.exp(-gamma[0] * D)
    return torch.exp(-D.unsqueeze(-1) * gamma).mean(-1)


def gaussian_mixture_rbf_factors(covariances, bandwidths):
    """Precompute what the closed-form kernel mean needs, per scale and component.

    Parameters
    ----------
    covariances : Tensor of shape (K, d, d)
        Component covariances (positive semi-definite).
    bandwidths : Tensor of shape (B,)

    Returns
    -------
    whiten : Tensor of shape (B, K, d, d)
        ``L^{-1}`` where ``L L^T = S_k + l_b^2 I``.
    log_scale : Tensor of shape (B, K)
        ``-1/2 log det(I + S_k / l_b^2)``.

    Examples
    --------
    >>> import torch
    >>> W, c = gaussian_mixture_rbf_factors(torch.eye(2)[None], torch.tensor([1.0]))
    >>> tuple(W.shape), tuple(c.shape)
    ((1, 1, 2, 2), (1, 1))
    """
    K, d, _ = covariances.shape
    l2 = (bandwidths**2).to(covariances.dtype)
    eye = torch.eye(d, dtype=covariances.dtype, device=covariances.device)
    A = covariances[None] + l2[:, None, None, None] * eye  # (B, K, d, d)
    L = torch.linalg.cholesky(A)
    whiten = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    logdet_A = 2.0 * torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1)
    log_scale = -0.5 * (logdet_A - d * torch.log(l2)[:, None])
    return whiten, log_scale


def gaussian_mixture_rbf_mean(Z, means, log_weights, whiten, log_scale):
    """Closed-form ``E_{y ~ p} k(z_i, y)`` for a Gaussian mixture ``p``.

    Parameters
    ----------
    Z : Tensor of shape (n, d)
    means : Tensor of shape (K, d)
    log_weights : Tensor of shape (K,)
    whiten, log_scale : Tensors
        From :func:`gaussian_mixture_rbf_factors`.

    Returns
    -------
    m : Tensor of shape (n,)

    Examples
    --------
    >>> import torch
    >>> W, c = gaussian_mixture_rbf_factors(torch.eye(1)[None], torch.tensor([1.0]))
    >>> m = gaussian_mixture_rbf_mean(torch.zeros(1, 1), torch.zeros(1, 1),
    ...                               torch.zeros(1), W, c)
    >>> round(float(m), 4)  # 1 / sqrt(2)
    0.7071
    """
    diff = Z[:, None, :] - means[None]  # (n, K, d)
    y = torch.einsum("bkij,nkj->bnki", whiten, diff)
    log_terms = log_weights + log_scale[:, None, :] - 0.5 * (y * y).sum(-1)
    return torch.logsumexp(log_terms, dim=-1).exp().mean(0)


def gaussian_mixture_rbf_mean_prior(means, covariances, log_weights, bandwidths):
    """Closed-form ``E_{y, y' ~ p} k(y, y')`` for a Gaussian mixture ``p``.

    Parameters
    ----------
    means : Tensor of shape (K, d)
    covariances : Tensor of shape (K, d, d)
    log_weights : Tensor of shape (K,)
    bandwidths : Tensor of shape (B,)

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
    K, d = means.shape
    pair_cov = (covariances[:, None] + covariances[None, :]).reshape(K * K, d, d)
    pair_diff = (means[:, None] - means[None, :]).reshape(K * K, d)
    whiten, log_scale = gaussian_mixture_rbf_factors(pair_cov, bandwidths)
    y = torch.einsum("bkij,kj->bki", whiten, pair_diff)
    log_w = (log_weights[:, None] + log_weights[None, :]).reshape(K * K)
    log_terms = log_w + log_scale - 0.5 * (y * y).sum(-1)
    return torch.logsumexp(log_terms, dim=-1).exp().mean(0)


def mmd2_unbiased(Z, bandwidths, prior_mean, prior_prior, Y=None):
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
    n = Z.shape[0]
    Kzz = rbf_kernel(squared_distances(Z), bandwidths)
    qq = (Kzz.sum() - Kzz.diagonal().sum()) / (n * (n - 1))
    if Y is None:
        return qq - 2.0 * prior_mean.mean() + prior_prior
    m = Y.shape[0]
    qp = rbf_kernel(squared_distances(Z, Y), bandwidths).mean()
    Kyy = rbf_kernel(squared_distances(Y), bandwidths)
    pp = (Kyy.sum() - Kyy.diagonal().sum()) / (m * (m - 1))
    return qq - 2.0 * qp + pp
