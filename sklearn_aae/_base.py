"""BaseAutoencoder: the estimator's skeleton and the one training loop.

Parameters, the hooks the estimators fill, the loop cut into named steps
(start, split, epoch, record, stop, end), state and pickling, and inference.
Rows and labels are handled by ``_data``, devices by ``_devices``, encoder
kinds by ``_networks`` and importance-sampled scoring by ``_scoring``.
"""

import math
import time
import warnings
from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._data import (
    _DEVICE_DATA_SHARE,
    _INFERENCE_CHUNK,
    _check_codes,
    _check_labels,
    _Data,
    _known_classes,
    _label_codes,
    _n_batches,
    _no_dask_ml_placeholder,
    _output_dtype,
    _stratified_split,
    _validate_rows,
)
from ._devices import (
    adam,
    autocast,
    resolve_device,
    warn_if_bfloat16_is_emulated,
    warn_if_tf32,
)
from ._networks import (
    ACTIVATIONS,
    ENCODERS,
    MixtureEncoder,
    build_networks,
    check_layer_sizes,
    head_layout,
)
from ._persistence import (
    META_KEY,
    OPTIMIZERS_KEY,
    WEIGHTS_KEY,
    check_state_metadata,
    load_arrays,
    load_optimizer_arrays,
    module_arrays,
    optimizer_arrays,
    state_metadata,
)
from ._scoring import LikelihoodScoreMixin
from ._torch_priors import _LearnedLogScales, code_support, tensor_prior
from ._utils import _check_n_samples, _seed_from, _set_missing_parameters
from .priors import (
    ConditionalPrior,
    GaussianMixturePrior,
    _check_prior,
    _prior_n_classes,
)

# encoder='mixture' with labels: the weight of the cross-entropy of the
# labelled rows' responsibilities (the task classifiers' supervised_weight
# default). Measured on the labelled ring (bench_labels.py, benchmarks README):
# without it, component accuracy 0.946 on seeds 0-4; with it 0.953.
_MIXTURE_SUPERVISED_WEIGHT = 0.1

# The least noise_variance_: a perfect reconstruction must not give an infinite
# likelihood.
_NOISE_VARIANCE_FLOOR = 1e-8

# Fewer rows than this of each class per batch, on average, make fit with a
# ConditionalPrior warn (see _check_rows_per_class).
_MIN_ROWS_PER_CLASS = 10


@dataclass
class _Run:
    """The state of one call to ``fit`` or ``partial_fit`` (never stored)."""

    data: _Data
    train_idx: np.ndarray
    train_idx_t: torch.Tensor  # the same rows, on the device
    val_idx: np.ndarray | None  # None: no early stopping on held-out rows
    regularizer: object
    generator: torch.Generator
    incremental: bool
    good_state: dict  # the weights to fall back to if an epoch diverges
    best: float = math.inf
    best_state: dict | None = None
    no_improvement: int = 0
    stopped_early: bool = False
    # The last epoch's mean squared residual of the training pass (None: none ran).
    reconstruction: float | None = None


# The consistency parameters of MMDAutoencoder and AdversarialAutoencoder, put
# in their docstrings for "{consistency}" (the task estimators document their
# own: a divergence of the class blocks).
_CODE_CONSISTENCY_PARAMETERS = """\
    consistency_weight : float, default=0.0
        Weight of the code's consistency under input noise: the batch mean of
        ``||f(x) - q(x + e)||^2``, the clean row's code (the target, without
        gradient) against a code of the same row plus Gaussian noise ``e`` of
        standard deviation ``consistency_noise``, so that rows a small step
        apart in the data space get nearby codes (the Pi-model of Laine & Aila
        2017, on the code). 0 (the default) turns it off; otherwise it costs
        one more encoder pass per batch. With labels in the regulariser and the
        ring prior on digits, 0.1 raised the held-out component accuracy from
        0.897 to 0.929 (5 seeds) with the codes somewhat further from the
        prior; 0.2 was unstable and 1 collapsed the codes. Without labels
        nothing holds the codes apart: at 0.1 two fits of five collapsed (see
        the user guide, "Labels in the regulariser"). Recorded in
        ``history_`` as ``'consistency'``.
    consistency_noise : float, default=0.2
        Standard deviation of that noise, in the units of ``X`` (scale ``X``
        first).
"""


class _Regularizer:
    """What :meth:`BaseAutoencoder._losses` asks of a regulariser.

    ``evaluate(Z, y)`` gives its term on codes without training anything (the
    validation loss); calling it (a training batch) returns ``{'regularization':
    term, ...}`` (the adversary also takes its discriminator's steps and
    reports their losses); ``extra_terms(Z, y)`` gives further weighted terms
    of the objective, ``{name: (weight, value)}`` (none by default);
    ``style_term(S)`` the term of the mixture encoder's styles ``S`` (see
    :class:`~sklearn_aae._networks.MixtureEncoder`), weighted by ``reg_weight``,
    or None (default: the regulariser leaves the style to the code's term).
    """

    def __call__(self, Z, y=None):
        return {"regularization": self.evaluate(Z, y)}

    def extra_terms(self, Z, y):
        return {}

    def style_term(self, S):
        return None


def _labelled_cross_entropy(log_p, y):
    """Mean ``-log p[i, y_i]`` over the rows with ``y_i >= 0`` (0 without).

    Examples
    --------
    >>> import torch
    >>> log_p = torch.log(torch.tensor([[0.5, 0.5], [0.25, 0.75]]))
    >>> round(float(_labelled_cross_entropy(log_p, torch.tensor([-1, 1]))), 4)
    0.2877
    """
    labelled = y >= 0
    picked = log_p.gather(1, y.clamp_min(0)[:, None])[:, 0]
    # A mean over the batch's labelled rows, with no host synchronisation.
    return -(picked * labelled).sum() / labelled.sum().clamp_min(1)


class BaseAutoencoder(
    LikelihoodScoreMixin,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    BaseEstimator,
    metaclass=ABCMeta,
):
    """Base class of the autoencoders with a latent prior.

    Subclasses provide the regulariser ``D(q(z), p(z))`` through
    :meth:`_make_regularizer` (and may add a term to :meth:`_losses`); this
    class owns the parameters, the training loop, state and pickling, and
    inference. Not meant to be used directly.
    """

    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "prior": [None, HasMethods(["sample"])],
        "reg_weight": [Interval(Real, 0, None, closed="left")],
        "consistency_weight": [Interval(Real, 0, None, closed="left")],
        "consistency_noise": [Interval(Real, 0, None, closed="neither")],
        "hidden_layer_sizes": [
            "array-like",
            Interval(Integral, 1, None, closed="left"),
        ],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "encoder": [StrOptions(set(ENCODERS))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", "bfloat16"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    @abstractmethod
    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=1.0,
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
        self.n_components = n_components
        self.prior = prior
        self.reg_weight = reg_weight
        self.consistency_weight = consistency_weight
        self.consistency_noise = consistency_noise
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.encoder = encoder
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate_init = learning_rate_init
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.device = device
        self.precision = precision
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _make_regularizer(self, tprior, generator):
        """Return the regulariser used for one call to fit.

        ``tprior`` is the tensor-side prior on the training device, ``generator``
        the fit's ``torch.Generator``. The returned callable maps a batch of codes
        ``Z`` (with autograd) and their labels ``y`` (a tensor, or None without
        labels) to a dict of scalar tensors whose key ``'regularization'`` is
        added, times ``reg_weight``, to the reconstruction loss; other keys are
        per-batch diagnostics (detached) recorded in ``history_``. Its
        ``evaluate(Z, y=None)`` method gives the value used on the validation set.
        A :class:`_Regularizer` (which also gives ``extra_terms``).
        """

    def _build_modules(self, architecture, seed):
        """The fitted modules of an architecture, freshly initialised from ``seed``.

        ``architecture`` is what :meth:`_architecture_signature` returned at the
        fresh fit (it holds every setting the modules' shapes depend on, so that
        a stored state is rebuilt from it and ``n_features_in_`` alone, whatever
        the parameters have become since). Returns ``{attribute name: module}``:
        the encoder and decoder (:func:`~sklearn_aae._networks.build_networks`),
        a conditional prior's learned scales, and what
        :meth:`_build_regularizer_modules` adds. The global torch RNG is left
        as it was.
        """
        a = architecture
        encoder, decoder = build_networks(
            self.n_features_in_,
            a.get("code_width", a["n_components"]),  # (states before tasks)
            a["hidden_layer_sizes"],
            a["activation"],
            a["encoder"],
            seed,
            heads=a["heads"],
            head_map=self._head_map_init(a),
            n_mixture=a.get("n_mixture"),
        )
        if a.get("n_mixture") is not None:
            self._set_mixture_components(encoder)
        modules = {"encoder_": encoder, "decoder_": decoder}
        if a["conditional_prior_classes"] is not None:
            modules["_prior_log_scales"] = _LearnedLogScales(
                a["conditional_prior_classes"], a["n_components"]
            )
        return {**modules, **self._build_regularizer_modules(a, seed)}

    def _head_map_init(self, architecture):
        """``(K, scale)`` for a decoder that reads a map of the code's class
        block and style (:class:`~sklearn_aae._networks.ClusterHeadMap`), or
        None (default): the decoder reads the code."""
        return None

    def _build_regularizer_modules(self, architecture, seed):
        """The regulariser's learned modules at a fresh fit (default: none).

        ``seed`` is the int that seeded the encoder and decoder initialisation;
        ``architecture`` as in :meth:`_build_modules`.
        """
        return {}

    def _regularizer_modules(self):
        """Fitted modules owned by the regulariser (moved and pickled with the rest)."""
        return {}

    def _prior_modules(self):
        """Fitted modules of the prior's learned parameters (a
        :class:`~sklearn_aae.priors.ConditionalPrior`'s scales): moved, pickled
        and checkpointed with the networks, and trained by their optimiser."""
        scales = getattr(self, "_prior_log_scales", None)
        return {} if scales is None else {"_prior_log_scales": scales}

    def _check_prior_support(self):
        """Refuse, before any work, a prior this estimator cannot train with."""
        if self.encoder == "mixture" and not isinstance(
            self.prior, GaussianMixturePrior
        ):
            raise ValueError(
                "encoder='mixture' maps a style into the components of a "
                "GaussianMixturePrior: it needs prior=GaussianMixturePrior(...), "
                f"got prior={self.prior!r}."
            )

    def _architecture_signature(self, hidden):
        """What must not change under ``warm_start`` and ``partial_fit``.

        Stored at a fresh fit and compared at every later one; subclasses add
        their own networks' settings.
        """
        conditional = isinstance(self.prior_, ConditionalPrior)
        return {
            "n_components": self.n_components,
            # the encoder's output: n_components, plus a task's class block
            "code_width": self._code_width(),
            "encoder": self.encoder,
            "hidden_layer_sizes": hidden,
            "activation": self.activation,
            "heads": head_layout(self._heads()),
            # a ConditionalPrior learns one scale vector per class
            "conditional_prior_classes": len(self.classes_) if conditional else None,
            # encoder='mixture': the prior's number of components
            "n_mixture": self._n_mixture(),
        }

    def _n_mixture(self):
        """The prior's number of components for ``encoder='mixture'`` (None
        for the other encoders; :meth:`_check_prior_support` has refused
        another prior)."""
        return self.prior_._n_classes() if self.encoder == "mixture" else None

    def _set_mixture_components(self, encoder):
        """Copy the fitted prior's component means and Cholesky factors into a
        :class:`~sklearn_aae._networks.MixtureEncoder` (at a fresh fit, and at a
        continued one: a prior changed since, with as many components, moves
        the components the codes are mapped into, as it moves the
        regulariser's)."""
        tprior = tensor_prior(self.prior_, self.n_components)  # (float32, CPU)
        encoder.set_components(tprior.means, tprior.scale_tril)

    def _heads(self):
        """The code's blocks ``(width, kind)``, from ``prior_``: the encoder's heads."""
        return code_support(tensor_prior(self.prior_, self._code_width()))

    def _code_width(self):
        """The width of the encoder's output (``n_components``; the task
        estimators add their class block)."""
        return self.n_components

    def _fitted_prior(self):
        """``prior_``: a validated copy of ``prior`` for the code (the task
        estimators wrap it as the style block of a product)."""
        return _check_prior(self.prior, self.n_components)

    def _n_regularizer_classes(self):
        """How many classes the regulariser matches labelled codes to (0: it
        ignores labels). The classes the prior gives labels; the task
        estimators use labels in their own loss instead."""
        return len(getattr(self, "classes_", ()))

    def _task_losses(self, z, yb):
        """Terms added to the objective, ``{name: (weight, value)}`` (default:
        none). ``z`` are the batch's codes (float32, with autograd), ``yb``
        their label codes (or None); each value is recorded in ``history_``."""
        return {}

    def _losses(self, xb, yb, regularizer, generator=None, *, train=True):
        """The per-batch losses: the one place where they are composed.

        With ``train=True`` the codes are drawn from q(z|x) with ``generator``
        (under the ``precision``'s autocast) and the regulariser is called (it
        may take its own steps, as the adversary does); with ``train=False``
        (the validation loss) the codes are the mean of q(z|x) and the
        regulariser's ``evaluate`` gives its term.

        Returns
        -------
        losses : dict of scalar tensor
            ``'loss'``, the objective ``reconstruction + reg_weight *
            regularization`` (plus the weighted terms of :meth:`_task_losses`
            and of the regulariser's ``extra_terms(z, y)``, see
            :class:`_Regularizer`);
            ``'reconstruction'``, the mean squared error; the regulariser's keys
            (absent when ``reg_weight=0``); and the task's terms. Every key but
            ``'loss'`` is recorded in ``history_``.
        """
        mixture = isinstance(self.encoder_, MixtureEncoder)
        if train:
            with autocast(self.precision, self.device_):
                if mixture:
                    z, log_resp, style = self.encoder_.outputs(xb)
                else:
                    z = self.encoder_.sample(xb, generator)
                xhat = self.decoder_(z)
        else:
            if mixture:
                z, log_resp, style = self.encoder_.outputs(xb, most_probable=True)
            else:
                z = self.encoder_.mean(xb)
            xhat = self.decoder_(z)
        # Losses and the regulariser work in float32 whatever the precision.
        z = z.float()
        recon = torch.nn.functional.mse_loss(xhat.float(), xb)
        losses = {"loss": recon, "reconstruction": recon}
        if self.reg_weight != 0:
            if train:
                reg = regularizer(z, yb)
            else:
                reg = {"regularization": regularizer.evaluate(z, yb)}
            losses["loss"] = recon + self.reg_weight * reg["regularization"]
            losses.update(reg)
        terms = {**self._task_losses(z, yb), **regularizer.extra_terms(z, yb)}
        if mixture:
            terms.update(self._mixture_terms(log_resp, style, yb, regularizer))
        for name, (weight, value) in terms.items():
            losses["loss"] = losses["loss"] + weight * value
            losses[name] = value
        if train and self.consistency_weight != 0:
            value = self._consistency(xb, z, generator)
            losses["loss"] = losses["loss"] + self.consistency_weight * value
            losses["consistency"] = value
        return losses

    def _mixture_terms(self, log_resp, style, yb, regularizer):
        """``encoder='mixture'``'s terms: with labels, the cross-entropy of the
        labelled rows' responsibilities (weight ``_MIXTURE_SUPERVISED_WEIGHT``);
        the regulariser's term of the styles (weight ``reg_weight``), where it
        has one (the MMD's: the styles against the standard normal that the
        components map)."""
        terms = {}
        if yb is not None:
            terms["classification"] = (
                _MIXTURE_SUPERVISED_WEIGHT,
                _labelled_cross_entropy(log_resp.float(), yb),
            )
        if self.reg_weight != 0:
            value = regularizer.style_term(style.float())
            if value is not None:
                terms["style"] = (self.reg_weight, value)
        return terms

    def _consistency(self, xb, z, generator):
        """The consistency under input noise of the codes ``z`` of ``xb``.

        The clean row's code ``f(x)`` (the mean of q(z|x), without gradient:
        the batch's training code ``z`` itself when the encoder's draw is
        deterministic, ``deterministic_sample``: the mixture encoder's
        training code, not its transform's) is the target for a code drawn
        for the row plus noise ``e ~
        N(0, consistency_noise^2 I)``, so that rows a small step apart in the
        data space get nearby codes (the Pi-model of Laine & Aila 2017); the
        two are compared by :meth:`_consistency_divergence`.
        """
        noise = torch.randn(
            xb.shape, generator=generator, device=xb.device, dtype=xb.dtype
        )
        with autocast(self.precision, self.device_):
            if self.encoder_.deterministic_sample:
                target = z.detach()
            else:
                with torch.no_grad():
                    target = self.encoder_.mean(xb)
            noisy = self.encoder_.sample(xb + self.consistency_noise * noise, generator)
        return self._consistency_divergence(target.float(), noisy.float())

    def _consistency_divergence(self, target, noisy):
        """Batch mean of ``||target - noisy||^2`` (the task estimators compare
        their class blocks instead)."""
        return ((noisy - target) ** 2).sum(dim=1).mean()

    # ------------------------------------------------------------- properties
    @property
    def _n_features_out(self):
        # The fitted networks' width, not the parameter (set_params after fit
        # must not change what a fitted model returns); an AttributeError
        # before fit, so that get_feature_names_out raises NotFittedError.
        return self._fitted_n_components()

    def _fitted_n_components(self):
        """``n_components`` as the networks were fitted (from the stored
        architecture; the parameter may have been set anew since)."""
        return self._architecture["n_components"]

    def _fitted_code_width(self):
        """The encoder's output width as fitted (``_code_width()`` at the fresh
        fit; ``n_components`` in a state written before it was recorded)."""
        return self._architecture.get("code_width", self._fitted_n_components())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        # A ConditionalPrior learns a law per class of y: fit needs y.
        tags.target_tags.required = isinstance(self.prior, ConditionalPrior)
        return tags

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Sparse matrices and memory-mapped arrays are streamed
            to the device a batch at a time; so are dense arrays whose float32
            copy would take more than half of a GPU's free memory (said when
            ``verbose``).
        y : array-like of shape (n_samples,), default=None
            Class labels, ``-1`` for unlabelled rows (scikit-learn's
            semi-supervised convention). With a prior whose components are
            classes (``GaussianMixturePrior``, ``CategoricalPrior``: labels
            ``0..K-1``), labelled codes of class ``k`` are matched to component
            ``k`` and unlabelled codes to the whole prior, and ``classes_`` is
            set; other priors ignore ``y`` (only checked to have one entry per
            row). See the user guide's section on labels.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        return self._fit(X, y, incremental=False)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None, classes=None):
        """Train for one epoch on ``X``, continuing from the current state.

        Meant for data that arrive in blocks (a stream, a Dask array through
        ``dask_ml.wrappers.Incremental``): a call costs one training pass over
        its block and a validation of it, nothing proportional to the rows
        seen before. The optimiser state is kept between calls, and in the
        saved state (pickle, joblib, ``skops.io``) of a model whose last call
        was ``partial_fit``, so that a model moved between processes trains on
        exactly (``fit`` releases it). Early stopping does not apply.

        After ``partial_fit``, ``noise_variance_`` is the mean squared
        reconstruction residual of the block's training pass: each batch's
        residual as it was computed for its optimiser step (before that step),
        with the codes drawn from q(z|x) as in training (for the
        ``'deterministic'`` encoder, the code itself). It costs nothing extra,
        but it is not :meth:`fit`'s definition (the residual of the mean code,
        with the final weights, over all the training rows): it describes the
        last block, and for the ``'gaussian'`` and ``'universal'`` encoders it
        is usually a little larger (the sampling noise of the codes adds to
        the residual), which makes :meth:`score_samples` slightly
        conservative. For ``'mixture'`` the training code is the
        responsibilities' mixture, which differs from :meth:`transform`'s
        (the most probable component's) where a row's component is
        uncertain.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            Labels, as in :meth:`fit`; ``classes_`` is kept from the first
            call, and labels cannot be added if that call had none.
            ``dask_ml.wrappers.Incremental`` without ``y`` passes a
            placeholder ``('', block_index)`` instead of None; it is taken
            for None.
        classes : array-like of shape (n_classes,), default=None
            Every class that ``y`` may hold over all the calls, as for
            scikit-learn's incremental classifiers: needed at the first call
            when its block may lack a class and the prior takes any labels
            (a :class:`~sklearn_aae.priors.ConditionalPrior`, whose learned
            scales are one per class); it becomes ``classes_``. With a prior
            whose components are classes (labels ``0..K-1``) it is only
            checked, ``classes_`` being ``arange(K)``. Later calls may pass
            the same classes or None. Ignored by priors that ignore labels.

        Returns
        -------
        self : object

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn_aae import MMDAutoencoder
        >>> X = np.random.RandomState(0).rand(300, 4)
        >>> est = MMDAutoencoder(hidden_layer_sizes=(8,), random_state=0)
        >>> for block in np.array_split(X, 3):
        ...     est = est.partial_fit(block)
        >>> est.n_iter_, est.transform(X).shape
        (3, (300, 2))
        """
        y = _no_dask_ml_placeholder(y)
        return self._fit(X, y, incremental=True, classes=classes)

    def _fit(self, X, y, incremental, classes=None):
        """The training loop (see :meth:`_train`); returns ``self``."""
        self._train(X, y, incremental, classes)
        return self

    def _train(self, X, y, incremental, classes=None):
        """The training loop: start, then epochs until a stop, then end.

        Returns whether the user interrupted it (Ctrl-C: a warning, and the
        estimator keeps its current weights), so that a caller running several
        fits (the clusterers' ``n_init``) can stop them all.
        """
        fresh = not hasattr(self, "encoder_") or not (incremental or self.warm_start)
        self._check_prior_support()
        X, y = self._validate_input(X, y, reset=fresh, classes=classes)
        run = self._start(X, y, fresh, incremental)
        interrupted = False
        try:
            for _ in range(1 if incremental else self.max_iter):
                if self._epoch(run):
                    break
        except KeyboardInterrupt:
            interrupted = True
            warnings.warn(
                f"Training interrupted by the user after {self.n_iter_} epochs; "
                "the estimator keeps its current weights.",
                UserWarning,
            )
        else:
            if not incremental and not run.stopped_early:
                warnings.warn(
                    f"Stochastic optimizer: maximum iterations ({self.max_iter}) "
                    "reached and the optimization hasn't converged yet.",
                    ConvergenceWarning,
                )
        self._end(run)
        return interrupted

    def _start(self, X, y, fresh, incremental):
        """Seeds, device, prior, networks and optimisers; the data and their split."""
        hidden = self._check_hidden_layer_sizes()
        rng = check_random_state(self.random_state)
        init_seed, loop_seed, split_seed = (
            int(s) for s in rng.randint(2**31 - 1, size=3)
        )
        previous_device = getattr(self, "device_", None)
        previous_prior = getattr(self, "prior_", None)
        self.device_ = resolve_device(self.device)
        warn_if_bfloat16_is_emulated(self.precision, self.device_)
        warn_if_tf32(self.device_)
        self.prior_ = self._fitted_prior()
        generator = torch.Generator(device=self.device_)
        generator.manual_seed(
            (loop_seed + (0 if fresh else self.n_iter_)) % (2**31 - 1)
        )
        if fresh:
            self._init_fitted(hidden, init_seed)
        else:
            try:
                self._check_warm_start(hidden)
            except ValueError:
                # A refused continuation leaves the fitted model as it was.
                self.device_, self.prior_ = previous_device, previous_prior
                raise
            if isinstance(self.encoder_, MixtureEncoder):
                self._set_mixture_components(self.encoder_)
        if fresh or not incremental or previous_device != self.device_:
            # (an optimiser's state lives on the device it was made on)
            self._release_optimizers()
        self._move_modules(self.device_)
        if getattr(self, "_optimizer", None) is None:
            self._optimizer = self._make_optimizer("_optimizer")
        data = _Data(X, self.device_, y=y)
        if self.verbose and data.too_large is not None:
            needed, free = data.too_large
            print(
                f"The training data take {needed / 2**20:.0f} MiB as float32, more "
                f"than {_DEVICE_DATA_SHARE:.0%} of the {free / 2**20:.0f} MiB free "
                f"on {self.device_}: "
                "they are streamed to it a batch at a time."
            )
        train_idx, val_idx = self._split(data, incremental, split_seed)
        self._count_prior_classes(y, train_idx, fresh)
        if not incremental:
            self._check_rows_per_class(y, train_idx)
        # (after the count: a conditional prior's regulariser reads the
        # classes' frequencies)
        tprior = tensor_prior(self.prior_, self._code_width(), self.device_)
        regularizer = self._make_regularizer(tprior, generator)
        return _Run(
            data=data,
            train_idx=train_idx,
            train_idx_t=torch.as_tensor(train_idx, device=self.device_),
            val_idx=val_idx,
            regularizer=regularizer,
            generator=generator,
            incremental=incremental,
            good_state=self._state(),
        )

    def _init_fitted(self, hidden, seed):
        """A fresh fit: new networks and empty records."""
        self._architecture = self._architecture_signature(hidden)
        self.__dict__.pop("_prior_log_scales", None)
        for name, module in self._build_modules(self._architecture, seed).items():
            setattr(self, name, module)
        self.n_iter_ = 0
        self.loss_curve_ = []
        self.history_ = {}
        self.validation_loss_curve_ = [] if self.early_stopping else None

    def _check_warm_start(self, hidden):
        """Continuing needs the architecture of the last fresh fit."""
        current = self._architecture_signature(hidden)
        for name, before in getattr(self, "_architecture", {}).items():
            if current.get(name) != before:
                raise ValueError(
                    f"{name} changed from {before!r} to {current.get(name)!r} "
                    "since the last fit; warm_start and partial_fit need the "
                    "same architecture (fit with warm_start=False starts afresh)."
                )
        if self.early_stopping and self.validation_loss_curve_ is None:
            self.validation_loss_curve_ = []

    def _split(self, data, incremental, seed):
        """Training and validation rows, sorted: ``(train_idx, val_idx)``.

        ``val_idx`` is None unless ``early_stopping`` holds rows out (never in
        ``partial_fit``). With labels (``data.y``) the split is stratified:
        each class, and the unlabelled rows, are held out in proportion, and a
        class keeps at least one training row (:func:`_data._stratified_split`).
        """
        n = data.n
        if not self.early_stopping or incremental:
            return np.arange(n), None
        n_val = int(math.ceil(self.validation_fraction * n))
        if n_val < 2 or n - n_val < 2:
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of n_samples={n} leaves {n_val} "
                f"validation and {n - n_val} training samples; both need at "
                "least 2."
            )
        rng = np.random.RandomState(seed)
        if data.y is not None:
            return _stratified_split(data.y.cpu().numpy(), n_val, rng)
        perm = rng.permutation(n)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _epoch(self, run):
        """One epoch: train, check, record; returns whether to stop."""
        t0 = time.perf_counter()
        record = self._run_epoch(
            run.data, run.train_idx_t, run.regularizer, run.generator
        )
        self._check_diverged(run, record)
        current = self._record(run, record, t0)
        return run.incremental or self._stop(run, current)

    def _check_diverged(self, run, record):
        """A non-finite loss or weight restores the last good weights and raises."""
        if all(math.isfinite(v) for v in record.values()) and self._parameters_finite():
            return
        epoch = self.n_iter_ + 1
        self._load_state(run.good_state)
        self._release_optimizers()  # their moments hold NaN too
        self._finish_fit(run.data, run.train_idx)
        raise FloatingPointError(
            f"Training diverged at epoch {epoch}: the loss is "
            f"{record['loss']}. The estimator keeps the weights of "
            f"epoch {epoch - 1}. Try a smaller learning_rate_init, "
            "a smaller reg_weight or scaling the input."
        )

    def _record(self, run, record, t0):
        """Append the epoch to the records; returns the loss to watch."""
        self.n_iter_ += 1
        run.reconstruction = record["reconstruction"]
        self.loss_curve_.append(record["loss"])
        for key, value in record.items():
            if key != "loss":
                self.history_.setdefault(key, []).append(value)
        if run.val_idx is not None:
            current = self._validation_loss(run.data, run.val_idx, run.regularizer)
            self.validation_loss_curve_.append(current)
        else:
            current = record["loss"]
        if self.verbose:
            extra = ", ".join(f"{k} = {v:.6g}" for k, v in record.items())
            val = (
                f", validation loss = {current:.6g}" if run.val_idx is not None else ""
            )
            print(
                f"Epoch {self.n_iter_}: {extra}{val} ({time.perf_counter() - t0:.2f} s)"
            )
        return current

    def _stop(self, run, current):
        """Keep the best weights; stop after ``n_iter_no_change`` flat epochs."""
        run.good_state = self._state()
        if current > run.best - self.tol:
            run.no_improvement += 1
        else:
            run.no_improvement = 0
        if current < run.best:
            run.best = current
            if run.val_idx is not None:
                run.best_state = run.good_state
        if run.no_improvement <= self.n_iter_no_change:
            return False
        run.stopped_early = True
        if self.verbose:
            what = "Validation" if run.val_idx is not None else "Training"
            print(
                f"{what} loss did not improve more than tol={self.tol} "
                f"for {self.n_iter_no_change} consecutive epochs. "
                "Stopping."
            )
        return True

    def _end(self, run):
        """Restore the best weights, estimate the noise, free the training state.

        ``fit`` estimates ``noise_variance_`` exactly, with one more pass over
        the training rows (:meth:`_finish_fit`); ``partial_fit`` takes the
        block's residual from its training pass, at no extra cost (see
        :meth:`partial_fit`), unless no epoch completed.
        """
        if run.best_state is not None:
            self._load_state(run.best_state)
        self.best_loss_ = run.best if math.isfinite(run.best) else None
        if run.incremental and run.reconstruction is not None:
            self.noise_variance_ = max(run.reconstruction, _NOISE_VARIANCE_FLOOR)
            self._record_prior_scales()
        else:
            self._finish_fit(run.data, run.train_idx)
        if not run.incremental:
            self._release_optimizers()  # free the optimisers' state after fit
            if self.device_.type == "cuda":
                # Drop the training copies first, so that the cache can shrink.
                run.data = run.train_idx_t = run.regularizer = None
                run.good_state = run.best_state = None
                torch.cuda.empty_cache()

    # What validating the training data sets, before any training.
    _validated_attributes = ("n_features_in_", "feature_names_in_", "classes_")

    def _validate_input(self, X, y, reset, classes=None):
        """The training rows (at least 2) and their labels' codes (or None).

        See :meth:`_encode_labels` for what becomes of ``y`` (and ``classes``).
        Refused data leave the attributes that validation sets as they were,
        so that a refused fit leaves a fitted model intact.
        """
        before = {
            k: vars(self)[k] for k in self._validated_attributes if k in vars(self)
        }
        try:
            X = _validate_rows(self, X, reset=reset, ensure_min_samples=2)
            y = self._encode_labels(_check_labels(y, X.shape[0]), reset, classes)
            self._check_labels_for_prior(y)
        except Exception:
            for k in self._validated_attributes:
                self.__dict__.pop(k, None)
            self.__dict__.update(before)
            raise
        return X, y

    def _encode_labels(self, y, reset, classes=None):
        """``y`` as int64 class codes (``-1``: unlabelled), or None; sets ``classes_``.

        The prior gives labels their meaning (its ``_n_classes()``, see
        :mod:`sklearn_aae.priors`): a prior that ignores labels ignores ``y``
        (None is returned, as PCA ignores ``y``); otherwise labels become codes
        of ``classes_`` (:func:`_data._label_codes`). ``y`` with no labelled row
        gives None too, so that it trains exactly as ``fit(X)``. A fresh fit
        sets (or removes) ``classes_``; ``warm_start`` and ``partial_fit`` keep
        it, and refuse labelled rows when the first fit had none.
        ``classes`` (``partial_fit``'s) declares the classes up front
        (:func:`_data._known_classes`).
        """
        if reset and hasattr(self, "classes_"):
            del self.classes_
        if y is None:
            return None
        prior = _check_prior(self.prior, self.n_components)
        n_classes = _prior_n_classes(prior)
        if n_classes is None:
            return None
        before = getattr(self, "classes_", None)
        known = _known_classes(classes, n_classes, before, type(prior).__name__)
        codes, classes = _label_codes(
            y,
            n_classes,
            known,
            prior_name=type(prior).__name__,
            declared=before is None and classes is not None,
        )
        if codes is None:
            return None
        if not reset and before is None:
            raise ValueError(
                "y has labelled rows, but the estimator was first fit without "
                "any: warm_start and partial_fit cannot add labels (the "
                "regulariser was built without them). Fit afresh with "
                "warm_start=False."
            )
        self.classes_ = classes
        return codes

    def _check_labels_for_prior(self, codes):
        """A conditional prior needs a class for every row (``codes`` from
        :meth:`_encode_labels`: None without labels, ``-1`` unlabelled)."""
        if not isinstance(self.prior, ConditionalPrior):
            return
        if codes is None:
            raise ValueError(
                "ConditionalPrior requires y to be passed, but the target y is "
                "None (or has no labelled row): fit(X, y) with y the auxiliary "
                "variable of each row (a segment, a recording, a condition); "
                "transform then needs no labels."
            )
        if np.any(np.asarray(codes) < 0):
            raise ValueError(
                "ConditionalPrior needs a label for every row; y has unlabelled "
                "rows (-1)."
            )

    def _count_prior_classes(self, codes, train_idx, fresh):
        """The conditional prior's class weights: label frequencies of the
        training rows, accumulated over ``warm_start`` and ``partial_fit``."""
        if not isinstance(self.prior_, ConditionalPrior):
            self.__dict__.pop("prior_weights_", None)
            self.__dict__.pop("prior_scales_", None)
            return
        counts = np.bincount(
            np.asarray(codes)[train_idx], minlength=len(self.classes_)
        ).astype(np.float64)
        if not fresh:
            counts += self._prior_class_counts
        self._prior_class_counts = counts
        self.prior_weights_ = counts / counts.sum()

    def _check_rows_per_class(self, codes, train_idx):
        """Warn when a conditional prior's batches hold few rows of each class.

        Each class's MMD is estimated from the rows of that class in the batch:
        with a handful of them (the default ``batch_size`` and tens of
        segments) the estimate is poor and a class with one row falls back to
        a biased term. Measured on the 4-source, 4-layer ICA benchmark (one
        seed, 6000 steps): 3 rows per class per batch gave MCC 0.84, 21 rows
        0.90.
        """
        if not isinstance(self.prior_, ConditionalPrior):
            return
        if len(self.classes_) == 1:
            warnings.warn(
                f"y holds only one class ({self.classes_.tolist()[0]!r}): the "
                "ConditionalPrior's learned log-scales are centred over the "
                "classes, so one class keeps the base prior's scales and the "
                "model is the unconditional one, which identifies no sources. "
                "Give the segments (or conditions) over which the sources' "
                "scales change (see the user guide, 'Nonlinear ICA with an "
                "auxiliary variable').",
                UserWarning,
                stacklevel=7,
            )
        n = len(train_idx)
        counts = np.bincount(np.asarray(codes)[train_idx])
        n_classes = int(np.count_nonzero(counts))
        n_single = int(np.count_nonzero(counts == 1))
        if n_single > n_classes / 2:
            warnings.warn(
                f"{n_single} of the {n_classes} classes of y have one training "
                "row: the ConditionalPrior learns scales per distinct value of "
                "y, and a class of one row teaches them nothing. A continuous y "
                "(a time, a measurement) should be cut into segments first, for "
                "example with numpy.digitize (see the user guide, 'Nonlinear "
                "ICA with an auxiliary variable').",
                UserWarning,
                stacklevel=7,
            )
            return
        per_class = n / _n_batches(n, self.batch_size) / max(n_classes, 1)
        if per_class < _MIN_ROWS_PER_CLASS:
            warnings.warn(
                f"batch_size={self.batch_size} gives about {per_class:.1f} rows "
                f"of each of the {n_classes} classes per batch; the "
                f"ConditionalPrior's per-class MMD needs more (at least "
                f"{_MIN_ROWS_PER_CLASS}, about 20 recommended): use a batch_size "
                f"of about {20 * n_classes} (see the user guide, 'Nonlinear "
                "ICA with an auxiliary variable').",
                UserWarning,
                stacklevel=7,
            )

    def _parameters_finite(self):
        """Whether every fitted weight is finite (one host synchronisation)."""
        flags = [
            torch.isfinite(p).all()
            for m in self._modules().values()
            for p in m.parameters()
        ]
        return bool(torch.stack(flags).all())

    def _check_hidden_layer_sizes(self, name="hidden_layer_sizes"):
        return check_layer_sizes(getattr(self, name), name)

    def _run_epoch(self, data, train_idx, regularizer, generator):
        """One pass over the training rows; returns the epoch's mean losses."""
        n = train_idx.shape[0]
        perm = train_idx[
            torch.randperm(n, generator=generator, device=train_idx.device)
        ]
        if data.streamed:
            # Streamed rows are gathered on the host: one copy of the order per
            # epoch, not one host synchronisation per batch.
            perm = perm.cpu()
        sums = None
        for idx in perm.tensor_split(_n_batches(n, self.batch_size)):
            xb, yb = data.batch(idx)
            losses = self._train_step(xb, yb, regularizer, generator)
            stacked = torch.stack(list(losses.values())) * idx.shape[0]
            sums = stacked if sums is None else sums + stacked
        # One host synchronisation per epoch.
        return dict(zip(losses.keys(), (sums / n).tolist(), strict=True))

    def _train_step(self, xb, yb, regularizer, generator):
        """One optimiser step on a batch: the losses, then the step."""
        losses = self._losses(xb, yb, regularizer, generator)
        self._optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self._optimizer.step()
        return {k: v.detach() for k, v in losses.items()}

    @torch.no_grad()
    def _validation_loss(self, data, val_idx, regularizer):
        """The mean of ``_losses(...)['loss']`` over the validation rows."""
        total, count = 0.0, 0
        for idx in np.array_split(val_idx, _n_batches(len(val_idx), self.batch_size)):
            xb, yb = data.batch(data.index(idx))
            loss = self._losses(xb, yb, regularizer, train=False)["loss"]
            total = total + loss.double() * len(idx)  # no host sync per batch
            count += len(idx)
        return float(total) / count

    @torch.no_grad()
    def _finish_fit(self, data, train_idx):
        """Estimate ``noise_variance_`` from the training residuals."""
        sq, count = 0.0, 0
        for start in range(0, len(train_idx), _INFERENCE_CHUNK):
            idx = train_idx[start : start + _INFERENCE_CHUNK]
            xb, _ = data.batch(data.index(idx))
            r = xb - self.decoder_(self.encoder_.mean(xb))
            sq = sq + (r * r).sum(dtype=torch.float64)  # no host sync per chunk
            count += r.numel()
        self.noise_variance_ = max(float(sq) / count, _NOISE_VARIANCE_FLOOR)
        self._record_prior_scales()

    @torch.no_grad()
    def _record_prior_scales(self):
        """``prior_scales_``: a conditional prior's learned scales, as NumPy."""
        scales = getattr(self, "_prior_log_scales", None)
        if scales is not None:
            self.prior_scales_ = scales().exp().cpu().double().numpy()

    def _tensor_prior(self, device):
        """The fitted prior on ``device`` (float32), for sampling and scoring.

        The prior's own tensor side, or, for a conditional prior, the mixture
        over classes with the learned scales (``prior_scales_``) and the class
        frequencies (``prior_weights_``).
        """
        if hasattr(self, "prior_scales_"):
            return self.prior_._fitted_tensor_prior(
                self.prior_scales_, self.prior_weights_, device, torch.float32
            )
        return tensor_prior(self.prior_, self._fitted_code_width(), device)

    # --------------------------------------------------------- state, devices
    # Optimisers: kept between partial_fit calls (and in their saved state),
    # released at the end of fit.
    _optimizer_attributes = ("_optimizer",)

    def _release_optimizers(self):
        for name in self._optimizer_attributes:
            setattr(self, name, None)

    def _optimized_parameters(self):
        """``{optimiser attribute: (parameters, learning rate)}``."""
        trained = [self.encoder_, self.decoder_, *self._prior_modules().values()]
        params = [p for m in trained for p in m.parameters()]
        return {"_optimizer": (params, self.learning_rate_init)}

    def _make_optimizer(self, name):
        """A fresh Adam for the optimiser attribute ``name``."""
        params, lr = self._optimized_parameters()[name]
        return adam(params, lr)

    def _modules(self):
        return {
            "encoder_": self.encoder_,
            "decoder_": self.decoder_,
            **self._prior_modules(),
            **self._regularizer_modules(),
        }

    def _state(self):
        return {
            name: {k: v.detach().clone() for k, v in m.state_dict().items()}
            for name, m in self._modules().items()
        }

    def _load_state(self, state):
        for name, m in self._modules().items():
            m.load_state_dict(state[name])

    def _move_modules(self, device):
        """Move the fitted networks (and the regulariser's) to ``device``."""
        for m in self._modules().values():
            m.to(device)

    def __getstate__(self):
        """The state for pickle, joblib, ``copy`` and ``skops.io``: no torch object.

        Each fitted module becomes its state dict of NumPy arrays (host copies:
        a model trained on a GPU loads anywhere), rebuilt by
        :meth:`__setstate__` from ``_architecture``; ``device_`` is a string;
        the optimisers' state, which ``partial_fit`` keeps between calls (and
        ``fit`` releases), is kept as arrays too, so that training continues
        exactly where it stopped (when Dask moves a model between worker
        processes, for instance); the library's version and the state's format
        are recorded (see :mod:`sklearn_aae._persistence`).
        """
        # object.__getstate__ returns the live __dict__ on Python >= 3.11: copy it.
        state = dict(super().__getstate__())
        optimizers = {}
        for name in self._optimizer_attributes:
            optimizer = state.pop(name, None)
            if optimizer is not None:
                optimizers[name] = optimizer_arrays(optimizer)
        if optimizers:
            state[OPTIMIZERS_KEY] = optimizers
        if hasattr(self, "encoder_"):
            modules = self._modules()
            for name in modules:
                del state[name]
            state[WEIGHTS_KEY] = {name: module_arrays(m) for name, m in modules.items()}
        if "device_" in state:
            state["device_"] = str(state["device_"])
        torch_device = isinstance(state.get("device"), torch.device)
        if torch_device:
            state["device"] = str(state["device"])
        state[META_KEY] = state_metadata(torch_device)
        return state

    def __setstate__(self, state):
        state = dict(state)
        meta = state.pop(META_KEY, None)
        weights = state.pop(WEIGHTS_KEY, None)
        optimizers = state.pop(OPTIMIZERS_KEY, {})
        if meta is not None:
            check_state_metadata(meta, type(self).__name__)
            if meta.get("device_param_is_torch_device"):
                state["device"] = torch.device(state["device"])
        # A state written before the format was recorded holds the modules
        # themselves and a torch.device: it loads as it is.
        if state.get("device_") is not None:
            state["device_"] = torch.device(state["device_"])
        super().__setstate__(state)
        if weights is not None:
            self._check_stored_attributes()
            try:
                modules = self._build_modules(self._architecture, seed=0)
            except KeyError as exc:
                raise ValueError(
                    f"The stored architecture of this {type(self).__name__} "
                    f"lacks {exc} (the state is damaged, was edited, or is "
                    "another estimator's)."
                ) from None
            for name, module in modules.items():
                if name not in weights:
                    raise ValueError(
                        f"The stored state of this {type(self).__name__} has no "
                        f"weights for {name} (it has {sorted(weights)})."
                    )
                setattr(self, name, load_arrays(module, weights[name], name))
            unknown = sorted(set(weights) - set(modules))
            if unknown:
                raise ValueError(
                    f"The stored state of this {type(self).__name__} has "
                    f"weights for {', '.join(unknown)}, which it does not have "
                    "(the state is another estimator's, or was edited)."
                )
        device = getattr(self, "device_", None)
        if device is not None and device.type != "cpu":
            try:
                resolve_device(str(device))
            except ValueError:
                self.device_ = torch.device("cpu")
            else:
                self._move_modules(device)
        # After the modules are on their device: the moments follow their
        # parameters there.
        for name, arrays in optimizers.items():
            optimizer = self._make_optimizer(name)
            setattr(self, name, load_optimizer_arrays(optimizer, arrays, name))

    def _check_stored_attributes(self):
        """Refuse a loaded fitted state that lacks what the model needs.

        The architecture and the fitted attributes that inference reads; with
        a :class:`~sklearn_aae.priors.ConditionalPrior`, the classes, their
        weights and learned scales too, with one entry per class the
        architecture records (without ``prior_scales_``, ``sample`` and
        ``score_samples`` would silently use the unfitted base prior). A
        parameter the state lacks (a state of this format written before the
        parameter existed) takes its default: parameters are added with a
        default that keeps the earlier behaviour, and the fitted networks
        follow the recorded architecture, not the parameters.
        """
        name = type(self).__name__
        _set_missing_parameters(self)
        needed = [
            "_architecture",
            "n_features_in_",
            "device_",
            "prior_",
            "noise_variance_",
        ]
        architecture = getattr(self, "_architecture", None)
        n_classes = None
        if isinstance(architecture, dict):
            n_classes = architecture.get("conditional_prior_classes")
        if n_classes is not None:
            needed += ["classes_", "prior_weights_", "prior_scales_"]
        missing = [key for key in needed if not hasattr(self, key)]
        if missing:
            raise ValueError(
                f"The stored state of this {name} lacks {missing} (the state is "
                "damaged or was edited)."
            )
        if n_classes is None:
            return
        shapes = {
            "classes_": (n_classes,),
            "prior_weights_": (n_classes,),
            "prior_scales_": (n_classes, architecture.get("n_components")),
        }
        for key, shape in shapes.items():
            if np.shape(getattr(self, key)) != shape:
                raise ValueError(
                    f"The stored {key} has shape {np.shape(getattr(self, key))}, "
                    f"but this {name} was fitted with a ConditionalPrior of "
                    f"{n_classes} classes: expected {shape} (the state is "
                    "damaged or was edited)."
                )

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def transform(self, X):
        """Encode ``X``: the mean of q(z|x) for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Of the dtype of ``X`` (float32 or float64).
        """
        return self._encode(X)

    @torch.no_grad()
    def _encode(self, X):
        """The codes of ``X`` (the full encoder output), of the dtype of ``X``."""
        check_is_fitted(self)
        X = _validate_rows(self, X)
        data = _Data(X, self.device_, stream=True)
        out = [self.encoder_.mean(xb).cpu() for xb in data.chunks()]
        return torch.cat(out).numpy().astype(_output_dtype(X), copy=False)

    @torch.no_grad()
    def _decode(self, Z, dtype, network=None):
        """Outputs of the decoder (or of ``network``, a part of it) for the
        codes ``Z`` (NumPy), a chunk at a time."""
        network = self.decoder_ if network is None else network
        out = []
        for start in range(0, Z.shape[0], _INFERENCE_CHUNK):
            z = Z[start : start + _INFERENCE_CHUNK]
            z = torch.as_tensor(z, dtype=torch.float32, device=self.device_)
            out.append(network(z).cpu())
        return torch.cat(out).numpy().astype(dtype, copy=False)

    def inverse_transform(self, X):
        """Decode codes back to the data space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, for example from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's output (the mean of p(x|z)), of the dtype of the input.
        """
        check_is_fitted(self)
        Z = _check_codes(X, self._fitted_n_components(), type(self).__name__)
        return self._decode(Z, Z.dtype)

    def sample(self, n_samples=1, random_state=None, y=None):
        """Generate data: decode codes drawn from the prior.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draw from the prior.
        y : label or array-like of shape (n_samples,), default=None
            Draw each row's code from one class's part of the prior: the
            component of a :class:`~sklearn_aae.priors.GaussianMixturePrior`
            or the category of a :class:`~sklearn_aae.priors.CategoricalPrior`
            (labels ``0..K-1``), the segment of a
            :class:`~sklearn_aae.priors.SwissRollPrior` with ``n_segments``,
            a class of ``classes_`` for a
            :class:`~sklearn_aae.priors.ConditionalPrior`; one label for every
            row, or one per row. With labels in the regulariser (``fit(X,
            y)``), the rows of class ``k`` were matched to that part, so this
            generates rows of class ``k`` (see :ref:`labels`). None draws from
            the whole prior. A prior without classes raises a ValueError.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Decoder outputs (means of p(x|z)), float64.
        """
        return self._decode(self._prior_draws(n_samples, random_state, y), np.float64)

    def _sampled_class_codes(self, n_samples, y):
        """The class codes of :meth:`sample`'s ``y`` (one label or one per
        row), mapped as ``fit`` maps labels."""
        n_classes = _prior_n_classes(self.prior_)
        if n_classes is None:
            raise ValueError(
                f"sample(y=...) draws from the part of the prior that a class "
                f"names; {type(self.prior_).__name__} has no classes (a "
                "GaussianMixturePrior, a CategoricalPrior, a SwissRollPrior with "
                "n_segments or a ConditionalPrior has)."
            )
        labels = np.asarray(y)
        if labels.ndim == 0:
            labels = np.full(n_samples, labels, dtype=labels.dtype)
        if labels.shape != (n_samples,):
            raise ValueError(
                f"y must be one label or {n_samples} labels (one per row), got "
                f"shape {labels.shape}."
            )
        codes, _ = _label_codes(
            labels,
            n_classes,
            classes=getattr(self, "classes_", None),
            prior_name=type(self.prior_).__name__,
        )
        if codes is None or np.any(codes < 0):
            raise ValueError(
                "sample(y=...) needs a class for every row; -1 (unlabelled) "
                "names none: use y=None to draw from the whole prior."
            )
        return torch.as_tensor(codes)

    def _prior_draws(self, n_samples, random_state, y=None):
        """``n_samples`` codes drawn from the fitted prior, a CPU tensor: from
        the whole prior, or with ``y`` (see :meth:`sample`) from each row's
        class's part of it.

        Drawn on the CPU (then decoded on ``device_``): the same samples on
        every device for an int ``random_state``.
        """
        check_is_fitted(self)
        n_samples = _check_n_samples(n_samples)
        codes = None if y is None else self._sampled_class_codes(n_samples, y)
        g = torch.Generator().manual_seed(_seed_from(random_state))
        tprior = self._tensor_prior(torch.device("cpu"))
        if codes is None:
            return tprior.sample(n_samples, g)
        return tprior.sample_classes(codes, g)
