"""Tests of sklearn_aae._kernels: kernels, closed-form kernel means, MMD estimators.

Monte Carlo checks compare a closed form with the mean of ``N_MC`` kernel
evaluations and accept an absolute difference of ``N_SE`` standard errors of
that mean (plus 1e-12 for round-off), so a correct closed form fails with
probability below 1e-6 per comparison; the seeds are fixed, so the tests are
deterministic.
"""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.spatial.distance import cdist

from sklearn_aae import mmd_to_prior
from sklearn_aae._kernels import (
    bernoulli_rbf_log_mean,
    bernoulli_rbf_log_mean_prior,
    categorical_rbf_log_mean_prior,
    categorical_rbf_log_terms,
    gaussian_mixture_rbf_factors,
    gaussian_mixture_rbf_mean,
    gaussian_mixture_rbf_mean_prior,
    imq_kernel,
    imq_rbf_quadrature,
    kernel_from_distances,
    laplace_rbf_log_mean,
    laplace_rbf_log_mean_prior,
    mmd2_unbiased,
    prior_kernel_terms,
    rbf_kernel,
    rbf_u_statistic,
    squared_distances,
    uniform_rbf_log_mean,
    uniform_rbf_log_mean_prior,
)
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae.priors import (
    BernoulliPrior,
    CategoricalPrior,
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    ProductPrior,
    UniformPrior,
)

N_MC = 100_000
N_SE = 5.0

# Bandwidths in units of sqrt(d) (as the estimators' 'auto' bandwidth scales):
# single scales, small to large, and multi-scale lists.
BANDWIDTHS = [0.3, 1.0, 3.0, [0.5, 1.0, 2.0], [0.2, 5.0]]


def _spd(rng, d, scale=1.0):
    A = rng.normal(size=(d, d))
    return scale * (A @ A.T / d + 0.2 * np.eye(d))


def make_prior(name, d):
    """A prior of dimension ``d`` for each named family (seeded, deterministic)."""
    rng = np.random.RandomState(d)
    if name == "gaussian-isotropic":
        return GaussianPrior()
    if name == "gaussian-diagonal":
        return GaussianPrior(loc=rng.normal(size=d), scale=rng.uniform(0.5, 2.0, d))
    if name == "mixture-diagonal":
        return GaussianMixturePrior(
            means=2.0 * rng.normal(size=(3, d)),
            covariances=rng.uniform(0.2, 1.5, size=(3, d)),
            weights=[0.2, 0.3, 0.5],
        )
    if name == "mixture-full":
        return GaussianMixturePrior(
            means=2.0 * rng.normal(size=(2, d)),
            covariances=np.stack([_spd(rng, d), _spd(rng, d, 0.5)]),
            weights=[0.7, 0.3],
        )
    if name == "ring":
        return GaussianMixturePrior.ring()
    if name == "laplace":
        return LaplacePrior()
    if name == "laplace-vector":
        return LaplacePrior(loc=rng.normal(size=d), scale=rng.uniform(0.3, 2.0, d))
    if name == "uniform":
        return UniformPrior()
    if name == "uniform-vector":
        low = rng.normal(size=d)
        return UniformPrior(low=low, high=low + rng.uniform(0.2, 3.0, d))
    if name == "categorical":
        return CategoricalPrior(d)
    if name == "categorical-weighted":
        weights = rng.uniform(0.0, 1.0, d)
        weights[0] = 0.0 if d > 1 else weights[0]  # an empty category
        return CategoricalPrior(d, weights=weights / weights.sum())
    if name == "bernoulli":
        return BernoulliPrior(d)
    if name == "bernoulli-vector":
        p = rng.uniform(0.0, 1.0, d)
        p[0] = 0.0 if d > 1 else p[0]  # a constant 0 and a constant 1 bit
        p[-1] = 1.0 if d > 2 else p[-1]
        return BernoulliPrior(d, p=p)
    if name == "product":  # d >= 2
        return ProductPrior(
            [("bit", BernoulliPrior(1, p=0.3)), ("rest", LaplacePrior(scale=0.5))]
        )
    raise ValueError(name)


PRIOR_NAMES = ["gaussian-isotropic", "gaussian-diagonal", "mixture-diagonal"]
PRIOR_NAMES += ["mixture-full", "laplace", "laplace-vector", "uniform"]
PRIOR_NAMES += ["uniform-vector", "categorical", "categorical-weighted"]
PRIOR_NAMES += ["bernoulli", "bernoulli-vector"]
PRIOR_DIMS = [(name, d) for name in PRIOR_NAMES for d in (1, 2, 8)] + [("ring", 2)]


def _mc_check(closed, samples, rtol=0.0):
    """Assert ``closed`` equals the mean of ``samples`` (last axis) within N_SE SE.

    ``rtol`` adds a relative error the closed form may have (the IMQ quadrature's).
    """
    mean = samples.mean(-1)
    se = samples.std(-1, ddof=1) / np.sqrt(samples.shape[-1])
    tolerance = N_SE * se + 1e-12 + rtol * np.abs(mean)
    np.testing.assert_array_less(np.abs(closed - mean), tolerance)


def _kernel_np(X, Y, bandwidth):
    """Multi-scale RBF kernel between paired rows (NumPy reference)."""
    bw = np.atleast_1d(bandwidth)
    sq = ((X - Y) ** 2).sum(-1)
    return np.exp(-sq[..., None] / (2 * bw**2)).mean(-1)


def _sample(prior, n, d, seed):
    """``n`` samples of a prior in dimension ``d`` (scalar priors broadcast)."""
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    return tprior.sample(n, torch.Generator().manual_seed(seed)).numpy()


def _query_points(prior, d):
    """Prior samples, two of them shifted by one unit per coordinate.

    Points far outside the prior would make the kernel a rare event, whose Monte
    Carlo standard error is itself unreliable; the far tail is tested against
    numerical quadrature instead.
    """
    Z = _sample(prior, 5, d, 7)
    Z[3:] += 1.0
    return Z


def test_squared_distances_matches_scipy():
    rng = np.random.RandomState(0)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    D = squared_distances(torch.from_numpy(X), torch.from_numpy(Y)).numpy()
    np.testing.assert_allclose(D, cdist(X, Y, "sqeuclidean"), rtol=1e-12, atol=1e-12)
    D_self = squared_distances(torch.from_numpy(X)).numpy()
    assert np.all(D_self >= 0)
    np.testing.assert_allclose(D_self, cdist(X, X, "sqeuclidean"), atol=1e-12)


@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_rbf_kernel_is_mean_over_bandwidths(bandwidth):
    D = torch.linspace(0.0, 10.0, 11, dtype=torch.float64)
    bw = np.atleast_1d(bandwidth)
    K = rbf_kernel(D, torch.tensor(bw)).numpy()
    expected = np.exp(-D.numpy()[:, None] / (2 * bw**2)).mean(-1)
    np.testing.assert_allclose(K, expected, rtol=1e-12)
    assert K[0] == pytest.approx(1.0)


@pytest.mark.parametrize("name, d", PRIOR_DIMS)
@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_rbf_kernel_mean_matches_monte_carlo(name, d, bandwidth):
    prior = make_prior(name, d)
    Z = _query_points(prior, d)
    bandwidth = np.sqrt(d) * np.asarray(bandwidth)
    Y = _sample(prior, N_MC, d, 0)
    samples = _kernel_np(Z[:, None, :], Y[None], bandwidth)  # (n_points, N_MC)
    _mc_check(prior.rbf_kernel_mean(Z, bandwidth), samples)


@pytest.mark.parametrize("name, d", PRIOR_DIMS)
@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_rbf_kernel_mean_prior_matches_monte_carlo(name, d, bandwidth):
    prior = make_prior(name, d)
    bandwidth = np.sqrt(d) * np.asarray(bandwidth)
    Y = _sample(prior, 2 * N_MC, d, 1)
    samples = _kernel_np(Y[:N_MC], Y[N_MC:], bandwidth)
    _mc_check(prior.rbf_kernel_mean_prior(bandwidth, n_dims=d), samples)


@pytest.mark.parametrize("bandwidth", [1.0, [0.5, 2.0]])
def test_rbf_kernel_mean_of_scalar_prior_broadcasts_to_any_dimension(bandwidth):
    # A d-dimensional standard normal: E k(0, y) = (1 + 1/l^2)^(-d/2) per scale.
    bw = np.atleast_1d(bandwidth)
    for d in (1, 3):
        m = GaussianPrior().rbf_kernel_mean(np.zeros((1, d)), bandwidth)
        np.testing.assert_allclose(m, [np.mean((1 + 1 / bw**2) ** (-d / 2))])
        pp = GaussianPrior().rbf_kernel_mean_prior(bandwidth, n_dims=d)
        assert pp == pytest.approx(np.mean((1 + 2 / bw**2) ** (-d / 2)), rel=1e-12)


@pytest.mark.parametrize("bandwidth", [0.0, -1.0, [], [1.0, np.nan], [[1.0]]])
def test_rbf_kernel_mean_rejects_bad_bandwidth(bandwidth):
    with pytest.raises(ValueError, match="bandwidth must be a positive float"):
        GaussianPrior().rbf_kernel_mean(np.zeros((2, 1)), bandwidth)


@pytest.mark.parametrize("name, d", [("mixture-full", 3), ("ring", 2)])
def test_gaussian_mixture_rbf_mean_gradcheck(name, d):
    tprior = tensor_prior(make_prior(name, d), d, dtype=torch.float64)
    mean_fn, _ = tprior.rbf_terms(torch.tensor([0.7, 1.5], dtype=torch.float64))
    Z = torch.randn(
        4, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    assert torch.autograd.gradcheck(mean_fn, (Z.requires_grad_(),))


def test_gaussian_mixture_rbf_functions_gradcheck_all_inputs():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    means = torch.randn(2, 2, dtype=torch.float64, generator=g, requires_grad=True)
    log_w = torch.log(torch.tensor([0.3, 0.7], dtype=torch.float64))
    cov = torch.eye(2, dtype=torch.float64).expand(2, 2, 2) * 0.5
    bw = torch.tensor([0.8, 2.0], dtype=torch.float64)

    def mean(Z, means):
        factors = gaussian_mixture_rbf_factors(means, cov, log_w, bw)
        return gaussian_mixture_rbf_mean(Z, factors)

    def mean_prior(means):
        return gaussian_mixture_rbf_mean_prior(means, cov, log_w, bw)

    assert torch.autograd.gradcheck(mean, (Z, means))
    assert torch.autograd.gradcheck(mean_prior, (means,))


@pytest.mark.parametrize("closed_form", [True, False])
def test_mmd2_unbiased_gradcheck(closed_form):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    tprior = tensor_prior(GaussianPrior(), 2, dtype=torch.float64)
    mean_fn, pp = tprior.rbf_terms(bw)
    Y = tprior.sample(5, g)

    def f(Z):
        if closed_form:
            return mmd2_unbiased(Z, bw, mean_fn(Z), pp)
        return mmd2_unbiased(Z, bw, None, None, Y=Y)

    assert torch.autograd.gradcheck(f, (Z,))


@pytest.mark.parametrize("name, d", [("gaussian-diagonal", 2), ("mixture-full", 3)])
def test_mmd2_unbiased_closed_form_is_unbiased_for_prior_samples(name, d):
    # The mean over replications of the closed-form estimate for true prior
    # samples is 0 within N_SE standard errors.
    tprior = tensor_prior(make_prior(name, d), d, dtype=torch.float64)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    mean_fn, pp = tprior.rbf_terms(bw)
    g = torch.Generator().manual_seed(0)
    values = []
    for _ in range(200):
        Z = tprior.sample(20, g)
        values.append(float(mmd2_unbiased(Z, bw, mean_fn(Z), pp)))
    values = np.asarray(values)
    assert abs(values.mean()) < N_SE * values.std(ddof=1) / np.sqrt(values.size)


@pytest.mark.parametrize("name, d", [("gaussian-diagonal", 2), ("ring", 2)])
@pytest.mark.parametrize("shift", [0.0, 2.0])
def test_mmd2_unbiased_closed_form_agrees_with_sampled(name, d, shift):
    # For fixed codes Z, the sampled estimate averaged over independent prior
    # samples Y equals the closed form within N_SE standard errors.
    tprior = tensor_prior(make_prior(name, d), d, dtype=torch.float64)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    mean_fn, pp = tprior.rbf_terms(bw)
    g = torch.Generator().manual_seed(1)
    Z = tprior.sample(200, g) + shift
    closed = float(mmd2_unbiased(Z, bw, mean_fn(Z), pp))
    sampled = np.array(
        [
            float(mmd2_unbiased(Z, bw, None, None, Y=tprior.sample(400, g)))
            for _ in range(30)
        ]
    )
    se = sampled.std(ddof=1) / np.sqrt(sampled.size)
    assert abs(closed - sampled.mean()) < N_SE * se
    if shift == 0.0:
        assert abs(closed) < 0.01
    else:
        assert closed > 0.1


PUBLIC_PRIORS = [
    None,
    GaussianPrior(loc=[1.0, -1.0], scale=[0.5, 2.0]),
    GaussianMixturePrior.ring(),
]


@pytest.mark.parametrize("prior", PUBLIC_PRIORS)
def test_mmd_to_prior_is_near_zero_for_prior_samples(prior):
    if prior is None:
        Z = np.random.RandomState(0).normal(size=(2000, 2))
    else:
        Z = prior.sample(2000, random_state=0)
    assert abs(mmd_to_prior(Z, prior)) < 2e-3


@pytest.mark.parametrize("prior", PUBLIC_PRIORS)
@pytest.mark.parametrize("bandwidth", ["auto", 1.0, [0.5, 2.0]])
def test_mmd_to_prior_is_positive_for_shifted_samples(prior, bandwidth):
    Z = np.random.RandomState(0).normal(size=(500, 2)) * 0.3 + 3.0
    assert mmd_to_prior(Z, prior, bandwidth=bandwidth) > 0.1


class _SampleOnlyPrior:
    """A user's prior that only knows how to sample (a shifted normal)."""

    def __init__(self, shift=0.0):
        self.shift = shift

    def sample(self, n_samples, random_state=None):
        rng = np.random.RandomState(random_state)
        return rng.normal(size=(n_samples, 2)) + self.shift


# (shift, tolerance): 5 standard deviations of the sampled estimate over prior
# seeds, measured (2e-4 without shift, 5e-3 with it).
SHIFT_TOLERANCES = [(0.0, 1e-3), (1.0, 2.5e-2)]


@pytest.mark.parametrize("shift, tolerance", SHIFT_TOLERANCES)
def test_mmd_to_prior_sampled_agrees_with_closed_form(shift, tolerance):
    Z = np.random.RandomState(3).normal(size=(2000, 2)) + shift
    closed = mmd_to_prior(Z, GaussianPrior(), bandwidth=[0.5, 1.0, 2.0])
    sampled = mmd_to_prior(Z, _SampleOnlyPrior(), bandwidth=[0.5, 1.0, 2.0])
    assert closed == pytest.approx(sampled, abs=tolerance)


# ------------------------------------------------------------------ IMQ kernel
# a = |x - y|^2 / (2 l^2) and the documented relative error of the quadrature.
IMQ_ACCURACY = [(1e2, 3e-7), (1e4, 1e-6), (1e6, 1e-4), (1e8, 1e-2)]


@pytest.mark.parametrize("a_max, rtol", IMQ_ACCURACY)
def test_imq_rbf_quadrature_relative_error(a_max, rtol):
    bw = torch.tensor([0.5, 2.0], dtype=torch.float64)
    rbf_bw, weights = imq_rbf_quadrature(bw)
    assert torch.all(weights > 0)
    for b in range(2):
        a = torch.logspace(-4, np.log10(a_max), 500, dtype=torch.float64)
        D = 2 * bw[b] ** 2 * torch.cat([torch.zeros(1, dtype=a.dtype), a])
        n = weights.numel() // 2
        sl = slice(b * n, (b + 1) * n)
        approx = rbf_kernel(D, rbf_bw[sl], 2 * weights[sl])
        exact = imq_kernel(D, bw[b : b + 1])
        np.testing.assert_allclose(approx, exact, rtol=rtol, atol=0)


def test_imq_kernel_matches_definition():
    D = torch.tensor([0.0, 1.0, 8.0], dtype=torch.float64)
    K = imq_kernel(D, torch.tensor([1.0, 2.0], dtype=torch.float64)).numpy()
    C = 2 * np.array([1.0, 4.0])
    np.testing.assert_allclose(K, (C / (C + D.numpy()[:, None])).mean(1))
    with pytest.raises(ValueError, match="kernel must be 'rbf' or 'imq'"):
        kernel_from_distances(D, torch.ones(1), "laplacian")


IMQ_PRIORS = ["gaussian-diagonal", "mixture-full", "laplace-vector", "uniform-vector"]
IMQ_PRIORS += ["categorical-weighted", "bernoulli-vector"]
# The quadrature's relative error at the distances of these tests (a <= 1e2),
# which matters where the Monte Carlo error vanishes (a point mass).
IMQ_RTOL = 1e-6


@pytest.mark.parametrize("name", IMQ_PRIORS)
@pytest.mark.parametrize("d", [1, 2, 8])
@pytest.mark.parametrize("bandwidth", [1.0, [0.5, 1.0, 2.0]])
def test_imq_prior_terms_match_monte_carlo(name, d, bandwidth):
    _check_imq_terms_against_monte_carlo(make_prior(name, d), d, bandwidth)


def _check_imq_terms_against_monte_carlo(prior, d, bandwidth):
    """The IMQ prior terms (through the RBF quadrature) against Monte Carlo."""
    bw = np.sqrt(d) * np.atleast_1d(bandwidth)
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    mean_fn, pp = prior_kernel_terms(tprior, torch.from_numpy(bw), "imq")
    Z = _query_points(prior, d)
    Y = _sample(prior, 2 * N_MC, d, 0)

    def imq(X, Y):
        C = 2 * bw**2
        return (C / (C + ((X - Y) ** 2).sum(-1)[..., None])).mean(-1)

    _mc_check(
        mean_fn(torch.from_numpy(Z)).numpy(),
        imq(Z[:, None], Y[None, :N_MC]),
        rtol=IMQ_RTOL,
    )
    _mc_check(float(pp), imq(Y[:N_MC], Y[N_MC:]), rtol=IMQ_RTOL)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd2_unbiased_gradcheck_kernels(kernel):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(5, 2, dtype=torch.float64, generator=g, requires_grad=True)
    bw = torch.tensor([0.5, 2.0], dtype=torch.float64)
    tprior = tensor_prior(LaplacePrior(), 2, dtype=torch.float64)
    mean_fn, pp = prior_kernel_terms(tprior, bw, kernel)
    Y = tprior.sample(4, g)

    def closed(Z):
        return mmd2_unbiased(Z, bw, mean_fn(Z), pp, kernel=kernel)

    def sampled(Z):
        return mmd2_unbiased(Z, bw, None, None, Y=Y, kernel=kernel)

    assert torch.autograd.gradcheck(closed, (Z,))
    assert torch.autograd.gradcheck(sampled, (Z,))


@pytest.mark.parametrize("prior", [LaplacePrior(), UniformPrior()])
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_to_prior_factorised_priors(prior, kernel):
    Z = _sample(prior, 2000, 2, 0)
    assert abs(mmd_to_prior(Z, prior, kernel=kernel)) < 2e-3
    assert mmd_to_prior(Z + 1.0, prior, kernel=kernel) > 0.05


# --------------------------------------------------- factorised priors, 1-D tails
def _quad_log_mean(pdf, z, bw, lo, hi, kinks=()):
    """log of int pdf(y) exp(-(z - y)^2 / 2 l^2) dy by adaptive quadrature."""
    points = sorted({lo, hi, *[p for p in (*kinks, z) if lo < p < hi]})
    total = sum(
        integrate.quad(
            lambda y: pdf(y) * np.exp(-((z - y) ** 2) / (2 * bw**2)),
            a,
            b,
            limit=200,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        for a, b in zip(points[:-1], points[1:], strict=False)
    )
    return np.log(total)


# Points in the bulk and far in both tails (kernel means down to ~1e-140, where
# the quadrature reference still resolves them).
TAIL_POINTS = [0.0, 0.4, -1.7, 6.0, -15.0, 25.0]


@pytest.mark.parametrize("scale", [0.2, 1.0, 4.0])
@pytest.mark.parametrize("bandwidth", [0.1, 1.0, 10.0])
def test_laplace_log_mean_matches_quadrature_in_the_tails(scale, bandwidth):
    z = np.array(TAIL_POINTS) * max(scale, bandwidth)
    out = laplace_rbf_log_mean(
        torch.tensor(z[:, None]),
        torch.tensor([scale], dtype=torch.float64),
        torch.tensor([bandwidth], dtype=torch.float64),
    )[0].numpy()
    expected = [
        _quad_log_mean(
            stats.laplace(0, scale).pdf,
            zi,
            bandwidth,
            -(abs(zi) + 80 * (scale + bandwidth)),
            abs(zi) + 80 * (scale + bandwidth),
            kinks=(0.0,),
        )
        for zi in z
    ]
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("width", [0.2, 1.0, 4.0])
@pytest.mark.parametrize("bandwidth", [0.1, 1.0, 10.0])
def test_uniform_log_mean_matches_quadrature_in_the_tails(width, bandwidth):
    # The centre, then points TAIL_POINTS bandwidths beyond the box's edges.
    t = np.array(TAIL_POINTS)
    z = 0.5 * width + np.sign(t) * 0.5 * width + t * bandwidth
    out = uniform_rbf_log_mean(
        torch.tensor(z[:, None]),
        torch.zeros(1, dtype=torch.float64),
        torch.tensor([width], dtype=torch.float64),
        torch.tensor([bandwidth], dtype=torch.float64),
    )[0].numpy()
    pdf = stats.uniform(0, width).pdf
    expected = [_quad_log_mean(pdf, zi, bandwidth, 0.0, width) for zi in z]
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


def _quad_pair_mean(pdf_diff, bandwidth, upper):
    """E k_l(y, y') in 1-D from the density of |y - y'| on [0, upper]."""
    return integrate.quad(
        lambda s: pdf_diff(s) * np.exp(-(s**2) / (2 * bandwidth**2)),
        0,
        upper,
        epsabs=0,
        epsrel=1e-12,
    )[0]


@pytest.mark.parametrize("scale", [0.5, 2.0])
@pytest.mark.parametrize("bandwidth", [1e-3, 0.3, 1.0, 30.0, 1e3, 1e6])
def test_factorised_prior_terms_match_quadrature(scale, bandwidth):
    # |y - y'| has density (1 + s/b) e^{-s/b} / 2b (Laplace), 2 (w - s) / w^2
    # on [0, w] (uniform).
    def laplace_diff(s):
        return (1 + s / scale) * np.exp(-s / scale) / (2 * scale)

    def uniform_diff(s):
        return 2 * (scale - s) / scale**2

    s_, b_ = (torch.tensor([v], dtype=torch.float64) for v in (scale, bandwidth))
    laplace = float(laplace_rbf_log_mean_prior(s_, b_).exp())
    uniform = float(uniform_rbf_log_mean_prior(s_, b_).exp())
    assert laplace == pytest.approx(
        _quad_pair_mean(laplace_diff, bandwidth, np.inf), rel=1e-9
    )
    assert uniform == pytest.approx(
        _quad_pair_mean(uniform_diff, bandwidth, scale), rel=1e-9
    )


EXTREME = [1e3, -1e6, 1e30, -1e300]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "name",
    ["laplace", "uniform", "gaussian-isotropic", "categorical-weighted"]
    + ["bernoulli-vector", "product"],
)
def test_prior_mean_is_finite_with_finite_gradient_far_away(dtype, name):
    tprior = tensor_prior(make_prior(name, 2), 2, dtype=dtype)
    mean_fn, _ = prior_kernel_terms(tprior, torch.tensor([0.5, 1.0]), "imq")
    big = [v for v in EXTREME if abs(v) < torch.finfo(dtype).max]
    Z = torch.tensor([[v, 0.0] for v in big] + [[0.3, -0.2]], dtype=dtype)
    Z.requires_grad_()
    m = mean_fn(Z)
    (grad,) = torch.autograd.grad(m.sum(), Z)
    assert torch.all(torch.isfinite(m)) and torch.all(m >= 0)
    assert torch.all(torch.isfinite(grad))
    # The IMQ tail: E k ~ C / |z|^2 at |z| = 1e3 (C = 2 l^2), not 0.
    assert float(m[0].detach()) > 0.1 * 2 * 0.75 / 1e6


@pytest.mark.parametrize("name", ["laplace-vector", "uniform-vector"])
def test_factorised_rbf_mean_gradcheck(name):
    tprior = tensor_prior(make_prior(name, 3), 3, dtype=torch.float64)
    mean_fn, _ = tprior.rbf_terms(torch.tensor([0.4, 2.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    Z = 2 * torch.randn(5, 3, dtype=torch.float64, generator=g)
    Z[0] += 8.0  # in a tail
    assert torch.autograd.gradcheck(mean_fn, (Z.requires_grad_(),))


# ------------------------------------------------------------ property tests
_finite = st.floats(-1e3, 1e3, allow_nan=False)
_points = st.lists(st.tuples(_finite, _finite), min_size=2, max_size=8)
_bandwidths = st.lists(st.floats(1e-2, 1e2), min_size=1, max_size=3)


@settings(max_examples=25, deadline=None)
@given(X=_points, Y=_points, bw=_bandwidths, kernel=st.sampled_from(["rbf", "imq"]))
def test_kernel_is_symmetric_and_bounded(X, Y, bw, kernel):
    X, Y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    bw = torch.tensor(bw, dtype=torch.float64)
    Kxy = kernel_from_distances(squared_distances(X, Y), bw, kernel)
    Kyx = kernel_from_distances(squared_distances(Y, X), bw, kernel)
    torch.testing.assert_close(Kxy, Kyx.T, rtol=1e-12, atol=1e-12)
    assert torch.all((Kxy >= 0) & (Kxy <= 1 + 1e-12))


@settings(max_examples=25, deadline=None)
@given(X=_points, Y=_points, bw=_bandwidths, kernel=st.sampled_from(["rbf", "imq"]))
def test_biased_mmd_is_non_negative(X, Y, bw, kernel):
    # The V-statistic is a squared norm in the RKHS: never negative.
    X, Y = torch.tensor(X, dtype=torch.float64), torch.tensor(Y, dtype=torch.float64)
    bw = torch.tensor(bw, dtype=torch.float64)

    def k(A, B):
        return kernel_from_distances(squared_distances(A, B), bw, kernel).mean()

    assert float(k(X, X) - 2 * k(X, Y) + k(Y, Y)) >= -1e-10


_extreme = st.floats(-1e300, 1e300, allow_nan=False) | st.sampled_from([0.0, 1e-300])


@settings(max_examples=25, deadline=None)
@given(
    z=_extreme,
    scale=st.floats(1e-3, 1e3),
    bw=st.floats(1e-3, 1e3),
    loc=st.floats(-10, 10),
)
def test_factorised_log_means_are_finite_for_extreme_inputs(z, scale, bw, loc):
    Z = torch.tensor([[z]], dtype=torch.float64)
    s = torch.tensor([scale], dtype=torch.float64)
    b = torch.tensor([bw], dtype=torch.float64)
    for log_mean in (
        laplace_rbf_log_mean(Z - loc, s, b),
        uniform_rbf_log_mean(Z, s * 0 + loc, s + loc, b),
        laplace_rbf_log_mean_prior(s, b),
        uniform_rbf_log_mean_prior(s, b),
    ):
        value = float(log_mean.reshape(-1)[0])
        # finite, or -inf only where the mean underflows the float64 range
        # (a log kernel mean is <= 0; round-off may leave ~1e-11 above it)
        assert value <= 1e-9 and not np.isnan(value)
        assert np.isfinite(value) or abs(z) > 1e100


@pytest.mark.parametrize("bandwidths", [[1.0], [0.5, 1.0, 2.0]])
def test_rbf_u_statistic_matches_autograd_through_kernel_matrix(bandwidths):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 3, dtype=torch.float64, generator=g, requires_grad=True)
    bw = torch.tensor(bandwidths, dtype=torch.float64)
    n = Z.shape[0]
    K = rbf_kernel(squared_distances(Z), bw)
    reference = (K.sum() - K.diagonal().sum()) / (n * (n - 1))
    grad_ref = torch.autograd.grad(reference, Z)[0]
    value = rbf_u_statistic(Z, bw)
    grad = torch.autograd.grad(value, Z)[0]
    torch.testing.assert_close(value, reference, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-14)
    assert torch.autograd.gradcheck(lambda z: rbf_u_statistic(z, bw), (Z,))


def test_closed_form_kernel_mean_is_accurate_in_float32_far_from_origin():
    # The quadratic forms are expanded around the prior's mean: no cancellation.
    prior = GaussianPrior(loc=[1000.0, -1000.0], scale=[1.0, 2.0])
    bw = torch.tensor([0.5, 1.0])
    Z64 = torch.tensor([[1000.3, -1001.0], [999.0, -999.5]], dtype=torch.float64)
    exact, _ = tensor_prior(prior, 2, dtype=torch.float64).rbf_terms(bw)
    approx, _ = tensor_prior(prior, 2, dtype=torch.float32).rbf_terms(bw)
    torch.testing.assert_close(
        approx(Z64.float()).double(), exact(Z64), rtol=1e-5, atol=1e-7
    )


# ---------------------------------------------------- discrete priors, products
def _vertices(prior, d):
    """Every point of a discrete prior's support and its probability."""
    if isinstance(prior, CategoricalPrior):
        V = np.eye(d)
    else:
        V = np.array(list(itertools.product([0.0, 1.0], repeat=d)))
    return V, np.exp(prior.log_prob(V))


@pytest.mark.parametrize(
    "name", ["categorical", "categorical-weighted", "bernoulli", "bernoulli-vector"]
)
@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("bandwidth", BANDWIDTHS)
def test_discrete_kernel_means_equal_sums_over_the_support(name, d, bandwidth):
    # Exact: the expectations are finite sums over the (enumerated) support.
    prior = make_prior(name, d)
    V, P = _vertices(prior, d)
    Z = np.vstack([V[:3], np.random.RandomState(0).normal(size=(4, d))])
    bw = np.sqrt(d) * np.asarray(bandwidth)
    expected = (P * _kernel_np(Z[:, None, :], V[None], bw)).sum(1)
    np.testing.assert_allclose(prior.rbf_kernel_mean(Z, bw), expected, rtol=1e-12)
    expected_pp = P @ _kernel_np(V[:, None, :], V[None], bw) @ P
    pp = prior.rbf_kernel_mean_prior(bw, n_dims=d)
    assert pp == pytest.approx(expected_pp, rel=1e-12)


def test_discrete_kernel_functions_per_scale():
    # The per-scale log functions against their formulas (float64).
    Z = torch.tensor([[0.2, 0.9, -0.3], [1.0, 0.0, 0.0]], dtype=torch.float64)
    bw = torch.tensor([0.5, 2.0], dtype=torch.float64)
    w = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    sq = ((Z[:, None, :] - torch.eye(3, dtype=Z.dtype)) ** 2).sum(-1)
    expected = torch.log(w) - sq / (2 * bw[:, None, None] ** 2)
    torch.testing.assert_close(
        categorical_rbf_log_terms(Z, torch.log(w), bw), expected, rtol=1e-12, atol=0
    )
    s2 = float((w * w).sum())
    torch.testing.assert_close(
        categorical_rbf_log_mean_prior(w, bw).exp(),
        s2 + (1 - s2) * torch.exp(-1 / bw**2),
        rtol=1e-12,
        atol=0,
    )
    p = torch.tensor([0.1, 0.5, 1.0], dtype=torch.float64)
    g = 1 / (2 * bw[:, None, None] ** 2)
    factors = (1 - p) * torch.exp(-g * Z**2) + p * torch.exp(-g * (Z - 1) ** 2)
    torch.testing.assert_close(
        bernoulli_rbf_log_mean(Z, p, bw).exp(), factors.prod(-1), rtol=1e-12, atol=0
    )
    far = torch.exp(-1 / (2 * bw[:, None] ** 2))
    torch.testing.assert_close(
        bernoulli_rbf_log_mean_prior(p, bw).exp(),
        (p**2 + (1 - p) ** 2 + 2 * p * (1 - p) * far).prod(-1),
        rtol=1e-12,
        atol=0,
    )


@pytest.mark.parametrize("name", ["categorical-weighted", "bernoulli-vector"])
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_discrete_rbf_mean_gradcheck(name, kernel):
    tprior = tensor_prior(make_prior(name, 4), 4, dtype=torch.float64)
    bw = torch.tensor([0.4, 2.0], dtype=torch.float64)
    mean_fn, _ = prior_kernel_terms(tprior, bw, kernel)
    g = torch.Generator().manual_seed(0)
    Z = tprior.sample(5, g) + 0.3 * torch.randn(5, 4, dtype=torch.float64, generator=g)
    Z[0] += 6.0  # far from the support
    assert torch.autograd.gradcheck(mean_fn, (Z.requires_grad_(),))


# One block of each kind, each of a fixed width.
BLOCKS = {
    "gaussian": lambda: GaussianPrior(loc=[0.5, -1.0], scale=[0.7, 1.5]),
    "mixture": lambda: GaussianMixturePrior(
        means=[[-1.5, 0.0], [1.5, 0.5]], covariances=[0.3, 0.6], weights=[0.4, 0.6]
    ),
    "laplace": lambda: LaplacePrior(loc=[0.0, 1.0], scale=[0.5, 1.0]),
    "uniform": lambda: UniformPrior(low=[-1.0, 0.0], high=[1.0, 0.5]),
    "categorical": lambda: CategoricalPrior(3, weights=[0.2, 0.3, 0.5]),
    "bernoulli": lambda: BernoulliPrior(2, p=[0.3, 0.8]),
}
BLOCK_PAIRS = list(itertools.combinations_with_replacement(BLOCKS, 2))


def make_product(kinds):
    """A product of one block of each kind in ``kinds`` (names kind0, kind1...)."""
    return ProductPrior([(f"{k}{i}", BLOCKS[k]()) for i, k in enumerate(kinds)])


@pytest.mark.parametrize("kinds", BLOCK_PAIRS, ids="-".join)
@pytest.mark.parametrize("bandwidth", [0.3, 1.0, [0.5, 1.0, 2.0]])
def test_product_kernel_means_match_monte_carlo(kinds, bandwidth):
    prior = make_product(kinds)
    d = prior._n_dims()
    bandwidth = np.sqrt(d) * np.asarray(bandwidth)
    Z = _query_points(prior, d)
    Y = _sample(prior, 2 * N_MC, d, 0)
    samples = _kernel_np(Z[:, None, :], Y[None, :N_MC], bandwidth)
    _mc_check(prior.rbf_kernel_mean(Z, bandwidth), samples)
    samples = _kernel_np(Y[:N_MC], Y[N_MC:], bandwidth)
    _mc_check(prior.rbf_kernel_mean_prior(bandwidth, n_dims=d), samples)


@pytest.mark.parametrize("kinds", BLOCK_PAIRS, ids="-".join)
def test_product_kernel_means_are_products_of_the_blocks(kinds):
    # Exact: per bandwidth the RBF kernel means multiply over blocks; several
    # bandwidths average the products.
    prior = make_product(kinds)
    d = prior._n_dims()
    Z = _query_points(prior, d)
    widths = [block._n_dims() for _, block in prior.blocks]
    cuts = np.cumsum(widths)[:-1]
    per_scale, per_scale_pp = [], []
    for bw in (0.7, 2.0):
        means = [
            block.rbf_kernel_mean(Zb, bw)
            for (_, block), Zb in zip(prior.blocks, np.split(Z, cuts, 1), strict=True)
        ]
        per_scale.append(np.prod(means, axis=0))
        per_scale_pp.append(
            np.prod([block.rbf_kernel_mean_prior(bw) for _, block in prior.blocks])
        )
    np.testing.assert_allclose(
        prior.rbf_kernel_mean(Z, [0.7, 2.0]), np.mean(per_scale, 0), rtol=1e-12
    )
    assert prior.rbf_kernel_mean_prior([0.7, 2.0]) == pytest.approx(
        np.mean(per_scale_pp), rel=1e-12
    )


@pytest.mark.parametrize("kinds", BLOCK_PAIRS + [tuple(BLOCKS)], ids="-".join)
def test_product_rbf_mean_gradcheck(kinds):
    prior = make_product(kinds)
    d = prior._n_dims()
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    bw = np.sqrt(d) * torch.tensor([0.3, 1.5], dtype=torch.float64)
    mean_fn, _ = tprior.rbf_terms(bw)
    g = torch.Generator().manual_seed(0)
    Z = tprior.sample(4, g) + 0.3 * torch.randn(4, d, dtype=torch.float64, generator=g)
    Z[0] += 3.0
    assert torch.autograd.gradcheck(mean_fn, (Z.requires_grad_(),))


def test_product_of_every_kind_imq_terms_match_monte_carlo():
    prior = make_product(tuple(BLOCKS))
    _check_imq_terms_against_monte_carlo(prior, prior._n_dims(), [0.5, 1.0, 2.0])


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_to_prior_with_a_product_prior(kernel):
    prior = make_product(("categorical", "gaussian"))
    Z = prior.sample(2000, random_state=0)
    assert abs(mmd_to_prior(Z, prior, kernel=kernel)) < 2e-3
    Z[:, :3] = np.eye(3)[0]  # every code in the first class
    assert mmd_to_prior(Z, prior, kernel=kernel) > 0.05
