"""Autoencoders whose codes follow a chosen prior, as scikit-learn estimators."""

from ._adversarial import AdversarialAutoencoder
from ._mmd import MMDAutoencoder, mmd_to_prior
from ._tasks import (
    AdversarialAutoencoderClassifier,
    AdversarialAutoencoderClustering,
    MMDAutoencoderClassifier,
    MMDAutoencoderClustering,
)
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
    "AdversarialAutoencoderClassifier",
    "MMDAutoencoderClassifier",
    "AdversarialAutoencoderClustering",
    "MMDAutoencoderClustering",
    "mmd_to_prior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "LaplacePrior",
    "UniformPrior",
    "SwissRollPrior",
    "__version__",
]
