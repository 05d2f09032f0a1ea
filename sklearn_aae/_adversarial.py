"""AdversarialAutoencoder: a discriminator on the codes pushes q(z) towards p(z)."""

from numbers import Integral, Real

import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.nn.functional import binary_cross_entropy_with_logits, softplus

from ._base import _CODE_CONSISTENCY_PARAMETERS, BaseAutoencoder, _Regularizer
from ._data import _label_weights
from ._devices import autocast
from ._networks import BlockDiscriminator, make_mlp
from .priors import ConditionalPrior


class _AdversarialRegularizer(_Regularizer):
    """One regularisation phase per batch: discriminator step(s), generator loss.

    Parameters
    ----------
    discriminator : torch.nn.Module
        Maps codes to logits (prior sample vs code).
    optimizer : torch.optim.Optimizer
        The discriminator's optimiser.
    tprior : tensor-side prior
    generator : torch.Generator
        Draws the prior samples and the instance noise.
    steps : int
        Discriminator updates per call.
    instance_noise : float
        Standard deviation of the noise added to every discriminator input.
    precision : {'float32', 'bfloat16'}
        Autocast of the discriminator's own update.
    n_classes : int, default=0
        With labels (``n_classes > 0``), the discriminator also reads a one-hot
        of each row's class plus an "unlabelled" slot (``n_classes + 1``
        inputs), and the prior sample paired with a row of class ``k`` is
        drawn from component ``k`` (Makhzani et al. 2015, section 2.3).
    batch_statistics : bool, default=False
        The discriminator also reads, beside each row, the mean and standard
        deviation per coordinate of the batch the row belongs to (the prior
        samples' batch, or the codes'), so that it sees a batch whose codes
        all sit at one place (mode collapse), which no single row shows.
    """

    def __init__(
        self,
        discriminator,
        optimizer,
        tprior,
        generator,
        *,
        steps,
        instance_noise,
        precision,
        n_classes=0,
        batch_statistics=False,
    ):
        self.disc, self.optimizer = discriminator, optimizer
        self.tprior, self.generator = tprior, generator
        self.steps, self.noise = steps, float(instance_noise)
        self.precision = precision
        self.n_classes = n_classes
        self.batch_statistics = batch_statistics

    def _noisy(self, Z):
        if self.noise == 0.0:
            return Z
        eps = torch.randn(Z.shape, generator=self.generator, device=Z.device)
        return Z + self.noise * eps

    @staticmethod
    def _batch_statistics(Z, n_batches):
        """Each row's batch mean and standard deviation per coordinate, for
        ``Z`` made of ``n_batches`` equal batches stacked: ``(n, 2 * width)``."""
        parts = []
        for part in Z.chunk(n_batches):
            mean = part.mean(dim=0, keepdim=True)
            # (the square root of the variance plus a little: finite gradients
            # for a batch of identical codes)
            std = (part.var(dim=0, unbiased=False, keepdim=True) + 1e-8).sqrt()
            parts.append(torch.cat([mean, std], dim=1).expand(part.shape[0], -1))
        return torch.cat(parts)

    def _inputs(self, Z, y, noisy=True, n_batches=1):
        """The discriminator's input: the codes (noised), their batch's
        statistics (with ``batch_statistics``; ``Z`` stacks ``n_batches``
        batches), then the label slots.

        Without labels the codes alone; with them, the one-hot of each row's
        class code, or of the last ("unlabelled") slot for ``-1`` (and for
        every row when ``y`` is None).
        """
        Z = self._noisy(Z) if noisy else Z
        if self.batch_statistics:
            Z = torch.cat([Z, self._batch_statistics(Z, n_batches)], dim=1)
        if not self.n_classes:
            return Z
        K = self.n_classes
        if y is None:
            slots = torch.full((Z.shape[0],), K, device=Z.device)
        else:
            slots = torch.where(y >= 0, y, K)
        one_hot = torch.nn.functional.one_hot(slots, K + 1).to(Z.dtype)
        return torch.cat([Z, one_hot], dim=1)

    def _prior_sample(self, n, y):
        """Prior samples paired with the rows: class ``k``'s from component ``k``."""
        real = self.tprior.sample(n, self.generator)
        if not self.n_classes or y is None:
            return real
        by_class = self.tprior.sample_classes(y.clamp_min(0), self.generator)
        return torch.where((y >= 0)[:, None], by_class, real)

    def _generator_logits(self, Z):
        # The discriminator's parameters are detached: the generator loss reaches
        # the encoder only, and no gradient is computed for the discriminator.
        params = {k: v.detach() for k, v in self.disc.named_parameters()}
        return torch.func.functional_call(self.disc, params, (Z,))

    def __call__(self, Z, y=None):
        fake = Z.detach()
        n = fake.shape[0]
        opt = self.optimizer
        labels = None if y is None else torch.cat([y, y])
        w = self._row_weights(y, n)
        for _ in range(self.steps):
            real = self._prior_sample(n, y)
            inputs = self._inputs(torch.cat([real, fake]), labels, n_batches=2)
            # The discriminator's own update may run in bfloat16 (precision);
            # its loss, and the generator loss below, are float32.
            with autocast(self.precision, Z.device):
                logits = self.disc(inputs)
            logits = logits.float()
            target = torch.zeros_like(logits)
            target[:n] = 1.0
            d_loss = binary_cross_entropy_with_logits(
                logits, target, weight=None if w is None else torch.cat([w, w])
            )
            opt.zero_grad(set_to_none=True)
            d_loss.backward()
            opt.step()
        with torch.no_grad():
            accuracy = ((logits > 0).to(logits) == target).to(logits).mean()
        # Non-saturating generator loss -log D(z) on this batch's codes.
        g_loss = self._mean(softplus(-self._generator_logits(self._inputs(Z, y))), w)
        return {
            "regularization": g_loss,
            "discriminator_loss": d_loss.detach(),
            "discriminator_accuracy": accuracy,
        }

    def _row_weights(self, y, n):
        """Rows' weights in the losses (``(n, 1)``, summing to ``n``), or None.

        With labels, the labelled rows weigh at least half (see
        ``_data.LABELLED_SHARE``), in the discriminator's loss (each prior
        sample as its paired row) and in the generator loss; without, None:
        the plain mean.
        """
        if not self.n_classes or y is None:
            return None
        labelled = y >= 0
        w_labelled, w_unlabelled = _label_weights(labelled)
        return (torch.where(labelled, w_labelled, w_unlabelled) * n)[:, None]

    @staticmethod
    def _mean(values, w):
        return values.mean() if w is None else (values * w).mean()

    def evaluate(self, Z, y=None):
        """The generator loss of the codes ``Z`` (with their labels ``y``)."""
        logits = self._generator_logits(self._inputs(Z, y, noisy=False))
        return self._mean(softplus(-logits), self._row_weights(y, Z.shape[0]))


class AdversarialAutoencoder(BaseAutoencoder):
    """Adversarial autoencoder (Makhzani et al., 2015).

    A discriminator learns to tell the codes of the data from samples of the
    prior, and the encoder learns to fool it, so that the aggregate posterior
    ``q(z)`` matches the prior ``p(z)``; the decoder learns to reconstruct.

    Update order, per batch: the encoder runs **once**; the discriminator takes
    ``discriminator_steps`` steps on these codes (detached) against fresh prior
    samples; then one Adam step of encoder and decoder on
    ``mse(x, decoder(z)) + reg_weight * (-log D(z))`` (the non-saturating
    generator loss, through the just-updated discriminator). This merges the
    paper's reconstruction and regularisation phases into a single encoder
    forward and backward pass per batch; the discriminator is not updated by the
    generator loss.

    With labels, ``fit(X, y)`` (``-1`` for unlabelled rows) and a prior whose
    components are classes (a :class:`~sklearn_aae.priors.GaussianMixturePrior`
    of ``K`` components, labels ``0..K-1``), the paper's recipe (section 2.3):
    the discriminator also reads a one-hot of the label with an extra
    "unlabelled" slot (``K + 1`` inputs), and the prior sample paired with a
    row of class ``k`` is drawn from component ``k`` with the same one-hot
    (with the unlabelled slot, from the whole prior, for an unlabelled row).
    The labelled rows weigh at least half of both losses. The label inputs
    exist only when the fresh fit saw a labelled row; other priors ignore ``y``.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the codes.
    prior : prior object, default=None
        Anything with ``sample(n_samples, random_state)``; ``None`` is a standard
        normal :class:`~sklearn_aae.priors.GaussianPrior`. Prior samples are drawn
        on the training device with the fit's generator.
    reg_weight : float, default=0.01
        Weight of the generator loss; 0 gives a plain autoencoder. The
        reconstruction loss is a mean over features, and the generator loss is
        of order ``log 2`` at equilibrium with gradients that do not fade as the
        codes approach the prior, so the useful range is far below the
        :class:`MMDAutoencoder`'s (on digits, 0.1 already collapses the codes;
        0.003 to 0.03 match the prior, 0.01 keeps the most class structure
        with the codes at the prior).
    discriminator_hidden_layer_sizes : tuple of int, default=(128, 128)
        Hidden layers of the discriminator (an MLP with the ``activation`` of
        the autoencoder, no batch normalisation: it is known to stall the
        discriminator at 50% accuracy).
    discriminator_learning_rate : float, default=1e-4
        Adam's learning rate for the discriminator. A twentieth of
        ``learning_rate_init``: on digits a discriminator as fast as the
        autoencoder (1e-3) kept less class structure in the codes (see the
        user guide's "How the defaults were chosen").
    discriminator_steps : int, default=1
        Discriminator updates per autoencoder update.
    discriminator_blocks : {'joint', 'separate'}, default='joint'
        With a :class:`~sklearn_aae.priors.ProductPrior`, ``'separate'`` gives
        each block of the code its own discriminator (of
        ``discriminator_hidden_layer_sizes``), as the paper's semi-supervised and
        clustering models have one for the class and one for the style: each
        matches its block's marginal, and the generator loss is their mean.
        ``'joint'``: one discriminator reads the whole code, so it also sees
        whether the blocks are independent. A prior of one block has one
        discriminator either way.
    discriminator_batch_statistics : bool, default=False
        Give the discriminator, beside each code, the mean and standard
        deviation per coordinate of its batch (of the codes, or of the prior
        samples): minibatch discrimination (Salimans et al. 2016; the minibatch
        standard deviation of Karras et al. 2018). A discriminator that reads
        one row at a time cannot see that every code of a batch sits on the same
        vertex of a categorical block, so the encoder can collapse onto one
        (mode collapse); with the batch's statistics it can. Measured on digits
        for the adversarial clusterer, which turns it on by default (see the
        user guide). With ``discriminator_blocks='separate'``, each block's
        discriminator reads its own coordinates' statistics.
    instance_noise : float, default=0.0
        Standard deviation of Gaussian noise added to every discriminator input
        during training (codes and prior samples alike); it smooths the game when
        the discriminator wins too easily.
    {consistency}
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layers of the encoder; the decoder mirrors them.
    activation : {'relu', 'tanh', 'logistic', 'identity', 'leaky_relu', 'elu'}, \
            default='relu'
    encoder : {'deterministic', 'gaussian', 'universal', 'mixture'}, \
            default='deterministic'
        The posterior q(z|x). ``'gaussian'``: a Gaussian with learned mean and
        diagonal variance, sampled with the reparameterisation trick during
        training. ``'universal'``: the paper's "universal approximator" posterior,
        a network fed with the data and ``n_components`` Gaussian noise inputs,
        so q(z|x) can take any shape. ``'mixture'`` (only with a
        :class:`~sklearn_aae.priors.GaussianMixturePrior`): responsibilities
        over the prior's components and a style that each component maps into
        itself (the discriminator judges the codes; the styles get no term of
        their own); with labels, the labelled rows' responsibilities also get
        a cross-entropy term (see :ref:`mixture_encoder`). :meth:`transform`
        always returns the mean of q(z|x) (for ``'universal'``, the average
        over 16 fixed noise draws; for ``'mixture'``, the most probable
        component's code, inside that component):
        it is deterministic.
    batch_size : int, default=100
    max_iter : int, default=300
        Maximum number of epochs.
    learning_rate_init : float, default=2e-3
        Adam's learning rate for the encoder and decoder.
    early_stopping : bool, default=False
        Watch the validation loss (reconstruction plus ``reg_weight`` times the
        generator loss of the held-out codes, which fluctuates with the game).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=15
        Epochs without an improvement of ``tol`` (each against the best loss so
        far) that training tolerates: it stops after ``n_iter_no_change + 1``
        of them.
    tol : float, default=1e-4
    device : str or torch.device, default='auto'
        ``'auto'`` trains on CUDA when available, else on the CPU; or any torch
        device (``'cpu'``, ``'cuda'``, ``'cuda:1'``). A CUDA device without an
        index resolves to the current one (``device_`` holds the index).
    precision : {'float32', 'bfloat16'}, default='float32'
        ``'bfloat16'`` runs the encoder and decoder passes of training, and the
        discriminator's own update, under ``torch.autocast`` with bfloat16
        (faster on CPUs with AVX512-BF16 or AMX and on GPUs with tensor cores).
        Weights and losses stay float32, the generator loss through the
        discriminator (the gradient that shapes the codes) is computed in
        float32, and inference is always float32.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batches and all sampling through a local
        ``torch.Generator``. An int gives identical results on the CPU.
    verbose : int, default=0
    warm_start : bool, default=False

    Attributes
    ----------
    encoder_, decoder_, discriminator_ : torch.nn.Module
        The trained networks; the discriminator outputs a logit (one per block
        with ``discriminator_blocks='separate'`` and a product prior).
    prior_ : prior object
    device_ : torch.device
    noise_variance_ : float
        Mean squared reconstruction residual over the training rows. After
        :meth:`partial_fit`, that of the last block's training pass (see there).
    loss_curve_ : list of float
        Autoencoder loss per epoch.
    history_ : dict of list of float
        Per-epoch means of ``'reconstruction'``, ``'regularization'`` (generator
        loss), ``'discriminator_loss'`` and ``'discriminator_accuracy'`` (all but
        the first are absent when ``reg_weight=0``: the adversary is not trained). An
        accuracy stuck near 1 means the discriminator wins (codes far from the
        prior); near 0.5 with a generator loss near ``log 2``, a balanced game.
    validation_loss_curve_ : list of float or None
    best_loss_ : float or None
    n_iter_ : int
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
    classes_ : ndarray of shape (n_classes,)
        Defined only after ``fit(X, y)`` with labelled rows and a prior whose
        components are classes (``arange(K)`` for ``K`` components).

    See Also
    --------
    MMDAutoencoder : the same model with a closed-form kernel MMD, no adversary.

    References
    ----------
    A. Makhzani, J. Shlens, N. Jaitly, I. Goodfellow, B. Frey. Adversarial
    Autoencoders. arXiv:1511.05644, 2015.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import AdversarialAutoencoder
    >>> X = load_digits().data / 16.0
    >>> est = AdversarialAutoencoder(n_components=2, max_iter=3, random_state=0)
    >>> est.fit(X).transform(X).shape
    (1797, 2)
    >>> sorted(est.history_)
    ['discriminator_accuracy', 'discriminator_loss', 'reconstruction', 'regularization']
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "discriminator_hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "discriminator_learning_rate": [Interval(Real, 0, None, closed="neither")],
        "discriminator_steps": [Interval(Integral, 1, None, closed="left")],
        "discriminator_blocks": [StrOptions({"joint", "separate"})],
        "discriminator_batch_statistics": ["boolean"],
        "instance_noise": [Interval(Real, 0, None, closed="left")],
    }

    _optimizer_attributes = ("_optimizer", "_discriminator_optimizer")

    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=0.01,
        discriminator_hidden_layer_sizes=(128, 128),
        discriminator_learning_rate=1e-4,
        discriminator_steps=1,
        discriminator_blocks="joint",
        discriminator_batch_statistics=False,
        instance_noise=0.0,
        consistency_weight=0.0,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="relu",
        encoder="deterministic",
        batch_size=100,
        max_iter=300,
        learning_rate_init=2e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=15,
        tol=1e-4,
        device="auto",
        precision="float32",
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        super().__init__(
            n_components=n_components,
            prior=prior,
            reg_weight=reg_weight,
            consistency_weight=consistency_weight,
            consistency_noise=consistency_noise,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            encoder=encoder,
            batch_size=batch_size,
            max_iter=max_iter,
            learning_rate_init=learning_rate_init,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            device=device,
            precision=precision,
            random_state=random_state,
            verbose=verbose,
            warm_start=warm_start,
        )
        self.discriminator_hidden_layer_sizes = discriminator_hidden_layer_sizes
        self.discriminator_learning_rate = discriminator_learning_rate
        self.discriminator_steps = discriminator_steps
        self.discriminator_blocks = discriminator_blocks
        self.discriminator_batch_statistics = discriminator_batch_statistics
        self.instance_noise = instance_noise

    def _check_prior_support(self):
        super()._check_prior_support()
        if isinstance(self.prior, ConditionalPrior):
            raise ValueError(
                "ConditionalPrior trains with MMDAutoencoder only: its per-class "
                "scales are learned through the MMD's closed forms, which the "
                "adversarial game has no counterpart for. Use MMDAutoencoder."
            )

    def _n_label_inputs(self):
        """Label inputs of the discriminator: ``len(classes_) + 1``, or 0 without."""
        n_classes = self._n_regularizer_classes()
        return n_classes + 1 if n_classes else 0

    def _build_regularizer_modules(self, architecture, seed):
        with torch.random.fork_rng(devices=[]):
            # The CPU generator only: torch.manual_seed would also reseed GPUs.
            torch.default_generator.manual_seed(seed + 1)
            widths = architecture.get("discriminator_block_widths")
            # (the batch's mean and standard deviation beside each code)
            statistics = bool(architecture.get("discriminator_batch_statistics"))
            if widths:
                discriminator = BlockDiscriminator(
                    widths,
                    architecture["discriminator_label_inputs"],
                    architecture["discriminator_hidden_layer_sizes"],
                    architecture["activation"],
                    batch_statistics=statistics,
                )
            else:
                width = architecture.get("code_width", architecture["n_components"])
                discriminator = make_mlp(
                    width * (3 if statistics else 1)
                    + architecture["discriminator_label_inputs"],
                    architecture["discriminator_hidden_layer_sizes"],
                    1,
                    architecture["activation"],
                )
        return {"discriminator_": discriminator}

    def _regularizer_modules(self):
        return {"discriminator_": self.discriminator_}

    def _optimized_parameters(self):
        return {
            **super()._optimized_parameters(),
            "_discriminator_optimizer": (
                list(self.discriminator_.parameters()),
                self.discriminator_learning_rate,
            ),
        }

    def _make_regularizer(self, tprior, generator):
        if getattr(self, "_discriminator_optimizer", None) is None:
            self._discriminator_optimizer = self._make_optimizer(
                "_discriminator_optimizer"
            )
        return _AdversarialRegularizer(
            self.discriminator_,
            self._discriminator_optimizer,
            tprior,
            generator,
            steps=self.discriminator_steps,
            instance_noise=self.instance_noise,
            precision=self.precision,
            n_classes=self._n_regularizer_classes(),
            batch_statistics=self._architecture.get(
                "discriminator_batch_statistics", False
            ),
        )

    def _architecture_signature(self, hidden):
        return {
            **super()._architecture_signature(hidden),
            "discriminator_hidden_layer_sizes": self._check_hidden_layer_sizes(
                "discriminator_hidden_layer_sizes"
            ),
            "discriminator_label_inputs": self._n_label_inputs(),
            "discriminator_block_widths": self._discriminator_block_widths(),
            "discriminator_batch_statistics": bool(self.discriminator_batch_statistics),
        }

    def _discriminator_block_widths(self):
        """The blocks' widths for separate discriminators, or None for one."""
        widths = tuple(int(width) for width, _ in self._heads())
        if self.discriminator_blocks == "separate" and len(widths) > 1:
            return widths
        return None


AdversarialAutoencoder.__doc__ = AdversarialAutoencoder.__doc__.replace(
    "    {consistency}\n", _CODE_CONSISTENCY_PARAMETERS
)
