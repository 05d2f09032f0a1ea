"""MMDAutoencoder: what the MMD regulariser adds to BaseAutoencoder.

Shared behaviour (fit loop, inference, pickling, input handling) is tested in
test_base.py for every estimator.
"""

import numpy as np
import pytest
from _settings import FAST
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import assert_allclose, assert_array_equal

from sklearn_aae import (
    GaussianMixturePrior,
    GaussianPrior,
    MMDAutoencoder,
    mmd_to_prior,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


X_DIGITS = load_digits().data[:600] / 16.0
X_TRAIN, X_TEST = X_DIGITS[:400], X_DIGITS[400:]

BANDWIDTHS = ["auto", 0.5, 2, [0.5, 1.0, 2.0], np.array([1.0])]


class SampleOnlyPrior:
    """A user's prior with nothing but ``sample``: standard normal in 2-D."""

    def sample(self, n_samples, random_state=None):
        return np.random.RandomState(random_state).normal(size=(n_samples, 2))


@pytest.mark.parametrize("seed", [0, 1])
def test_mmd_pulls_held_out_codes_to_ring_prior(seed):
    # Measured over 3 seeds: mmd2 of held-out codes to the ring is 0.54-0.77
    # with reg_weight=0 and 0.06-0.11 with reg_weight=10.
    ring = GaussianMixturePrior.ring()
    mmd2 = {}
    for reg_weight in [0.0, 10.0]:
        est = MMDAutoencoder(
            prior=ring,
            reg_weight=reg_weight,
            hidden_layer_sizes=(16,),
            max_iter=20,
            batch_size=100,
            device="cpu",
            random_state=seed,
        ).fit(X_TRAIN)
        mmd2[reg_weight] = mmd_to_prior(est.transform(X_TEST), ring)
    assert mmd2[10.0] < 0.2
    assert mmd2[10.0] < 0.5 * mmd2[0.0]


def test_regularization_history_is_the_batch_mmd():
    # The recorded regularisation is an unbiased MMD^2 estimate: of the order
    # of mmd_to_prior on the training codes, and it decreases with training.
    # Measured over seeds 0-2: from 0.20-0.23 to within 0.0010-0.0041 of
    # mmd_to_prior (itself 0.0005-0.0015); asserted: within 0.006.
    est = MMDAutoencoder(**{**FAST, "max_iter": 15}).fit(X_TRAIN)
    reg = est.history_["regularization"]
    assert reg[-1] < reg[0] / 10
    assert abs(reg[-1] - mmd_to_prior(est.transform(X_TRAIN))) < 0.006


@pytest.mark.parametrize("batch_size", [1, 2])
def test_small_batch_size_trains(batch_size):
    est = MMDAutoencoder(**{**FAST, "batch_size": batch_size, "max_iter": 2})
    est.fit(X_TRAIN[:21])
    assert np.all(np.isfinite(est.loss_curve_))


def test_sampled_prior_fallback_fits():
    est = MMDAutoencoder(prior=SampleOnlyPrior(), **FAST).fit(X_TRAIN)
    assert np.all(np.isfinite(est.history_["regularization"]))
    Z = est.transform(X_TEST)
    assert Z.shape == (X_TEST.shape[0], 2)
    assert np.all(np.isfinite(Z))
    assert est.sample(4, random_state=0).shape == (4, X_TRAIN.shape[1])
    assert_array_equal(est.sample(4, random_state=0), est.sample(4, random_state=0))
    # the user's object is copied, not used in place
    assert est.prior_ is not est.prior


def test_sampled_prior_fallback_is_reproducible():
    est1 = MMDAutoencoder(prior=SampleOnlyPrior(), **FAST).fit(X_TRAIN)
    est2 = MMDAutoencoder(prior=SampleOnlyPrior(), **FAST).fit(X_TRAIN)
    assert est1.loss_curve_ == est2.loss_curve_
    assert_array_equal(est1.transform(X_TEST), est2.transform(X_TEST))


def test_sampled_prior_pulls_codes_like_closed_form():
    # The sampled MMD is a noisier estimate of the same objective: codes end up
    # about as close to the prior as with the closed form.
    mmd2 = {}
    for name, prior in [("sampled", SampleOnlyPrior()), ("closed", GaussianPrior())]:
        est = MMDAutoencoder(**{**FAST, "max_iter": 15, "prior": prior}).fit(X_TRAIN)
        mmd2[name] = mmd_to_prior(est.transform(X_TEST))
    assert mmd2["sampled"] < 0.1
    assert mmd2["closed"] < 0.1


def test_sampled_prior_score_samples_raises():
    est = MMDAutoencoder(prior=SampleOnlyPrior(), **FAST).fit(X_TRAIN)
    with pytest.raises(AttributeError, match="has no log_prob method"):
        est.score_samples(X_TEST)
    with pytest.raises(AttributeError, match="has no log_prob method"):
        est.score(X_TEST)


def test_mmd_to_prior_sampled_matches_closed_form():
    Z = np.random.RandomState(0).normal(loc=0.5, size=(1000, 2))
    closed = mmd_to_prior(Z, GaussianPrior())
    sampled = mmd_to_prior(Z, SampleOnlyPrior())
    assert closed > 0.02
    assert sampled == pytest.approx(closed, abs=0.01)


@pytest.mark.parametrize("bandwidth", BANDWIDTHS, ids=repr)
def test_bandwidth_options_fit(bandwidth):
    est = MMDAutoencoder(bandwidth=bandwidth, **FAST).fit(X_TRAIN)
    assert np.all(np.isfinite(est.loss_curve_))
    assert np.all(np.isfinite(est.history_["regularization"]))
    assert est.transform(X_TEST).shape == (X_TEST.shape[0], 2)


def test_bandwidth_changes_the_regularizer():
    curves = [
        MMDAutoencoder(bandwidth=bw, **FAST).fit(X_TRAIN).history_["regularization"]
        for bw in [0.1, 10.0]
    ]
    assert not np.allclose(curves[0], curves[1])


def test_scalar_bandwidth_equals_one_element_list():
    est1 = MMDAutoencoder(bandwidth=0.7, **FAST).fit(X_TRAIN)
    est2 = MMDAutoencoder(bandwidth=[0.7], **FAST).fit(X_TRAIN)
    assert_allclose(est1.loss_curve_, est2.loss_curve_, rtol=1e-6)


@pytest.mark.parametrize("bandwidth", ["median", -1.0, 0.0])
def test_invalid_bandwidth_parameter_raises(bandwidth):
    with pytest.raises(InvalidParameterError, match="'bandwidth' parameter"):
        MMDAutoencoder(bandwidth=bandwidth, **FAST).fit(X_TRAIN)


@pytest.mark.parametrize(
    "bandwidth", [[], [1.0, -1.0], [np.nan], [np.inf], [[1.0, 2.0]]], ids=repr
)
def test_invalid_bandwidth_list_raises(bandwidth):
    with pytest.raises(ValueError, match="bandwidth must be 'auto', a positive float"):
        MMDAutoencoder(bandwidth=bandwidth, **FAST).fit(X_TRAIN)


@pytest.mark.parametrize("bandwidth", [0.0, [1.0, -2.0]], ids=repr)
def test_mmd_to_prior_invalid_bandwidth_raises(bandwidth):
    Z = np.zeros((5, 2))
    with pytest.raises(ValueError, match="bandwidth must be"):
        mmd_to_prior(Z, bandwidth=bandwidth)


def test_invalid_kernel_raises():
    with pytest.raises(InvalidParameterError, match="'kernel' parameter"):
        MMDAutoencoder(kernel="not-a-kernel", **FAST).fit(X_TRAIN)


def test_mmd_to_prior_rejects_an_unknown_bandwidth_string():
    Z = np.random.RandomState(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="bandwidth must be 'auto'"):
        mmd_to_prior(Z, bandwidth="median")
