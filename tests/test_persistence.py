"""Saving and loading fitted estimators: skops without pickle, pickle, versions.

The state of an estimator (``__getstate__``) holds NumPy arrays and plain
configuration only; the modules are rebuilt on loading. These tests check that
``skops.io`` round trips every estimator, encoder and prior kind with identical
outputs while trusting only this library's classes, and how states of other
versions load.
"""

import copy
import pickle
import re
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.utils._testing import assert_array_equal

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, __version__
from sklearn_aae import _persistence as persistence
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
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Tiny networks, two epochs: these tests check what is stored, not quality.
FAST = dict(
    hidden_layer_sizes=(4,),
    max_iter=2,
    batch_size=20,
    device="cpu",
    random_state=0,
)
ESTIMATORS = {
    "mmd": partial(MMDAutoencoder, **FAST),
    "adversarial": partial(
        AdversarialAutoencoder, discriminator_hidden_layer_sizes=(4,), **FAST
    ),
}

rng = np.random.RandomState(0)
X = rng.rand(40, 5)
Y3 = np.arange(40) % 3  # three classes


def _gmm3():
    return GaussianMixturePrior(means=[[-2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])


# (id, n_components, prior factory, labels): every prior kind of
# sklearn_aae.priors, and fits with labels (classes_).
PRIORS = [
    ("gaussian", 2, GaussianPrior, None),
    ("mixture", 2, _gmm3, None),
    ("mixture-labels", 2, _gmm3, Y3),
    ("laplace", 2, LaplacePrior, None),
    ("uniform", 2, UniformPrior, None),
    ("swiss-roll", 2, SwissRollPrior, None),
    ("categorical", 3, partial(CategoricalPrior, 3), None),
    ("categorical-labels", 3, partial(CategoricalPrior, 3), Y3),
    ("bernoulli", 2, partial(BernoulliPrior, 2), None),
    (
        "product",
        4,
        lambda: ProductPrior(
            [("style", GaussianPrior()), ("class", CategoricalPrior(2))]
        ),
        None,
    ),
    ("conditional", 2, ConditionalPrior, Y3),
]
CASES = [
    pytest.param(kind, n, prior, y, id=f"{kind}-{pid}")
    for kind in ESTIMATORS
    for pid, n, prior, y in PRIORS
    # ConditionalPrior trains with MMDAutoencoder only.
    if not (kind == "adversarial" and pid == "conditional")
]


def _fit(kind, n_components, prior, y, **params):
    est = ESTIMATORS[kind](n_components=n_components, prior=prior(), **params)
    return est.fit(X, y)


def _assert_same_outputs(restored, est):
    assert_array_equal(restored.transform(X), est.transform(X))
    assert_array_equal(
        restored.sample(4, random_state=0), est.sample(4, random_state=0)
    )
    # score_samples draws its importance samples from a seed of random_state.
    if not isinstance(est.prior_, SwissRollPrior):  # the one prior without a density
        assert_array_equal(restored.score_samples(X[:6]), est.score_samples(X[:6]))
    Z = est.transform(X[:3])
    assert_array_equal(restored.inverse_transform(Z), est.inverse_transform(Z))


def _torch_objects(value):
    """Every torch object inside nested dicts, lists and tuples."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _torch_objects(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _torch_objects(v)]
    return [value] if type(value).__module__.split(".")[0] == "torch" else []


# ------------------------------------------------------------------- skops
@pytest.mark.parametrize("kind, n_components, prior, y", CASES)
def test_skops_round_trip_gives_identical_outputs(kind, n_components, prior, y):
    sio = pytest.importorskip("skops.io")
    est = _fit(kind, n_components, prior, y)
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    # Only this library's classes (the estimator and its priors): no torch
    # type, no NumPy or builtins beyond what skops trusts by default.
    assert untrusted, "the estimator's own class must be reported"
    assert all(name.startswith("sklearn_aae.") for name in untrusted), untrusted
    assert f"{type(est).__module__}.{type(est).__name__}" in untrusted
    restored = sio.loads(data, trusted=untrusted)
    assert type(restored) is type(est)
    _assert_same_outputs(restored, est)
    if y is not None:
        assert_array_equal(restored.classes_, est.classes_)
    if hasattr(est, "prior_scales_"):
        assert_array_equal(restored.prior_scales_, est.prior_scales_)
        # The learned scales' module is rebuilt too (it trains on).
        assert_array_equal(
            restored._prior_log_scales.log_scale.detach().numpy(),
            est._prior_log_scales.log_scale.detach().numpy(),
        )


def test_skops_round_trip_of_separate_discriminators_continues_exactly():
    sio = pytest.importorskip("skops.io")
    prior = ProductPrior([("style", GaussianPrior()), ("class", CategoricalPrior(2))])
    est = ESTIMATORS["adversarial"](
        n_components=4, prior=prior, discriminator_blocks="separate"
    )
    est.partial_fit(X)
    data = sio.dumps(est)
    restored = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert len(restored.discriminator_.nets) == 2
    _assert_same_outputs(restored, est)
    # Both discriminators (and their optimiser state) came back: the next
    # partial_fit call trains on identically.
    est.partial_fit(X)
    restored.partial_fit(X)
    _assert_same_outputs(restored, est)


def test_skops_untrusted_types_are_the_estimator_and_its_priors():
    sio = pytest.importorskip("skops.io")
    prior = ProductPrior([("a", GaussianPrior()), ("b", CategoricalPrior(2))])
    est = ESTIMATORS["adversarial"](n_components=3, prior=prior, encoder="gaussian")
    untrusted = sio.get_untrusted_types(data=sio.dumps(est.fit(X)))
    assert sorted(untrusted) == [
        "sklearn_aae._adversarial.AdversarialAutoencoder",
        "sklearn_aae.priors.CategoricalPrior",
        "sklearn_aae.priors.GaussianPrior",
        "sklearn_aae.priors.ProductPrior",
    ]


def test_skops_refuses_to_load_without_trusting_the_library():
    sio = pytest.importorskip("skops.io")
    data = sio.dumps(_fit("mmd", 2, GaussianPrior, None))
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(data)


@pytest.mark.parametrize("kind", ESTIMATORS)
@pytest.mark.parametrize("encoder", ["deterministic", "gaussian", "universal"])
def test_skops_round_trip_of_each_encoder(kind, encoder, tmp_path):
    sio = pytest.importorskip("skops.io")
    est = _fit(kind, 2, GaussianPrior, None, encoder=encoder)
    path = tmp_path / "model.skops"
    sio.dump(est, path)
    restored = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert type(restored.encoder_) is type(est.encoder_)
    _assert_same_outputs(restored, est)


def test_skops_round_trip_of_an_unfitted_estimator():
    sio = pytest.importorskip("skops.io")
    est = ESTIMATORS["mmd"](n_components=3, prior=LaplacePrior(scale=2.0))
    data = sio.dumps(est)
    restored = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert not hasattr(restored, "encoder_")
    assert restored.get_params()["prior"].scale == 2.0
    assert_array_equal(restored.fit(X).transform(X), clone(est).fit(X).transform(X))


@pytest.mark.parametrize("kind", ESTIMATORS)
def test_skops_round_trip_between_partial_fit_calls_continues_exactly(kind):
    # The optimisers' moments that partial_fit keeps are saved as arrays: a
    # model saved and loaded between two blocks trains on as if never saved.
    sio = pytest.importorskip("skops.io")
    est = ESTIMATORS[kind](n_components=2)
    est.partial_fit(X[:20]).partial_fit(X[20:])
    data = sio.dumps(est)
    assert sio.get_untrusted_types(data=data) == [
        f"{type(est).__module__}.{type(est).__name__}",
        "sklearn_aae.priors.GaussianPrior",
    ]
    restored = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    for model in (est, restored):
        model.partial_fit(X[:20])
    _assert_same_outputs(restored, est)
    if kind == "adversarial":
        for a, b in zip(
            restored.discriminator_.parameters(),
            est.discriminator_.parameters(),
            strict=True,
        ):
            assert torch.equal(a, b)


def test_a_fitted_model_stores_no_optimizer_state():
    # fit releases its optimisers: the saved state of a fitted model is its
    # weights alone; partial_fit's optimiser is stored with its moments.
    est = _fit("adversarial", 2, GaussianPrior, None)
    assert persistence.OPTIMIZERS_KEY not in est.__getstate__()
    est.partial_fit(X)
    stored = est.__getstate__()[persistence.OPTIMIZERS_KEY]
    assert set(stored) == {"_optimizer", "_discriminator_optimizer"}
    moments = stored["_optimizer"]["state"][0]
    assert moments["exp_avg"].shape == est.encoder_[0].weight.shape
    assert isinstance(moments["exp_avg"], np.ndarray)


# -------------------------------------------------------------- the state
@pytest.mark.parametrize("kind", ESTIMATORS)
def test_state_holds_arrays_and_configuration_only(kind):
    est = _fit(kind, 2, _gmm3, Y3, encoder="gaussian")
    est.partial_fit(X, Y3)  # leaves optimisers behind
    state = est.__getstate__()
    assert _torch_objects(state) == []
    assert state["device_"] == "cpu"
    weights = state[persistence.WEIGHTS_KEY]
    assert set(weights) == set(est._modules())
    for name, module in est._modules().items():
        for key, tensor in module.state_dict().items():
            assert weights[name][key].dtype == np.float32
            assert_array_equal(weights[name][key], tensor.numpy())
    meta = state[persistence.META_KEY]
    assert meta["version"] == __version__
    assert meta["format"] == persistence.STATE_FORMAT


def test_state_is_a_snapshot_that_later_training_does_not_change():
    est = _fit("mmd", 2, GaussianPrior, None)
    state = est.__getstate__()
    before = state[persistence.WEIGHTS_KEY]["encoder_"]["0.weight"].copy()
    est.partial_fit(X)
    assert_array_equal(state[persistence.WEIGHTS_KEY]["encoder_"]["0.weight"], before)


def test_loading_rebuilds_the_fitted_architecture_not_the_current_parameters():
    # set_params after fit changes the parameters, not the fitted networks:
    # the loaded model is the fitted one.
    est = _fit("adversarial", 2, GaussianPrior, None)
    est.set_params(hidden_layer_sizes=(9, 9), discriminator_hidden_layer_sizes=(7,))
    restored = copy.deepcopy(est)
    assert repr(restored.encoder_) == repr(est.encoder_)
    assert repr(restored.discriminator_) == repr(est.discriminator_)
    assert restored.hidden_layer_sizes == (9, 9)
    _assert_same_outputs(restored, est)


def test_a_torch_device_parameter_round_trips_as_a_torch_device():
    est = _fit("mmd", 2, GaussianPrior, None, device=torch.device("cpu"))
    state = est.__getstate__()
    assert state["device"] == "cpu"
    restored = pickle.loads(pickle.dumps(est))
    assert restored.device == torch.device("cpu")
    assert isinstance(restored.device, torch.device)
    assert restored.device_ == torch.device("cpu")


def test_loading_leaves_the_global_torch_rng_alone():
    data = pickle.dumps(_fit("adversarial", 2, GaussianPrior, None))
    before = torch.random.get_rng_state()
    pickle.loads(data)
    assert torch.equal(torch.random.get_rng_state(), before)


# ---------------------------------------------------------------- versions
def _restore(est, state):
    new = type(est).__new__(type(est))
    new.__setstate__(state)
    return new


def test_a_state_of_another_version_with_a_readable_format_loads():
    est = _fit("mmd", 2, GaussianPrior, None)
    state = est.__getstate__()
    state[persistence.META_KEY]["version"] = "0.0.1"
    _assert_same_outputs(_restore(est, state), est)


@pytest.mark.parametrize("fmt", [persistence.STATE_FORMAT + 1, 0, "1", None])
def test_a_state_of_an_unreadable_format_fails_naming_both_versions(fmt):
    est = _fit("mmd", 2, GaussianPrior, None)
    state = est.__getstate__()
    state[persistence.META_KEY].update(version="9.9.9", format=fmt)
    msg = (
        rf"saved by sklearn_aae 9\.9\.9 \(state format {fmt!s}\), but this is "
        rf"sklearn_aae {re.escape(__version__)}"
    )
    with pytest.raises(ValueError, match=msg):
        _restore(est, state)


@pytest.mark.parametrize("how", ["pickle", "skops"])
def test_a_file_from_a_newer_format_fails_on_load_naming_both_versions(
    how, monkeypatch
):
    # What an older sklearn_aae (one that reads format 0 only) says of a file
    # written by this one; the check runs inside pickle.load and skops' load.
    est = _fit("mmd", 2, GaussianPrior, None)
    if how == "skops":
        sio = pytest.importorskip("skops.io")
        data = sio.dumps(est)
        load = partial(sio.loads, trusted=sio.get_untrusted_types(data=data))
    else:
        data, load = pickle.dumps(est), pickle.loads
    monkeypatch.setattr(persistence, "STATE_FORMAT", 0)
    monkeypatch.setattr(persistence, "OLDEST_READABLE_FORMAT", 0)
    monkeypatch.setattr(persistence, "__version__", "0.0.1")
    with pytest.raises(
        ValueError,
        match=rf"saved by sklearn_aae {re.escape(__version__)} "
        r"\(state format 1\), but this is sklearn_aae 0\.0\.1, which reads "
        "format 0",
    ):
        load(data)


def test_a_state_from_before_the_format_was_recorded_loads():
    # Earlier versions pickled the modules themselves and a torch.device.
    est = _fit("adversarial", 2, GaussianPrior, None)
    legacy = {
        k: v for k, v in est.__dict__.items() if k not in est._optimizer_attributes
    }
    legacy = copy.deepcopy(legacy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = _restore(est, legacy)
    assert restored.device_ == torch.device("cpu")
    _assert_same_outputs(restored, est)


def test_damaged_weights_fail_with_a_clear_error():
    est = _fit("mmd", 2, GaussianPrior, None)
    state = est.__getstate__()
    state[persistence.WEIGHTS_KEY]["decoder_"]["0.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match="stored weights of decoder_ do not fit"):
        _restore(est, state)
    state = est.__getstate__()
    del state[persistence.WEIGHTS_KEY]["encoder_"]
    with pytest.raises(ValueError, match="no weights for encoder_"):
        _restore(est, state)


def test_a_damaged_optimizer_state_fails_with_a_clear_error():
    est = _fit("mmd", 2, GaussianPrior, None).partial_fit(X)
    state = est.__getstate__()
    moments = state[persistence.OPTIMIZERS_KEY]["_optimizer"]["state"][0]
    moments["exp_avg"] = np.zeros((1, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="stored state of _optimizer does not fit"):
        _restore(est, state)


@pytest.mark.parametrize(
    "key", ["prior_scales_", "prior_weights_", "classes_", "n_features_in_"]
)
def test_a_state_missing_an_attribute_fails_with_a_clear_error(key):
    # Without prior_scales_ the model sampled and scored with the unfitted
    # base prior instead of its learned mixture, silently.
    est = _fit("mmd", 2, ConditionalPrior, Y3)
    state = est.__getstate__()
    del state[key]
    with pytest.raises(ValueError, match=rf"lacks \['{key}'\]"):
        _restore(est, state)


@pytest.mark.parametrize("key", ["prior_scales_", "prior_weights_", "classes_"])
def test_a_state_whose_learned_scales_do_not_fit_its_classes_fails(key):
    est = _fit("mmd", 2, ConditionalPrior, Y3)
    state = est.__getstate__()
    state[key] = state[key][:2]
    with pytest.raises(ValueError, match=f"stored {key} has shape"):
        _restore(est, state)


def test_a_state_of_another_estimator_fails_with_a_clear_error():
    adversarial = _fit("adversarial", 2, GaussianPrior, None)
    mmd = _fit("mmd", 2, GaussianPrior, None)
    state = adversarial.__getstate__()
    # (its missing parameters take their defaults, as an older state's do) the
    # discriminator's weights have no module to go to.
    with pytest.raises(ValueError, match="has weights for discriminator_"):
        _restore(mmd, state)
    # An MMDAutoencoder's architecture lacks the discriminator's settings.
    state = mmd.__getstate__()
    with pytest.raises(
        ValueError, match="stored architecture of this AdversarialAutoencoder lacks"
    ):
        _restore(adversarial, state)


def test_a_state_written_before_a_parameter_existed_loads_with_its_default():
    # States of the same format written by a version without a parameter (one
    # added since, with a default that keeps the old behaviour) load, as the
    # format promises; the parameter takes its default.
    est = _fit("adversarial", 2, GaussianPrior, None)
    state = est.__getstate__()
    del state["discriminator_batch_statistics"], state["consistency_weight"]
    loaded = _restore(est, state)
    assert loaded.discriminator_batch_statistics is False
    assert loaded.consistency_weight == 0.0
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
