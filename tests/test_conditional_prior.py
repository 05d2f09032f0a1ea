"""ConditionalPrior: per-class learned scales, their closed-form MMD, the estimator.

Monte Carlo checks compare a closed form with the mean of ``N_MC`` kernel
evaluations and accept ``N_SE`` standard errors of that mean (fixed seeds, so
the tests are deterministic), as in test_kernels.py.
"""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import assert_allclose

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder
from sklearn_aae._kernels import (
    diagonal_gaussian_rbf_log_mean,
    diagonal_gaussian_rbf_log_mean_prior,
    grouped_mmd2_mean,
    imq_rbf_quadrature,
    mmd2_unbiased,
)
from sklearn_aae._torch_priors import class_scale_rbf_log_terms
from sklearn_aae.priors import (
    ConditionalPrior,
    GaussianPrior,
    LaplacePrior,
    UniformPrior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_MC = 200_000
N_SE = 5.0
F64 = torch.float64

FAST = dict(
    hidden_layer_sizes=(16,),
    max_iter=3,
    batch_size=64,
    learning_rate_init=1e-2,
    device="cpu",
    random_state=0,
)


def _segments(n_segments=3, n_per=40, d=3, seed=0):
    """Rows whose coordinates' scales change with the segment label."""
    rng = np.random.RandomState(seed)
    scales = rng.uniform(0.5, 2.0, size=(n_segments, d))
    u = np.repeat(np.arange(n_segments), n_per)
    return rng.normal(size=(len(u), d)) * scales[u], u


def _draw(kind, scale, n, g):
    """``n`` draws of independent coordinates with per-coordinate ``scale``."""
    if kind == "gaussian":
        return scale * torch.randn(n, scale.shape[-1], generator=g, dtype=F64)
    e = torch.empty(2, n, scale.shape[-1], dtype=F64).exponential_(generator=g)
    return scale * (e[0] - e[1])


def _rbf(D, bw):
    return torch.exp(-D[..., None] / (2 * bw**2)).mean(-1)


# --------------------------------------------------------------- closed forms
@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
@pytest.mark.parametrize("bandwidths", [[1.0], [0.5, 1.0, 2.0]])
def test_class_kernel_means_match_monte_carlo(kind, bandwidths):
    g = torch.Generator().manual_seed(0)
    bw = torch.tensor(bandwidths, dtype=F64)
    class_scale = torch.tensor([[0.5, 1.5, 2.5], [2.0, 0.7, 1.0]], dtype=F64)
    codes = torch.tensor([0, 1, 1, 0])
    T = torch.randn(4, 3, generator=g, dtype=F64)
    log_mean, log_pp = class_scale_rbf_log_terms(
        kind, T, class_scale[codes], class_scale, bw
    )
    assert log_mean.shape == (len(bandwidths), 4)
    assert log_pp.shape == (len(bandwidths), 2)
    mean, pp = log_mean.exp().mean(0), log_pp.exp().mean(0)
    for k in range(2):
        Y = _draw(kind, class_scale[k], N_MC, g)
        Y2 = _draw(kind, class_scale[k], N_MC, g)
        samples = _rbf(((Y - Y2) ** 2).sum(-1), bw)
        se = samples.std() / N_MC**0.5
        assert abs(float(pp[k] - samples.mean())) < N_SE * se + 1e-12
        for i in np.flatnonzero(codes.numpy() == k):
            samples = _rbf(((T[i] - Y) ** 2).sum(-1), bw)
            se = samples.std() / N_MC**0.5
            assert abs(float(mean[i] - samples.mean())) < N_SE * se + 1e-12


def test_diagonal_gaussian_kernel_means_broadcast_shared_scales():
    bw = torch.tensor([0.5, 2.0], dtype=F64)
    T = torch.randn(5, 3, generator=torch.Generator().manual_seed(0), dtype=F64)
    scale = torch.tensor([0.5, 1.0, 3.0], dtype=F64)
    shared = diagonal_gaussian_rbf_log_mean(T, scale, bw)
    rows = diagonal_gaussian_rbf_log_mean(T, scale.expand(5, 3), bw)
    assert_allclose(shared.numpy(), rows.numpy())
    assert diagonal_gaussian_rbf_log_mean_prior(scale, bw).shape == (2,)


def _grouped_by_hand(Z, groups, n_groups, bw, log_mean, log_pp, kernel):
    """Mean over present groups of mmd2_unbiased (a singleton: V-statistic)."""
    values = []
    for k in range(n_groups):
        rows = groups == k
        if not rows.any():
            continue
        mean = log_mean[:, rows].exp().mean(0)
        pp = log_pp[:, k].exp().mean()
        if int(rows.sum()) == 1:
            values.append(1.0 - 2.0 * mean.mean() + pp)
        else:
            values.append(mmd2_unbiased(Z[rows], bw, mean, pp, kernel=kernel))
    return torch.stack(values).mean()


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_grouped_mmd2_mean_is_the_mean_over_present_groups(kernel):
    g = torch.Generator().manual_seed(0)
    # Group 1 has one row, group 3 none, the others unequal sizes.
    groups = torch.tensor([0, 0, 0, 1, 2, 2, 4, 4, 4, 4, 4, 2])
    Z = torch.randn(len(groups), 2, generator=g, dtype=F64)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    scales = torch.rand(5, 2, generator=g, dtype=F64) + 0.5
    rbf_bw, weights = (bw, None) if kernel == "rbf" else imq_rbf_quadrature(bw)
    log_mean, log_pp = class_scale_rbf_log_terms(
        "gaussian", Z, scales[groups], scales, rbf_bw
    )
    got = grouped_mmd2_mean(Z, groups, 5, bw, log_mean, log_pp, weights, kernel)
    if weights is not None:  # fold the quadrature weights into the terms
        log_mean = log_mean + torch.log(weights * len(weights))[:, None]
        log_pp = log_pp + torch.log(weights * len(weights))[:, None]
    expected = _grouped_by_hand(Z, groups, 5, bw, log_mean, log_pp, kernel)
    assert_allclose(float(got), float(expected), rtol=1e-10)


def test_grouped_mmd2_mean_weights_groups_equally_not_by_size():
    # The same data twice in group 0: its weight must not double.
    g = torch.Generator().manual_seed(1)
    Z0 = torch.randn(6, 2, generator=g, dtype=F64)
    Z1 = 2.0 + torch.randn(3, 2, generator=g, dtype=F64)
    bw = torch.tensor([1.0], dtype=F64)
    scales = torch.ones(2, 2, dtype=F64)

    def value(Z, groups):
        log_mean, log_pp = class_scale_rbf_log_terms(
            "gaussian", Z, scales[groups], scales, bw
        )
        return float(grouped_mmd2_mean(Z, groups, 2, bw, log_mean, log_pp))

    per_group = [
        value(Z0, torch.zeros(6, dtype=torch.long)),
        value(Z1, torch.ones(3, dtype=torch.long)),
    ]
    both = value(torch.cat([Z0, Z1]), torch.tensor([0] * 6 + [1] * 3))
    assert_allclose(both, np.mean(per_group), rtol=1e-10)


def test_grouped_mmd2_mean_is_near_zero_for_draws_of_each_class():
    g = torch.Generator().manual_seed(2)
    scales = torch.tensor([[0.5, 2.0], [2.0, 0.5], [1.0, 1.0]], dtype=F64)
    groups = torch.arange(3).repeat_interleave(500)
    Z = scales[groups] * torch.randn(1500, 2, generator=g, dtype=F64)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=F64)

    def value(s):
        log_mean, log_pp = class_scale_rbf_log_terms("gaussian", Z, s[groups], s, bw)
        return float(grouped_mmd2_mean(Z, groups, 3, bw, log_mean, log_pp))

    assert abs(value(scales)) < 2e-3
    assert value(scales.flip(0)) > 0.02  # two classes swapped: measured 0.031


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_grouped_mmd2_mean_gradcheck_in_codes_and_log_scales(kind):
    g = torch.Generator().manual_seed(3)
    groups = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    Z = torch.randn(7, 2, generator=g, dtype=F64, requires_grad=True)
    log_s = (0.3 * torch.randn(3, 2, generator=g, dtype=F64)).requires_grad_()
    bw = torch.tensor([0.7, 1.5], dtype=F64)

    def f(Z, log_s):
        s = (log_s - log_s.mean(0)).exp()
        log_mean, log_pp = class_scale_rbf_log_terms(kind, Z, s[groups], s, bw)
        return grouped_mmd2_mean(Z, groups, 3, bw, log_mean, log_pp)

    assert torch.autograd.gradcheck(f, (Z, log_s))


# ---------------------------------------------------------------- the prior
def test_conditional_prior_unfitted_is_its_base():
    base = LaplacePrior(scale=0.5)
    prior = ConditionalPrior(base)
    Z = np.random.RandomState(0).normal(size=(5, 2))
    assert_allclose(prior.log_prob(Z), base.log_prob(Z))
    assert_allclose(prior.sample(4, random_state=0), base.sample(4, random_state=0))
    assert_allclose(ConditionalPrior().log_prob(Z), GaussianPrior().log_prob(Z))


def test_conditional_prior_nested_parameters():
    prior = ConditionalPrior(GaussianPrior())
    assert prior.get_params()["base__scale"] == 1.0
    est = MMDAutoencoder(prior=prior).set_params(prior__base__scale=2.0)
    assert est.get_params()["prior__base__scale"] == 2.0
    assert clone(est).prior.base.scale == 2.0


@pytest.mark.parametrize("base", [UniformPrior(), "gaussian"])
def test_conditional_prior_base_must_be_gaussian_or_laplace(base):
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(base), **FAST)
    with pytest.raises(InvalidParameterError, match="base"):
        est.fit(X, u)
    with pytest.raises(InvalidParameterError, match="base"):
        ConditionalPrior(base).sample(2)


# ------------------------------------------------------------- the estimator
@pytest.mark.parametrize("base", [GaussianPrior(), LaplacePrior(scale=0.7)])
@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_learned_scales_are_fitted_attributes_normalised_over_classes(base, kernel):
    X, u = _segments(n_segments=4)
    prior = ConditionalPrior(base)
    before = repr(prior)
    est = MMDAutoencoder(n_components=3, prior=prior, kernel=kernel, **FAST)
    est.fit(X, u)
    assert est.prior_scales_.shape == (4, 3)
    # Geometric mean over classes of every coordinate's factor is 1.
    assert_allclose(np.log(est.prior_scales_).mean(0), 0.0, atol=1e-6)
    assert np.ptp(est.prior_scales_) > 0  # they did learn
    assert_allclose(est.prior_weights_, np.full(4, 0.25))
    # The parameter is not mutated, and holds no fitted state.
    assert est.prior is prior and repr(prior) == before
    assert not any(name.endswith("_") for name in vars(prior))


def test_class_weights_are_the_label_frequencies():
    X, _ = _segments(n_segments=1, n_per=60)
    u = np.array([0] * 10 + [1] * 20 + [2] * 30)
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    assert_allclose(est.prior_weights_, [1 / 6, 2 / 6, 3 / 6])


def test_string_labels_and_transform_without_labels():
    X, u = _segments()
    names = np.array(["rest", "task", "sleep"])[u]
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    est.fit(X, names)
    assert list(est.classes_) == ["rest", "sleep", "task"]
    by_code = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    by_code.fit(X, np.array([0, 2, 1])[u])  # the same classes, in sorted order
    assert_allclose(est.prior_scales_, by_code.prior_scales_, rtol=1e-5)
    assert est.transform(X).shape == (len(X), 3)


def test_fit_without_labels_is_refused():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(X)
    with pytest.raises(ValueError, match="label for every row"):
        est.fit(X, np.where(np.arange(len(u)) % 2 == 0, u, -1))


@pytest.mark.parametrize("batch_size, warns", [(100, True), (600, False)])
def test_few_rows_per_class_in_a_batch_warn(batch_size, warns):
    # 30 classes: batches of 100 rows hold ~3 rows of each, of 600 ~20.
    X, u = _segments(n_segments=30, n_per=20)
    est = MMDAutoencoder(
        n_components=3,
        prior=ConditionalPrior(),
        **{**FAST, "max_iter": 1, "batch_size": batch_size},
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.fit(X, u)
    hits = [
        w
        for w in record
        if w.category is UserWarning
        and "rows of each of the 30 classes" in str(w.message)
    ]
    assert bool(hits) == warns
    if warns:
        assert "batch_size=100" in str(hits[0].message)
        assert "about 600" in str(hits[0].message)
        assert hits[0].filename == __file__  # points at the caller's fit
    # partial_fit (the caller chooses each batch) does not warn
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        est.partial_fit(X, u)
    assert not [w for w in record if "rows of each" in str(w.message)]


def test_adversarial_autoencoder_refuses_the_conditional_prior():
    X, u = _segments()
    est = AdversarialAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    with pytest.raises(ValueError, match="MMDAutoencoder only"):
        est.fit(X, u)
    assert not hasattr(est, "encoder_")


def test_fitted_sample_and_score_use_the_learned_mixture():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    tprior = est._tensor_prior(torch.device("cpu"))
    assert_allclose(tprior.scales.numpy(), est.prior_scales_, rtol=1e-6)
    Z = tprior.sample(20_000, torch.Generator().manual_seed(0)).numpy()
    expected = est.prior_weights_ @ est.prior_scales_**2  # the mixture's variances
    assert_allclose(Z.var(0), expected, rtol=0.05)
    # log_prob: the weighted sum of the classes' Gaussian densities.
    z = Z[:3]
    dens = np.exp(-0.5 * (z[:, None] / est.prior_scales_) ** 2) / (
        np.sqrt(2 * np.pi) * est.prior_scales_
    )
    manual = np.log(dens.prod(-1) @ est.prior_weights_)
    got = tprior.log_prob(torch.as_tensor(z)).numpy()
    assert_allclose(got, manual, rtol=1e-4)
    assert est.sample(5, random_state=0).shape == (5, 3)
    assert np.all(np.isfinite(est.score_samples(X[:10])))


def test_pickle_and_clone_keep_the_learned_scales():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    back = pickle.loads(pickle.dumps(est))
    assert_allclose(back.prior_scales_, est.prior_scales_)
    assert_allclose(back.transform(X), est.transform(X))
    assert_allclose(back.sample(4, random_state=0), est.sample(4, random_state=0))
    fresh = clone(est)
    assert not hasattr(fresh, "prior_scales_")
    assert fresh.fit(X, u).prior_scales_.shape == (3, 3)


def test_warm_start_and_partial_fit_continue_the_scales():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    before = est._prior_log_scales.log_scale.detach().clone()
    est.partial_fit(X[u != 2], u[u != 2])
    assert est.prior_scales_.shape == (3, 3)
    assert not torch.equal(before, est._prior_log_scales.log_scale.detach())
    # The class counts accumulate: classes 0 and 1 were seen twice.
    assert_allclose(est.prior_weights_, [0.4, 0.4, 0.2])
    est.set_params(prior=GaussianPrior(), warm_start=True)
    with pytest.raises(ValueError, match="conditional_prior_classes"):
        est.fit(X)


def test_refit_with_another_prior_drops_the_learned_scales():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    est.set_params(prior=GaussianPrior()).fit(X)
    assert not hasattr(est, "prior_scales_")
    assert not hasattr(est, "_prior_log_scales")
    assert est.sample(2, random_state=0).shape == (2, 3)


# ------------------------------------------------------------------ recovery
def _mcc(S, Z):
    """Mean absolute correlation after the best one-to-one matching."""
    from scipy.optimize import linear_sum_assignment

    d = S.shape[1]
    C = np.abs(np.corrcoef(S.T, Z.T)[:d, d:])
    rows, cols = linear_sum_assignment(-C)
    return C[rows, cols].mean()


def test_recovers_nonstationary_sources_better_than_fastica():
    # 2 Laplace sources, 8 segments with scales in [0.2, 3], mixed by
    # orthogonal, leaky-ReLU (slope 0.2), orthogonal: the literature's
    # benchmark, small. Measured (seed 0, held-out rows): MCC 0.98 here
    # against FastICA's 0.88 and PCA's 0.8; asserted: a margin of 0.05 over
    # FastICA.
    rng = np.random.RandomState(0)
    n_seg, n_per = 8, 150
    scales = rng.uniform(0.2, 3.0, size=(n_seg, 2))
    u = np.repeat(np.arange(n_seg), n_per)
    S = rng.laplace(scale=1 / np.sqrt(2), size=(len(u), 2)) * scales[u]
    A1, A2 = (np.linalg.qr(rng.normal(size=(2, 2)))[0] for _ in range(2))
    H = S @ A1.T
    X = np.where(H > 0, H, 0.2 * H) @ A2.T
    train, test = np.arange(len(u)) % 5 != 0, np.arange(len(u)) % 5 == 0
    est = MMDAutoencoder(
        n_components=2,
        prior=ConditionalPrior(),
        hidden_layer_sizes=(64, 64),
        activation="leaky_relu",
        batch_size=len(u),
        max_iter=600,
        n_iter_no_change=600,
        reg_weight=1.0,  # measured at the former defaults (reg_weight, rate)
        learning_rate_init=1e-3,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X[train], u[train])
    ours = _mcc(S[test], est.transform(X[test]))
    ica = _mcc(S[test], FastICA(2, random_state=0).fit(X[train]).transform(X[test]))
    assert ours > ica + 0.05, (ours, ica)


@pytest.mark.parametrize("missing", [np.nan, None, pd.NA], ids=repr)
def test_missing_labels_are_refused_not_made_a_class(missing):
    # A NaN, None or pandas.NA in u is a missing label, not a class of its own.
    X, u = _segments()
    with_missing = u.astype(float if missing is np.nan else object)
    with_missing[::7] = missing
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    with pytest.raises(ValueError, match="y has 18 missing labels"):
        est.fit(X, with_missing)
    assert not hasattr(est, "classes_")
    with pytest.raises(ValueError, match="classes has 1 missing labels"):
        est.partial_fit(X, u, classes=np.array([0, 1, 2, missing], dtype=object))


def test_a_refused_fit_leaves_the_fitted_model_as_it_was():
    # The refused fits used to delete classes_, or set it to the refused
    # labels' classes ([1, 2], beside three learned scales), and to keep the
    # refused X's width in n_features_in_.
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    Z = est.transform(X)
    refused = [
        (X, None, "requires y to be passed"),
        (X, np.where(u == 0, -1, u), "label for every row"),
        (X[:, :2], None, "requires y to be passed"),
    ]
    for X_bad, u_bad, match in refused:
        with pytest.raises(ValueError, match=match):
            est.fit(X_bad, u_bad)
        assert_allclose(est.classes_, [0, 1, 2])
        assert est.n_features_in_ == 3
        assert_allclose(est.transform(X), Z)
    assert_allclose(pickle.loads(pickle.dumps(est)).transform(X), Z)


def test_a_single_class_warns_that_nothing_is_learned():
    # The centring fixes one class's learned log-scales at 0: the model is the
    # unconditional one with the base prior, which identifies no sources.
    X, _ = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    with pytest.warns(UserWarning, match="only one class"):
        est.fit(X, np.zeros(len(X), dtype=int))
    np.testing.assert_array_equal(est.prior_scales_, np.ones((1, 3)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        clone(est).fit(*_segments())  # several classes: no such warning


def test_a_continuous_u_warns_that_every_value_is_a_class():
    # A measurement or a time stamp as u makes each distinct value a class of
    # one row, whose scales nothing can learn: bin it into segments first.
    X, _ = _segments()
    u = np.linspace(0.0, 1.0, len(X))
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST)
    with pytest.warns(UserWarning, match="one training row") as record:
        est.fit(X, u)
    assert not any("batch_size" in str(w.message) for w in record)


# ------------------------------------------------ the time-contrastive term
def _segment_cross_entropy(Z, u, scales, kind, loc=0.0, weights=None):
    """Mean -log p(u | z) with p(k | z) proportional to w_k p_k(z), in NumPy
    (``weights`` None: equal)."""
    T = (Z[:, None, :] - loc) / scales[None]
    if kind == "gaussian":
        log_density = -0.5 * T**2 - 0.5 * np.log(2 * np.pi)
    else:
        log_density = -np.abs(T) - np.log(2.0)
    logits = (log_density - np.log(scales)[None]).sum(axis=2)
    if weights is not None:
        logits += np.log(weights)[None]
    logits -= logits.max(axis=1, keepdims=True)
    log_post = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_post[np.arange(len(u)), u].mean()


@pytest.mark.parametrize(
    "base, kind",
    [
        (GaussianPrior(loc=0.3, scale=2.0), "gaussian"),
        (LaplacePrior(scale=0.7), "laplace"),
    ],
)
def test_contrastive_term_is_the_cross_entropy_of_the_class_under_its_law(base, kind):
    from sklearn_aae._mmd import _ConditionalMMDRegularizer
    from sklearn_aae._torch_priors import _LearnedLogScales

    rng = np.random.RandomState(0)
    log_scales = _LearnedLogScales(4, 3)
    with torch.no_grad():
        log_scales.log_scale.copy_(torch.as_tensor(rng.normal(size=(4, 3))))
    prior = ConditionalPrior(base, contrastive_weight=0.5)
    reg = _ConditionalMMDRegularizer(
        prior, log_scales, torch.tensor([1.0]), "rbf", 3, torch.device("cpu")
    )
    Z = rng.normal(size=(50, 3)).astype(np.float32)
    u = rng.randint(4, size=50)
    weight, value = reg.extra_terms(torch.as_tensor(Z), torch.as_tensor(u))[
        "contrastive"
    ]
    scales = base.scale * log_scales().exp().detach().double().numpy()
    loc = getattr(base, "loc", 0.0)
    assert weight == 0.5
    assert_allclose(
        float(value.detach()),
        _segment_cross_entropy(Z, u, scales, kind, loc),
        rtol=1e-5,
    )
    # 0 turns it off: no term
    reg0 = _ConditionalMMDRegularizer(
        ConditionalPrior(base, contrastive_weight=0.0),
        log_scales,
        torch.tensor([1.0]),
        "rbf",
        3,
        torch.device("cpu"),
    )
    assert reg0.extra_terms(torch.as_tensor(Z), torch.as_tensor(u)) == {}
    # segments of unequal lengths: the classes' frequencies are their prior
    weights = np.array([0.1, 0.2, 0.3, 0.4])
    reg_w = _ConditionalMMDRegularizer(
        prior,
        log_scales,
        torch.tensor([1.0]),
        "rbf",
        3,
        torch.device("cpu"),
        weights=weights,
    )
    _, value_w = reg_w.extra_terms(torch.as_tensor(Z), torch.as_tensor(u))[
        "contrastive"
    ]
    assert_allclose(
        float(value_w.detach()),
        _segment_cross_entropy(Z, u, scales, kind, loc, weights),
        rtol=1e-5,
    )
    assert abs(float(value_w) - float(value)) > 1e-3


def test_contrastive_term_weighs_the_classes_by_their_training_frequencies():
    # The fitted model's regulariser reads prior_weights_ (counted before it
    # is made); equal segments give equal weights, so the same term as before.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    u = np.repeat([0, 1, 2], [20, 40, 60])
    est = MMDAutoencoder(prior=ConditionalPrior(), **FAST).fit(X, u)
    assert_allclose(est.prior_weights_, [1 / 6, 1 / 3, 1 / 2])
    reg = est._make_regularizer(est._tensor_prior(torch.device("cpu")), None)
    assert_allclose(reg.log_weights.numpy(), np.log(est.prior_weights_), rtol=1e-6)


def test_contrastive_term_trains_the_scales_to_tell_the_segments_apart():
    X, u = _segments(n_segments=4, n_per=60)
    fits = {
        w: MMDAutoencoder(
            n_components=3,
            prior=ConditionalPrior(contrastive_weight=w),
            **{**FAST, "max_iter": 40},
        ).fit(X, u)
        for w in (0.0, 1.0)
    }
    ce = {
        w: _segment_cross_entropy(f.transform(X), u, f.prior_scales_, "gaussian")
        for w, f in fits.items()
    }
    assert ce[1.0] < ce[0.0] - 0.3, ce
    # recorded when (and only when) it is on
    assert "contrastive" not in fits[0.0].history_
    curve = fits[1.0].history_["contrastive"]
    assert len(curve) == fits[1.0].n_iter_ and np.all(np.isfinite(curve))
    # a nested parameter, validated
    assert fits[1.0].get_params()["prior__contrastive_weight"] == 1.0
    with pytest.raises(InvalidParameterError, match="contrastive_weight"):
        MMDAutoencoder(prior=ConditionalPrior(contrastive_weight=-1.0), **FAST).fit(
            X, u
        )


def test_a_prior_pickled_before_contrastive_weight_existed_loads_with_it_off():
    X, u = _segments()
    est = MMDAutoencoder(n_components=3, prior=ConditionalPrior(), **FAST).fit(X, u)
    # A state written before the parameter existed: without it, in the
    # estimator's parameter and in its fitted prior_.
    for prior in (est.prior, est.prior_):
        del prior.contrastive_weight
    loaded = pickle.loads(pickle.dumps(est))
    assert loaded.prior.contrastive_weight == 0.0
    assert loaded.get_params()["prior__contrastive_weight"] == 0.0
    assert_allclose(loaded.transform(X), est.transform(X))
    loaded.set_params(warm_start=True, max_iter=1).fit(X, u)  # trains as before
