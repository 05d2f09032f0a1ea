"""The networks: encoder kinds (one interface, ``sample(X, generator)`` and
``mean(X)``) and their output heads per code block."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils._testing import assert_allclose, assert_array_equal

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder
from sklearn_aae._networks import (
    ENCODERS,
    BlockHead,
    MixtureEncoder,
    build_networks,
    head_layout,
)
from sklearn_aae._torch_priors import code_support, tensor_prior
from sklearn_aae.priors import (
    BernoulliPrior,
    CategoricalPrior,
    GaussianPrior,
    LaplacePrior,
    ProductPrior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X_DIGITS = load_digits().data[:120] / 16.0
# A code with every kind of block: 3 one-hot, 2 binary, 2 real columns.
MIXED = [(3, "one_hot"), (2, "binary"), (2, "real")]
MIXED_PRIOR = ProductPrior(
    [
        ("class", CategoricalPrior(3)),
        ("bits", BernoulliPrior(2)),
        ("style", GaussianPrior()),
    ]
)
FAST = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=40, device="cpu")
ESTIMATORS = [
    MMDAutoencoder(n_components=7, prior=MIXED_PRIOR, **FAST),
    AdversarialAutoencoder(
        n_components=7,
        prior=MIXED_PRIOR,
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
]


# The mixture encoder maps a style into a Gaussian mixture's components: real
# codes only (it refuses heads), tested on its own below.
HEADED_ENCODERS = [kind for kind in ENCODERS if kind != "mixture"]


def _kw(kind):
    """build_networks' arguments an encoder kind needs beyond the common ones."""
    return {"n_mixture": 2} if kind == "mixture" else {}


def _check_on_support(Z, atol=1e-6):
    """One-hot columns sum to 1 per row, binary ones in [0, 1]."""
    Z = np.asarray(Z, dtype=np.float64)
    assert np.all(Z[:, :5] >= 0) and np.all(Z[:, :5] <= 1)
    assert_allclose(Z[:, :3].sum(1), 1.0, atol=atol)


# ----------------------------------------------------------------- BlockHead
def test_block_head_maps_each_block_onto_its_support():
    Z = torch.randn(50, 7, generator=torch.Generator().manual_seed(0)) * 5
    out = BlockHead(MIXED)(Z)
    assert_allclose(out[:, :3], torch.softmax(Z[:, :3], dim=1))
    assert_allclose(out[:, 3:5], torch.sigmoid(Z[:, 3:5]))
    assert_array_equal(out[:, 5:], Z[:, 5:])
    _check_on_support(out)


def test_block_head_softmaxes_each_one_hot_block_on_its_own():
    Z = torch.randn(20, 5, generator=torch.Generator().manual_seed(0))
    out = BlockHead([(2, "one_hot"), (3, "one_hot")])(Z)
    assert_allclose(out[:, :2].sum(1), 1.0, rtol=1e-6)
    assert_allclose(out[:, 2:].sum(1), 1.0, rtol=1e-6)


def test_block_head_has_no_state_and_acts_on_leading_dimensions():
    head = BlockHead(MIXED)
    assert list(head.parameters()) == []
    assert head.state_dict() == {}
    Z = torch.randn(4, 6, 7)
    assert_allclose(head(Z).reshape(24, 7), head(Z.reshape(24, 7)))


def test_head_layout_merges_real_and_binary_runs_only():
    support = [(2, "real"), (1, "real"), (2, "one_hot"), (3, "one_hot"), (1, "binary")]
    assert head_layout(support + [(2, "binary")]) == (
        (3, "real"),
        (2, "one_hot"),
        (3, "one_hot"),
        (3, "binary"),
    )


# ------------------------------------------------------------ encoder kinds
@pytest.mark.parametrize("kind", ENCODERS)
@pytest.mark.parametrize("heads", [None, [(3, "real")], [(1, "real"), (2, "real")]])
def test_real_heads_build_the_networks_without_a_head(kind, heads):
    # Only real blocks: the very networks (and the initial weights) of a
    # real-valued code, so results stay bit-identical.
    ref_enc, ref_dec = build_networks(6, 3, (5,), "relu", kind, seed=0, **_kw(kind))
    enc, dec = build_networks(
        6, 3, (5,), "relu", kind, seed=0, heads=heads, **_kw(kind)
    )
    assert repr(enc) == repr(ref_enc)
    for a, b in [(enc, ref_enc), (dec, ref_dec)]:
        state, ref = a.state_dict(), b.state_dict()
        assert list(state) == list(ref)
        for key in ref:
            assert torch.equal(state[key], ref[key]), key
    assert not any(isinstance(m, BlockHead) for m in enc.modules())


@pytest.mark.parametrize("kind", HEADED_ENCODERS)
def test_discrete_heads_keep_the_weights_and_state_dict_keys(kind):
    # The head has no parameters and draws nothing: same weights, same keys.
    ref, _ = build_networks(6, 7, (5,), "relu", kind, seed=0)
    enc, _ = build_networks(6, 7, (5,), "relu", kind, seed=0, heads=MIXED)
    assert list(enc.state_dict()) == list(ref.state_dict())
    for key, value in ref.state_dict().items():
        assert torch.equal(enc.state_dict()[key], value), key
    assert sum(isinstance(m, BlockHead) for m in enc.modules()) == 1


@pytest.mark.parametrize("kind", HEADED_ENCODERS)
def test_encoder_kinds_put_samples_and_means_on_the_support(kind):
    enc, _ = build_networks(6, 7, (5,), "relu", kind, seed=0, heads=MIXED)
    X = 3 * torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        _check_on_support(enc.sample(X, g))
        _check_on_support(enc.mean(X))


def test_gaussian_encoder_draws_noise_on_real_columns_only():
    enc, _ = build_networks(6, 7, (5,), "relu", "gaussian", seed=0, heads=MIXED)
    X = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean = enc.mean(X)
        draws = [enc.sample(X, torch.Generator().manual_seed(s)) for s in range(2)]
    for draw in draws:
        assert torch.equal(draw[:, :5], mean[:, :5])  # deterministic given x
    assert not torch.equal(draws[0][:, 5:], draws[1][:, 5:])
    # The real columns are the head-less Gaussian's draws.
    ref, _ = build_networks(6, 7, (5,), "relu", "gaussian", seed=0)
    with torch.no_grad():
        ref_draw = ref.sample(X, torch.Generator().manual_seed(0))
    assert torch.equal(draws[0][:, 5:], ref_draw[:, 5:])


def test_universal_encoder_mean_averages_after_the_head():
    enc, _ = build_networks(6, 7, (5,), "relu", "universal", seed=0, heads=MIXED)
    X = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw = enc.body(torch.cat([X, torch.zeros(30, 7)], dim=1))
        assert torch.equal(enc(X, torch.zeros(30, 7)), BlockHead(MIXED)(raw))
        mean = enc.mean(X)
    _check_on_support(mean)


# ------------------------------------------------------- in the estimators
@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("kind", HEADED_ENCODERS)
def test_transform_returns_codes_on_the_prior_support(est, kind):
    est = est.set_params(encoder=kind, random_state=0).fit(X_DIGITS)
    Z = est.transform(X_DIGITS)
    assert Z.dtype == np.float64
    _check_on_support(Z)
    assert sum(isinstance(m, BlockHead) for m in est.encoder_.modules()) == 1


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_inverse_transform_accepts_any_codes(est):
    est = est.set_params(random_state=0).fit(X_DIGITS)
    Z = np.random.RandomState(0).normal(scale=3.0, size=(5, 7))
    assert np.all(np.isfinite(est.inverse_transform(Z)))
    assert est.sample(4, random_state=0).shape == (4, X_DIGITS.shape[1])


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_heads_survive_pickling(est):
    est = est.set_params(encoder="gaussian", random_state=0).fit(X_DIGITS)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.transform(X_DIGITS), est.transform(X_DIGITS))
    assert repr(restored.encoder_) == repr(est.encoder_)


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_warm_start_refuses_other_heads(est):
    est = est.set_params(random_state=0, warm_start=True).fit(X_DIGITS)
    est.set_params(prior=GaussianPrior())
    with pytest.raises(ValueError, match="heads changed from .*one_hot"):
        est.fit(X_DIGITS)


def test_warm_start_accepts_another_real_prior():
    # The heads of an all-real code do not depend on how it is cut into blocks.
    blocks = [("a", GaussianPrior(scale=[1.0, 2.0])), ("b", LaplacePrior())]
    prior = ProductPrior(blocks)
    est = MMDAutoencoder(n_components=3, prior=prior, random_state=0, **FAST)
    est.fit(X_DIGITS)
    est.set_params(prior=GaussianPrior(), warm_start=True).fit(X_DIGITS)
    assert est.n_iter_ == 2 * FAST["max_iter"]


def test_code_support_describes_each_prior_block():
    class SampleOnly:
        def sample(self, n_samples, random_state=None):
            return np.zeros((n_samples, 3))

    assert code_support(tensor_prior(SampleOnly(), 3)) == [(3, "real")]
    assert code_support(tensor_prior(LaplacePrior(), 2)) == [(2, "real")]
    assert code_support(tensor_prior(MIXED_PRIOR, 7)) == MIXED
    nested = ProductPrior([("inner", MIXED_PRIOR), ("c", CategoricalPrior(2))])
    assert code_support(tensor_prior(nested, 9)) == [*MIXED, (2, "one_hot")]


# ------------------------------------------------ encoder kinds, one interface
X_SMALL = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))


def _encoder(kind):
    return build_networks(5, 3, (7,), "tanh", kind, seed=0, **_kw(kind))[0]


@pytest.mark.parametrize("kind", ENCODERS)
def test_encoder_kinds_share_one_interface(kind):
    enc = _encoder(kind)
    assert isinstance(enc, ENCODERS[kind])
    with torch.no_grad():
        Z = enc.sample(X_SMALL, torch.Generator().manual_seed(1))
        again = enc.sample(X_SMALL, torch.Generator().manual_seed(1))
        mean = enc.mean(X_SMALL)
    assert Z.shape == mean.shape == (6, 3)
    torch.testing.assert_close(Z, again, rtol=0, atol=0)  # the generator decides
    torch.testing.assert_close(enc.mean(X_SMALL), mean, rtol=0, atol=0)  # deterministic


@pytest.mark.parametrize(
    "kind, random",
    [
        ("deterministic", False),
        ("gaussian", True),
        ("universal", True),
        ("mixture", False),
    ],
)
def test_sample_is_random_only_for_random_encoders(kind, random):
    enc = _encoder(kind)
    with torch.no_grad():
        a = enc.sample(X_SMALL, torch.Generator().manual_seed(1))
        b = enc.sample(X_SMALL, torch.Generator().manual_seed(2))
    assert (not torch.equal(a, b)) == random


def test_gaussian_mean_is_the_mean_head():
    enc = _encoder("gaussian")
    with torch.no_grad():
        torch.testing.assert_close(enc.mean(X_SMALL), enc(X_SMALL)[0], rtol=0, atol=0)


def test_deterministic_encoder_is_an_indexable_sequential():
    enc = _encoder("deterministic")
    assert isinstance(enc, torch.nn.Sequential)
    assert enc[0].in_features == 5 and enc[-1].out_features == 3
    assert list(enc.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_build_networks_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    build_networks(5, 3, (7,), "relu", "universal", seed=0)
    assert torch.equal(torch.get_rng_state(), state)


# ------------------------------------------------------------ mixture encoder
def _mixture_encoder():
    enc = _encoder("mixture")
    means = torch.tensor([[-4.0, 0.0, 1.0], [4.0, 1.0, 0.0]])
    cholesky = torch.stack([torch.eye(3) * 0.5, torch.tril(torch.ones(3, 3))])
    enc.set_components(means, cholesky)
    return enc, means, cholesky


def test_mixture_encoder_maps_the_style_into_each_component():
    enc, means, cholesky = _mixture_encoder()
    with torch.no_grad():
        out = enc.body(X_SMALL)
        log_p, style_out, codes = enc.parts(X_SMALL)
    p, style = torch.softmax(out[:, :2], 1), out[:, 2:]
    torch.testing.assert_close(log_p.exp(), p)
    torch.testing.assert_close(style_out, style)
    for k in range(2):
        torch.testing.assert_close(codes[:, k], means[k] + style @ cholesky[k].T)
    with torch.no_grad():
        torch.testing.assert_close(
            enc.sample(X_SMALL, None), (p[:, :, None] * codes).sum(1)
        )
        mean = enc.mean(X_SMALL)
    # transform's code is the most probable component's, inside that component
    torch.testing.assert_close(mean, codes[torch.arange(6), p.argmax(1)])


def test_mixture_encoder_codes_agree_where_one_component_is_certain():
    enc, _, _ = _mixture_encoder()
    with torch.no_grad():
        enc.body[-1].bias[:2] = torch.tensor([50.0, -50.0])
        torch.testing.assert_close(enc.sample(X_SMALL, None), enc.mean(X_SMALL))


def test_mixture_encoder_keeps_its_components_in_the_state_dict():
    enc, means, cholesky = _mixture_encoder()
    fresh = _encoder("mixture")
    fresh.load_state_dict(enc.state_dict())
    assert torch.equal(fresh.means, means) and torch.equal(fresh.cholesky, cholesky)
    assert isinstance(pickle.loads(pickle.dumps(enc)), MixtureEncoder)


def test_mixture_encoder_refuses_heads():
    with pytest.raises(ValueError, match="real-valued code"):
        build_networks(6, 7, (5,), "relu", "mixture", seed=0, heads=MIXED, n_mixture=2)
