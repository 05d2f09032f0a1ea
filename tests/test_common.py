"""scikit-learn's estimator checks over every public estimator, with fast settings."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_aae import AdversarialAutoencoder, LaplacePrior, MMDAutoencoder

# Small networks and few epochs: the checks test the contract, not the fit.
FAST = dict(hidden_layer_sizes=(8,), max_iter=5, batch_size=16, device="cpu")

ESTIMATORS = [
    MMDAutoencoder(**FAST),
    MMDAutoencoder(encoder="gaussian", **FAST),
    MMDAutoencoder(kernel="imq", prior=LaplacePrior(), **FAST),
    AdversarialAutoencoder(discriminator_hidden_layer_sizes=(8,), **FAST),
    AdversarialAutoencoder(
        encoder="gaussian", discriminator_hidden_layer_sizes=(8,), **FAST
    ),
    AdversarialAutoencoder(
        encoder="universal", discriminator_hidden_layer_sizes=(8,), **FAST
    ),
]


def _expected_failed_checks(estimator):
    # No expected failures: every check passes.
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
