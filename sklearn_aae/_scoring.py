"""Log-likelihood of rows under a fitted autoencoder: a strategy per prior.

The generative model is ``z ~ prior``, ``x | z ~ N(decoder(z), noise_variance I)``.
With only real code blocks, ``log p(x)`` is estimated by importance sampling
with a defensive mixture of the prior and a Gaussian around the posterior
mode, found by a few Gauss-Newton steps from the best of the encoder's code
and the prior's draws. With discrete blocks (one-hot, binary: see
``_torch_priors.code_support``) their joint configurations are summed exactly
when there are at most ``_MAX_ENUMERATION`` of them, and importance-sampled
from the encoder's probabilities (mixed with the prior) beyond; the continuous
blocks are importance-sampled given each configuration, as above.
"""

import math
import threading
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._data import _Data, _validate_rows
from ._torch_priors import (
    _product_tensor_prior,
    _TorchProduct,
    code_support,
)

# Importance samples per row, and the share drawn from the prior.
_N_IMPORTANCE = 128
_DEFENSIVE_PRIOR_SHARE = 0.125
# The proposal's centre: Gauss-Newton steps towards the posterior mode from the
# best of the encoder's code and the prior's draws, each step's length the best
# of these fractions of the full step.
_NEWTON_STEPS = 2
_STEP_FRACTIONS = (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125)
# Rows times importance samples decoded at once, at most...
_SCORE_BATCH = 65536
# ...and the bytes a chunk's largest buffers may take (reconstructions, the
# decoder's Jacobian, the mixture prior's whitened codes), so that wide data or
# many mixture components shrink the chunk instead of exhausting a GPU.
_SCORE_CHUNK_BYTES = 256 * 2**20
# Discrete blocks: the joint configurations summed exactly when there are at
# most this many (each costs one decode without continuous blocks, an
# importance-sampled integral beside them); beyond, as many are drawn per row.
_MAX_ENUMERATION = 1024
_MAX_ENUMERATION_BESIDE_CONTINUOUS = 128
# Beside continuous blocks, the continuous importance samples per row, shared
# out among the configurations (at most _N_IMPORTANCE each).
_CONTINUOUS_BUDGET = 8192


class _Model(NamedTuple):
    """What the estimate needs of the fitted model."""

    encoder: torch.nn.Module
    decoder: torch.nn.Module
    prior: object  # tensor-side prior on the networks' device
    noise_variance: float
    prior_precision: float  # 1 / the prior's mean variance per coordinate
    # With discrete blocks, (v, z) -> the whole code from its discrete part v
    # and its continuous part z; None when every block is continuous.
    assemble: object = None


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
        at an approximate posterior mode, with covariance
        ``(J^T J / noise_variance_ + I / var_prior)^{-1}`` (``J`` the decoder's
        Jacobian there, ``var_prior`` the prior's mean variance). The mode is
        sought from the best of the encoder's code and the 16 prior draws by
        ``log p(z) + log p(x | z)``, with two Gauss-Newton steps, each as long
        as the best of 1, 1/2, ..., 1/128 of the full step (so the search
        never leaves the prior's support nor lowers the posterior density):
        the proposal finds the posterior's mass even where the encoder's code
        is far from it (a code outside a bounded prior's support, a code
        between two modes of a mixture prior). For a linear decoder and a
        Gaussian prior this proposal is the exact posterior.
        128 importance samples per row are common random numbers from a fixed
        seed (``random_state`` when it is an int, else 0), so the estimate is a
        deterministic function of each row, whatever else is in ``X``. It does
        not depend on ``reg_weight``, so scores of models with different
        regularisation strengths compare fairly.

        With discrete blocks in the prior (one-hot, binary), ``log p(x)`` is a
        sum over their joint configurations ``v``: exact when there are at most
        1024 of them (128 beside continuous blocks, each of whose integrals
        given ``v`` is importance-sampled as above, with at least 64 samples),
        importance-sampled beyond, as many draws per row from the encoder's
        probabilities mixed with the prior (1/8). A prior with only discrete
        blocks and at most 1024 configurations gives the exact log-likelihood.

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
    """Log-likelihood estimate of each row of ``data``: the prior's strategy.

    Importance sampling (:func:`continuous_log_likelihood`) when every block
    of the code is real, :func:`discrete_log_likelihood` otherwise. The
    parameters and the result are those of :func:`continuous_log_likelihood`.
    """
    if any(kind != "real" for _, kind in code_support(priors[1])):
        return discrete_log_likelihood(
            data, encoder, decoder, priors, noise_variance, seed
        )
    return continuous_log_likelihood(
        data, encoder, decoder, priors, noise_variance, seed
    )


def continuous_log_likelihood(data, encoder, decoder, priors, noise_variance, seed):
    """Importance-sampled log-likelihood of each row of ``data``.

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


# torch's forward-mode AD levels are process-wide, not per thread: two threads
# taking the decoder's Jacobian at once (Dask's threaded scheduler, joblib's
# threading backend) corrupt each other's levels and fail. One at a time.
_FORWARD_AD_LOCK = threading.Lock()


def _decode(model, z, v=None):
    """Decoder outputs of the codes ``z``, or of ``(v, z)`` with discrete parts."""
    return model.decoder(z if v is None else model.assemble(v, z))


def _log_joint(x, z, model, v=None):
    """``log p(z) + log N(x; decoder(z), var I)``, up to a constant, per candidate.

    ``x`` (n, p); candidate codes ``z`` (n, m, d), or (m, d) shared by every
    row (then decoded once); ``v`` (n, d_v) or None. Returns (n, m), ``-inf``
    off the prior's support (or where not finite).
    """
    n, m, d = x.shape[0], z.shape[-2], z.shape[-1]
    if z.dim() == 2 and v is None:
        recon = _decode(model, z)  # (m, p)
        sq = (x * x).sum(-1, keepdim=True) - 2 * x @ recon.T + (recon * recon).sum(-1)
        log_p = model.prior.log_prob(z)[None, :]
    else:
        z = z.expand(n, m, d)
        flat = z.reshape(n * m, d)
        v = None if v is None else v.repeat_interleave(m, dim=0)
        recon = _decode(model, flat, v).reshape(n, m, -1)
        sq = ((x[:, None, :] - recon) ** 2).sum(-1)
        log_p = model.prior.log_prob(flat).reshape(n, m)
    out = log_p - 0.5 * sq.clamp_min(0) / model.noise_variance
    return torch.nan_to_num(out, nan=-math.inf, posinf=-math.inf)


def _curvature(x, z, model, v=None):
    """The Gauss-Newton ascent direction on :func:`_log_joint` at ``z``, and
    the Cholesky factor of its curvature ``J^T J / var + I / var_prior``."""
    tprior, var = model.prior, model.noise_variance
    fixed = () if v is None else (v,)

    def decoder(z, *v):
        return _decode(model, z, *v)

    # (forward-mode AD state is shared between threads: one Jacobian at a time)
    with _FORWARD_AD_LOCK:
        J = torch.func.vmap(torch.func.jacfwd(decoder))(z, *fixed)  # (n, p, d)
    grad_prior = _log_prior_gradient(tprior, z)
    with torch.no_grad():
        r = x - decoder(z, *fixed)
        eye = torch.eye(z.shape[1], device=x.device)
        H = J.transpose(1, 2) @ J / var + model.prior_precision * eye
        grad = (J.transpose(1, 2) @ r.unsqueeze(-1)).squeeze(-1) / var + grad_prior
        Lh = torch.linalg.cholesky(H)  # H = Lh Lh^T; cov = H^{-1}
        step = torch.cholesky_solve(grad.unsqueeze(-1), Lh).squeeze(-1)
    return step, Lh


def _gauss_newton_proposal(x, z0, model, v=None, starts=None):
    """The proposal's mean ``mu`` and the Cholesky factor of its precision.

    ``mu`` approximates the posterior mode: the best of the start ``z0`` (the
    encoder's code, or its continuous part) and the ``starts`` (the prior's
    draws of the estimate, (m, d) shared or (n, m, d) per row; None: none) by
    :func:`_log_joint`, improved by ``_NEWTON_STEPS`` Gauss-Newton steps, each
    with a line search over ``_STEP_FRACTIONS`` that keeps the best point (so a
    step never leaves the prior's support nor lowers the log joint). The
    precision is the curvature there. ``v`` is the discrete part of the code,
    fixed per row, or None.
    """
    n, d = z0.shape
    rows = torch.arange(n, device=z0.device)
    with torch.no_grad():
        z, f = z0, _log_joint(x, z0[:, None, :], model, v)[:, 0]
        if starts is not None:
            f_starts = _log_joint(x, starts, model, v)
            best = f_starts.argmax(dim=1)
            better = f_starts[rows, best] > f
            z_starts = starts.expand(n, *starts.shape[-2:])
            z = torch.where(better[:, None], z_starts[rows, best], z)
            f = torch.where(better, f_starts[rows, best], f)
    fractions = torch.tensor(_STEP_FRACTIONS, device=z.device, dtype=z.dtype)
    for k in range(_NEWTON_STEPS + 1):
        step, Lh = _curvature(x, z, model, v)
        if k == _NEWTON_STEPS:
            break
        with torch.no_grad():
            candidates = z[:, None, :] + fractions[None, :, None] * step[:, None, :]
            fc = _log_joint(x, candidates, model, v)
            best = fc.argmax(dim=1)
            better = fc[rows, best] > f
            z = torch.where(better[:, None], candidates[rows, best], z)
            f = torch.where(better, fc[rows, best], f)
    return z, Lh


def _score_chunk(x, model, z_prior, eps):
    """Log-likelihood estimates of the rows ``x`` (on the CPU)."""
    with torch.no_grad():
        z0 = model.encoder.mean(x)
    mu, Lh = _gauss_newton_proposal(x, z0, model, starts=z_prior)
    with torch.no_grad():
        return _importance_estimate(x, model, z_prior, eps, (mu, Lh)).cpu()


def _log_gaussian(x, recon, var):
    """``log N(x; recon, var I)`` of rows ``x`` (n, p) against ``recon`` (n, S, p)."""
    p = x.shape[-1]
    sq = ((x[:, None, :] - recon) ** 2).sum(-1)
    return -0.5 * sq / var - 0.5 * p * math.log(2 * math.pi * var)


def _importance_estimate(x, model, z_prior, eps, proposal, v=None):
    """``log mean_s p(z_s) p(x | z_s) / r(z_s)`` over the defensive mixture ``r``.

    With ``v``, the discrete part of each row's code, fixed: ``z`` is the
    continuous part, ``p(z)`` its prior, ``p(x | z)`` given ``(v, z)``.
    ``z_prior`` and ``eps`` are shared by all rows, or one set per row
    (leading dimension ``n``).
    """
    tprior, var = model.prior, model.noise_variance
    mu, Lh = proposal
    n, p = x.shape
    d = eps.shape[-1]
    # z = mu + Lh^{-T} eps has covariance H^{-1}.
    z_q = mu[:, None, :] + torch.linalg.solve_triangular(
        Lh.transpose(1, 2), eps.mT.expand(n, d, eps.shape[-2]), upper=True
    ).transpose(1, 2)
    z_prior = z_prior.expand(n, *z_prior.shape[-2:])
    z = torch.cat([z_prior, z_q], dim=1)  # (n, S, d)
    S = z.shape[1]
    # log q(z | x) = log N(z; mu, H^{-1}).
    whitened = (z - mu[:, None, :]) @ Lh  # (n, S, d): Lh^T (z - mu)
    log_det_h = 2 * torch.log(torch.diagonal(Lh, dim1=-2, dim2=-1)).sum(-1)
    log_q = -0.5 * (whitened * whitened).sum(-1) + 0.5 * log_det_h[:, None]
    log_q = log_q - 0.5 * d * math.log(2 * math.pi)
    log_p = tprior.log_prob(z.reshape(n * S, d)).reshape(n, S)
    share = z_prior.shape[1] / S
    log_r = torch.logaddexp(math.log(share) + log_p, math.log1p(-share) + log_q)
    v = None if v is None else v.repeat_interleave(S, dim=0)
    recon = _decode(model, z.reshape(n * S, d), v).reshape(n, S, p)
    log_lik = _log_gaussian(x, recon, var)
    log_w = log_p + log_lik - log_r
    return torch.logsumexp(log_w, dim=1) - math.log(S)


# ------------------------------------------------------------ discrete blocks
class _Split(NamedTuple):
    """A prior's code cut into its discrete blocks and its continuous part."""

    discrete: list  # tensor-side discrete blocks, in column order
    continuous: object  # tensor-side prior of the real columns, or None
    columns: torch.Tensor  # the code's columns, discrete ones first
    order: torch.Tensor  # its inverse: code = code[:, columns][:, order]


def _leaves(tprior, start=0):
    """``(first column, block)`` of each block of a (nested) product, in order."""
    if isinstance(tprior, _TorchProduct):
        for block, columns in zip(tprior.blocks, tprior.slices, strict=True):
            yield from _leaves(block, start + columns.start)
    else:
        yield start, tprior


def _split(tprior):
    """The discrete blocks and the continuous part of ``tprior`` (a :class:`_Split`)."""
    discrete, continuous, discrete_columns, continuous_columns = [], [], [], []
    for start, block in _leaves(tprior):
        columns = list(range(start, start + block.n_dims))
        kinds = {kind for _, kind in code_support(block)}
        if kinds == {"real"}:
            continuous.append(block)
            continuous_columns += columns
        elif len(kinds) == 1 and hasattr(block, "enumerate_support"):
            discrete.append(block)
            discrete_columns += columns
        else:
            raise TypeError(
                f"A block of the prior with support {code_support(block)} has "
                "no enumerate_support(); score_samples needs it."
            )
    if len(continuous) > 1:
        continuous = [_product_tensor_prior(continuous, tprior.device, tprior.dtype)]
    columns = torch.tensor(discrete_columns + continuous_columns)
    return _Split(
        discrete=discrete,
        continuous=continuous[0] if continuous else None,
        columns=columns.to(tprior.device),
        order=torch.argsort(columns).to(tprior.device),
    )


def _is_one_hot(block):
    """Whether a discrete block is one-hot (else: binary)."""
    return code_support(block)[0][1] == "one_hot"


def _n_configurations(blocks):
    """The number of joint configurations of discrete blocks (a Python int)."""
    sizes = [b.n_dims if _is_one_hot(b) else 2**b.n_dims for b in blocks]
    return math.prod(sizes)


def _enumerate(blocks):
    """Every joint configuration of discrete blocks with positive probability.

    Returns ``(values, log_pmf)`` of shapes ``(N, d_discrete)`` and ``(N,)``.
    """
    values, log_pmf = blocks[0].enumerate_support()
    for block in blocks[1:]:
        v, lp = block.enumerate_support()
        n, m = values.shape[0], v.shape[0]
        values = torch.cat([values.repeat_interleave(m, 0), v.repeat(n, 1)], dim=1)
        log_pmf = (log_pmf[:, None] + lp[None, :]).reshape(-1)
    keep = torch.isfinite(log_pmf)
    return values[keep], log_pmf[keep]


def _discrete_log_pmf(blocks, values):
    """The prior's log pmf of discrete parts ``values`` (..., d_discrete)."""
    shape, d = values.shape[:-1], values.shape[-1]
    flat, out, start = values.reshape(-1, d), 0, 0
    for block in blocks:
        out = out + block.log_prob(flat[:, start : start + block.n_dims])
        start += block.n_dims
    return out.reshape(shape)


def _proposal_log_pmf(blocks, values, probs):
    """``log q(v)`` of discrete parts ``values`` (n, S, d) under ``probs`` (n, d).

    ``probs`` are the encoder's codes of the discrete columns: each one-hot
    block's category probabilities, each bit's probability of a 1.
    """
    out, start = 0, 0
    for block in blocks:
        stop = start + block.n_dims
        v, q = values[..., start:stop], probs[:, None, start:stop]
        if _is_one_hot(block):
            out = out + torch.log((v * q).sum(-1))
        else:
            out = out + torch.where(v == 1, torch.log(q), torch.log1p(-q)).sum(-1)
        start = stop
    return out


def _encoder_probabilities(blocks, codes):
    """The encoder's codes of the discrete columns as valid probabilities."""
    out, start = [], 0
    for block in blocks:
        q = codes[:, start : start + block.n_dims].clamp(0, 1)
        start += block.n_dims
        if _is_one_hot(block):
            total = q.sum(-1, keepdim=True)
            q = torch.where(total > 0, q / total.clamp_min(1e-30), 1 / q.shape[1])
        out.append(q)
    return torch.cat(out, dim=1)


def _proposal_draws(blocks, probs, uniforms):
    """Discrete parts drawn from ``probs`` (n, d) with ``uniforms`` (S, n_u)."""
    out, start, u = [], 0, 0
    for block in blocks:
        q = probs[:, None, start : start + block.n_dims]  # (n, 1, k)
        if _is_one_hot(block):
            cdf = q.cumsum(-1)
            k = (cdf < uniforms[None, :, u, None]).sum(-1).clamp_max(block.n_dims - 1)
            out.append(torch.nn.functional.one_hot(k, block.n_dims).to(q.dtype))
            u += 1
        else:
            bits = uniforms[None, :, u : u + block.n_dims] < q
            out.append(bits.to(q.dtype))
            u += block.n_dims
        start += block.n_dims
    return torch.cat(out, dim=-1)


def _latin_hypercube(n, d, generator):
    """``n`` points in ``[0, 1)^d``, each column stratified: one per ``1/n`` interval.

    Each point is uniform on the cube (the estimate stays unbiased), but the
    draws of each bit (each category's) come in near-exact proportions.
    """
    rand = torch.rand(n, d, generator=generator, dtype=torch.float64)
    strata = torch.stack([torch.randperm(n, generator=generator) for _ in range(d)], 1)
    return ((strata + rand) / n).to(torch.float32)


def discrete_log_likelihood(data, encoder, decoder, priors, noise_variance, seed):
    """Log-likelihood of each row of ``data`` under a prior with discrete blocks.

    ``log p(x) = log sum_v p(v) p(x | v)`` over the joint configurations ``v``
    of the discrete blocks (one-hot vertices, bit patterns), with
    ``p(x | v) = E_{z ~ p_c} N(x; decoder(v, z), noise_variance I)`` over the
    continuous blocks ``z`` (exact when there are none).

    - At most ``limit`` configurations (``_MAX_ENUMERATION``, or
      ``_MAX_ENUMERATION_BESIDE_CONTINUOUS`` with continuous blocks): the sum
      over ``v`` is exact (configurations of probability 0 are left out).
    - More: ``v`` is importance-sampled, ``limit`` draws per row from a
      defensive mixture of the prior (1/8) and the encoder's probabilities
      (its code's discrete columns: each one-hot block a categorical, each
      bit independent).
    - Each ``p(x | v)`` is importance-sampled as in
      :func:`continuous_log_likelihood`, around a posterior mode given ``v``
      sought from the continuous part of the encoder's code (and the prior's
      draws), with
      ``min(_N_IMPORTANCE, _CONTINUOUS_BUDGET // n_v)`` samples for each of
      the ``n_v`` configurations of a row.

    Every draw is a common random number from ``seed``. The parameters and
    the result are those of :func:`continuous_log_likelihood`.
    """
    cpu_prior, tprior = priors
    device = data.device
    split, cpu_split = _split(tprior), _split(cpu_prior)
    g = torch.Generator().manual_seed(int(seed))
    if split.continuous is None:
        limit = _MAX_ENUMERATION
    else:
        limit = _MAX_ENUMERATION_BESIDE_CONTINUOUS
    enumerate_all = _n_configurations(split.discrete) <= limit
    if enumerate_all:
        values, log_pmf = _enumerate(split.discrete)
        n_configurations = values.shape[0]
    else:
        n_configurations = limit
    # The continuous part's common random numbers (the same for every row).
    z_prior = eps = None
    n_continuous = 1
    if split.continuous is not None:
        n_continuous = min(_N_IMPORTANCE, _CONTINUOUS_BUDGET // n_configurations)
        n_prior = int(round(_DEFENSIVE_PRIOR_SHARE * n_continuous))
        # One set per configuration (slot): repeated draws of a configuration
        # average independent estimates.
        d_continuous, J = split.continuous.n_dims, n_configurations
        z_prior = cpu_split.continuous.sample(J * n_prior, g)
        z_prior = z_prior.reshape(J, n_prior, d_continuous).to(device)
        eps = torch.randn(J, n_continuous - n_prior, d_continuous, generator=g)
        eps = eps.to(device)
    if not enumerate_all:
        # The discrete part's: draws from the prior, uniforms for the encoder's.
        n_prior = max(1, int(round(_DEFENSIVE_PRIOR_SHARE * n_configurations)))
        v_prior = torch.cat([b.sample(n_prior, g) for b in cpu_split.discrete], 1)
        n_uniforms = sum(1 if _is_one_hot(b) else b.n_dims for b in split.discrete)
        uniforms = _latin_hypercube(n_configurations - n_prior, n_uniforms, g)
        v_prior, uniforms = v_prior.to(device), uniforms.to(device)
    model = _Model(
        encoder,
        decoder,
        split.continuous,
        noise_variance,
        None if split.continuous is None else 1.0 / split.continuous.variance(),
        lambda v, z: torch.cat([v, z], dim=-1)[..., split.order],
    )
    out = []
    rows = max(1, _SCORE_BATCH // (n_configurations * n_continuous))
    for x in data.chunks(rows):
        with torch.no_grad():
            codes = encoder.mean(x)[:, split.columns]  # [discrete, continuous]
        d_discrete = sum(b.n_dims for b in split.discrete)
        n = x.shape[0]
        if enumerate_all:
            v = values.expand(n, *values.shape)
            log_w = log_pmf.expand(n, -1)
        else:
            probs = _encoder_probabilities(split.discrete, codes[:, :d_discrete])
            v_q = _proposal_draws(split.discrete, probs, uniforms)
            v = torch.cat([v_prior.expand(n, *v_prior.shape), v_q], dim=1)
            log_p = _discrete_log_pmf(split.discrete, v)
            log_q = _proposal_log_pmf(split.discrete, v, probs)
            share = v_prior.shape[0] / n_configurations
            log_r = torch.logaddexp(math.log(share) + log_p, math.log1p(-share) + log_q)
            log_w = log_p - log_r - math.log(n_configurations)
        J = v.shape[1]
        v = v.reshape(n * J, -1)
        x_rep = x.repeat_interleave(J, dim=0)
        if split.continuous is None:
            with torch.no_grad():
                recon = _decode(model, v[:, :0], v)
                log_given_v = _log_gaussian(x_rep, recon[:, None, :], noise_variance)
        else:
            z0 = codes[:, d_discrete:].repeat_interleave(J, dim=0)
            z_prior_rows = z_prior.repeat(n, 1, 1)
            proposal = _gauss_newton_proposal(x_rep, z0, model, v, z_prior_rows)
            with torch.no_grad():
                log_given_v = _importance_estimate(
                    x_rep, model, z_prior_rows, eps.repeat(n, 1, 1), proposal, v
                )
        log_given_v = log_given_v.reshape(n, J)
        out.append(torch.logsumexp(log_w + log_given_v, dim=1).cpu())
    return torch.cat(out).numpy().astype(np.float64)
