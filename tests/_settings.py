"""Settings the test modules share (imported as ``_settings``: pytest puts this
folder on ``sys.path``)."""

from functools import partial

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

# Tiny networks and few epochs: these tests check behaviour, not model quality.
FAST = dict(
    hidden_layer_sizes=(16,),
    max_iter=3,
    batch_size=50,
    learning_rate_init=1e-2,
    device="cpu",
    random_state=0,
)

ESTIMATOR_FACTORIES = [
    partial(MMDAutoencoder, **FAST),
    partial(AdversarialAutoencoder, discriminator_hidden_layer_sizes=(16,), **FAST),
]
