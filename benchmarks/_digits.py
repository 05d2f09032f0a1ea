"""What the digits benchmarks share: data, split, metrics, epoch clocks, pythae peers.

- :func:`digits` and :func:`split`: scikit-learn's digits scaled to [0, 1], and
  a held-out quarter stratified by class, one split per seed.
- :func:`quality`: held-out kNN accuracy of the codes (k=5, fitted on the
  training codes), MMD^2 of held-out codes to the prior
  (``sklearn_aae.mmd_to_prior``) and the held-out reconstruction MSE.
- :class:`EpochClock`: times the training epochs of one of our estimators and
  calls a function after each, outside the timed part.
- :class:`PythaePeer`: pythae's ``Adversarial_AE`` or ``WAE_MMD`` on the same
  networks as ours (the construction of ``bench_speed.py``: our ``nn.Sequential``
  networks wrapped in pythae's ``BaseEncoder`` / ``BaseDecoder`` /
  ``BaseDiscriminator``, trained by pythae's own trainer), one epoch at a time.
"""

import contextlib
import logging
import sys
import tempfile
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from sklearn_aae import mmd_to_prior


def digits():
    """The digits, features scaled to [0, 1], and their labels."""
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def split(X, y, seed):
    """``X_train, X_test, y_train, y_test``: a held-out quarter, stratified."""
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def quality(model, X_train, X_test, y_train, y_test, prior=None):
    """Held-out kNN accuracy, MMD^2 to the prior and reconstruction MSE."""
    Z_train, Z_test = model.transform(X_train), model.transform(X_test)
    knn = KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
    mse = float(np.mean((model.inverse_transform(Z_test) - X_test) ** 2))
    return {"knn": float(knn), "mmd2": mmd_to_prior(Z_test, prior), "mse": mse}


class EpochClock:
    """Wraps an estimator's ``_run_epoch``: times each epoch, then calls ``after``.

    ``after(epoch, train_seconds)`` runs outside the timed part, so evaluating
    the model there costs the clock nothing. ``train_seconds`` sums the wall
    time of the training passes only (not validation, nor the pass after fit
    that estimates ``noise_variance_``); ``cpu_seconds`` their process CPU time.
    """

    def __init__(self, est, after=None):
        self.epochs, self.train_seconds, self.cpu_seconds = 0, 0.0, 0.0
        run_epoch = est._run_epoch

        def timed(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            out = run_epoch(*args, **kwargs)
            self.train_seconds += time.perf_counter() - t0
            self.cpu_seconds += time.process_time() - c0
            self.epochs += 1
            if after is not None:
                after(self.epochs, self.train_seconds)
            return out

        est._run_epoch = timed


def mlp(sizes, final_sigmoid=False):
    """Linear layers with ReLU between them, as ``sklearn_aae``'s networks."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if final_sigmoid:
        layers.append(nn.Sigmoid())
    return nn.Sequential(*layers)


def _quiet_pythae():
    for name in ["pythae", *logging.root.manager.loggerDict]:
        if name.startswith("pythae"):
            logging.getLogger(name).setLevel(logging.WARNING)


class PythaePeer:
    """A pythae model on our networks, trained an epoch at a time by its trainer.

    ``kind`` is ``'adversarial'`` (``Adversarial_AE``, deterministic posterior,
    ``AdversarialTrainer``) or ``'mmd'`` (``WAE_MMD``, ``BaseTrainer``).
    ``model`` and ``trainer`` hold extra pythae config fields (for example
    ``adversarial_loss_scale``, ``kernel_choice``; ``learning_rate``,
    ``discriminator_learning_rate``, ``no_cuda``); unset ones keep pythae's
    defaults, except the batch size, which is ``batch_size``, and ``no_cuda``,
    True (CPU). The seed goes to torch's global
    generator (pythae draws from it), which is restored afterwards.
    """

    def __init__(
        self,
        kind,
        X,
        *,
        hidden,
        n_components=2,
        discriminator_hidden=(128, 128),
        batch_size=100,
        seed=0,
        model=None,
        trainer=None,
    ):
        _quiet_pythae()
        from pythae.data.preprocessors import DataProcessor
        from pythae.models.base.base_utils import ModelOutput
        from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder

        adversarial = kind == "adversarial"
        n_features = X.shape[1]
        enc_sizes = [n_features, *hidden, n_components]

        class Encoder(BaseEncoder):
            def __init__(self):
                BaseEncoder.__init__(self)
                self.net = mlp(enc_sizes)

            def forward(self, x):
                z = self.net(x)
                if adversarial:  # Adversarial_AE is a VAE: it reads a log-variance
                    return ModelOutput(embedding=z, log_covariance=torch.zeros_like(z))
                return ModelOutput(embedding=z)

        class Decoder(BaseDecoder):
            def __init__(self):
                BaseDecoder.__init__(self)
                self.net = mlp(enc_sizes[::-1])

            def forward(self, z):
                return ModelOutput(reconstruction=self.net(z))

        class Discriminator(BaseDiscriminator):
            def __init__(self):
                BaseDiscriminator.__init__(self)
                # pythae's loss is BCE on probabilities.
                self.net = mlp([n_components, *discriminator_hidden, 1], True)

            def forward(self, z):
                return ModelOutput(embedding=self.net(z))

        self._rng_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        model = dict(model or {})
        trainer = {
            "output_dir": tempfile.mkdtemp(prefix="pythae_peer_"),
            "per_device_train_batch_size": batch_size,
            "num_epochs": 1,
            "no_cuda": True,
            **(trainer or {}),
        }
        data = DataProcessor().to_dataset(torch.from_numpy(X.astype(np.float32)))
        with contextlib.redirect_stdout(sys.stderr):
            if adversarial:
                from pythae.models import Adversarial_AE, Adversarial_AE_Config
                from pythae.trainers import (
                    AdversarialTrainer,
                    AdversarialTrainerConfig,
                )

                self.model = Adversarial_AE(
                    Adversarial_AE_Config(
                        input_dim=(n_features,),
                        latent_dim=n_components,
                        deterministic_posterior=True,
                        reconstruction_loss="mse",
                        **model,
                    ),
                    encoder=Encoder(),
                    decoder=Decoder(),
                    discriminator=Discriminator(),
                )
                if "learning_rate" in trainer:
                    trainer["autoencoder_learning_rate"] = trainer.pop("learning_rate")
                config = AdversarialTrainerConfig(**trainer)
                self.trainer = AdversarialTrainer(
                    self.model, data, training_config=config
                )
            else:
                from pythae.models import WAE_MMD, WAE_MMD_Config
                from pythae.trainers import BaseTrainer, BaseTrainerConfig

                self.model = WAE_MMD(
                    WAE_MMD_Config(
                        input_dim=(n_features,), latent_dim=n_components, **model
                    ),
                    encoder=Encoder(),
                    decoder=Decoder(),
                )
                config = BaseTrainerConfig(**trainer)
                self.trainer = BaseTrainer(self.model, data, training_config=config)
            self.trainer.prepare_training()
        self.n_iter_ = 0
        self._peer_rng = torch.random.get_rng_state()
        torch.random.set_rng_state(self._rng_state)

    def train_epoch(self):
        """One epoch of pythae's ``train_step``; returns its wall and CPU time."""
        outer = torch.random.get_rng_state()
        torch.random.set_rng_state(self._peer_rng)
        self.n_iter_ += 1
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sys.stderr):
            self.trainer.train_step(self.n_iter_)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        self._peer_rng = torch.random.get_rng_state()
        torch.random.set_rng_state(outer)
        return seconds, cpu

    @torch.no_grad()
    def transform(self, X):
        self.model.eval()
        x = torch.from_numpy(np.asarray(X, dtype=np.float32))
        return self.model.encoder(x).embedding.numpy().astype(np.float64)

    @torch.no_grad()
    def inverse_transform(self, Z):
        self.model.eval()
        z = torch.from_numpy(np.asarray(Z, dtype=np.float32))
        return self.model.decoder(z)["reconstruction"].numpy().astype(np.float64)
