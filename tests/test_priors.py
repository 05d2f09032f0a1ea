"""Tests of sklearn_aae.priors: densities, sampling, validation, parameter API."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from sklearn_aae import MMDAutoencoder, _torch_priors, mmd_to_prior
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae._utils import _seed_from
from sklearn_aae.priors import (
    BernoulliPrior,
    CategoricalPrior,
    ConditionalPrior,
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    ProductPrior,
    SwissRollPrior,
    UniformPrior,
    _check_prior,
)

# p-value below which a KS test fails; the seeds are fixed, so the tests are
# deterministic (and a correct sampler passes them with probability 0.999).
KS_ALPHA = 1e-3
N_KS = 20_000

_rng = np.random.RandomState(0)
_A = _rng.normal(size=(2, 3, 3))
FULL_COVARIANCES = _A @ np.swapaxes(_A, 1, 2) / 3 + 0.2 * np.eye(3)

GAUSSIAN_PRIORS = [
    GaussianPrior(),
    GaussianPrior(loc=1.5, scale=0.5),
    GaussianPrior(loc=[0.0, 1.0, -2.0], scale=[1.0, 0.3, 2.5]),
]

MIXTURE_PRIORS = [
    GaussianMixturePrior(means=[[-2.0, 0.0], [2.0, 1.0]], covariances=0.5),
    GaussianMixturePrior(
        means=[[-1.0], [0.0], [3.0]], covariances=[0.2, 1.0, 0.5], weights=[1, 2, 1]
    ),
    GaussianMixturePrior(
        means=[[0.0, 0.0, 0.0], [2.0, -1.0, 1.0]],
        covariances=[[1.0, 0.5, 2.0], [0.3, 0.3, 0.3]],
        weights=[0.25, 0.75],
    ),
    GaussianMixturePrior(
        means=[[0.0, 0.0, 0.0], [1.0, 1.0, -1.0]], covariances=FULL_COVARIANCES
    ),
    GaussianMixturePrior.ring(),
]


def _mixture_arrays(prior):
    """Means, full covariances and normalised weights, via the public parameters."""
    return prior._mixture_params(np.asarray(prior.means).shape[1])


def _dims(prior):
    return prior._n_dims() or 2


@pytest.mark.parametrize("prior", GAUSSIAN_PRIORS)
def test_gaussian_log_prob_matches_scipy(prior):
    d = _dims(prior)
    Z = np.random.RandomState(1).normal(scale=2.0, size=(50, d))
    loc = np.broadcast_to(prior.loc, (d,))
    scale = np.broadcast_to(prior.scale, (d,))
    expected = stats.multivariate_normal(loc, np.diag(scale**2)).logpdf(Z)
    np.testing.assert_allclose(prior.log_prob(Z), expected, rtol=1e-10)


@pytest.mark.parametrize("prior", MIXTURE_PRIORS)
def test_mixture_log_prob_matches_scipy(prior):
    means, covs, weights = _mixture_arrays(prior)
    Z = np.random.RandomState(1).normal(scale=2.0, size=(50, means.shape[1]))
    per_component = np.stack(
        [
            stats.multivariate_normal(m, c).logpdf(Z)
            for m, c in zip(means, covs, strict=True)
        ],
        axis=1,
    ).reshape(len(Z), -1)
    expected = logsumexp(per_component + np.log(weights), axis=1)
    np.testing.assert_allclose(prior.log_prob(Z), expected, rtol=1e-10)


def test_mixture_log_prob_is_finite_far_away():
    prior = GaussianMixturePrior.ring()
    lp = prior.log_prob([[1e3, -1e3], [0.0, 1e4]])
    assert np.all(np.isfinite(lp))
    assert np.all(lp < -1e5)


@pytest.mark.parametrize("prior", GAUSSIAN_PRIORS)
def test_gaussian_samples_pass_ks_test(prior):
    d = _dims(prior)
    Z = tensor_prior(prior, d, dtype=torch.float64).sample(
        N_KS, torch.Generator().manual_seed(0)
    )
    loc = np.broadcast_to(prior.loc, (d,))
    scale = np.broadcast_to(prior.scale, (d,))
    for j in range(d):
        p = stats.kstest(Z[:, j].numpy(), stats.norm(loc[j], scale[j]).cdf).pvalue
        assert p > KS_ALPHA


@pytest.mark.parametrize("prior", MIXTURE_PRIORS)
def test_mixture_samples_pass_ks_test(prior):
    # Every coordinate, and the projection on (1, ..., 1), against the mixture's
    # 1-D marginal sum_k w_k N(a^T mu_k, a^T S_k a).
    means, covs, weights = _mixture_arrays(prior)
    d = means.shape[1]
    Z = prior.sample(N_KS, random_state=0)
    directions = np.vstack([np.eye(d), np.ones((1, d))])
    for a in directions:
        m = means @ a
        s = np.sqrt(np.einsum("i,kij,j->k", a, covs, a))

        def cdf(x, m=m, s=s):
            return (weights * stats.norm.cdf((np.asarray(x)[:, None] - m) / s)).sum(1)

        assert stats.kstest(Z @ a, cdf).pvalue > KS_ALPHA


# (prior, scipy distribution of each coordinate) for the factorised priors.
FACTORISED_PRIORS = [
    (LaplacePrior(), [stats.laplace(0.0, 1.0)]),
    (
        LaplacePrior(loc=[1.0, -2.0], scale=[0.3, 2.0]),
        [stats.laplace(1.0, 0.3), stats.laplace(-2.0, 2.0)],
    ),
    (UniformPrior(), [stats.uniform(-1.0, 2.0)]),
    (
        UniformPrior(low=[0.0, -3.0], high=[0.5, 1.0]),
        [stats.uniform(0.0, 0.5), stats.uniform(-3.0, 4.0)],
    ),
]
DISCRETE_PRIORS = [
    CategoricalPrior(4),
    CategoricalPrior(3, weights=[0.2, 0.0, 0.8]),
    BernoulliPrior(3),
    BernoulliPrior(3, p=[0.1, 0.0, 0.95]),
]
PRODUCT_PRIORS = [
    ProductPrior([("class", CategoricalPrior(3)), ("bits", BernoulliPrior(2, p=0.3))]),
    ProductPrior(
        [("class", CategoricalPrior(2)), ("style", GaussianPrior(scale=[1.0, 2.0]))]
    ),
    ProductPrior([("bit", BernoulliPrior(1)), ("style", LaplacePrior())]),
    ProductPrior([("ring", GaussianMixturePrior.ring()), ("roll", SwissRollPrior())]),
]
OTHER_PRIORS = (
    [p for p, _ in FACTORISED_PRIORS]
    + [SwissRollPrior(), SwissRollPrior(noise=0.2), SwissRollPrior(n_segments=3)]
    + DISCRETE_PRIORS
    + PRODUCT_PRIORS
)


@pytest.mark.parametrize("prior, marginals", FACTORISED_PRIORS)
def test_factorised_log_prob_matches_scipy(prior, marginals):
    rng = np.random.RandomState(0)
    Z = np.column_stack([m.rvs(size=40, random_state=rng) for m in marginals])
    Z[::4] *= 3.0  # some points outside the uniform box
    expected = sum(m.logpdf(Z[:, j]) for j, m in enumerate(marginals))
    np.testing.assert_allclose(prior.log_prob(Z), expected, rtol=1e-12)


@pytest.mark.parametrize("prior, marginals", FACTORISED_PRIORS)
def test_factorised_samples_pass_ks_test(prior, marginals):
    Z = prior.sample(N_KS, random_state=0)
    for j, m in enumerate(marginals):
        assert stats.kstest(Z[:, j], m.cdf).pvalue > KS_ALPHA


def test_read_only_codes_reach_torch_without_its_writable_warning():
    # The values of a pandas frame are read-only under copy-on-write, as is a
    # frozen array: torch warned (once per process) that writing to a tensor
    # sharing them is undefined behaviour. log_prob, rbf_kernel_mean and
    # mmd_to_prior take them.
    pd = pytest.importorskip("pandas")
    Z = np.random.RandomState(0).normal(size=(20, 2))
    frozen = Z.copy()
    frozen.setflags(write=False)
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            for codes in (frozen, pd.DataFrame(Z)):
                for prior in (GaussianPrior(), GaussianMixturePrior.ring(3)):
                    np.testing.assert_allclose(prior.log_prob(codes), prior.log_prob(Z))
                np.testing.assert_allclose(
                    GaussianPrior().rbf_kernel_mean(codes),
                    GaussianPrior().rbf_kernel_mean(Z),
                )
                assert mmd_to_prior(codes) == mmd_to_prior(Z)
    finally:
        torch.set_warn_always(before)


def test_uniform_log_prob_is_minus_inf_outside_the_box():
    lp = UniformPrior(low=[0.0, 0.0], high=[1.0, 2.0]).log_prob(
        [[0.5, 1.0], [1.5, 1.0], [0.5, -0.1], [0.0, 2.0]]
    )
    np.testing.assert_allclose(lp, [-np.log(2.0), -np.inf, -np.inf, -np.log(2.0)])


def test_swiss_roll_samples_follow_the_spiral():
    prior = SwissRollPrior(radius=2.0, n_turns=1.5)
    Z = prior.sample(N_KS, random_state=0)
    s = np.linalg.norm(Z, axis=1) / 2.0  # s = sqrt(u), u ~ Uniform(0, 1)
    assert stats.kstest(s**2, "uniform").pvalue > KS_ALPHA
    angle = 2 * np.pi * 1.5 * s
    np.testing.assert_allclose(
        Z, 2.0 * s[:, None] * np.c_[np.cos(angle), np.sin(angle)]
    )


def test_swiss_roll_has_no_density_and_no_closed_form():
    prior = SwissRollPrior()
    with pytest.raises(AttributeError, match="no density"):
        prior.log_prob([[0.0, 0.0]])
    with pytest.raises(AttributeError, match="no closed-form kernel means"):
        prior.rbf_kernel_mean([[0.0, 0.0]])
    tprior = tensor_prior(_check_prior(prior, 2), 2, torch.device("cpu"))
    assert tprior.rbf_terms is None
    with pytest.raises(ValueError, match="dimension n_components=3"):
        _check_prior(prior, 3)


def _roll_position(Z, radius):
    """``u`` of noiseless swiss-roll points, from their distance to the centre."""
    return (np.linalg.norm(Z, axis=1) / radius) ** 2


@pytest.mark.parametrize("n_segments", [1, 3, 10])
def test_swiss_roll_segment_samples_lie_on_their_arc(n_segments):
    prior = SwissRollPrior(radius=2.0, n_turns=1.5, n_segments=n_segments)
    tprior = tensor_prior(prior, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for k in range(n_segments):
        Z = tprior.sample_classes(torch.full((2000,), k), g).numpy()
        u = _roll_position(Z, 2.0)
        assert np.all((u >= k / n_segments - 1e-12) & (u < (k + 1) / n_segments))
        # on the spiral, and uniform in u within the segment
        s = np.sqrt(u)
        angle = 2 * np.pi * 1.5 * s
        np.testing.assert_allclose(
            Z, 2.0 * s[:, None] * np.c_[np.cos(angle), np.sin(angle)]
        )
        assert stats.kstest(u * n_segments - k, "uniform").pvalue > KS_ALPHA


def test_swiss_roll_segments_partition_the_roll_with_equal_mass():
    K, n = 5, 100_000
    prior = SwissRollPrior(n_segments=K)
    segment = np.floor(_roll_position(prior.sample(n, random_state=0), 3.0) * K)
    counts = np.bincount(segment.astype(int), minlength=K)
    assert counts.shape == (K,)  # every sample in one of the K segments
    assert stats.chisquare(counts).pvalue > KS_ALPHA
    np.testing.assert_allclose(counts / n, 1 / K, atol=4 * np.sqrt(0.2 * 0.8 / n))
    # Segments drawn with equal frequencies are the whole roll.
    tprior = tensor_prior(prior, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    codes = torch.randint(K, (n,), generator=g)
    u = _roll_position(tprior.sample_classes(codes, g).numpy(), 3.0)
    assert stats.kstest(u, "uniform").pvalue > KS_ALPHA


def test_swiss_roll_segments_sample_with_the_generator_only():
    tprior = tensor_prior(SwissRollPrior(noise=0.1, n_segments=4))
    codes = torch.tensor([0, 3, 1, 2] * 5)
    state = torch.get_rng_state()
    a = tprior.sample_classes(codes, torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)  # the global seed is untouched
    assert torch.equal(
        a, tprior.sample_classes(codes, torch.Generator().manual_seed(0))
    )
    assert a.dtype == torch.float32 and a.shape == (20, 2)


def test_swiss_roll_without_segments_is_unchanged():
    # The whole roll is sampled as before, with or without segments.
    assert SwissRollPrior()._n_classes() is None
    assert SwissRollPrior(n_segments=4)._n_classes() == 4
    g = torch.Generator().manual_seed(_seed_from(0))
    s = torch.sqrt(torch.rand(50, generator=g, dtype=torch.float64))
    angle = 2 * np.pi * 2.0 * s
    expected = 3.0 * s[:, None] * torch.stack([angle.cos(), angle.sin()], 1)
    expected = expected + 0.2 * torch.randn(50, 2, generator=g, dtype=torch.float64)
    for n_segments in [None, 4]:
        Z = SwissRollPrior(noise=0.2, n_segments=n_segments).sample(50, random_state=0)
        np.testing.assert_allclose(Z, expected.numpy(), rtol=1e-15)


@pytest.mark.parametrize(
    "prior, match",
    [
        (LaplacePrior(scale=0.0), "'scale' parameter"),
        (LaplacePrior(scale=[1.0, 0.0]), "scale must be positive"),
        (LaplacePrior(loc=[0.0, 1.0], scale=[1.0, 1.0, 1.0]), "different lengths"),
        (UniformPrior(low=1.0, high=0.0), "high must exceed low"),
        (UniformPrior(low=[0.0, 1.0], high=1.0), "high must exceed low"),
        (UniformPrior(low=[0.0, np.nan]), "low must be finite"),
        (SwissRollPrior(radius=-1.0), "'radius' parameter"),
        (SwissRollPrior(noise=-0.1), "'noise' parameter"),
        (SwissRollPrior(n_segments=0), "'n_segments' parameter"),
        (SwissRollPrior(n_segments=2.5), "'n_segments' parameter"),
    ],
)
def test_invalid_parameters_of_other_priors_raise(prior, match):
    with pytest.raises(ValueError, match=match):
        prior.sample(2)


@pytest.mark.parametrize(
    "prior", GAUSSIAN_PRIORS[1:] + MIXTURE_PRIORS[:2] + OTHER_PRIORS
)
def test_sample_is_reproducible_with_random_state(prior):
    a = prior.sample(10, random_state=0)
    np.testing.assert_array_equal(a, prior.sample(10, random_state=0))
    np.testing.assert_array_equal(
        a, prior.sample(10, random_state=np.random.RandomState(0))
    )
    assert not np.array_equal(a, prior.sample(10, random_state=1))
    assert a.dtype == np.float64


@pytest.mark.parametrize(
    "prior", GAUSSIAN_PRIORS[1:] + MIXTURE_PRIORS[:2] + OTHER_PRIORS
)
def test_torch_sample_uses_only_the_generator(prior):
    tprior = tensor_prior(prior, _dims(prior))
    state = torch.get_rng_state()
    a = tprior.sample(16, torch.Generator().manual_seed(3))
    b = tprior.sample(16, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert a.dtype == torch.float32 and a.shape == (16, _dims(prior))


@pytest.mark.parametrize("prior", GAUSSIAN_PRIORS + MIXTURE_PRIORS + OTHER_PRIORS)
def test_torch_variance_matches_samples(prior):
    tprior = tensor_prior(prior, _dims(prior), dtype=torch.float64)
    Z = tprior.sample(200_000, torch.Generator().manual_seed(0)).numpy()
    assert tprior.variance() == pytest.approx(Z.var(0).mean(), rel=0.02)


def test_mixture_weights_set_component_frequencies():
    prior = GaussianMixturePrior(
        means=[[-10.0], [10.0]], covariances=0.1, weights=[1.0, 3.0]
    )
    Z = prior.sample(20_000, random_state=0)
    # Binomial(20000, 0.75): standard deviation 0.003 of the frequency.
    assert np.mean(Z[:, 0] > 0) == pytest.approx(0.75, abs=0.015)


def test_ring_geometry():
    prior = GaussianMixturePrior.ring(
        n_mixture_components=6, radius=2.0, radial_std=0.4, tangential_std=0.1
    )
    means, covs, _ = _mixture_arrays(prior)
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), 2.0)
    eigenvalues = np.linalg.eigvalsh(covs)
    np.testing.assert_allclose(eigenvalues, [[0.01, 0.16]] * 6, rtol=1e-12)
    # The long axis of each component points along its radius.
    radial = means / 2.0
    np.testing.assert_allclose(np.einsum("ki,kij,kj->k", radial, covs, radial), 0.16)


# (prior, n_dims, error message); InvalidParameterError is a ValueError.
INVALID_PRIORS = [
    (GaussianPrior(scale=-1.0), 1, "'scale' parameter"),
    (GaussianPrior(scale=[1.0, -1.0]), 2, "scale must be positive"),
    (GaussianPrior(loc=[0.0, np.inf]), 2, "loc must be finite"),
    (GaussianPrior(loc=[[0.0]]), 1, "loc must be a scalar or 1-D"),
    (GaussianPrior(loc=[0.0, 1.0], scale=[1.0, 1.0, 1.0]), 2, "different lengths"),
    (GaussianMixturePrior(means=[0.0, 1.0]), 2, "means must be a non-empty 2-D"),
    (GaussianMixturePrior(means=np.zeros((0, 2))), 2, "means must be a non-empty"),
    (GaussianMixturePrior(means=[[np.nan, 0.0]]), 2, "means must be finite"),
    (
        GaussianMixturePrior(means=[[0.0, 0.0]], covariances=np.ones((1, 3))),
        2,
        r"covariances must have shape \(1, 2, 2\)",
    ),
    (GaussianMixturePrior(means=[[0.0]], covariances=-1.0), 1, "'covariances'"),
    (
        GaussianMixturePrior(
            means=[[0.0, 0.0]], covariances=[[[1.0, 2.0], [2.0, 1.0]]]
        ),
        2,
        "positive definite",
    ),
    (
        GaussianMixturePrior(means=[[0.0, 0.0]], covariances=[[[1.0, 0.5], [0, 1]]]),
        2,
        "symmetric",
    ),
    (
        GaussianMixturePrior(means=[[0.0], [1.0]], weights=[1.0, -0.5]),
        1,
        "weights must be 2 non-negative",
    ),
    (
        GaussianMixturePrior(means=[[0.0], [1.0]], weights=[1.0]),
        1,
        "weights must be 2 non-negative",
    ),
    (
        GaussianMixturePrior(means=[[0.0], [1.0]], weights=[0.0, 0.0]),
        1,
        "positive sum",
    ),
]


@pytest.mark.parametrize("prior, n_dims, match", INVALID_PRIORS)
def test_invalid_parameters_raise(prior, n_dims, match):
    with pytest.raises(ValueError, match=match):
        prior.sample(2)
    with pytest.raises(ValueError, match=match):
        _check_prior(prior, n_dims)


@pytest.mark.parametrize(
    "prior, n_dims",
    [
        (GaussianPrior(loc=[0.0, 0.0]), 3),
        (GaussianPrior(scale=[1.0]), 2),
        (GaussianMixturePrior.ring(), 3),
    ],
)
def test_check_prior_rejects_dimension_mismatch(prior, n_dims):
    with pytest.raises(ValueError, match=f"dimension n_components={n_dims}"):
        _check_prior(prior, n_dims)


class _UserPrior:
    def __init__(self, n_dims=2):
        self.n_dims = n_dims

    def sample(self, n_samples, random_state=None):
        return np.random.RandomState(random_state).normal(size=(n_samples, 3))


def test_check_prior_validates_user_priors():
    with pytest.raises(TypeError, match="sample\\(n_samples, random_state\\)"):
        _check_prior(object(), 2)
    with pytest.raises(ValueError, match=r"expected \(2, 2\)"):
        _check_prior(_UserPrior(), 2)
    checked = _check_prior(_UserPrior(), 3)
    assert isinstance(checked, _UserPrior)
    tprior = tensor_prior(checked, 3, torch.device("cpu"))
    assert tprior.rbf_terms is None
    assert tprior.sample(4, torch.Generator().manual_seed(0)).shape == (4, 3)
    with pytest.raises(AttributeError, match="no log_prob method"):
        tprior.log_prob(torch.zeros(1, 3))


def test_check_prior_none_is_standard_normal_and_copies():
    assert isinstance(_check_prior(None, 4), GaussianPrior)
    prior = GaussianPrior(scale=2.0)
    checked = _check_prior(prior, 4)
    assert checked is not prior
    assert checked.get_params() == prior.get_params()


@pytest.mark.parametrize("n_samples, error", [(0, ValueError), (1.5, TypeError)])
def test_sample_rejects_bad_n_samples(n_samples, error):
    with pytest.raises(error, match="n_samples must be"):
        GaussianPrior().sample(n_samples)


@pytest.mark.parametrize("prior", GAUSSIAN_PRIORS + MIXTURE_PRIORS + OTHER_PRIORS)
def test_clone_and_get_params(prior):
    cloned = clone(prior)
    assert cloned is not prior
    params, cloned_params = prior.get_params(), cloned.get_params()
    assert params.keys() == cloned_params.keys()
    for key, value in params.items():
        if hasattr(value, "get_params") or key == "blocks":  # a product's blocks
            assert cloned_params[key] is not value
            assert repr(cloned_params[key]) == repr(value)
        else:
            np.testing.assert_array_equal(cloned_params[key], value)
    np.testing.assert_array_equal(
        cloned.sample(5, random_state=0), prior.sample(5, random_state=0)
    )


def test_set_params_changes_the_prior():
    prior = GaussianPrior().set_params(scale=3.0)
    assert prior.scale == 3.0
    assert prior.log_prob([[0.0]])[0] == pytest.approx(stats.norm(0, 3).logpdf(0))


def test_nested_prior_params_in_estimator():
    est = MMDAutoencoder(prior=GaussianPrior())
    assert est.get_params()["prior__scale"] == 1.0
    est.set_params(prior__scale=2.5, prior__loc=1.0)
    assert est.prior.scale == 2.5 and est.prior.loc == 1.0


# ----------------------------------------------------- discrete priors, products
def _support(prior):
    """Every point of a discrete prior's support (categorical and Bernoulli
    blocks, enumerated), as rows."""
    if isinstance(prior, CategoricalPrior):
        return np.eye(prior.n_categories)
    if isinstance(prior, BernoulliPrior):
        return np.array(list(itertools.product([0.0, 1.0], repeat=prior.n_dims)))
    blocks = [_support(block) for _, block in prior.blocks]
    return np.array([np.concatenate(rows) for rows in itertools.product(*blocks)])


@pytest.mark.parametrize("prior", DISCRETE_PRIORS + PRODUCT_PRIORS[:1])
def test_discrete_log_prob_sums_to_one_over_the_support(prior):
    V = _support(prior)
    assert np.exp(prior.log_prob(V)).sum() == pytest.approx(1.0, rel=1e-12)
    # A prior sample is a point of the support.
    Z = prior.sample(50, random_state=0)
    assert (Z[:, None, :] == V[None]).all(-1).any(1).all()


def test_discrete_log_prob_is_the_pmf_and_minus_inf_off_the_support():
    categorical = CategoricalPrior(3, weights=[0.2, 0.0, 0.8])
    np.testing.assert_allclose(
        categorical.log_prob([[1, 0, 0], [0, 1, 0], [0, 0, 1]]),
        np.log([0.2, 0.0, 0.8]),
    )
    off = [[0.5, 0.5, 0.0], [1, 1, 0], [0, 0, 0], [1.0 + 1e-9, 0, 0], [2, -1, 0]]
    assert np.all(categorical.log_prob(off) == -np.inf)
    bits = BernoulliPrior(3, p=[0.1, 0.5, 1.0])
    np.testing.assert_allclose(
        bits.log_prob([[1, 0, 1], [0, 0, 0]]),
        np.log([0.1 * 0.5 * 1.0, 0.9 * 0.5 * 0.0]),
    )
    assert np.all(bits.log_prob([[0.5, 0, 1], [1, 0, 2], [-1e-12, 0, 1]]) == -np.inf)


def test_discrete_log_prob_has_zero_gradient():
    # score_samples differentiates log_prob: a pmf gives zeros, not NaN.
    for prior in (CategoricalPrior(3), BernoulliPrior(3), PRODUCT_PRIORS[0]):
        tprior = tensor_prior(prior, prior._n_dims(), dtype=torch.float64)
        Z = tprior.sample(4, torch.Generator().manual_seed(0))
        Z = torch.cat([Z, Z + 0.3]).requires_grad_()
        (grad,) = torch.autograd.grad(tprior.log_prob(Z).sum(), Z)
        assert torch.equal(grad, torch.zeros_like(Z))


def test_categorical_samples_follow_the_weights():
    weights = np.array([0.1, 0.0, 0.3, 0.6])
    Z = CategoricalPrior(4, weights=weights).sample(N_KS, random_state=0)
    assert np.all(Z.sum(1) == 1.0)
    counts = Z.sum(0)
    assert counts[1] == 0
    keep = weights > 0
    chi2 = stats.chisquare(counts[keep], N_KS * weights[keep])
    assert chi2.pvalue > KS_ALPHA


def test_bernoulli_samples_follow_p():
    p = np.array([0.0, 0.05, 0.5, 0.9, 1.0])
    Z = BernoulliPrior(5, p=p).sample(N_KS, random_state=0)
    assert set(np.unique(Z)) <= {0.0, 1.0}
    ones = Z.sum(0)
    assert ones[0] == 0 and ones[-1] == N_KS
    for j in (1, 2, 3):
        assert stats.binomtest(int(ones[j]), N_KS, p[j]).pvalue > KS_ALPHA


def test_product_samples_concatenate_independent_blocks():
    prior = ProductPrior(
        [("class", CategoricalPrior(2, weights=[0.3, 0.7])), ("style", GaussianPrior())]
    )
    Z = prior.sample(N_KS, random_state=0)
    assert Z.shape == (N_KS, 3)  # the free block is 1-D on its own
    assert stats.binomtest(int(Z[:, 1].sum()), N_KS, 0.7).pvalue > KS_ALPHA
    for in_class in (Z[:, 1] == 1, Z[:, 1] == 0):  # style independent of class
        assert stats.kstest(Z[in_class, 2], "norm").pvalue > KS_ALPHA
    # log_prob is the sum of the blocks'.
    np.testing.assert_allclose(
        prior.log_prob(Z[:5]),
        np.log(np.where(Z[:5, 1] == 1, 0.7, 0.3)) + stats.norm.logpdf(Z[:5, 2]),
        rtol=1e-12,
    )


def test_product_width_rule():
    prior = ProductPrior([("class", CategoricalPrior(10)), ("style", GaussianPrior())])
    assert prior._n_dims() is None
    # The free block takes the remainder of n_components.
    tprior = tensor_prior(prior, 12)
    assert [b.n_dims for b in tprior.blocks] == [10, 2]
    assert isinstance(_check_prior(prior, 11), ProductPrior)
    with pytest.raises(ValueError, match="n_components must be at least 11"):
        _check_prior(prior, 10)
    fixed = ProductPrior([("class", CategoricalPrior(3)), ("bits", BernoulliPrior(2))])
    assert fixed._n_dims() == 5
    with pytest.raises(ValueError, match="dimension n_components=6"):
        _check_prior(fixed, 6)
    # Nested products count their own widths.
    nested = ProductPrior([("inner", fixed), ("style", LaplacePrior())])
    assert tensor_prior(nested, 8).n_dims == 8


# (prior, n_components, error, message); InvalidParameterError is a ValueError.
INVALID_DISCRETE_PRIORS = [
    (CategoricalPrior(0), 2, ValueError, "'n_categories' parameter"),
    (CategoricalPrior(2.5), 2, ValueError, "'n_categories' parameter"),
    (CategoricalPrior(3, weights=[0.5, 0.5]), 3, ValueError, "n_categories=3 entries"),
    (CategoricalPrior(2, weights=[0.5, 0.6]), 2, ValueError, "weights must sum to 1"),
    (CategoricalPrior(2, weights=[1.5, -0.5]), 2, ValueError, "non-negative"),
    (CategoricalPrior(2, weights=[np.nan, 1.0]), 2, ValueError, "finite"),
    (BernoulliPrior(0), 2, ValueError, "'n_dims' parameter"),
    (BernoulliPrior(2, p=1.5), 2, ValueError, "'p' parameter"),
    (BernoulliPrior(2, p=[0.5, -0.1]), 2, ValueError, r"p must lie in \[0, 1\]"),
    (BernoulliPrior(2, p=[0.5, np.nan]), 2, ValueError, r"p must lie in \[0, 1\]"),
    (BernoulliPrior(3, p=[0.5, 0.5]), 3, ValueError, "n_dims=3 entries"),
    (ProductPrior([]), 2, ValueError, r"non-empty list of \(name, prior\)"),
    (ProductPrior(("a", GaussianPrior())), 2, ValueError, "'blocks' parameter"),
    (ProductPrior([GaussianPrior()]), 2, ValueError, r"\(name, prior\) tuples"),
    (
        ProductPrior([("a", GaussianPrior()), ("a", LaplacePrior())]),
        2,
        ValueError,
        r"block names must be unique; repeated: \['a'\]",
    ),
    (ProductPrior([("a__b", GaussianPrior())]), 2, ValueError, "not contain '__'"),
    (ProductPrior([("blocks", GaussianPrior())]), 2, ValueError, "nor be 'blocks'"),
    (ProductPrior([(1, GaussianPrior())]), 2, ValueError, "non-empty strings"),
    (
        ProductPrior([("a", GaussianPrior()), ("b", LaplacePrior())]),
        2,
        ValueError,
        r"At most one block .* free width.*\['a', 'b'\]",
    ),
    (ProductPrior([("a", object())]), 2, TypeError, "block 'a' must be a prior"),
    (ProductPrior([("a", GaussianPrior(scale=-1.0))]), 2, ValueError, "'scale'"),
    (
        ProductPrior([("a", CategoricalPrior("3")), ("b", GaussianPrior())]),
        4,
        ValueError,
        "'n_categories' parameter",
    ),
    (
        ProductPrior([("a", CategoricalPrior(2, weights=[1.0, 1.0]))]),
        2,
        ValueError,
        "weights must sum to 1",
    ),
]


@pytest.mark.parametrize("prior, n_components, error, match", INVALID_DISCRETE_PRIORS)
def test_invalid_discrete_and_product_priors_raise(prior, n_components, error, match):
    with pytest.raises(error, match=match):
        prior.sample(2)
    est = MMDAutoencoder(n_components=n_components, prior=prior, max_iter=1)
    with pytest.raises(error, match=match):
        est.fit(np.zeros((4, 2)))


def test_product_nested_params_get_set_and_clone():
    prior = ProductPrior([("class", CategoricalPrior(3)), ("style", GaussianPrior())])
    params = prior.get_params()
    assert params["style__scale"] == 1.0 and params["class__n_categories"] == 3
    assert params["style"] is prior.blocks[1][1]
    prior.set_params(style__scale=2.0, class__weights=[0.2, 0.3, 0.5])
    assert prior.blocks[1][1].scale == 2.0
    assert prior.blocks[0][1].weights == [0.2, 0.3, 0.5]
    prior.set_params(style=LaplacePrior())  # a block replaced by name
    assert isinstance(prior.blocks[1][1], LaplacePrior)
    cloned = clone(prior)
    assert cloned.blocks[1][1] is not prior.blocks[1][1]
    assert cloned.get_params()["class__weights"] == [0.2, 0.3, 0.5]


def test_product_nested_params_in_estimator_grid():
    est = MMDAutoencoder(
        n_components=4,
        prior=ProductPrior(
            [("class", CategoricalPrior(2)), ("style", GaussianPrior())]
        ),
    )
    assert est.get_params()["prior__style__scale"] == 1.0
    grid = ParameterGrid({"prior__style__scale": [0.5, 2.0], "reg_weight": [1.0]})
    scales = [
        clone(est).set_params(**params).prior.blocks[1][1].scale for params in grid
    ]
    assert scales == [0.5, 2.0]
    assert est.prior.blocks[1][1].scale == 1.0  # the original is untouched


def test_product_without_closed_form_samples():
    prior = PRODUCT_PRIORS[-1]  # a ring beside a swiss roll
    assert tensor_prior(prior, 4).rbf_terms is None
    with pytest.raises(AttributeError, match="no closed-form kernel means"):
        prior.rbf_kernel_mean(np.zeros((1, 4)))
    with pytest.raises(AttributeError, match="no density"):
        prior.log_prob(np.zeros((1, 4)))


def _forbid_prior_sampling(monkeypatch):
    """Make every tensor-side prior's ``sample`` fail: the MMD must not sample."""

    def forbidden(self, n, generator):
        raise AssertionError(f"{type(self).__name__}.sample called")

    for name in dir(_torch_priors):
        cls = getattr(_torch_priors, name)
        if isinstance(cls, type) and callable(getattr(cls, "sample", None)):
            monkeypatch.setattr(cls, "sample", forbidden)


FIT_PRIORS = [
    (CategoricalPrior(3, weights=[0.2, 0.3, 0.5]), 3),
    (BernoulliPrior(3, p=[0.2, 0.5, 0.9]), 3),
    (
        ProductPrior([("class", CategoricalPrior(3)), ("style", GaussianPrior())]),
        5,
    ),
    (
        ProductPrior(
            [("bits", BernoulliPrior(2)), ("ring", GaussianMixturePrior.ring())]
        ),
        4,
    ),
]


@pytest.mark.parametrize("prior, n_components", FIT_PRIORS)
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_mmd_autoencoder_fits_with_closed_form_of_new_priors(
    prior, n_components, kernel, monkeypatch
):
    X = np.random.RandomState(0).normal(size=(60, 5))
    est = MMDAutoencoder(
        n_components=n_components,
        prior=prior,
        kernel=kernel,
        hidden_layer_sizes=(8,),
        max_iter=3,
        batch_size=20,
        random_state=0,
        device="cpu",
    )
    with monkeypatch.context() as m:
        _forbid_prior_sampling(m)
        est.fit(X)  # closed form: no prior sample drawn
    assert est.transform(X).shape == (60, n_components)
    assert np.all(np.isfinite(est.history_["regularization"]))
    assert est.sample(3, random_state=0).shape == (3, 5)


def test_mmd_autoencoder_samples_a_product_without_closed_form():
    prior = ProductPrior([("bit", BernoulliPrior(1)), ("roll", SwissRollPrior())])
    X = np.random.RandomState(0).normal(size=(40, 4))
    est = MMDAutoencoder(
        n_components=3,
        prior=prior,
        hidden_layer_sizes=(8,),
        max_iter=2,
        random_state=0,
        device="cpu",
    ).fit(X)
    assert np.all(np.isfinite(est.history_["regularization"]))


def test_nested_product_with_a_free_block_samples_on_its_own():
    # The free block of a product is a product with a free block of its own:
    # on its own it takes its own default width (here 2 + 1), not 1.
    inner = ProductPrior([("class", CategoricalPrior(2)), ("style", GaussianPrior())])
    outer = ProductPrior([("inner", inner), ("bits", BernoulliPrior(2))])
    Z = outer.sample(4, random_state=0)
    assert Z.shape == (4, 5)
    assert np.all(np.isfinite(outer.log_prob(Z)))
    assert np.isfinite(outer.rbf_kernel_mean_prior(1.0))
    assert tensor_prior(outer, 7).n_dims == 7  # in an estimator: the remainder


def test_product_refuses_a_conditional_prior_block():
    # A block's learned per-class scales would be silently dropped.
    prior = ProductPrior(
        [("ica", ConditionalPrior()), ("style", GaussianPrior(loc=[0.0]))]
    )
    with pytest.raises(TypeError, match="block 'ica'.*ConditionalPrior"):
        prior.sample(2)
    X, y = np.zeros((6, 2)), np.repeat([0, 1], 3)
    with pytest.raises(TypeError, match="block 'ica'.*ConditionalPrior"):
        MMDAutoencoder(n_components=2, prior=prior, max_iter=1).fit(X, y)


def test_prior_given_as_a_class_is_refused_clearly():
    Z = np.random.RandomState(0).normal(size=(10, 2))
    with pytest.raises(TypeError, match=r"instance.*GaussianPrior\(\)"):
        mmd_to_prior(Z, GaussianPrior)
    with pytest.raises(TypeError, match=r"instance.*GaussianPrior\(\)"):
        MMDAutoencoder(n_components=2, prior=GaussianPrior, max_iter=1).fit(Z)


@pytest.mark.parametrize("n_dims", [0, -1, 2.5, "2"])
def test_rbf_kernel_mean_prior_validates_n_dims(n_dims):
    # n_dims=0 used to give 1.0, the empty product, silently.
    with pytest.raises((TypeError, ValueError), match="n_dims"):
        GaussianPrior().rbf_kernel_mean_prior(1.0, n_dims=n_dims)


@pytest.mark.parametrize(
    "prior, name",
    [
        (GaussianPrior(loc=[]), "loc"),
        (LaplacePrior(scale=[]), "scale"),
        (UniformPrior(low=[], high=1.0), "low"),
    ],
)
def test_empty_vector_parameters_raise(prior, name):
    with pytest.raises(ValueError, match=f"{name} must not be empty"):
        prior.sample(2)
    with pytest.raises(ValueError, match=f"{name} must not be empty"):
        prior.log_prob(np.zeros((2, 1)))


class _NaNPrior:
    def sample(self, n_samples, random_state=None):
        return np.full((n_samples, 2), np.nan)


def test_user_prior_with_non_finite_samples_is_refused():
    # mmd_to_prior returned nan, and fit diverged with advice about the
    # learning rate.
    Z = np.random.RandomState(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="non-finite"):
        mmd_to_prior(Z, _NaNPrior())
    with pytest.raises(ValueError, match="non-finite"):
        MMDAutoencoder(n_components=2, prior=_NaNPrior(), max_iter=1).fit(Z)


class _ColumnLogProbPrior:
    def sample(self, n_samples, random_state=None):
        return np.random.RandomState(random_state).normal(size=(n_samples, 2))

    def log_prob(self, Z):
        return stats.norm.logpdf(Z).sum(axis=1, keepdims=True)  # (n, 1): wrong


def test_user_prior_log_prob_of_wrong_shape_raises_clearly():
    X = np.random.RandomState(0).normal(size=(20, 3))
    est = MMDAutoencoder(
        n_components=2, prior=_ColumnLogProbPrior(), max_iter=1, random_state=0
    )
    est.fit(X)
    with pytest.raises(ValueError, match=r"log_prob returned .* shape \(\d+, 1\)"):
        est.score_samples(X[:3])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n_mixture_components": 2.5}, "n_mixture_components"),
        ({"n_mixture_components": 0}, "n_mixture_components"),
        ({"radius": -1.0}, "radius"),
        ({"radius": np.nan}, "radius"),
        ({"radial_std": -0.5}, "radial_std"),
        ({"tangential_std": 0.0}, "tangential_std"),
        ({"tangential_std": np.inf}, "tangential_std"),
    ],
)
def test_ring_validates_its_arguments(kwargs, name):
    # n_mixture_components=2.5 gave 3 unevenly spaced components; a negative
    # standard deviation was squared away.
    with pytest.raises(ValueError, match=name):
        GaussianMixturePrior.ring(**kwargs)
