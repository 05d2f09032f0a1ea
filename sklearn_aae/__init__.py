"""Autoencoders whose codes follow a chosen prior, as scikit-learn estimators."""

from ._adversarial import AdversarialAutoencoder
from ._mmd import MMDAutoencoder, mmd_to_prior
from ._tasks import (
    AdversarialAutoencoderClassifier,
    AdversarialAutoencoderClustering,
    AdversarialAutoencoderEmbedding,
    MMDAutoencoderClassifier,
    MMDAutoencoderClustering,
    MMDAutoencoderEmbedding,
)
from ._version import __version__
from .priors import (
    GaussianMixturePrior,
    GaussianPrior,
    LaplacePrior,
    SwissRollPrior,
    UniformPrior,
)

__all__ = [
    "AdversarialAutoencoder",
    "MMDAutoencoder",
    "AdversarialAutoencoderClassifier",
    "MMDAutoencoderClassifier",
    "AdversarialAutoencoderClustering",
    "MMDAutoencoderClustering",
    "AdversarialAutoencoderEmbedding",
    "MMDAutoencoderEmbedding",
    "mmd_to_prior",
    "GaussianPrior",
    "GaussianMixturePrior",
    "LaplacePrior",
    "UniformPrior",
    "SwissRollPrior",
    "__version__",
]
