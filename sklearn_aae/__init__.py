"""Autoencoders whose codes follow a chosen prior, as scikit-learn estimators."""

from ._adversarial import AdversarialAutoencoder
from ._mmd import MMDAutoencoder, mmd_to_prior
from .priors import GaussianMixturePrior, GaussianPrior

__version__ = "0.1.0.dev0"

__all__ = [
    "AdversarialAutoencoder",
    "MMDAutoencoder",
    "mmd_to_prior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "__version__",
]
