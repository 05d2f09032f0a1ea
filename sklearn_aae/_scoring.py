"""Importance-sampled log-likelihood of rows under a fitted autoencoder.

The generative model is ``z ~ prior``, ``x | z ~ N(decoder(z), noise_variance I)``;
``log p(x)`` is estimated by importance sampling with a defensive mixture of the
prior and a Gaussian around a Gauss-Newton refinement of the encoder's code.
"""

import math
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._data import _Data, _validate_rows

# Importance samples per row, and the share drawn from the prior.
_N_IMPORTANCE = 128
_DEFENSIVE_PRIOR_SHARE = 0.125
# Rows times importance samples decoded at once, at most...
_SCORE_BATCH = 65536
# ...and the bytes a chunk's largest buffers may take (reconstructions, the
# decoder's Jacobian, the mixture prior's whitened codes), so that wide data or
# many mixture components shrink the chunk instead of exhausting a GPU.
_SCORE_CHUNK_BYTES = 256 * 2**20


class _Model(NamedTuple):
    """What the estimate needs of the fitted model."""

    encoder: torch.nn.Module
    decoder: torch.nn.Module
    prior: object  # tensor-side prior on the networks' device
    noise_variance: float
    prior_precision: float  # 1 / the prior's mean variance per coordinate


class LikelihoodScoreMixin:
    """``score_samples`` and ``score``: the log-likelihood of rows under the model.

    For an autoencoder with ``encoder_`` (with ``mean``), ``decoder_``,
    ``prior_``, ``noise_variance_``, ``device_``, and ``n_components``.
    """

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
        X = _validate_rows(self, X)
        seed = self.random_state if isinstance(self.random_state, Integral) else 0
        priors = (
            self._tensor_prior(torch.device("cpu")),
            self._tensor_prior(self.device_),
        )
        data = _Data(X, self.device_, stream=True)
        return log_likelihood(
            data, self.encoder_, self.decoder_, priors, self.noise_variance_, seed
        )

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


def log_likelihood(data, encoder, decoder, priors, noise_variance, seed):
    """Log-likelihood estimate of each row of ``data``.

    Parameters
    ----------
    data : _Data
        The rows, streamed (``stream=True``) on the networks' device.
    encoder, decoder : torch.nn.Module
        The fitted networks; ``encoder.mean(X)`` is the proposal's start.
    priors : tuple of (tensor prior on the CPU, tensor prior on the device)
        The CPU one draws the common random numbers, so that they are the same
        on every device; the device one gives ``log_prob`` and ``variance``.
    noise_variance : float
    seed : int
        Seeds the common random numbers (shared by all rows).

    Returns
    -------
    log_likelihood : ndarray of shape (n_samples,), float64
    """
    cpu_prior, tprior = priors
    device = data.device
    d, S = tprior.n_dims, _N_IMPORTANCE
    n_prior = int(round(_DEFENSIVE_PRIOR_SHARE * S))
    # Common random numbers, drawn on the CPU: the same on every device.
    g = torch.Generator().manual_seed(int(seed))
    z_prior = cpu_prior.sample(n_prior, g).to(device)  # shared by all rows
    eps = torch.randn(S - n_prior, d, generator=g).to(device)
    model = _Model(encoder, decoder, tprior, noise_variance, 1.0 / tprior.variance())
    n_mixture = tprior.means.shape[0] if hasattr(tprior, "means") else 1
    rows = _chunk_rows(S, data.X.shape[1], d, n_mixture)
    out = [_score_chunk(x, model, z_prior, eps) for x in data.chunks(rows)]
    return torch.cat(out).numpy().astype(np.float64)


def _chunk_rows(n_importance, n_features, n_dims, n_mixture_components=1):
    """Rows scored at once: ``_SCORE_BATCH // S``, fewer when buffers are large.

    Per row, the float32 buffers that grow with the chunk are the decoded
    importance samples and their residuals (``2 S p``), the decoder's Jacobian
    (``p d``) and the mixture's whitened codes (``S K d``).

    Examples
    --------
    >>> _chunk_rows(128, 64, 2)
    512
    >>> _chunk_rows(128, 20000, 2)
    13
    """
    S, p, d, K = n_importance, n_features, n_dims, n_mixture_components
    per_row = 4 * (2 * S * p + p * d + S * K * d + 4 * S * d)
    return max(1, min(_SCORE_BATCH // S, _SCORE_CHUNK_BYTES // per_row))


def _log_prior_gradient(tprior, z0):
    """``d log p(z) / dz`` at ``z0``; zero for a user's prior whose ``log_prob``
    is NumPy (no gradient). Errors other than that one are not swallowed (a CUDA
    out-of-memory error must surface, not silently change the proposal)."""
    if not getattr(tprior, "log_prob_has_gradient", True):
        return torch.zeros_like(z0)
    with torch.enable_grad():
        z0g = z0.detach().requires_grad_(True)
        return torch.autograd.grad(tprior.log_prob(z0g).sum(), z0g)[0]


def _gauss_newton_proposal(x, model):
    """The proposal's mean ``mu`` and the Cholesky factor of its precision."""
    decoder, tprior, var = model.decoder, model.prior, model.noise_variance
    with torch.no_grad():
        z0 = model.encoder.mean(x)
    # Gauss-Newton step on log p(z) + log p(x|z) from the encoder's code.
    J = torch.func.vmap(torch.func.jacfwd(decoder))(z0)  # (n, p, d)
    grad_prior = _log_prior_gradient(tprior, z0)
    with torch.no_grad():
        r = x - decoder(z0)
        eye = torch.eye(z0.shape[1], device=x.device)
        H = J.transpose(1, 2) @ J / var + model.prior_precision * eye
        grad = (J.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1) / var + grad_prior
        Lh = torch.linalg.cholesky(H)  # H = Lh Lh^T; cov = H^{-1}
        mu = z0 + torch.cholesky_solve(grad.unsqueeze(-1), Lh).squeeze(-1)
    return mu, Lh


def _score_chunk(x, model, z_prior, eps):
    """Log-likelihood estimates of the rows ``x`` (on the CPU)."""
    mu, Lh = _gauss_newton_proposal(x, model)
    with torch.no_grad():
        return _importance_estimate(x, model, z_prior, eps, (mu, Lh))


def _importance_estimate(x, model, z_prior, eps, proposal):
    """``log mean_s p(z_s) p(x | z_s) / r(z_s)`` over the defensive mixture ``r``."""
    decoder, tprior, var = model.decoder, model.prior, model.noise_variance
    mu, Lh = proposal
    n, p = x.shape
    d = eps.shape[1]
    # z = mu + Lh^{-T} eps has covariance H^{-1}.
    z_q = mu[:, None, :] + torch.linalg.solve_triangular(
        Lh.transpose(1, 2), eps.T.expand(n, d, eps.shape[0]), upper=True
    ).transpose(1, 2)
    z = torch.cat([z_prior.expand(n, *z_prior.shape), z_q], dim=1)  # (n, S, d)
    S = z.shape[1]
    # log q(z | x) = log N(z; mu, H^{-1}).
    whitened = (z - mu[:, None, :]) @ Lh  # (n, S, d): Lh^T (z - mu)
    log_det_h = 2 * torch.log(torch.diagonal(Lh, dim1=-2, dim2=-1)).sum(-1)
    log_q = -0.5 * (whitened * whitened).sum(-1) + 0.5 * log_det_h[:, None]
    log_q = log_q - 0.5 * d * math.log(2 * math.pi)
    log_p = tprior.log_prob(z.reshape(n * S, d)).reshape(n, S)
    share = z_prior.shape[0] / S
    log_r = torch.logaddexp(math.log(share) + log_p, math.log1p(-share) + log_q)
    recon = decoder(z.reshape(n * S, d)).reshape(n, S, p)
    sq = ((x[:, None, :] - recon) ** 2).sum(-1)
    log_lik = -0.5 * sq / var - 0.5 * p * math.log(2 * math.pi * var)
    log_w = log_p + log_lik - log_r
    return (torch.logsumexp(log_w, dim=1) - math.log(S)).cpu()
