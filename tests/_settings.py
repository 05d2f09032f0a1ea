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


def interrupt_at_epoch(monkeypatch, cls, epoch):
    """Make ``cls``'s epoch number ``epoch`` (counted over every fit from now
    on) raise ``KeyboardInterrupt``, as Ctrl-C would; returns the list that
    gains an entry per epoch begun."""
    run_epoch = cls._run_epoch
    calls = []

    def run_epoch_or_interrupt(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return run_epoch(self, *args, **kwargs)

    monkeypatch.setattr(cls, "_run_epoch", run_epoch_or_interrupt)
    return calls
