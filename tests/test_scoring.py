"""The log-likelihood of rows: its strategies per prior, against brute force.

Problems are small enough for a brute-force answer: an exact finite sum over
the discrete configurations and, for a continuous block, a fine quadrature
grid (36001 points on [-9, 9], in float64). The networks are fixed: a
nonlinear decoder (tanh) and an untrained encoder (a poor proposal start, the
hard case), called through ``_scoring.log_likelihood`` as the estimators do.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV
from sklearn.utils._testing import assert_allclose, assert_array_equal

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, _scoring
from sklearn_aae._data import _Data
from sklearn_aae._networks import build_networks
from sklearn_aae._torch_priors import code_support, tensor_prior
from sklearn_aae.priors import (
    BernoulliPrior,
    CategoricalPrior,
    GaussianPrior,
    LaplacePrior,
    ProductPrior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CPU = torch.device("cpu")
NOISE_VARIANCE = 0.05
N_FEATURES = 4
X_DIGITS = load_digits().data[:120] / 16.0
FAST = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=40, device="cpu")


def _decoder(n_components, seed, dtype=torch.float32):
    """A fixed nonlinear decoder: Linear, tanh, Linear."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dec = torch.nn.Sequential(
            torch.nn.Linear(n_components, 16),
            torch.nn.Tanh(),
            torch.nn.Linear(16, N_FEATURES),
        )
    with torch.no_grad():
        dec[0].weight.mul_(2.0)
    return dec.to(dtype)


def _score(prior, n_components, rows, decoder_seed, seed=0, encoder="gaussian"):
    """``log_likelihood`` of ``rows`` with the fixed networks, and the decoder."""
    heads = code_support(tensor_prior(prior, n_components))
    enc, _ = build_networks(
        N_FEATURES, n_components, (8,), "relu", encoder, seed=0, heads=heads
    )
    dec = _decoder(n_components, decoder_seed)
    priors = tuple(tensor_prior(prior, n_components, CPU) for _ in range(2))
    data = _Data(rows, CPU, stream=True)
    return _scoring.log_likelihood(data, enc, dec, priors, NOISE_VARIANCE, seed)


def _log_gaussian(X, R):
    """``log N(x; r, NOISE_VARIANCE I)`` for rows X (n, p), means R (m, p): (n, m)."""
    sq = ((X[:, None, :] - R[None]) ** 2).sum(-1)
    return -0.5 * sq / NOISE_VARIANCE - 0.5 * N_FEATURES * math.log(
        2 * math.pi * NOISE_VARIANCE
    )


def _decode64(codes, decoder_seed):
    with torch.no_grad():
        dec = _decoder(codes.shape[1], decoder_seed, torch.float64)
        return dec(torch.as_tensor(codes, dtype=torch.float64)).numpy()


def _rows(codes, decoder_seed, seed=0):
    """Rows of the generative model from the given codes."""
    rng = np.random.RandomState(seed)
    R = _decode64(codes, decoder_seed)
    return R + rng.normal(scale=math.sqrt(NOISE_VARIANCE), size=R.shape)


def _bits(m):
    """The 2^m bit patterns, in binary counting order."""
    return np.array([[(i >> (m - 1 - j)) & 1 for j in range(m)] for i in range(2**m)])


# ------------------------------------------------------------- a one-hot class
# beside a 1-D Gaussian style: 1 + K dimensions.
K, WEIGHTS, CAT_DECODER = 3, np.array([0.5, 0.3, 0.2]), 0
CAT_GAUSS = ProductPrior(
    [("class", CategoricalPrior(K, weights=WEIGHTS)), ("style", GaussianPrior())]
)


def _cat_gauss_rows(n=40):
    rng = np.random.RandomState(0)
    codes = np.c_[np.eye(K)[rng.choice(K, size=n, p=WEIGHTS)], rng.normal(size=n)]
    return _rows(codes, CAT_DECODER)


def _cat_gauss_quadrature(X):
    grid = np.linspace(-9, 9, 36001)
    log_w = -0.5 * grid**2 - 0.5 * math.log(2 * math.pi) + math.log(grid[1] - grid[0])
    terms = []
    for k in range(K):
        codes = np.c_[np.tile(np.eye(K)[k], (grid.size, 1)), grid]
        log_lik = _log_gaussian(X, _decode64(codes, CAT_DECODER))
        terms.append(math.log(WEIGHTS[k]) + np.logaddexp.reduce(log_lik + log_w, 1))
    return np.logaddexp.reduce(np.stack(terms, 1), axis=1)


# ---------------------------------------------------------- Bernoulli(3) alone
P_BITS, BITS_DECODER = np.array([0.2, 0.5, 0.7]), 1


def _bits_rows(n=30):
    return _rows(_bits(3)[np.random.RandomState(0).randint(8, size=n)], BITS_DECODER)


def _bits_exact(X):
    V = _bits(3)
    log_pmf = (V * np.log(P_BITS) + (1 - V) * np.log1p(-P_BITS)).sum(1)
    return np.logaddexp.reduce(log_pmf + _log_gaussian(X, _decode64(V, 1)), axis=1)


# ----------------------------------------------------- Bernoulli(3) x Gaussian
BITS_GAUSS = ProductPrior(
    [("bits", BernoulliPrior(3, p=P_BITS)), ("style", GaussianPrior())]
)
BITS_GAUSS_DECODER = 2


def _bits_gauss_rows(n=40):
    rng = np.random.RandomState(0)
    codes = np.c_[_bits(3)[rng.randint(8, size=n)], rng.normal(size=n)]
    return _rows(codes, BITS_GAUSS_DECODER)


def _bits_gauss_quadrature(X):
    grid = np.linspace(-9, 9, 36001)
    log_w = -0.5 * grid**2 - 0.5 * math.log(2 * math.pi) + math.log(grid[1] - grid[0])
    V = _bits(3)
    log_pmf = (V * np.log(P_BITS) + (1 - V) * np.log1p(-P_BITS)).sum(1)
    terms = []
    for v, lp in zip(V, log_pmf, strict=True):
        codes = np.c_[np.tile(v, (grid.size, 1)), grid]
        log_lik = _log_gaussian(X, _decode64(codes, BITS_GAUSS_DECODER))
        terms.append(lp + np.logaddexp.reduce(log_lik + log_w, 1))
    return np.logaddexp.reduce(np.stack(terms, 1), axis=1)


@pytest.fixture
def force_fallback(monkeypatch):
    """Too many configurations to enumerate, whatever the prior."""
    monkeypatch.setattr(_scoring, "_n_configurations", lambda blocks: 10**9)

    def no_enumeration(blocks):
        raise AssertionError("enumerated")

    monkeypatch.setattr(_scoring, "_enumerate", no_enumeration)


# ------------------------------------------------------------------- support
@pytest.mark.parametrize(
    "prior",
    [CategoricalPrior(4, weights=[0.1, 0.2, 0.3, 0.4]), BernoulliPrior(3, p=P_BITS)],
    ids=["categorical", "bernoulli"],
)
def test_enumerate_support_lists_the_support_with_its_pmf(prior):
    tprior = tensor_prior(prior, dtype=torch.float64)
    values, log_pmf = tprior.enumerate_support()
    assert values.shape[0] == len({tuple(v) for v in values.tolist()})
    assert torch.isfinite(tprior.log_prob(values)).all()
    assert_allclose(log_pmf, tprior.log_prob(values))
    assert float(torch.logsumexp(log_pmf, 0)) == pytest.approx(0.0, abs=1e-12)


def test_configurations_multiply_over_discrete_blocks():
    prior = ProductPrior(
        [
            ("class", CategoricalPrior(10)),
            ("bits", BernoulliPrior(3)),
            ("style", GaussianPrior()),
        ]
    )
    split = _scoring._split(tensor_prior(prior, 15))
    assert _scoring._n_configurations(split.discrete) == 80
    assert split.continuous.n_dims == 2
    values, log_pmf = _scoring._enumerate(split.discrete)
    assert values.shape == (80, 13)
    assert float(torch.logsumexp(log_pmf, 0)) == pytest.approx(0.0, abs=1e-5)


def test_all_real_codes_take_the_continuous_path(monkeypatch):
    def refuse(*args):
        raise AssertionError("discrete path")

    monkeypatch.setattr(_scoring, "discrete_log_likelihood", refuse)
    prior = ProductPrior(
        [("a", GaussianPrior(scale=[1.0, 2.0])), ("b", LaplacePrior())]
    )
    X = np.random.RandomState(0).normal(size=(5, N_FEATURES))
    assert np.all(np.isfinite(_score(prior, 3, X, decoder_seed=0)))


# --------------------------------------------------------- against brute force
@pytest.mark.parametrize("encoder", ["gaussian", "deterministic"])
def test_categorical_gaussian_score_matches_quadrature(encoder):
    # Exact over the K vertices, importance-sampled in the style given each.
    # Measured over seeds 0-4 for both encoders (untrained: a poor start for
    # the Gauss-Newton proposal): max per-row error <= 0.31 nats, error of the
    # mean <= 0.026 nats.
    X = _cat_gauss_rows()
    expected = _cat_gauss_quadrature(X)
    scores = _score(CAT_GAUSS, K + 1, X, CAT_DECODER, encoder=encoder)
    assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
    assert_allclose(scores, expected, rtol=0, atol=0.5)
    assert np.mean(scores) == pytest.approx(np.mean(expected), abs=0.05)


def test_categorical_gaussian_score_converges_with_more_samples(monkeypatch):
    # The remaining error is Monte Carlo: 16 times the samples shrink it.
    # Measured: max per-row error 0.12 nats, error of the mean 0.001 nats.
    monkeypatch.setattr(_scoring, "_N_IMPORTANCE", 2048)
    monkeypatch.setattr(_scoring, "_CONTINUOUS_BUDGET", 2**20)
    X = _cat_gauss_rows()
    scores = _score(CAT_GAUSS, K + 1, X, CAT_DECODER, encoder="deterministic")
    expected = _cat_gauss_quadrature(X)
    assert_allclose(scores, expected, rtol=0, atol=0.2)
    assert np.mean(scores) == pytest.approx(np.mean(expected), abs=0.01)


def test_bernoulli_score_is_the_exact_sum():
    # No continuous block: a finite sum, exact up to float32 decoding (7.6e-7).
    X = _bits_rows()
    scores = _score(BernoulliPrior(3, p=P_BITS), 3, X, BITS_DECODER)
    assert_allclose(scores, _bits_exact(X), rtol=0, atol=1e-5)
    # ... so it does not depend on the seed.
    other = _score(BernoulliPrior(3, p=P_BITS), 3, X, BITS_DECODER, seed=3)
    assert_array_equal(other, scores)


def test_categorical_score_is_the_exact_sum_and_skips_impossible_categories():
    weights = np.array([0.6, 0.0, 0.4])
    prior = CategoricalPrior(3, weights=weights)
    X = _rows(np.eye(3)[[0, 2, 1, 0]], decoder_seed=3)
    R = _decode64(np.eye(3), decoder_seed=3)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    expected = np.logaddexp.reduce(log_w + _log_gaussian(X, R), axis=1)
    assert_allclose(_score(prior, 3, X, decoder_seed=3), expected, rtol=0, atol=1e-5)


def test_fallback_agrees_with_the_exact_sum(force_fallback):
    # 1024 draws of the bits per row, from the encoder's sigmoid probabilities
    # (untrained: near 1/2) mixed with the prior, stratified. Measured over seeds
    # 0-4: max per-row error <= 0.11 nats, error of the mean <= 0.007 nats.
    X = _bits_rows()
    scores = _score(BernoulliPrior(3, p=P_BITS), 3, X, BITS_DECODER)
    expected = _bits_exact(X)
    assert_allclose(scores, expected, rtol=0, atol=0.2)
    assert np.mean(scores) == pytest.approx(np.mean(expected), abs=0.02)


def test_fallback_beside_a_continuous_block_matches_quadrature(force_fallback):
    # 128 draws of the bits per row, 64 style samples each. Measured over
    # seeds 0-4: max per-row error <= 0.09 nats, error of the mean <= 0.04
    # nats (the enumeration's own: 0.13 and 0.007).
    X = _bits_gauss_rows()
    scores = _score(BITS_GAUSS, 4, X, BITS_GAUSS_DECODER)
    expected = _bits_gauss_quadrature(X)
    assert_allclose(scores, expected, rtol=0, atol=0.2)
    assert np.mean(scores) == pytest.approx(np.mean(expected), abs=0.06)


def test_many_bits_fall_back_and_stay_finite(monkeypatch):
    # 2^11 = 2048 patterns: over the limit of 1024, so the bits are sampled.
    def no_enumeration(blocks):
        raise AssertionError("enumerated")

    monkeypatch.setattr(_scoring, "_enumerate", no_enumeration)
    X = np.random.RandomState(0).normal(size=(6, N_FEATURES))
    scores = _score(BernoulliPrior(11), 11, X, decoder_seed=0)
    assert np.all(np.isfinite(scores))


# ------------------------------------------------------------ the estimators
# The style first: the discrete columns are not the leading ones.
STYLE_CLASS_BITS = ProductPrior(
    [
        ("style", GaussianPrior()),
        ("class", CategoricalPrior(2)),
        ("bits", BernoulliPrior(3)),
    ]
)
ESTIMATORS = [
    MMDAutoencoder(n_components=7, prior=STYLE_CLASS_BITS, **FAST),
    AdversarialAutoencoder(
        n_components=7,
        prior=STYLE_CLASS_BITS,
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
    MMDAutoencoder(n_components=4, prior=BernoulliPrior(4), **FAST),
]


@pytest.mark.parametrize(
    "est", ESTIMATORS, ids=lambda e: f"{type(e).__name__}-{type(e.prior).__name__}"
)
def test_score_with_discrete_blocks_is_finite_and_a_function_of_each_row(est):
    est = est.set_params(encoder="gaussian", random_state=0).fit(X_DIGITS)
    scores = est.score_samples(X_DIGITS[:40])
    assert scores.shape == (40,) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    assert_allclose(est.score_samples(X_DIGITS[:7]), scores[:7], rtol=1e-5)
    assert est.score(X_DIGITS[:40]) == pytest.approx(scores.mean())


def test_grid_search_default_scorer_with_discrete_priors():
    est = MMDAutoencoder(n_components=7, prior=STYLE_CLASS_BITS, random_state=0, **FAST)
    grid = GridSearchCV(est, {"reg_weight": [0.1, 1.0]}, cv=2).fit(X_DIGITS)
    assert np.all(np.isfinite(grid.cv_results_["mean_test_score"]))


def test_score_samples_is_thread_safe():
    # torch's forward-mode AD levels (the decoder's Jacobian) are process-wide:
    # scoring from several threads at once (Dask's threaded scheduler,
    # joblib's threading backend) must give each thread its own result. A
    # decoder that sleeps (releasing the GIL) makes the threads interleave
    # inside the Jacobian every time.
    import time
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.RandomState(0)
    X = rng.rand(100, 6)
    est = MMDAutoencoder(
        hidden_layer_sizes=(8,), max_iter=1, device="cpu", random_state=0
    ).fit(X)
    expected = est.score_samples(X)
    handle = est.decoder_.register_forward_pre_hook(lambda m, a: time.sleep(0.01))
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: est.score_samples(X), range(4)))
    finally:
        handle.remove()
    for result in results:
        assert_array_equal(result, expected)
