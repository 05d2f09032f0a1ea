"""MMDAutoencoder: the autoencoder regularised by a kernel MMD to the prior."""

import math
from numbers import Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from ._base import _CODE_CONSISTENCY_PARAMETERS, BaseAutoencoder, _Regularizer
from ._data import _label_weights
from ._kernels import (
    _as_bandwidths,
    grouped_mmd2_mean,
    grouped_mmd2_sum,
    imq_rbf_quadrature,
    mmd2_unbiased,
    prior_class_kernel_terms,
    prior_kernel_terms,
)
from ._torch_priors import class_scale_rbf_log_terms, tensor_prior
from .priors import ConditionalPrior, GaussianPrior, _check_prior

# 'auto' bandwidths, as multiples of sqrt(n_components * prior variance).
_AUTO_BANDWIDTH_FACTORS = (0.5, 1.0, 2.0)


def _bandwidths(bandwidth, tprior):
    """The kernel bandwidths as a float64 CPU tensor."""
    if isinstance(bandwidth, str):
        if bandwidth != "auto":
            raise ValueError(
                f"bandwidth must be 'auto', a positive float or a non-empty list "
                f"of positive floats, got {bandwidth!r}."
            )
        base = math.sqrt(tprior.n_dims * tprior.variance())
        bw = base * np.asarray(_AUTO_BANDWIDTH_FACTORS)
    else:
        bw = _as_bandwidths(
            bandwidth,
            "'auto', a positive float or a non-empty list of positive floats",
        )
    return torch.from_numpy(np.asarray(bw, dtype=np.float64))


class _MMDRegularizer(_Regularizer):
    """Squared MMD of a batch of codes to the prior (closed form or sampled).

    With labels (``n_classes > 0`` and ``y`` given), each labelled row's code is
    compared with its class's component and the unlabelled codes with the
    whole prior: see :meth:`evaluate`.
    """

    def __init__(
        self, tprior, bandwidths, generator, kernel="rbf", n_classes=0, style=None
    ):
        self.tprior, self.generator, self.kernel = tprior, generator, kernel
        self.n_classes = n_classes
        # encoder='mixture': the regulariser of its styles (an _MMDRegularizer
        # to the standard normal), or None
        self.style = style
        self.bandwidths = bandwidths.to(tprior.device, tprior.dtype)
        terms = prior_kernel_terms(tprior, bandwidths, kernel)
        self.closed_form = terms is not None
        if self.closed_form:
            self.prior_mean, self.prior_prior = terms
        self.class_terms = None
        if n_classes and self.closed_form:
            self.class_terms = prior_class_kernel_terms(tprior, bandwidths, kernel)

    def evaluate(self, Z, y=None):
        """The squared MMD of the codes ``Z`` to the prior.

        ``y`` (int64 class codes, ``-1`` for unlabelled rows, or None) splits the
        rows into groups: the rows of class ``k``, matched to the prior's
        component ``k``, and the unlabelled rows, matched to the whole prior.
        The value is ``(1 - s) MMD^2_unlabelled + s sum_k (n_k / n_L)
        MMD^2_k`` with ``s = max(n_L / n, 1/2)`` (``0`` without labelled rows):
        rows count equally when at least half of the batch is labelled, and
        the labelled rows keep half the weight when they are fewer (see
        ``_data.LABELLED_SHARE``). A group of one row counts by its
        V-statistic (see :func:`grouped_mmd2_sum`).
        """
        if y is None or not self.n_classes:
            return self._mmd2(Z)
        return self._mmd2_by_class(Z, y)

    def style_term(self, S):
        """The squared MMD of the mixture encoder's styles to ``N(0, I)``
        (closed form), None without that encoder."""
        return None if self.style is None else self.style.evaluate(S)

    def _mmd2(self, Z):
        if self.closed_form:
            return mmd2_unbiased(
                Z,
                self.bandwidths,
                self.prior_mean(Z),
                self.prior_prior,
                kernel=self.kernel,
            )
        Y = self.tprior.sample(Z.shape[0], self.generator)
        return mmd2_unbiased(Z, self.bandwidths, None, None, Y=Y, kernel=self.kernel)

    def _group_weights(self, labelled, dtype):
        """Weight per row of each group: labelled classes, then the unlabelled."""
        w_labelled, w_unlabelled = _label_weights(labelled, dtype)
        return torch.cat([w_labelled.expand(self.n_classes), w_unlabelled.reshape(1)])

    def _mmd2_by_class(self, Z, y):
        K = self.n_classes
        labelled = y >= 0
        codes = y.clamp_min(0)
        groups = torch.where(labelled, y, K)  # group K: unlabelled, the whole prior
        weights = self._group_weights(labelled, Z.dtype)
        if self.class_terms is not None:
            class_mean, class_pp = self.class_terms
            mean = torch.where(labelled, class_mean(Z, codes), self.prior_mean(Z))
            pp = torch.cat([class_pp, self.prior_prior.reshape(1)])
            return grouped_mmd2_sum(
                Z,
                groups,
                K + 1,
                self.bandwidths,
                mean,
                pp,
                kernel=self.kernel,
                group_weights=weights,
            )
        # Twice as many prior samples as rows, per group (so each group has 2+).
        n = Z.shape[0]
        whole = self.tprior.sample(2 * n, self.generator)
        by_class = self.tprior.sample_classes(codes.repeat(2), self.generator)
        Y = torch.where(labelled.repeat(2)[:, None], by_class, whole)
        return grouped_mmd2_sum(
            Z,
            groups,
            K + 1,
            self.bandwidths,
            None,
            None,
            Y=Y,
            Y_groups=groups.repeat(2),
            kernel=self.kernel,
            group_weights=weights,
        )


class _ConditionalMMDRegularizer(_Regularizer):
    """The MMD to a :class:`~sklearn_aae.priors.ConditionalPrior`.

    The mean over the classes present in the batch of each class's unbiased
    squared MMD to its own law (the base with the class's learned scales, read
    from ``log_scales``, a :class:`~sklearn_aae._torch_priors._LearnedLogScales`,
    at every call so that the scales learn through the closed forms); each
    class has the same weight, whatever its number of rows in the batch
    (:func:`~sklearn_aae._kernels.grouped_mmd2_mean`).
    """

    def __init__(
        self, prior, log_scales, bandwidths, kernel, n_dims, device, weights=None
    ):
        kind, loc, scale = prior._factors(n_dims)
        self.kind, self.kernel, self.log_scales = kind, kernel, log_scales
        self.contrastive_weight = float(prior.contrastive_weight)
        self.n_classes = log_scales.log_scale.shape[0]
        f32 = dict(device=device, dtype=torch.float32)
        self.loc = torch.as_tensor(loc, **f32)
        self.scale = torch.as_tensor(scale, **f32)
        self.log_base_scale = self.scale.log()  # (once: a constant)
        # The classes' frequencies in the training rows (None: equal), the
        # contrastive term's prior over the classes.
        self.log_weights = (
            None if weights is None else torch.as_tensor(weights, **f32).log()
        )
        bw64 = bandwidths.to(torch.float64).cpu()
        self.bandwidths = bw64.to(**f32)
        if kernel == "rbf":
            self.rbf_bandwidths, self.scale_weights = self.bandwidths, None
        else:  # the IMQ kernel's prior terms through its RBF scale mixture
            rbf_bw, weights = imq_rbf_quadrature(bw64)
            self.rbf_bandwidths, self.scale_weights = (
                rbf_bw.to(**f32),
                weights.to(**f32),
            )

    def evaluate(self, Z, y=None):
        """The mean over classes of the squared MMD of their codes ``Z``."""
        scales = self.scale * self.log_scales().exp()  # (K, d)
        log_mean, log_pp = class_scale_rbf_log_terms(
            self.kind, Z - self.loc, scales[y], scales, self.rbf_bandwidths
        )
        return grouped_mmd2_mean(
            Z,
            y,
            self.n_classes,
            self.bandwidths,
            log_mean,
            log_pp,
            self.scale_weights,
            self.kernel,
        )

    def extra_terms(self, Z, y):
        """``{'contrastive': (weight, value)}``: the cross-entropy of each
        row's class under the classes' own laws, ``p(k | z)`` proportional to
        ``w_k p_k(z)`` (the learned scales, and the classes' frequencies
        ``w_k`` in the training rows: segments of unequal lengths are not
        equally likely a priori), the time-contrastive term of the prior's
        ``contrastive_weight``; empty when it is 0."""
        if self.contrastive_weight == 0 or y is None:
            return {}
        log_scales = self.log_scales() + self.log_base_scale  # (K, d)
        # log p_k(z) up to a constant, for every row and class: a product of
        # (n, d) by (d, K), never an (n, K, d) tensor.
        if self.kind == "gaussian":
            t, inverse = 0.5 * (Z - self.loc).square(), (-2 * log_scales).exp()
        else:
            t, inverse = (Z - self.loc).abs(), (-log_scales).exp()
        logits = -(t @ inverse.T) - log_scales.sum(dim=1)  # (n, K)
        if self.log_weights is not None:
            logits = logits + self.log_weights
        ce = torch.nn.functional.cross_entropy(logits, y)
        return {"contrastive": (self.contrastive_weight, ce)}


class MMDAutoencoder(BaseAutoencoder):
    """Autoencoder whose codes are pulled to a prior by a kernel MMD.

    Trained on ``mse(x, decoder(encoder(x))) + reg_weight * MMD^2(q(z), p(z))``
    per batch, where ``q(z)`` is the distribution of the batch's codes and
    ``p(z)`` the prior. The squared MMD is estimated without bias: the code-code
    term is a U-statistic over the batch, and the prior terms ``E_p k(z_i, .)``
    and ``E_pp k`` are exact (closed form) for the Gaussian, Gaussian-mixture,
    Laplace and uniform priors of :mod:`sklearn_aae.priors`. Any other object with a
    ``sample(n_samples, random_state)`` method works as a prior too: the prior
    terms are then estimated from as many prior samples as the batch has rows.
    There is no adversary and no inner loop.

    With labels, ``fit(X, y)`` (``-1`` for unlabelled rows) and a prior whose
    components are classes (a :class:`~sklearn_aae.priors.GaussianMixturePrior`
    of ``K`` components, labels ``0..K-1``), the codes of class ``k`` are
    matched to component ``k`` by the same closed-form MMD and the unlabelled
    codes to the whole prior; the labelled rows weigh at least half of each
    batch's MMD (see the user guide). Other priors ignore ``y``.

    Read more in the :ref:`User Guide <user_guide>`.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the codes.
    prior : prior object, default=None
        ``None`` is a standard normal :class:`~sklearn_aae.priors.GaussianPrior`.
    reg_weight : float, default=0.3
        Weight of the MMD term; 0 gives a plain autoencoder. The default is the
        best trade-off measured on digits (held-out kNN accuracy of 2-D codes
        against their MMD^2 to the prior; see the user guide's "How the
        defaults were chosen"): 1.0 and more keep less class structure.
    kernel : {'rbf', 'imq'}, default='rbf'
        The kernel of the MMD: ``'rbf'``, the Gaussian
        ``exp(-|x - y|^2 / (2 l^2))``, or ``'imq'``, the heavier-tailed inverse
        multiquadratic ``C / (C + |x - y|^2)`` with ``C = 2 l^2`` (the WAE
        paper's kernel); with several bandwidths the kernel is the mean over
        them. For ``'imq'`` the prior terms are closed-form (to a relative error
        below 1e-6 up to distances of 141 l) through a quadrature over RBF
        scales.
    bandwidth : 'auto', float or list of float, default='auto'
        Kernel bandwidth(s) ``l`` (for ``'imq'``, ``C = 2 l^2``, so both kernels
        agree to first order at small distances). ``'auto'`` uses three scales,
        ``s * (0.5, 1, 2)`` with ``s = sqrt(n_components * v)`` and ``v`` the
        prior's variance per coordinate: ``s^2`` is half the expected squared
        distance between two prior samples (for ``'imq'``, the middle scale is
        the WAE paper's ``C = 2 n_components v``).
    {consistency}
    hidden_layer_sizes : tuple of int, default=(256, 256)
        Hidden layers of the encoder; the decoder mirrors them. ``()`` makes both
        maps affine.
    activation : {'relu', 'tanh', 'logistic', 'identity', 'leaky_relu', 'elu'}, \
            default='relu'
    encoder : {'deterministic', 'gaussian', 'universal', 'mixture'}, \
            default='deterministic'
        The posterior q(z|x). ``'gaussian'``: a Gaussian with learned mean and
        diagonal variance, sampled with the reparameterisation trick during
        training. ``'universal'``: the paper's "universal approximator" posterior,
        a network fed with the data and ``n_components`` Gaussian noise inputs,
        so q(z|x) can take any shape. ``'mixture'`` (only with a
        :class:`~sklearn_aae.priors.GaussianMixturePrior`): the network outputs
        which component a row belongs to (responsibilities, a softmax over the
        prior's components) and a standardised style, which each component maps
        into itself as the mixture maps a standard normal draw, ``mu_k + L_k
        s``; training codes mix the components' codes by the responsibilities,
        :meth:`transform` gives the most probable component's, so each code
        lies in one component. The styles are matched to that standard normal
        by a second MMD (closed form, weight ``reg_weight``, the 'auto'
        bandwidths of ``N(0, I)`` whatever ``bandwidth`` is), so the codes fill
        their components. With labels (``fit(X, y)``) the labelled rows'
        responsibilities are also trained by their cross-entropy (weight 0.1).
        Measured on the digits' ring with 10% of labels, it puts 0.958 of
        held-out codes in their own class's component against 0.929 for the
        deterministic encoder (see :ref:`mixture_encoder`). :meth:`transform` always
        returns the mean of q(z|x) (for ``'universal'``, the average over 16
        fixed noise draws; for ``'mixture'``, the most probable component's
        code):
        it is deterministic.
    batch_size : int, default=100
        Rows per batch; an epoch's rows are split into batches of nearly equal
        size, none larger than this.
    max_iter : int, default=300
        Maximum number of epochs.
    learning_rate_init : float, default=2e-3
        Adam's learning rate.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when their loss
        (reconstruction plus ``reg_weight`` times the MMD of their codes) has not
        improved by ``tol`` for ``n_iter_no_change`` epochs; the best weights are
        restored. Without it, the training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=15
        Epochs without an improvement of ``tol`` (each against the best loss so
        far) that training tolerates: it stops after ``n_iter_no_change + 1``
        of them. Above scikit-learn's 10 because the minibatch MMD makes the
        loss noisy: with 10, a model on digits was stopped while its codes were
        still improving.
    tol : float, default=1e-4
    device : str or torch.device, default='auto'
        ``'auto'`` trains on CUDA when available, else on the CPU; or any torch
        device (``'cpu'``, ``'cuda'``, ``'cuda:1'``). A CUDA device without an
        index resolves to the current one (``device_`` holds the index).
    precision : {'float32', 'bfloat16'}, default='float32'
        ``'bfloat16'`` runs the encoder and decoder passes of training under
        ``torch.autocast`` with bfloat16 (faster on CPUs with AVX512-BF16 or AMX
        and on GPUs with tensor cores); weights, losses and the regulariser stay
        float32, and inference is always float32.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the batches and all sampling (a local
        ``torch.Generator``; the global torch RNG is untouched). An int gives
        identical results on the CPU.
    verbose : int, default=0
        Print the losses after each epoch.
    warm_start : bool, default=False
        Continue from the previous solution at the next ``fit``.

    Attributes
    ----------
    encoder_, decoder_ : torch.nn.Module
        The trained networks.
    prior_ : prior object
        The validated copy of ``prior`` in use.
    device_ : torch.device
        Where the networks live.
    noise_variance_ : float
        Variance of the isotropic Gaussian noise of the generative model, the
        mean squared reconstruction residual over the training rows. After
        :meth:`partial_fit`, that of the last block's training pass (see there).
    loss_curve_ : list of float
        Training loss after each epoch.
    history_ : dict of list of float
        Per-epoch mean of each component: ``'reconstruction'`` and
        ``'regularization'`` (the MMD^2; absent when ``reg_weight=0``, where it
        is not computed).
    validation_loss_curve_ : list of float or None
        Validation loss per epoch, with ``early_stopping``.
    best_loss_ : float or None
        Best (validation, with early stopping) loss seen.
    n_iter_ : int
        Number of epochs run.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when ``X`` has string feature names.
    classes_ : ndarray of shape (n_classes,)
        Defined only after ``fit(X, y)`` with labelled rows and a prior whose
        components are classes: for a mixture of ``K`` components,
        ``arange(K)`` (label ``k`` is component ``k``); for a
        :class:`~sklearn_aae.priors.ConditionalPrior`, the sorted labels.
    prior_scales_ : ndarray of shape (n_classes, n_components)
        With a :class:`~sklearn_aae.priors.ConditionalPrior`: the learned scale
        factors of each class (row ``k`` for ``classes_[k]``), normalised so
        that their log is centred over the classes in every coordinate.
    prior_weights_ : ndarray of shape (n_classes,)
        With a :class:`~sklearn_aae.priors.ConditionalPrior`: the classes'
        frequencies in the training labels, the weights of the fitted
        mixture that ``sample`` draws from.

    See Also
    --------
    AdversarialAutoencoder : the same model with a discriminator instead of MMD.
    sklearn.decomposition.PCA : the linear counterpart.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import MMDAutoencoder
    >>> X = load_digits().data / 16.0
    >>> est = MMDAutoencoder(n_components=2, max_iter=3, random_state=0)
    >>> est.fit(X).transform(X).shape
    (1797, 2)
    >>> est.sample(4, random_state=0).shape
    (4, 64)
    """

    _parameter_constraints = {
        **BaseAutoencoder._parameter_constraints,
        "kernel": [StrOptions({"rbf", "imq"})],
        "bandwidth": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
            "array-like",
        ],
    }

    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=0.3,
        kernel="rbf",
        bandwidth="auto",
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
        self.kernel = kernel
        self.bandwidth = bandwidth

    def _make_regularizer(self, tprior, generator):
        bandwidths = _bandwidths(self.bandwidth, tprior)
        if isinstance(self.prior_, ConditionalPrior):
            return _ConditionalMMDRegularizer(
                self.prior_,
                self._prior_log_scales,
                bandwidths,
                self.kernel,
                self.n_components,
                self.device_,
                weights=self.prior_weights_,
            )
        style = None
        if self._architecture.get("n_mixture") is not None:
            # encoder='mixture': its styles against the standard normal that
            # the prior's components map (so its codes fill the components)
            tstyle = tensor_prior(GaussianPrior(), self.n_components, self.device_)
            # ('auto' bandwidths: the styles' scale is the standard normal's,
            # whatever bandwidth the code's MMD was given)
            style = _MMDRegularizer(
                tstyle, _bandwidths("auto", tstyle), generator, self.kernel
            )
        return _MMDRegularizer(
            tprior,
            bandwidths,
            generator,
            self.kernel,
            n_classes=self._n_regularizer_classes(),
            style=style,
        )


MMDAutoencoder.__doc__ = MMDAutoencoder.__doc__.replace(
    "    {consistency}\n", _CODE_CONSISTENCY_PARAMETERS
)


def mmd_to_prior(Z, prior=None, *, kernel="rbf", bandwidth="auto"):
    """Unbiased squared MMD between a sample of codes and a prior.

    The same estimate that :class:`MMDAutoencoder` trains with: the code-code
    term is a U-statistic; the prior terms are exact when the prior has closed
    forms (all priors of :mod:`sklearn_aae.priors` but the swiss roll), and otherwise
    estimated from as many prior samples as ``Z`` has rows (drawn with seed 0).
    True prior samples give values near 0 (possibly slightly negative).

    Parameters
    ----------
    Z : array-like of shape (n_samples, n_dims)
        Codes, for example ``est.transform(X_test)``; ``n_samples >= 2``.
    prior : prior object, default=None
        ``None`` is the standard normal of dimension ``n_dims``.
    kernel : {'rbf', 'imq'}, default='rbf'
        As in :class:`MMDAutoencoder`.
    bandwidth : 'auto', float or list of float, default='auto'
        As in :class:`MMDAutoencoder`.

    Returns
    -------
    mmd2 : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_aae import mmd_to_prior
    >>> Z = np.random.RandomState(0).normal(size=(2000, 2))
    >>> abs(mmd_to_prior(Z)) < 1e-2
    True
    >>> mmd_to_prior(Z + 3.0) > 0.1
    True
    """
    Z = check_array(Z, dtype=np.float64, ensure_min_samples=2, force_writeable=True)
    prior = _check_prior(prior, Z.shape[1])
    tprior = tensor_prior(prior, Z.shape[1], torch.device("cpu"), torch.float64)
    reg = _MMDRegularizer(
        tprior,
        _bandwidths(bandwidth, tprior),
        torch.Generator().manual_seed(0),
        kernel,
    )
    with torch.no_grad():
        return float(reg.evaluate(torch.from_numpy(Z)))
