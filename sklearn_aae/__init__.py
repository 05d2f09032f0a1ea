"""Autoencoders whose codes follow a chosen prior, as scikit-learn estimators."""

from ._adversarial import AdversarialAutoencoder
from ._mmd import MMDAutoencoder, mmd_to_prior
from .priors import (
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    SwissRollPrior,
    UniformPrior,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "AdversarialAutoencoder",
    "MMDAutoencoder",
    "mmd_to_prior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "LaplacePrior",
    "UniformPrior",
    "SwissRollPrior",
    "__version__",
]
