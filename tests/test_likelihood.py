"""score_samples against the exact log-likelihood, computed by quadrature.

The generative model is ``z ~ prior``, ``x | z ~ N(decoder(z), noise_variance_ I)``,
so ``log p(x) = log \\int p(z) N(x; decoder(z), noise_variance_ I) dz``. With one
or two latent dimensions that integral is computed here on a fine grid, in
float64, from the public fitted attributes (``decoder_``, ``noise_variance_``,
``prior_``), and compared with the importance-sampling estimate of
``score_samples``. The decoders are nonlinear (tanh), trained on data on a
curved manifold, so the posterior is not Gaussian and the proposal is not exact.
"""

import copy

import numpy as np
import pytest
import torch
from scipy import sparse
from scipy.special import logsumexp
from sklearn.utils._testing import assert_allclose

from sklearn_aae import (
    AdversarialAutoencoder,
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    MMDAutoencoder,
    UniformPrior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Small tanh networks, trained long enough that the codes follow the prior.
NONLINEAR = dict(
    hidden_layer_sizes=(16,),
    activation="tanh",
    batch_size=50,
    learning_rate_init=1e-2,
    n_iter_no_change=10,
    device="cpu",
    random_state=0,
)
# The tolerances below were measured at the regulariser settings that were the
# defaults before the defaults issue (MMD reg_weight=1.0; discriminator
# learning rate 1e-3); they are pinned here.
MMD_REGULARISER = dict(reg_weight=1.0)
ADVERSARIAL = dict(
    discriminator_hidden_layer_sizes=(16,), discriminator_learning_rate=1e-3
)


def _curved_data(n_samples, n_dims, seed=0):
    """Rows on a curved ``n_dims``-manifold in ``4 * n_dims`` features, plus noise."""
    rng = np.random.RandomState(seed)
    t = rng.uniform(-1.5, 1.5, size=(n_samples, n_dims))
    X = np.concatenate([np.sin(2 * t), np.cos(1.5 * t), t, t**2 / 2], axis=1)
    return X + 0.05 * rng.normal(size=X.shape)


def _grid(prior, n_dims, n_points):
    """A product grid covering the prior's mass, and the log-volume of a cell.

    The uniform prior gets the midpoint rule on its box (the density jumps at
    the edges); the others a grid wide enough that the prior's mass beyond it
    is below 1e-12.
    """
    if isinstance(prior, UniformPrior):
        low, high = prior.low, prior.high
        step = (high - low) / n_points
        axis = low + step * (np.arange(n_points) + 0.5)
    else:
        half_width = 25.0 if isinstance(prior, LaplacePrior) else 8.0
        axis = np.linspace(-half_width, half_width, n_points)
        step = axis[1] - axis[0]
    Z = np.stack(np.meshgrid(*[axis] * n_dims, indexing="ij"), -1)
    return Z.reshape(-1, n_dims), n_dims * np.log(step)


def log_likelihood_by_quadrature(est, X, n_points):
    """``log p(x)`` of each row of X under the fitted model, by a grid over z."""
    Z, log_cell = _grid(est.prior_, est.n_components, n_points)
    log_prior = est.prior_.log_prob(Z)
    inside = np.isfinite(log_prior)
    Z, log_prior = Z[inside], log_prior[inside]
    decoder = copy.deepcopy(est.decoder_).double()
    with torch.no_grad():
        decoded = decoder(torch.from_numpy(Z)).numpy()
    var, n_features = est.noise_variance_, X.shape[1]
    log_norm = -0.5 * n_features * np.log(2 * np.pi * var) + log_cell
    return np.array(
        [
            logsumexp(log_prior - 0.5 * ((decoded - x) ** 2).sum(1) / var) + log_norm
            for x in X
        ]
    )


def _on_and_off_manifold_rows(X):
    """20 training rows, and 5 rows pushed off the manifold (held-out-like)."""
    return X[:20], X[:5] + 0.3


def _fit(Estimator, prior, n_components, seed=0):
    X = _curved_data(300, n_components, seed)
    extra = ADVERSARIAL if Estimator is AdversarialAutoencoder else MMD_REGULARISER
    params = {**NONLINEAR, "random_state": seed, **extra}
    est = Estimator(n_components=n_components, prior=prior, max_iter=60, **params)
    return est.fit(X), X


# (id, estimator, prior, n_components, grid points per axis, tolerances).
# The tolerances are in nats, from the errors of the 128-sample importance-
# sampling estimate measured on these fits with seeds 0-4 (seed 0 is tested),
# with a margin of about 2x: per-row error on training rows, |mean error| on
# training rows, per-row error on the off-manifold rows. They are Monte Carlo
# errors of a fixed set of common random numbers: the grid's own error,
# measured against a grid 2x finer (1-D) or 1.5x finer (2-D), is below 3e-4
# nats in every case. They were measured with the proposal centred at the
# posterior mode found by the mode search; centred one Gauss-Newton step from
# the encoder's code (before), the worst errors were 1.3-40x larger
# (mmd-gaussian-1d off the manifold: 0.92 nats, now 0.022; mmd-uniform-1d on
# training rows: 4.1 on seed 1, now 0.12).
QUADRATURE_CASES = [
    # measured: train <= 0.031, |mean| <= 0.004, off <= 0.022
    ("mmd-gaussian-1d", MMDAutoencoder, GaussianPrior(), 1, 20001, (0.07, 0.01, 0.05)),
    # measured: train <= 0.042, |mean| <= 0.004, off <= 0.033
    (
        "mmd-mixture-1d",
        MMDAutoencoder,
        GaussianMixturePrior(means=[[-1.5], [1.5]], covariances=0.3),
        1,
        20001,
        (0.1, 0.01, 0.08),
    ),
    # measured: train <= 0.038, |mean| <= 0.008, off <= 0.042
    ("mmd-laplace-1d", MMDAutoencoder, LaplacePrior(), 1, 20001, (0.08, 0.02, 0.1)),
    # measured: train <= 0.12, |mean| <= 0.008, off <= 0.11
    ("mmd-uniform-1d", MMDAutoencoder, UniformPrior(), 1, 20001, (0.25, 0.02, 0.25)),
    # measured: train <= 0.026, |mean| <= 0.006, off <= 0.028
    (
        "aae-gaussian-1d",
        AdversarialAutoencoder,
        GaussianPrior(),
        1,
        20001,
        (0.06, 0.015, 0.06),
    ),
    # measured: train <= 0.031, |mean| <= 0.005, off <= 0.051
    (
        "aae-laplace-1d",
        AdversarialAutoencoder,
        LaplacePrior(),
        1,
        20001,
        (0.07, 0.012, 0.1),
    ),
    # measured: train <= 0.046, |mean| <= 0.006, off <= 0.088
    ("mmd-gaussian-2d", MMDAutoencoder, GaussianPrior(), 2, 401, (0.1, 0.015, 0.2)),
    # measured: train <= 0.73, |mean| <= 0.044, off <= 1.70 (seed 4: a curved
    # posterior that the Gaussian proposal covers poorly; seed 0: 0.040)
    (
        "mmd-ring-2d",
        MMDAutoencoder,
        GaussianMixturePrior.ring(),
        2,
        401,
        (1.5, 0.1, 3.5),
    ),
]


@pytest.mark.parametrize(
    "Estimator, prior, n_components, n_points, tolerances",
    [case[1:] for case in QUADRATURE_CASES],
    ids=[case[0] for case in QUADRATURE_CASES],
)
def test_score_samples_matches_quadrature_with_nonlinear_decoder(
    Estimator, prior, n_components, n_points, tolerances
):
    train_atol, mean_atol, off_atol = tolerances
    est, X = _fit(Estimator, prior, n_components)
    on, off = _on_and_off_manifold_rows(X)
    expected_on = log_likelihood_by_quadrature(est, on, n_points)
    expected_off = log_likelihood_by_quadrature(est, off, n_points)
    scores_on = est.score_samples(on)
    assert_allclose(scores_on, expected_on, rtol=0, atol=train_atol)
    assert abs(np.mean(scores_on - expected_on)) < mean_atol
    assert_allclose(est.score_samples(off), expected_off, rtol=0, atol=off_atol)


# Fits where the posterior mass lies far from the encoder's code: training rows
# of an AdversarialAutoencoder whose codes leave the uniform prior's box (the
# posterior sits at the box's edge, 0.4-1.8 from the code, with a standard
# deviation of 0.003); off-manifold rows of an MMDAutoencoder with the ring
# prior, one of whose codes falls in the gap between two components, 3-4
# posterior standard deviations from the mass (on one of them). A proposal
# centred one Gauss-Newton step from the code missed that mass: the estimate
# was up to 85 and 50 nats too low. The mode search from the best of the code
# and the prior's draws finds it. Measured per-row error, this seed (seeds
# 0-4): 0.43 (<= 0.84) nats and 0.043 (<= 1.70, a curved posterior on seed 4)
# nats; |mean error| 0.015 (<= 0.094) and 0.013 (<= 0.044). Tolerances: 2x
# the measured error or more, far below the old errors.
POSTERIOR_FAR_FROM_CODE = [
    pytest.param(
        AdversarialAutoencoder, UniformPrior(), 1, 0, 0, 1.0, id="aae-uniform-1d"
    ),
    pytest.param(
        MMDAutoencoder, GaussianMixturePrior.ring(), 2, 3, 1, 0.25, id="mmd-ring-2d"
    ),
]


@pytest.mark.parametrize(
    "Estimator, prior, n_components, seed, which, atol", POSTERIOR_FAR_FROM_CODE
)
def test_score_samples_matches_quadrature_when_posterior_is_far_from_the_code(
    Estimator, prior, n_components, seed, which, atol
):
    est, X = _fit(Estimator, prior, n_components, seed)
    rows = _on_and_off_manifold_rows(X)[which]
    expected = log_likelihood_by_quadrature(
        est, rows, 20001 if n_components == 1 else 401
    )
    scores = est.score_samples(rows)
    assert_allclose(scores, expected, rtol=0, atol=atol)
    assert abs(np.mean(scores - expected)) < 0.05


# ------------------------------------------------------------ chunk boundaries
CHUNK_CASES = [
    *[
        (Estimator, encoder, "dense")
        for Estimator in (MMDAutoencoder, AdversarialAutoencoder)
        for encoder in ("deterministic", "gaussian", "universal")
    ],
    (MMDAutoencoder, "deterministic", "csr"),
    (AdversarialAutoencoder, "deterministic", "csr"),
]


@pytest.mark.parametrize("Estimator, encoder, kind", CHUNK_CASES)
def test_score_samples_is_the_same_across_chunk_boundaries(Estimator, encoder, kind):
    # score_samples works through the rows 512 at a time; 1,100 rows span three
    # chunks. Each row's score must not depend on which chunk it falls in, nor on
    # its neighbours: the whole array, batches of 100 (other chunk boundaries)
    # and single rows at the boundaries agree. Measured: bit-identical on the
    # CPU; asserted to 1e-6 relative.
    X = _curved_data(1100, 2)
    extra = ADVERSARIAL if Estimator is AdversarialAutoencoder else MMD_REGULARISER
    est = Estimator(
        n_components=2, encoder=encoder, max_iter=2, **NONLINEAR, **extra
    ).fit(X[:300])
    X_in = sparse.csr_matrix(X) if kind == "csr" else X
    whole = est.score_samples(X_in)
    batches = np.concatenate(
        [est.score_samples(X_in[i : i + 100]) for i in range(0, 1100, 100)]
    )
    assert_allclose(whole, batches, rtol=1e-6)
    for i in [0, 511, 512, 1023, 1024, 1099]:
        assert_allclose(est.score_samples(X_in[i : i + 1]), whole[i : i + 1], rtol=1e-6)
