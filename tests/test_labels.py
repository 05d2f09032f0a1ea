"""Labels in the regulariser (Makhzani et al. 2015, section 2.3).

``fit(X, y)`` with ``-1`` for unlabelled rows: with a prior whose components
are classes, labelled codes of class ``k`` are matched to component ``k`` and
unlabelled codes to the whole prior. Label encoding and the stratified split
(``_data``), the per-class closed forms (``_torch_priors``, ``_kernels``), and
both regularisers.
"""

import numpy as np
import pytest
import torch
from _settings import ESTIMATOR_FACTORIES, FAST
from scipy import sparse
from sklearn.datasets import make_blobs
from sklearn.utils._testing import assert_allclose, assert_array_equal

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior
from sklearn_aae._base import _labelled_cross_entropy
from sklearn_aae._data import _label_codes, _stratified_split
from sklearn_aae._kernels import (
    grouped_mmd2_sum,
    mmd2_unbiased,
    prior_class_kernel_terms,
    prior_kernel_terms,
    rbf_kernel,
    squared_distances,
)
from sklearn_aae._mmd import _MMDRegularizer
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae.priors import (
    CategoricalPrior,
    ConditionalPrior,
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    SwissRollPrior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

parametrize_factories = pytest.mark.parametrize(
    "make", ESTIMATOR_FACTORIES, ids=lambda m: m.func.__name__
)

RING3 = GaussianMixturePrior.ring(3)
PRIORS_WITH_CLASSES = {
    "ring": (GaussianMixturePrior.ring(4), 2),
    "full-covariance": (
        GaussianMixturePrior(
            means=[[0.0, 0.0, 1.0], [2.0, -1.0, 0.0]],
            covariances=[np.eye(3) * 0.3, [[0.5, 0.2, 0], [0.2, 0.4, 0], [0, 0, 1]]],
            weights=[0.3, 0.7],
        ),
        3,
    ),
    "categorical": (CategoricalPrior(3, weights=[0.2, 0.3, 0.5]), 3),
}


def _blobs(n=300, seed=0):
    """Three well-separated blobs in 8-D, scaled to about unit range."""
    X, y = make_blobs(n, n_features=8, centers=3, cluster_std=1.0, random_state=seed)
    return (X - X.mean(0)) / X.std(0), y


def _keep_labels(y, fraction, seed=0):
    """``y`` with all but ``fraction`` of each class's labels set to -1."""
    rng = np.random.RandomState(seed)
    out = np.full_like(y, -1)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        kept = rng.choice(rows, max(1, round(fraction * rows.size)), replace=False)
        out[kept] = c
    return out


def _fit_held_out(cls, prior, X, y, seed, **params):
    """``cls`` fitted on the first 450 rows with 10% of their labels (small
    networks); returns it and the codes of the other rows."""
    est = cls(
        prior=prior,
        hidden_layer_sizes=(32,),
        batch_size=64,
        device="cpu",
        random_state=seed,
        **params,
    ).fit(X[:450], _keep_labels(y[:450], 0.1))
    return est, est.transform(X[450:])


def _most_probable_component(Z, prior):
    """The component under which each code is most probable (weights ignored)."""
    tprior = tensor_prior(prior, Z.shape[1], dtype=torch.float64)
    Zt = torch.from_numpy(Z)
    log_p = torch.stack(
        [
            torch.distributions.MultivariateNormal(m, scale_tril=L).log_prob(Zt)
            for m, L in zip(tprior.means, tprior.scale_tril, strict=True)
        ],
        1,
    )
    return log_p.argmax(1).numpy()


class _EveryClassIsTheWholePrior:
    """A tensor-side prior whose every class is the prior itself (sampled)."""

    log_rbf_class_terms = None

    def __init__(self, tprior):
        self._t = tprior

    def __getattr__(self, name):
        return getattr(self._t, name)

    def sample_classes(self, codes, generator):
        return self._t.sample(codes.shape[0], generator)


class _AnyLabelsPrior(GaussianPrior):
    """A standard normal that keeps labels of any kind, as a conditional prior
    would, with the same distribution for every class."""

    def _n_classes(self):
        return "any"

    def _build_tensor_prior(self, n_dims, device, dtype):
        tprior = super()._build_tensor_prior(n_dims, device, dtype)
        return _EveryClassIsTheWholePrior(tprior)


# ------------------------------------------------------------- label encoding
def test_label_codes_of_a_mixture_are_the_component_indices():
    codes, classes = _label_codes(np.array([2, -1, 0, 2]), 4)
    assert_array_equal(codes, [2, -1, 0, 2])
    assert_array_equal(classes, np.arange(4))  # every component, even if absent
    codes, _ = _label_codes(np.array([2.0, -1.0]), 4)  # integer-valued floats
    assert codes.dtype == np.int64 and codes.tolist() == [2, -1]


def test_label_codes_of_any_labels_follow_sorted_classes():
    codes, classes = _label_codes(np.array(["b", "a", -1, "c"], dtype=object), "any")
    assert_array_equal(codes, [1, 0, -1, 2])
    assert classes.tolist() == ["a", "b", "c"]
    # A later call (warm start) keeps the classes; a subset is fine.
    codes, again = _label_codes(np.array(["c", -1], dtype=object), "any", classes)
    assert_array_equal(codes, [2, -1]) and again is classes


def test_label_codes_without_labelled_rows_are_none():
    assert _label_codes(np.full(5, -1), 3) == (None, None)


@pytest.mark.parametrize(
    "y, error, match",
    [
        (np.array(["0", "1"]), TypeError, "integers 0..2.*LabelEncoder"),
        ([0.5, 1.0], TypeError, "labels such as 0.5"),
        ([np.nan, 1.0], TypeError, "labels such as nan"),
        ([True, False], TypeError, "labels such as True"),
        (np.array([1, "x"], dtype=object), TypeError, "labels such as 'x'"),
        ([0, 3, 5], ValueError, r"labels \[3, 5\] but the prior has 3 components"),
        ([-2, 0], ValueError, r"labels \[-2\]"),
    ],
)
def test_label_codes_of_a_mixture_reject_other_labels(y, error, match):
    with pytest.raises(error, match=match):
        _label_codes(y, 3)


def test_label_codes_refuse_new_classes_under_warm_start():
    with pytest.raises(ValueError, match=r"classes \['d'\] not in classes_"):
        _label_codes(np.array(["a", "d"]), "any", np.array(["a", "b"]))
    with pytest.raises(ValueError, match="has 4 components but .* 3 classes"):
        _label_codes([0, 1], 4, np.arange(3))


# ------------------------------------------------------------ stratified split
@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_stratified_split_holds_out_each_class_in_proportion(seed, fraction):
    rng = np.random.RandomState(seed)
    codes = np.where(rng.rand(400) < 0.1, rng.randint(0, 10, 400), -1)
    n_val = int(np.ceil(fraction * codes.size))
    train, val = _stratified_split(codes, n_val, np.random.RandomState(seed))
    assert val.size == n_val
    assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(codes.size))
    for c in np.unique(codes):
        n_c = np.sum(codes == c)
        if c >= 0:  # no class wholly held out
            assert np.sum(codes[train] == c) >= 1
        # Within two rows of the class's share.
        assert abs(np.sum(codes[val] == c) - fraction * n_c) <= 2


def test_stratified_split_keeps_rare_classes_in_training():
    # 10 classes with one or two labels each, among 180 unlabelled rows.
    codes = np.r_[np.arange(10), np.arange(10)[:5], np.full(180, -1)]
    for seed in range(20):
        train, _ = _stratified_split(codes, 60, np.random.RandomState(seed))
        assert set(codes[train]) == set(range(-1, 10))


@parametrize_factories
def test_early_stopping_split_is_stratified_on_the_labels(make, monkeypatch):
    seen = {}
    split = type(make())._split

    def recording_split(self, data, incremental, seed):
        seen["codes"] = data.y.cpu().numpy()
        seen["split"] = split(self, data, incremental, seed)
        return seen["split"]

    monkeypatch.setattr(type(make()), "_split", recording_split)
    X, y = _blobs(200)
    y = np.where(np.arange(200) < 6, y, -1)  # 6 labels, about 2 per class
    make(prior=RING3, early_stopping=True, validation_fraction=0.5).fit(X, y)
    train, val = seen["split"]
    assert set(seen["codes"][train]) == set(y)  # each class kept in training
    assert val.size == 100


# ------------------------------------------------------------ the estimators
@parametrize_factories
def test_classes_of_a_mixture_are_its_components(make):
    X, y = _blobs(90)
    est = make(prior=RING3).fit(X, _keep_labels(y, 0.2))
    assert_array_equal(est.classes_, [0, 1, 2])
    # A class may be absent (a partial dataset): the components stay.
    est = make(prior=RING3).fit(X, np.where(y == 2, -1, y))
    assert_array_equal(est.classes_, [0, 1, 2])


@parametrize_factories
def test_string_labels_are_refused_by_a_mixture(make):
    X, y = _blobs(90)
    with pytest.raises(TypeError, match="GaussianMixturePrior matches labels"):
        make(prior=RING3).fit(X, np.array(["a", "b", "c"])[y])


@parametrize_factories
def test_more_classes_than_components_is_an_error(make):
    X, _ = _blobs(90)
    with pytest.raises(ValueError, match=r"labels \[3\] but GaussianMixturePrior"):
        make(prior=RING3).fit(X, np.arange(90) % 4)


@parametrize_factories
@pytest.mark.parametrize(
    "prior", [GaussianPrior(), LaplacePrior(), SwissRollPrior(), None]
)
def test_priors_without_classes_ignore_labels(make, prior):
    X, y = _blobs(90)
    plain = make(prior=prior).fit(X)
    est = make(prior=prior).fit(X, np.array(["a", "b", "c"])[y])
    assert est.loss_curve_ == plain.loss_curve_
    assert not hasattr(est, "classes_")


def _weights(est):
    return {
        f"{name}.{k}": v
        for name, m in est._modules().items()
        for k, v in m.state_dict().items()
    }


@parametrize_factories
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("encoder", ["deterministic", "gaussian", "mixture"])
def test_all_unlabelled_trains_exactly_as_without_labels(make, early_stopping, encoder):
    X, _ = _blobs(120)
    params = dict(prior=RING3, early_stopping=early_stopping, encoder=encoder)
    plain = make(**params).fit(X)
    est = make(**params).fit(X, np.full(120, -1))
    assert est.loss_curve_ == plain.loss_curve_
    assert not hasattr(est, "classes_")
    for key, value in _weights(plain).items():
        assert torch.equal(_weights(est)[key], value), key


# Measured held-out component accuracy over seeds 0-4. MMD: 1.0 every time
# (with every row weighing the same: 0.39, 0.0, 0.0 on seeds 0-2, the classes
# settled permuted; see _data.LABELLED_SHARE). Adversarial: 0.96, 1.0, 0.0,
# 0.99, 0.0 (on two seeds the classes settle permuted and the game does not
# undo it; the default reg_weight=0.01 leaves the discriminator winning).
@pytest.mark.parametrize(
    "cls, params, seed",
    [
        (MMDAutoencoder, dict(reg_weight=10.0), 0),
        (
            AdversarialAutoencoder,
            dict(
                reg_weight=1.0,
                discriminator_hidden_layer_sizes=(32,),
                # measured with the learning rates that were the defaults then
                discriminator_learning_rate=1e-3,
                learning_rate_init=1e-3,
            ),
            1,
        ),
    ],
    ids=["MMDAutoencoder", "AdversarialAutoencoder"],
)
def test_labelled_codes_land_in_their_own_component(cls, params, seed):
    X, y = _blobs(600)
    _, Z = _fit_held_out(cls, RING3, X, y, seed, max_iter=40, **params)
    assert np.mean(_most_probable_component(Z, RING3) == y[450:]) >= 0.95


# ------------------------------------------------------------ encoder='mixture'
# Measured held-out component accuracy over seeds 0-4. MMD (the settings of
# the test above): 1.0 on every seed (with reg_weight=0.3 and 20 epochs 0.36,
# 0.72, 1.0, 1.0, 1.0). Adversarial, 20 epochs: 0.31, 0.89, 0.97, 0.65, 0.85
# (the game is slow to settle on blobs; on digits it reaches 0.70-0.91, see
# the benchmarks README).
@pytest.mark.parametrize(
    "cls, params, seed, least",
    [
        (MMDAutoencoder, dict(reg_weight=10.0, max_iter=40), 0, 0.95),
        (
            AdversarialAutoencoder,
            dict(discriminator_hidden_layer_sizes=(16,), max_iter=20),
            2,
            0.9,
        ),
    ],
    ids=["MMDAutoencoder", "AdversarialAutoencoder"],
)
def test_mixture_encoder_puts_codes_inside_their_own_component(
    cls, params, seed, least
):
    X, y = _blobs(600)
    est, Z = _fit_held_out(cls, RING3, X, y, seed, encoder="mixture", **params)
    assert np.mean(_most_probable_component(Z, RING3) == y[450:]) >= least
    # each code is its component's map of the row's style, mu_k + L_k s
    with torch.no_grad():
        log_p, _, codes = est.encoder_.parts(
            torch.as_tensor(X[450:], dtype=torch.float32)
        )
    k = log_p.argmax(1).numpy()
    assert_allclose(Z, codes.numpy()[np.arange(len(k)), k], rtol=1e-6)


@parametrize_factories
def test_mixture_encoder_takes_its_components_from_the_prior(make):
    X, y = _blobs(90)
    est = make(prior=RING3, encoder="mixture").fit(X, y)
    assert_allclose(est.encoder_.means.numpy(), RING3.means, rtol=1e-6)
    assert_allclose(
        est.encoder_.cholesky.numpy(), np.linalg.cholesky(RING3.covariances), rtol=1e-6
    )


@parametrize_factories
def test_mixture_encoder_trains_the_labelled_responsibilities(make):
    X, y = _blobs(150)
    est = make(prior=RING3, encoder="mixture", max_iter=10).fit(X, y)
    curve = est.history_["classification"]
    assert len(curve) == est.n_iter_ and curve[-1] < curve[0]
    assert "classification" not in make(prior=RING3, encoder="mixture").fit(X).history_


def test_mixture_encoder_styles_are_matched_to_the_standard_normal():
    # The MMD flavour adds the styles' MMD to N(0, I) (weight reg_weight), so
    # that codes fill their components; the adversarial one leaves it out.
    X, y = _blobs(150)
    est = MMDAutoencoder(prior=RING3, encoder="mixture", **FAST).fit(X, y)
    assert len(est.history_["style"]) == est.n_iter_
    regularizer = est._make_regularizer(
        tensor_prior(RING3, 2), torch.Generator().manual_seed(0)
    )
    S = torch.randn(50, 2, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.2
    assert_allclose(
        float(regularizer.style_term(S)),
        mmd_to_prior(S.numpy().astype(np.float64), GaussianPrior()),
        rtol=1e-4,
    )
    normal = torch.randn(4000, 2, generator=torch.Generator().manual_seed(2))
    assert regularizer.style_term(normal) < 1e-3
    unweighted = MMDAutoencoder(prior=RING3, encoder="mixture", reg_weight=0, **FAST)
    assert "style" not in unweighted.fit(X, y).history_
    adversarial = AdversarialAutoencoder(prior=RING3, encoder="mixture", **FAST)
    assert "style" not in adversarial.fit(X, y).history_


def test_labelled_cross_entropy_ignores_the_unlabelled_rows():
    log_p = torch.log(torch.tensor([[0.5, 0.5], [0.2, 0.8], [0.9, 0.1]]))
    value = _labelled_cross_entropy(log_p, torch.tensor([-1, 1, 0]))
    assert_allclose(float(value), -(np.log(0.8) + np.log(0.9)) / 2, rtol=1e-6)
    assert float(_labelled_cross_entropy(log_p, torch.tensor([-1, -1, -1]))) == 0.0


@parametrize_factories
@pytest.mark.parametrize("prior", [GaussianPrior(), SwissRollPrior(n_segments=3)])
def test_mixture_encoder_needs_a_gaussian_mixture_prior(make, prior):
    X, _ = _blobs(60)
    match = "encoder='mixture' .* GaussianMixturePrior"
    est = make(prior=prior, encoder="mixture")
    with pytest.raises(ValueError, match=match):
        est.fit(X)
    assert not hasattr(est, "n_features_in_") and not hasattr(est, "prior_")
    # refused before any work: a fitted model is left as it was
    est = make(prior=RING3).fit(X)
    Z, prior_ = est.transform(X), est.prior_
    est.set_params(prior=prior, encoder="mixture")
    with pytest.raises(ValueError, match=match):
        est.fit(np.hstack([X, X]))
    assert est.prior_ is prior_ and est.n_features_in_ == X.shape[1]
    assert_array_equal(est.transform(X), Z)


def test_task_estimators_do_not_offer_the_mixture_encoder():
    from sklearn.utils._param_validation import InvalidParameterError

    from sklearn_aae import MMDAutoencoderClassifier, MMDAutoencoderClustering

    X, y = _blobs(60)
    with pytest.raises(InvalidParameterError, match="encoder"):
        MMDAutoencoderClassifier(prior=RING3, encoder="mixture", **FAST).fit(X, y)
    with pytest.raises(InvalidParameterError, match="encoder"):
        MMDAutoencoderClustering(3, encoder="mixture", **FAST).fit(X)


@parametrize_factories
def test_mixture_encoder_follows_a_moved_prior_under_warm_start(make):
    X, y = _blobs(90)
    est = make(prior=RING3, encoder="mixture", warm_start=True).fit(X, y)
    moved = GaussianMixturePrior(
        means=2 * np.asarray(RING3.means), covariances=RING3.covariances
    )
    est.set_params(prior=moved).fit(X, y)
    assert_allclose(est.encoder_.means.numpy(), moved.means, rtol=1e-6)


def test_mixture_encoder_objective_is_the_sum_of_its_terms():
    # loss = reconstruction + reg_weight (regularization + style)
    #        + 0.1 classification, epoch by epoch
    X, y = _blobs(150)
    est = MMDAutoencoder(prior=RING3, encoder="mixture", reg_weight=0.7, **FAST).fit(
        X, _keep_labels(y, 0.3)
    )
    h = {k: np.asarray(v) for k, v in est.history_.items()}
    expected = (
        h["reconstruction"]
        + 0.7 * (h["regularization"] + h["style"])
        + 0.1 * h["classification"]
    )
    assert_allclose(est.loss_curve_, expected, rtol=1e-5)


@parametrize_factories
def test_mixture_encoder_with_early_stopping_and_bfloat16(make):
    # The validation loss (transform's codes, the cross-entropy and the style
    # term) and the bfloat16 autocast of the network passes.
    X, y = _blobs(150)
    est = make(
        prior=RING3, encoder="mixture", early_stopping=True, precision="bfloat16"
    ).fit(X, _keep_labels(y, 0.3))
    assert np.all(np.isfinite(est.validation_loss_curve_))
    assert len(est.validation_loss_curve_) == est.n_iter_
    Z = est.transform(X)
    assert Z.dtype == np.float64 and np.all(np.isfinite(Z))


@parametrize_factories
def test_mixture_encoder_consistency_target_is_the_training_code(make):
    # With next to no noise the noisy row's training code is the clean row's:
    # the term vanishes only if its target is that code too, not transform's
    # code (one component's), which the untrained responsibilities are far from.
    X, y = _blobs(90)
    est = make(
        prior=RING3, encoder="mixture", consistency_weight=0.1, consistency_noise=1e-9
    ).fit(X, y)
    assert max(est.history_["consistency"]) < 1e-8


@parametrize_factories
def test_mixture_encoder_warm_start_refuses_another_number_of_components(make):
    X, y = _blobs(90)
    est = make(prior=RING3, encoder="mixture", warm_start=True).fit(X, y)
    est.set_params(prior=GaussianMixturePrior.ring(4))
    with pytest.raises(ValueError, match="n_mixture changed from 3 to 4"):
        est.fit(X)


@parametrize_factories
def test_partial_fit_keeps_the_classes(make):
    X, y = _blobs(90)
    est = make(prior=_AnyLabelsPrior()).partial_fit(X, np.array(["a", "b", "c"])[y])
    classes = est.classes_
    est.partial_fit(X[y < 2], np.array(["a", "b"])[y[y < 2]])  # a subset: fine
    est.partial_fit(X)  # no labels: every row unlabelled
    assert est.classes_ is classes
    with pytest.raises(ValueError, match=r"classes \['d'\] not in classes_"):
        est.partial_fit(X, np.array(["a", "b", "d"])[y])


@parametrize_factories
@pytest.mark.parametrize("method", ["warm_start", "partial_fit"])
def test_labels_cannot_be_added_after_a_fit_without_them(make, method):
    X, y = _blobs(90)
    est = make(prior=RING3, warm_start=True).fit(X)
    with pytest.raises(ValueError, match="first fit without any"):
        if method == "warm_start":
            est.fit(X, y)
        else:
            est.partial_fit(X, y)


def test_a_fresh_fit_without_labels_drops_the_classes():
    X, y = _blobs(90)
    est = MMDAutoencoder(prior=RING3, **FAST).fit(X, y)
    assert hasattr(est, "classes_")
    assert not hasattr(est.fit(X), "classes_")


@pytest.mark.parametrize("kind", ["dense", "csr", "memmap"])
def test_class_codes_travel_with_their_rows(kind, tmp_path, monkeypatch):
    # The regulariser sees each row's own label: the encoder's first code
    # coordinate is a frozen copy of the row id, whose label is id % 3.
    n = 90
    X = np.random.RandomState(0).uniform(size=(n, 5))
    X[:, 0] = np.arange(n)
    if kind == "csr":
        X = sparse.csr_matrix(X)
    elif kind == "memmap":
        mm = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        X = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="r", shape=X.shape)
    y = np.where(np.arange(n) % 5 == 0, -1, np.arange(n) % 3)
    checked = []

    def evaluate(self, Z, y=None):
        ids = Z[:, 0].detach().round().to(torch.int64).numpy()
        expected = np.where(ids % 5 == 0, -1, ids % 3)
        assert_array_equal(y.numpy(), expected)
        checked.append(len(ids))
        return Z.sum() * 0.0

    monkeypatch.setattr(_MMDRegularizer, "evaluate", evaluate)
    est = MMDAutoencoder(prior=RING3, hidden_layer_sizes=(), max_iter=1, batch_size=16)
    est.set_params(device="cpu", early_stopping=True, validation_fraction=0.2)

    def freeze(self, *args):
        layer = self.encoder_[0]
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, 0] = 1.0
            layer.bias.zero_()
        layer.requires_grad_(False)
        return _MMDRegularizer.__new__(_MMDRegularizer)

    monkeypatch.setattr(MMDAutoencoder, "_make_regularizer", freeze)
    est.fit(X, y)
    assert sum(checked) == n  # every training and validation row, once


# -------------------------------------------------------- per-class closed forms
@pytest.mark.parametrize("name", PRIORS_WITH_CLASSES)
@pytest.mark.parametrize("bandwidth", [[0.5], [0.3, 1.0, 3.0]])
def test_class_kernel_means_match_monte_carlo(name, bandwidth):
    prior, d = PRIORS_WITH_CLASSES[name]
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    bw = torch.tensor(bandwidth, dtype=torch.float64)
    mean_fn, pp = prior_class_kernel_terms(tprior, bw)
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(7, d, generator=g, dtype=torch.float64)
    K = pp.shape[0]
    for k in range(K):
        Y = tprior.sample_classes(torch.full((100_000,), k), g)
        mc_mean = rbf_kernel(squared_distances(Z, Y), bw).mean(1)
        assert_allclose(mean_fn(Z, torch.full((7,), k)), mc_mean, atol=3e-3)
        Y2 = tprior.sample_classes(torch.full((100_000,), k), g)
        mc_pp = rbf_kernel(((Y - Y2) ** 2).sum(1), bw).mean()
        assert_allclose(float(pp[k]), float(mc_pp), atol=3e-3)


@pytest.mark.parametrize("name", PRIORS_WITH_CLASSES)
def test_classes_weighted_by_the_mixture_weights_are_the_whole_prior(name):
    # sum_k w_k E_{p_k} k(z, .) = E_p k(z, .), also through the IMQ quadrature.
    prior, d = PRIORS_WITH_CLASSES[name]
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    w = tprior.weights
    Z = torch.randn(5, d, generator=torch.Generator().manual_seed(1)).double()
    for kernel in ["rbf", "imq"]:
        bw = torch.tensor([0.4, 1.3], dtype=torch.float64)
        mean_fn, _ = prior_class_kernel_terms(tprior, bw, kernel)
        whole, _ = prior_kernel_terms(tprior, bw, kernel)
        by_class = torch.stack(
            [mean_fn(Z, torch.full((5,), k)) for k in range(w.shape[0])], 1
        )
        assert_allclose(by_class @ w, whole(Z), rtol=1e-10)


def test_sample_classes_draws_from_each_component():
    prior, d = PRIORS_WITH_CLASSES["full-covariance"]
    tprior = tensor_prior(prior, d, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for k in range(2):
        Y = tprior.sample_classes(torch.full((200_000,), k), g)
        assert_allclose(Y.mean(0), tprior.means[k], atol=1e-2)
        cov = tprior.scale_tril[k] @ tprior.scale_tril[k].T
        assert_allclose(torch.cov(Y.T), cov, atol=1e-2)
    one_hot = tensor_prior(CategoricalPrior(3), dtype=torch.float64)
    assert_array_equal(
        one_hot.sample_classes(torch.tensor([2, 0]), g), [[0, 0, 1], [1, 0, 0]]
    )


# ----------------------------------------------------- the grouped MMD estimator
def test_grouped_mmd_of_one_group_is_the_unbiased_mmd():
    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    bw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    mean_fn, pp = prior_kernel_terms(tprior, bw)
    Z = torch.randn(30, 2, generator=torch.Generator().manual_seed(0)).double()
    groups = torch.zeros(30, dtype=torch.int64)
    total = grouped_mmd2_sum(Z, groups, 1, bw, mean_fn(Z), pp.reshape(1))
    assert_allclose(total / 30, mmd2_unbiased(Z, bw, mean_fn(Z), pp), rtol=1e-10)


def test_grouped_mmd_weights_the_groups_by_their_counts():
    # Two groups of 20 and 10 rows, each against its own component; a group
    # of one row counts by its V-statistic 1 - 2 E_p k(z, .) + E_pp k.
    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    bw = torch.tensor([0.7], dtype=torch.float64)
    class_mean, class_pp = prior_class_kernel_terms(tprior, bw)
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(31, 2, generator=g).double()
    groups = torch.tensor([0] * 20 + [2] * 10 + [1])
    total = grouped_mmd2_sum(Z, groups, 3, bw, class_mean(Z, groups), class_pp)
    expected = 0.0
    for k, rows in [(0, slice(0, 20)), (2, slice(20, 30))]:
        Zk = Z[rows]
        m = class_mean(Zk, torch.full((Zk.shape[0],), k))
        expected += Zk.shape[0] * mmd2_unbiased(Zk, bw, m, class_pp[k])
    single = 1 - 2 * class_mean(Z[30:], torch.tensor([1])) + class_pp[1]
    assert_allclose(total, expected + single.squeeze(), rtol=1e-10)


@pytest.mark.parametrize(
    "n_labelled, share", [(0, 0.0), (4, 0.5), (20, 0.5), (30, 0.75), (40, 1.0)]
)
def test_labelled_rows_weigh_at_least_half(n_labelled, share):
    # (1 - s) MMD^2(unlabelled, p) + s sum_k n_k / n_L MMD^2(class k, p_k),
    # s = max(n_L / n, 1/2): rows count equally once half the batch is labelled.
    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    bw = torch.tensor([0.5, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = torch.where(torch.arange(40) < n_labelled, torch.arange(40) % 3, -1)
    value = _MMDRegularizer(tprior, bw, g, n_classes=3).evaluate(Z, y)
    plain = _MMDRegularizer(tprior, bw, g)
    class_mean, class_pp = prior_class_kernel_terms(tprior, bw)
    expected = 0.0
    if n_labelled < 40:
        expected += (1 - share) * plain.evaluate(Z[n_labelled:])
    for k in range(3):
        Zk = Z[y == k]
        if Zk.shape[0]:
            m = class_mean(Zk, torch.full((Zk.shape[0],), k))
            if Zk.shape[0] == 1:  # the V-statistic of one row
                mmd2 = 1 - 2 * m[0] + class_pp[k]
            else:
                mmd2 = mmd2_unbiased(Zk, bw, m, class_pp[k])
            expected += share * Zk.shape[0] / n_labelled * mmd2
    assert_allclose(value, expected, rtol=1e-10)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
@pytest.mark.parametrize("sampled", [False, True])
def test_grouped_mmd_gradcheck(kernel, sampled):
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(9, 2, generator=g, dtype=torch.float64, requires_grad=True)
    groups = torch.tensor([0, 0, 0, 1, 2, 2, 2, 2, 1])
    bw = torch.tensor([0.5, 1.5], dtype=torch.float64)
    if sampled:
        Y = torch.randn(18, 2, generator=g, dtype=torch.float64)

        def f(Z):
            return grouped_mmd2_sum(
                Z,
                groups,
                3,
                bw,
                None,
                None,
                Y=Y,
                Y_groups=groups.repeat(2),
                kernel=kernel,
            )
    else:
        tprior = tensor_prior(RING3, 2, dtype=torch.float64)
        mean_fn, pp = prior_class_kernel_terms(tprior, bw, kernel)

        def f(Z):
            return grouped_mmd2_sum(
                Z, groups, 3, bw, mean_fn(Z, groups), pp, kernel=kernel
            )

    assert torch.autograd.gradcheck(f, (Z,))


class _SampledTorchMixture:
    """A ring's tensor side with its closed forms hidden: the MMD samples."""

    rbf_terms = log_rbf_scale_terms = log_rbf_class_terms = None

    def __init__(self, tprior):
        self._t = tprior

    def __getattr__(self, name):
        return getattr(self._t, name)


@pytest.mark.parametrize("kernel", ["rbf", "imq"])
def test_sampled_class_mmd_agrees_with_the_closed_form(kernel):
    # Both estimates are unbiased for groups of two rows or more: their means
    # over many prior draws agree (the standard error here is about 2e-3).
    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    bw = torch.tensor([0.5, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    Z = 1.2 * torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, -1] * 10)
    exact = _MMDRegularizer(tprior, bw, g, kernel, n_classes=3).evaluate(Z, y)
    sampled = _MMDRegularizer(_SampledTorchMixture(tprior), bw, g, kernel, n_classes=3)
    assert not sampled.closed_form
    draws = torch.stack([sampled.evaluate(Z, y) for _ in range(400)])
    assert abs(float(draws.mean() - exact)) < 4 * float(draws.std()) / 20


def test_class_mmd_is_smaller_for_codes_in_their_own_component():
    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    Z = tprior.sample_classes(y, g)
    reg = _MMDRegularizer(
        tprior, torch.tensor([0.5, 1.0], dtype=torch.float64), g, n_classes=3
    )
    own, shuffled = reg.evaluate(Z, y), reg.evaluate(Z, (y + 1) % 3)
    assert abs(float(own)) < 0.02 < float(shuffled)


# -------------------------------------------------------- the adversarial recipe
def test_discriminator_reads_the_code_and_the_label_slots():
    X, y = _blobs(90)
    est = AdversarialAutoencoder(
        prior=RING3, discriminator_hidden_layer_sizes=(8,), **FAST
    )
    assert est.fit(X, y).discriminator_[0].in_features == 2 + 3 + 1
    assert est.fit(X).discriminator_[0].in_features == 2
    assert est.fit(X, np.full(90, -1)).discriminator_[0].in_features == 2


def test_adversarial_prior_samples_are_paired_with_the_labels():
    from sklearn_aae._adversarial import _AdversarialRegularizer

    tprior = tensor_prior(RING3, 2, dtype=torch.float64)
    reg = _AdversarialRegularizer(
        None,
        None,
        tprior,
        torch.Generator().manual_seed(0),
        steps=1,
        instance_noise=0.0,
        precision="float32",
        n_classes=3,
    )
    y = torch.tensor([2] * 5000 + [-1] * 5000)
    real = reg._prior_sample(10_000, y)
    assert_allclose(real[:5000].mean(0), tprior.means[2], atol=0.03)
    assert_allclose(real[5000:].mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05)
    inputs = reg._inputs(real, y)
    assert_array_equal(inputs[0, 2:], [0, 0, 1, 0])
    assert_array_equal(inputs[-1, 2:], [0, 0, 0, 1])  # the "unlabelled" slot
    assert_array_equal(reg._inputs(real[:2], None)[:, 2:], [[0, 0, 0, 1]] * 2)


def test_a_labelled_adversarial_model_continues_without_labels():
    X, y = _blobs(90)
    est = AdversarialAutoencoder(
        prior=RING3, discriminator_hidden_layer_sizes=(8,), warm_start=True, **FAST
    ).fit(X, y)
    est.partial_fit(X)  # every row in the "unlabelled" slot
    est.set_params(prior=GaussianPrior()).fit(X, y)  # y ignored, slots kept
    assert est.discriminator_[0].in_features == 6 and est.n_iter_ == 7


# ------------------------------------------------- a swiss roll cut in segments
ROLL3 = SwissRollPrior(n_segments=3)


def _roll_points(prior, u):
    s = np.sqrt(u)
    angle = 2 * np.pi * prior.n_turns * s
    return prior.radius * s[:, None] * np.c_[np.cos(angle), np.sin(angle)]


def _nearest_segment(Z, prior):
    """The segment of the (noiseless) roll nearest to each code."""
    K = prior.n_segments
    distances = [
        np.sqrt(
            (
                (Z[:, None] - _roll_points(prior, np.linspace(k, k + 1, 200) / K)) ** 2
            ).sum(-1)
        ).min(1)
        for k in range(K)
    ]
    return np.argmin(np.stack(distances, 1), 1)


@parametrize_factories
def test_classes_of_a_swiss_roll_are_its_segments(make):
    X, y = _blobs(90)
    est = make(prior=ROLL3).fit(X, _keep_labels(y, 0.2))
    assert_array_equal(est.classes_, [0, 1, 2])
    if isinstance(est, AdversarialAutoencoder):
        assert est.discriminator_[0].in_features == 2 + 3 + 1


@parametrize_factories
def test_labels_beyond_the_segments_are_an_error(make):
    X, _ = _blobs(90)
    with pytest.raises(ValueError, match=r"labels \[3\] but SwissRollPrior"):
        make(prior=ROLL3).fit(X, np.arange(90) % 4)
    with pytest.raises(TypeError, match="SwissRollPrior matches labels"):
        make(prior=ROLL3).fit(X, np.array(["a", "b", "c"] * 30))


@parametrize_factories
def test_all_unlabelled_on_a_swiss_roll_trains_as_without_labels(make):
    X, _ = _blobs(90)
    plain = make(prior=ROLL3).fit(X)
    est = make(prior=ROLL3).fit(X, np.full(90, -1))
    assert est.loss_curve_ == plain.loss_curve_
    for key, value in _weights(plain).items():
        assert torch.equal(_weights(est)[key], value), key


def test_class_mmd_to_a_swiss_roll_is_sampled_per_segment():
    tprior = tensor_prior(ROLL3, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    Z = tprior.sample_classes(y, g)
    reg = _MMDRegularizer(
        tprior, torch.tensor([0.5, 1.0], dtype=torch.float64), g, n_classes=3
    )
    assert not reg.closed_form and reg.class_terms is None
    own = torch.stack([reg.evaluate(Z, y) for _ in range(20)]).mean()
    shuffled = torch.stack([reg.evaluate(Z, (y + 1) % 3) for _ in range(20)]).mean()
    assert abs(float(own)) < 0.02 < float(shuffled)


def test_adversarial_prior_samples_are_paired_with_the_segments():
    from sklearn_aae._adversarial import _AdversarialRegularizer

    tprior = tensor_prior(ROLL3, dtype=torch.float64)
    reg = _AdversarialRegularizer(
        None,
        None,
        tprior,
        torch.Generator().manual_seed(0),
        steps=1,
        instance_noise=0.0,
        precision="float32",
        n_classes=3,
    )
    y = torch.tensor([2, 0, -1, 1] * 500)
    real = reg._prior_sample(2000, y).numpy()
    labelled = y.numpy() >= 0
    u = (np.linalg.norm(real, axis=1) / 3.0) ** 2  # the position on the roll
    assert_array_equal(np.floor(3 * u[labelled]), y.numpy()[labelled])
    assert u[~labelled].min() < 0.1 and u[~labelled].max() > 0.9  # the whole roll


# Measured held-out share of codes nearest their own segment, 4 blobs mapped to
# the segments in a shuffled order, 10% of labels, a roll with noise 0.2: MMD
# 0.98, 1.0, 0.98, 0.99, 0.98 over seeds 0-4; adversarial 0.93, 0.61, 0.95 over
# seeds 0-2 (the discriminator needs the noise: on the noiseless roll the
# codes of a class often sit in another segment). Without labels: MMD 0.21,
# 0.13, 0.25, the blobs land in segments of their own choosing.
@pytest.mark.parametrize(
    "cls, params, seed",
    [
        (MMDAutoencoder, dict(reg_weight=10.0, max_iter=30), 0),
        (
            AdversarialAutoencoder,
            dict(
                reg_weight=1.0,
                discriminator_hidden_layer_sizes=(32,),
                discriminator_learning_rate=1e-3,
                learning_rate_init=1e-3,
                max_iter=200,
                n_iter_no_change=1000,
            ),
            2,
        ),
    ],
    ids=["MMDAutoencoder", "AdversarialAutoencoder"],
)
def test_labelled_codes_land_in_their_own_segment(cls, params, seed):
    X, blob = make_blobs(600, n_features=8, centers=4, random_state=0)
    X = (X - X.mean(0)) / X.std(0)
    y = np.array([2, 0, 3, 1])[blob]
    prior = SwissRollPrior(noise=0.2, n_segments=4)
    _, Z = _fit_held_out(cls, prior, X, y, seed, **params)
    assert np.mean(_nearest_segment(Z, prior) == y[450:]) >= 0.9


# ------------------------------------------------------------- sample(y=...)
def _drawn_codes(est, monkeypatch, *args, **kwargs):
    """The codes that ``est.sample(*args, **kwargs)`` decodes."""
    monkeypatch.setattr(est, "_decode", lambda codes, dtype: np.asarray(codes))
    return est.sample(*args, **kwargs)


@parametrize_factories
def test_sample_with_y_draws_from_that_components(make, monkeypatch):
    X, y = _blobs(90)
    est = make(prior=RING3).fit(X, y)
    for k in range(3):
        Z = _drawn_codes(est, monkeypatch, 400, random_state=0, y=k)
        # true samples of one component of the 3-ring: most probable under it
        assert np.mean(_most_probable_component(Z, RING3) == k) >= 0.97
        assert_allclose(Z.mean(0), RING3.means[k], atol=0.1)
    per_row = _drawn_codes(est, monkeypatch, 3, random_state=0, y=[2, 0, 1])
    assert_array_equal(_most_probable_component(per_row, RING3), [2, 0, 1])


def test_sample_with_y_draws_one_hot_categories_and_roll_segments(monkeypatch):
    X, y = _blobs(90)
    est = MMDAutoencoder(n_components=3, prior=CategoricalPrior(3), **FAST).fit(X)
    assert_array_equal(_drawn_codes(est, monkeypatch, 4, y=1), np.eye(3)[[1] * 4])
    roll = SwissRollPrior(noise=0.0, n_segments=3)
    est = MMDAutoencoder(prior=roll, **FAST).fit(X, y)
    Z = _drawn_codes(est, monkeypatch, 100, random_state=0, y=2)
    assert_array_equal(_nearest_segment(Z, roll), 2)


def test_sample_with_y_takes_a_conditional_priors_classes():
    X, y = _blobs(90)
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    est = MMDAutoencoder(prior=ConditionalPrior(), **FAST).fit(X, labels)
    assert est.sample(5, random_state=0, y="b").shape == (5, X.shape[1])
    with pytest.raises(ValueError, match=r"classes \['d'\] not in classes_"):
        est.sample(2, y="d")


@pytest.mark.parametrize(
    "prior, y, match",
    [
        (GaussianPrior(), 0, "GaussianPrior has no classes"),
        (RING3, -1, "needs a class for every row"),
        (RING3, 3, "labels must be 0..2"),
        (RING3, [0, 1], "one label or 3 labels"),
    ],
)
def test_sample_with_y_refuses_what_names_no_class(prior, y, match):
    X, labels = _blobs(60)
    est = MMDAutoencoder(prior=prior, **FAST).fit(X, labels)
    with pytest.raises(ValueError, match=match):
        est.sample(3, y=y)
