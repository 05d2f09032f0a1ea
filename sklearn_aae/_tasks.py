"""The task estimators: a regulariser (MMD or adversarial) times a task.

The adversarial-autoencoder paper's semi-supervised classification and
unsupervised clustering (Makhzani et al. 2015, sections 5 and 6): the encoder
outputs a class block, a softmax over ``K`` heads (``q(y|x)``), beside a style
code (``q(z|x)``); the decoder reads both. The regulariser matches the whole
code to the product prior ``Cat(K) x p(z)``
(:class:`~sklearn_aae.priors.ProductPrior` of a
:class:`~sklearn_aae.priors.CategoricalPrior` and the style prior). The
classifier adds a cross-entropy term on the labelled rows; the clusterer reads
its clusters off the heads.

Each public estimator is a thin class: a task mixin (this module) before the
regulariser's estimator (``MMDAutoencoder`` or ``AdversarialAutoencoder``), as
scikit-learn builds ``VotingClassifier(ClassifierMixin, _BaseVoting)``. The base
class's hooks (``_code_width``, ``_fitted_prior``, ``_n_regularizer_classes``,
``_task_losses``, ``_encode_labels``) are all a task needs.
"""

import textwrap
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.base import ClassifierMixin, ClusterMixin, TransformerMixin, clone
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._adversarial import AdversarialAutoencoder
from ._base import _labelled_cross_entropy
from ._data import _check_codes, _known_classes, _label_codes, _unlabelled_mask
from ._mmd import MMDAutoencoder
from ._networks import ENCODERS
from ._utils import _check_n_samples, _seed_from
from .priors import (
    BasePrior,
    CategoricalPrior,
    ConditionalPrior,
    GaussianPrior,
    ProductPrior,
    _check_prior,
)

# The default style prior is N(0, 0.1^2 I): narrow beside the class block's
# vertices (a unit apart), so that the MMD's kernel, whose 'auto' bandwidth
# follows the code's mean variance, sees the class block sharply and the style
# only coarsely, and the content goes to the heads. Measured (user guide,
# "Classifiers and clusterers"): on three blobs a unit-scale style held the
# blobs and left the heads to noise (ARI 0.13-0.22 after 100 epochs), scale 0.1
# found them on every seed (ARI 1.0); on digits ARI rose from 0.18 to 0.52.
_DEFAULT_STYLE_SCALE = 0.1


class _ClassCodeMixin(TransformerMixin):
    """A code made of a class block (``K`` one-hot heads) and a style block.

    ``_n_heads()`` gives ``K``; ``n_components`` is the style's width, so the
    encoder outputs ``K + n_components`` columns. ``transform`` returns the
    style, ``_head_probabilities`` the class block.

    A ``TransformerMixin`` so that this class's own ``transform`` is wrapped for
    ``set_output`` (scikit-learn wraps only the ``transform`` a class defines
    itself, and the estimators inherit this one).
    """

    def _code_width(self):
        return self._n_heads() + self.n_components

    def _fitted_heads(self):
        """``K`` of the fitted networks (from the stored architecture: the
        parameters may have been set anew since fit)."""
        return self._fitted_code_width() - self._fitted_n_components()

    def _fitted_prior(self):
        prior = self.prior
        if prior is None:
            prior = GaussianPrior(scale=_DEFAULT_STYLE_SCALE)
        style = _check_prior(prior, self.n_components)
        if not isinstance(style, BasePrior) or isinstance(style, ConditionalPrior):
            raise TypeError(
                f"{type(self).__name__} needs a prior from sklearn_aae.priors "
                "(not a ConditionalPrior) for its style code: the class block "
                "and the style are the blocks of a ProductPrior. Got "
                f"{self.prior!r}."
            )
        prior = ProductPrior(
            [("class", CategoricalPrior(self._n_heads())), ("style", style)]
        )
        return _check_prior(prior, self._code_width())

    def _n_regularizer_classes(self):
        # The labels act through the task's loss (or not at all): the
        # regulariser matches every code to the whole product prior.
        return 0

    def _consistency_divergence(self, target, noisy):
        """KL(q(y|x) || q(y|x + e)), batch mean, of the class blocks of the
        clean rows (the target) and of the noisy rows (see
        :meth:`BaseAutoencoder._consistency`): rows a small step apart in the
        data space should share their class (the Pi-model of Laine & Aila 2017
        and Sajjadi et al. 2016, with Gaussian noise as the perturbation).
        Every row counts, labelled or not."""
        K = self._n_heads()
        p = target[:, :K]
        log_q = noisy[:, :K].clamp_min(1e-30).log()
        log_p = p.clamp_min(1e-30).log()
        return (p * (log_p - log_q)).sum(dim=1).mean()

    def _cross_entropy(self, z, yb):
        """``-log q(y|x)`` of the class block ``z[:, :K]`` at the heads ``yb``,
        averaged over the rows that have one (``yb >= 0``; 0 without)."""
        log_p = z[:, : self._n_heads()].clamp_min(1e-30).log()
        return _labelled_cross_entropy(log_p, yb)

    def _head_probabilities(self, X):
        """The class block of the codes of ``X``: ``(n_samples, K)``, float64."""
        check_is_fitted(self)
        codes = self._encode(X)
        P = codes[:, : self._fitted_heads()].astype(np.float64)
        return P / P.sum(axis=1, keepdims=True)

    def transform(self, X):
        """The style code of ``X``: the mean of q(z|x) without the class block.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Of the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        return self._encode(X)[:, self._fitted_heads() :]

    def _set_class(self, codes, y):
        """Set the class block of full ``codes`` to the one-hot of the heads of
        ``y`` (``_heads_of``, the task's labels to heads), in place."""
        K = self._fitted_heads()
        codes[:, :K] = np.eye(K, dtype=codes.dtype)[self._heads_of(y, len(codes))]
        return codes

    def inverse_transform(self, X, y=None):
        """Decode style codes of given classes back to the data space.

        The decoder reads the class as well as the style, so the class of
        each row is needed: ``inverse_transform(est.transform(X),
        est.predict(X))`` reconstructs ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Style codes, for example from :meth:`transform`.
        y : array-like of shape (n_samples,)
            The class (classifier: a label of ``classes_``) or cluster
            (clusterer: ``0..n_clusters_ - 1``) of each row.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's output, of the dtype of ``X``.
        """
        check_is_fitted(self)
        Z = _check_codes(X, self._fitted_n_components(), type(self).__name__)
        if y is None:
            raise ValueError(
                f"{type(self).__name__}.inverse_transform needs y, the class of "
                "each row: the decoder reads the class beside the style code "
                "(for example inverse_transform(est.transform(X), est.predict(X)))."
            )
        codes = np.hstack([np.zeros((len(Z), self._fitted_heads()), Z.dtype), Z])
        return self._decode(self._set_class(codes, y), Z.dtype)

    def sample(self, n_samples=1, random_state=None, y=None):
        """Generate rows: decode prior styles with given or prior-drawn classes.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None, default=None
            Seeds the draw of the styles (and of the classes when ``y`` is
            None). The same seed gives the same styles whatever ``y``: the
            paper's style/content figure is ``sample(n, seed, y=k)`` for each
            ``k``.
        y : label or array-like of shape (n_samples,), default=None
            The class of every row (one label), or of each row. None draws the
            classes from the uniform categorical prior; a clusterer draws its
            clusters uniformly among the found ones (a head that holds no
            training row was never decoded in training).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Decoder outputs (means of p(x|z)), float64.
        """
        if y is None:
            y = self._classes_to_draw(n_samples, random_state)
        codes = self._prior_draws(n_samples, random_state).numpy()
        if y is not None:
            if np.ndim(y) == 0:
                y = np.full(len(codes), y, dtype=np.asarray(y).dtype)
            self._set_class(codes, y)
        return self._decode(codes, np.float64)

    def _classes_to_draw(self, n_samples, random_state):
        """The classes of :meth:`sample`'s rows when it is given no ``y``
        (drawn before the styles), or None: the prior's own class block."""
        return None


class _AutoencoderClassifierMixin(ClassifierMixin, _ClassCodeMixin):
    """Semi-supervised classification: heads are classes, cross-entropy on
    the labelled rows."""

    def _n_heads(self):
        return len(self.classes_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.classifier_tags.multi_class = True
        return tags

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch on ``X``, continuing from the current state.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabelled rows.
        classes : array-like of shape (n_classes,), default=None
            All the classes, needed at the first call when its ``y`` does not
            hold every class (as for scikit-learn's ``SGDClassifier``); later
            calls may leave it out, or must give the same classes (a
            ``ValueError`` otherwise).

        Returns
        -------
        self : object
        """
        return super().partial_fit(X, y, classes=classes)

    def _encode_labels(self, y, reset, classes=None):
        """``y`` as class codes (``-1`` unlabelled); sets ``classes_``."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target "
                "y is None: its labels, -1 for unlabelled rows."
            )
        y = column_or_1d(y, warn=True)
        labelled = ~_unlabelled_mask(y)
        if labelled.any():
            check_classification_targets(y[labelled])
        first = reset or not hasattr(self, "classes_")
        before = _known_classes(
            classes, "any", None if first else self.classes_, type(self).__name__
        )
        codes, classes = _label_codes(
            y,
            "any",
            before,
            prior_name=type(self).__name__,
            declared=first and classes is not None,
        )
        if codes is None:
            if before is None:  # (a first call without classes=)
                raise ValueError(
                    f"{type(self).__name__} needs labelled rows to know its "
                    "classes, but every row of y is unlabelled (-1). Use "
                    "MMDAutoencoderClustering or AdversarialAutoencoderClustering "
                    "without labels."
                )
            codes = np.full(y.shape[0], -1, dtype=np.int64)
        if first and len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in "
                "the data, but the data contain only one class: "
                f"{classes.tolist()[0]!r}."
            )
        self.classes_ = classes
        return codes

    def _task_losses(self, z, yb):
        """The cross-entropy of the labelled rows' class block (0 without)."""
        return {"classification": (self.supervised_weight, self._cross_entropy(z, yb))}

    def _heads_of(self, y, n_rows):
        y = column_or_1d(y)
        if y.shape[0] != n_rows:
            raise ValueError(
                f"y has {y.shape[0]} labels for {n_rows} rows; give one per row."
            )
        try:
            heads = np.searchsorted(self.classes_, y)
        except TypeError:
            # Labels that do not sort among the classes (int beside str): each
            # one is looked up instead.
            index = {c: k for k, c in enumerate(self.classes_.tolist())}
            heads = np.array([index.get(v, -1) for v in y.tolist()], dtype=np.intp)
            bad = heads < 0
        else:
            heads = np.clip(heads, 0, len(self.classes_) - 1)
            bad = self.classes_[heads] != y
        if np.any(bad):
            # (in order of appearance: labels of mixed types do not sort)
            unknown = list(dict.fromkeys(y[bad].tolist()))
            raise ValueError(
                f"y has labels {unknown[:10]} that are not in classes_ "
                f"{self.classes_.tolist()[:10]}."
            )
        return heads

    def predict_proba(self, X):
        """Class probabilities: the encoder's class block, q(y|x).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``; rows sum to 1.
        """
        return self._head_probabilities(X)

    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def score(self, X, y, sample_weight=None):
        """The mean accuracy of :meth:`predict` on ``X`` against ``y``.

        The log-likelihood of the generative model is :meth:`score_samples`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        score : float
            A row whose label is ``-1`` counts as a wrong prediction (as for
            ``LabelSpreading``), whatever the type of the classes.
        """
        y = column_or_1d(y)
        y_pred = self.predict(X)
        check_consistent_length(y, y_pred, sample_weight)
        weights = _check_sample_weight(sample_weight, y_pred)
        # Scored apart from the -1 rows: accuracy_score refuses -1 beside
        # string labels (it sorts the labels of y and of the predictions).
        labelled = ~_unlabelled_mask(y)
        if not labelled.any():
            return 0.0
        correct = accuracy_score(
            y[labelled],
            y_pred[labelled],
            normalize=False,
            sample_weight=weights[labelled],
        )
        return float(correct / weights.sum())

    def predict(self, X):
        """The most probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class _AutoencoderClusteringMixin(ClusterMixin, _ClassCodeMixin):
    """Clustering: ``n_clusters`` heads; a cluster is a head that is used."""

    def _n_heads(self):
        return self.n_clusters

    def _architecture_signature(self, hidden):
        # n_clusters first: a warm start refused for it names it, not the
        # code's width that it changes.
        return {
            "n_clusters": self.n_clusters,
            **super()._architecture_signature(hidden),
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # ClusterMixin empties this (KMeans's transform gives distances); the
        # style code keeps the dtype of X, as the base's tag says.
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _fit(self, X, y, incremental, classes=None):
        continuing = incremental or (self.warm_start and hasattr(self, "encoder_"))
        if self.n_init == 1 or continuing:
            super()._fit(X, y, incremental, classes)
            if not continuing:  # (after the fit: a refused one keeps it)
                self.__dict__.pop("n_init_losses_", None)
        else:
            self._fit_n_init(X, y)
        # Clusters are the heads that the rows of this call use, numbered 0..
        # in head order; the other heads are empty and never predicted.
        heads = np.argmax(self._encode(X)[:, : self._fitted_heads()], axis=1)
        self.cluster_heads_ = np.unique(heads)
        self.n_clusters_ = len(self.cluster_heads_)
        # (predict's argmax over the found heads, for these rows)
        self.labels_ = np.searchsorted(self.cluster_heads_, heads)
        if self.n_clusters_ < self.n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({self.n_clusters_}) found smaller "
                f"than n_clusters ({self.n_clusters}): "
                f"{self.n_clusters - self.n_clusters_} heads hold no training "
                "row. labels_ and predict number the found clusters from 0.",
                ConvergenceWarning,
            )
        return self

    def _fit_n_init(self, X, y):
        """``n_init`` fits from seeds drawn from ``random_state``, each a full
        fit of a copy with ``n_init=1``. The one whose final training loss is
        lowest is kept (as ``KMeans`` keeps the lowest inertia); with
        ``consensus=True`` it is then fine-tuned to the consensus of all the
        fits' partitions (:func:`_consensus_partition`).

        Ctrl-C ends them all: the fits so far are compared and the best kept,
        without the consensus (``n_init_losses_`` has one entry per fit run).
        """
        seeds = check_random_state(self.random_state).randint(
            2**31 - 1, size=self.n_init
        )
        best, losses, probabilities = None, [], []
        for i, seed in enumerate(seeds):
            run = clone(self).set_params(n_init=1, random_state=int(seed))
            interrupted = run._train(X, y, incremental=False)
            # (inf: interrupted before an epoch ended, so no loss to compare)
            losses.append(run.loss_curve_[-1] if run.loss_curve_ else np.inf)
            if self.consensus:
                probabilities.append(run._head_probabilities(X))
            if best is None or losses[-1] < min(losses[:-1]):
                best, kept = run, i
            if interrupted:
                warnings.warn(
                    f"n_init: the user interrupted fit {i + 1} of {self.n_init};"
                    " the fits left and the consensus are skipped, and the "
                    "best fit so far is kept.",
                    UserWarning,
                )
                break
        if self.consensus and not interrupted:
            partition = _consensus_partition(
                probabilities, self.n_clusters, int(seeds[0])
            )
            best._fine_tune(X, _heads_for(partition, probabilities[kept]))
            # One entry per epoch in every list of history_: NaN for the
            # epochs before the fine-tuning.
            tuned = best.history_.get("consensus", [])
            best.history_["consensus"] = [np.nan] * (
                len(best.loss_curve_) - len(tuned)
            ) + tuned
        params = self.get_params(deep=False)
        for name in set(vars(self)) - set(vars(best)) - set(params):
            delattr(self, name)  # an earlier fit's state that this one lacks
        for name, value in vars(best).items():
            if name not in params:  # the fitted state, not the parameters
                setattr(self, name, value)
        self.__dict__.pop("_fine_tuning", None)
        self.n_init_losses_ = np.asarray(losses)

    def _fine_tune(self, X, heads):
        """Continue training with a cross-entropy pulling each row's class
        block to its head in ``heads`` (weight 1), for
        ``min(max_iter, _CONSENSUS_EPOCHS)`` epochs."""
        self.set_params(warm_start=True, max_iter=min(self.max_iter, _CONSENSUS_EPOCHS))
        self._fine_tuning = True
        try:
            with warnings.catch_warnings():
                # (a fixed number of epochs by design: "maximum iterations
                # reached" would only be noise beside the fits' own warnings)
                warnings.filterwarnings(
                    "ignore", "Stochastic optimizer", ConvergenceWarning
                )
                super()._fit(X, heads, incremental=False)
        finally:
            self._fine_tuning = False

    def _encode_labels(self, y, reset, classes=None):
        if getattr(self, "_fine_tuning", False):  # the consensus's heads
            return np.asarray(y, dtype=np.int64)
        # Unsupervised: y is ignored (as KMeans ignores it).
        if reset and hasattr(self, "classes_"):
            del self.classes_
        return None

    def _task_losses(self, z, yb):
        """None but while fine-tuning to a consensus (``yb``, the rows' heads):
        the cross-entropy of the class block to them."""
        if yb is None:
            return {}
        return {"consensus": (1.0, self._cross_entropy(z, yb))}

    def _heads_of(self, y, n_rows):
        y = column_or_1d(y)
        if y.shape[0] != n_rows:
            raise ValueError(
                f"y has {y.shape[0]} labels for {n_rows} rows; give one per row."
            )
        if not np.issubdtype(y.dtype, np.integer) or np.any(
            (y < 0) | (y >= self.n_clusters_)
        ):
            raise ValueError(
                f"y must hold cluster labels, integers in [0, {self.n_clusters_})"
                f" (n_clusters_), got {np.unique(y).tolist()[:10]}."
            )
        return self.cluster_heads_[y]

    def _classes_to_draw(self, n_samples, random_state):
        # Uniformly among the found clusters: a head that holds no training
        # row was never decoded in training. An int seed gets a stream of its
        # own, so that the styles keep the int's (as sample(..., y=...) has).
        check_is_fitted(self, "cluster_heads_")
        n_samples = _check_n_samples(n_samples)
        if isinstance(random_state, Integral):
            rng = np.random.default_rng([int(random_state), 1])
        else:
            rng = np.random.default_rng(_seed_from(random_state))
        return rng.integers(self.n_clusters_, size=n_samples)

    def predict_proba(self, X):
        """The probability of each found cluster: the class block, q(y|x),
        restricted to ``cluster_heads_`` and renormalised.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, `n_clusters_`)
        """
        check_is_fitted(self, "cluster_heads_")
        P = self._head_probabilities(X)[:, self.cluster_heads_]
        total = P.sum(axis=1, keepdims=True)
        # A row whose mass is all on empty heads: the found clusters equally.
        return np.where(total > 0, P / np.where(total > 0, total, 1), 1 / P.shape[1])

    def predict(self, X):
        """The cluster of each row: its most probable found cluster.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Integers in ``0..n_clusters_ - 1``.
        """
        return np.argmax(self.predict_proba(X), axis=1)


# Epochs of the fine-tuning to the consensus of n_init fits (at most max_iter):
# measured on digits (3 seeds), 50 epochs brought the kept fit's held-out
# partition to the consensus's (see the user guide).
_CONSENSUS_EPOCHS = 50


def _consensus_partition(probabilities, n_clusters, random_state):
    """The consensus of several soft partitions of the same rows, by spectral
    clustering of their co-association (evidence accumulation, Fred & Jain
    2005).

    The affinity of rows ``i`` and ``j`` is the mean over the partitions of
    ``P_r[i] . P_r[j]``, the probability that the ``r``-th puts them in the
    same cluster: ``A = F F^T`` with ``F = [P_1, ..., P_R] / sqrt(R)``, of rank
    at most ``R K``. Spectral clustering with the normalised Laplacian (as
    :class:`~sklearn.cluster.SpectralClustering` with a precomputed affinity)
    needs the leading eigenvectors of ``D^-1/2 A D^-1/2``: the left singular
    vectors of ``D^-1/2 F``, so the ``n x n`` affinity is never formed (time
    and memory linear in the rows). The embedding, divided by ``sqrt(D)`` as
    in :func:`~sklearn.manifold.spectral_embedding`, is clustered by
    :class:`~sklearn.cluster.KMeans` (10 initialisations).

    Parameters
    ----------
    probabilities : list of ndarray of shape (n_samples, K)
        Rows summing to 1.
    n_clusters : int
    random_state : int
        Seeds the k-means.

    Returns
    -------
    labels : ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> one_hot = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    >>> swapped = one_hot[:, [1, 0, 2]]
    >>> labels = _consensus_partition([one_hot, swapped], 3, random_state=0)
    >>> len(set(labels[[0, 1]])), len(set(labels[[0, 2, 4]]))
    (1, 3)
    """
    F = np.hstack(probabilities).astype(np.float64) / np.sqrt(len(probabilities))
    degree = F @ F.sum(axis=0)  # > 0: each row of each P sums to 1
    root = np.sqrt(degree)[:, None]
    U = np.linalg.svd(F / root, full_matrices=False)[0]
    k = min(n_clusters, len(F))
    embedding = U[:, :k] / root
    return KMeans(k, n_init=10, random_state=random_state).fit_predict(embedding)


def _heads_for(partition, probabilities):
    """Each row's head under a one-to-one matching of the ``partition``'s
    clusters to the heads of ``probabilities`` (one fit's class blocks) that
    keeps the most rows where they are (the Hungarian algorithm on the
    clusters' overlaps)."""
    K = probabilities.shape[1]
    overlap = np.zeros((partition.max() + 1, K))
    np.add.at(overlap, (partition, probabilities.argmax(axis=1)), 1)
    clusters, heads = linear_sum_assignment(overlap, maximize=True)
    head_of = np.zeros(partition.max() + 1, dtype=np.int64)
    head_of[clusters] = heads
    return head_of[partition]


class _AutoencoderEmbeddingMixin(_AutoencoderClusteringMixin):
    """A clusterer whose decoder reads a map: each head has a learned position
    in the style's space, and a row's map is ``q(y|x) W + z``.

    The paper's dimensionality reduction (section 7): ``transform`` returns the
    map, ``inverse_transform`` decodes maps, and a hinge penalty keeps every
    two heads at least ``head_distance`` apart.
    """

    def _architecture_signature(self, hidden):
        # The decoder reads the map: a state of a clusterer's networks (whose
        # decoder reads the code) is not one of these.
        return {**super()._architecture_signature(hidden), "head_map": True}

    def _head_map_init(self, architecture):
        # Heads drawn around the origin at the scale of the penalty's
        # distance; the penalty then spreads them (and a loaded state replaces
        # them).
        return (architecture["n_clusters"], float(self.head_distance))

    def _task_losses(self, z, yb):
        """The mean over pairs of heads of ``max(0, head_distance - d)``, ``d``
        their distance in the map (the paper's penalty on cluster heads closer
        than a threshold), beside the clusterer's terms."""
        losses = super()._task_losses(z, yb)  # (a consensus's fine-tuning)
        W = self.decoder_[0].heads
        K = W.shape[0]
        if K < 2:
            return losses
        i, j = torch.triu_indices(K, K, 1, device=W.device)
        # (a floor under the squared distance: the root's gradient is
        # infinite where two heads meet)
        d = ((W[i] - W[j]) ** 2).sum(dim=1).clamp_min(1e-12).sqrt()
        penalty = torch.relu(self.head_distance - d).mean()
        return {**losses, "head_distance": (1.0, penalty)}

    def _fit(self, X, y, incremental, classes=None):
        super()._fit(X, y, incremental, classes)
        self.head_positions_ = self._head_positions()[self.cluster_heads_]
        return self

    def _head_positions(self):
        """Every head's position in the map, ``(K, n_components)``, float64."""
        return self.decoder_[0].heads.detach().cpu().double().numpy()

    def transform(self, X):
        """The map of ``X``: ``q(y|x) W + z``, each row's head probabilities
        times the heads' positions plus its style code.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Of the dtype of ``X`` (float32 or float64).
        """
        check_is_fitted(self)
        codes = self._encode(X)
        K = self._fitted_heads()
        W = self._head_positions().astype(codes.dtype)
        return codes[:, :K] @ W + codes[:, K:]

    def inverse_transform(self, X):
        """Decode points of the map back to the data space.

        The decoder reads the map, so ``inverse_transform(transform(X))`` is
        the reconstruction of ``X``, and any point of the map decodes (between
        two heads: a blend of their clusters).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Points of the map, for example from :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            The decoder's output, of the dtype of ``X``.
        """
        check_is_fitted(self)
        M = _check_codes(X, self._fitted_n_components(), type(self).__name__)
        return self._decode(M, M.dtype, network=self.decoder_[1:])


# The mixture encoder maps a whole code into a Gaussian mixture's components;
# a task's code is a class block beside a style, so it is not offered.
_TASK_ENCODERS = {"encoder": [StrOptions(set(ENCODERS) - {"mixture"})]}
_CLASSIFIER_CONSTRAINTS = {
    **_TASK_ENCODERS,
    "supervised_weight": [Interval(Real, 0, None, closed="left")],
}
_CLUSTERING_CONSTRAINTS = {
    **_TASK_ENCODERS,
    "n_clusters": [Interval(Integral, 1, None, closed="left")],
    "n_init": [Interval(Integral, 1, None, closed="left")],
    "consensus": ["boolean"],
}
_EMBEDDING_CONSTRAINTS = {
    **_CLUSTERING_CONSTRAINTS,
    "head_distance": [Interval(Real, 0, None, closed="neither")],
}


_SHARED_OTHER_PARAMETERS = """
    Other Parameters
    ----------------
    activation : {{'relu', 'tanh', 'logistic', 'identity', 'leaky_relu', \
'elu'}}, default='{activation}'
{activation_text}
    hidden_layer_sizes, encoder, batch_size, max_iter, \
learning_rate_init, early_stopping, validation_fraction, n_iter_no_change, \
tol, device, precision, random_state, verbose, warm_start : see {parent}
        As for :class:`~sklearn_aae.{parent}`, whose training loop this
        estimator runs (``encoder='mixture'`` excepted: it maps a whole code
        into a Gaussian mixture's components, and this code is a class block
        beside a style)."""


# The consistency term's default weight (the MMD flavour and the adversarial
# classifier), measured on digits (see the parameters' documentation and the
# user guide).
_CONSISTENCY = 0.3

_CONSISTENCY_PARAMETERS = """\
    consistency_weight : float, default={default}
        Weight of the consistency of the class block under input noise: the
        Kullback-Leibler divergence from the heads of each training row to
        those of the same row plus Gaussian noise of standard deviation
        ``consistency_noise`` (the clean row's heads are the target, without
        gradient), averaged over every row of the batch, labelled or not. It
        asks rows a small step apart in the data space to share their class
        (the Pi-model of Laine & Aila 2017, with Gaussian noise as the
        perturbation). 0 turns it off; it costs one more encoder pass per
        batch.
{measured}
    consistency_noise : float, default=0.2
        Standard deviation of that noise, in the units of ``X`` (scale ``X``
        first: the measurements are on digits scaled to [0, 1]).
"""
# Why each task estimator has its activation (measured on digits with the
# benchmarks' splits, ``benchmarks/bench_tasks.py`` and ``bench_embedding.py``).
_ACTIVATION_MEASURED = {
    "leaky_relu": (
        "``'leaky_relu'``: against ``'tanh'`` (the earlier default) on digits "
        "(10 seeds, held-out), the MMD classifier's error fell from 0.082 to "
        "0.070 with 3 labels per class and from 0.046 to 0.037 with 10, the "
        "adversarial classifier's from 0.094 to 0.077 with 3 (5 seeds), the MMD "
        "clusterer's ARI rose from 0.768 to 0.836 with ``n_init=5`` (0.752 to "
        "0.771 with one fit) and the MMD map's 5-nearest-neighbour accuracy "
        "from 0.916 to 0.947 (5 seeds). ``'relu'`` was worse than ``'tanh'``."
    ),
    "tanh": (
        "``'tanh'``: on digits (5 seeds, held-out) ``'leaky_relu'``, the other "
        "task estimators' default, lowered the adversarial clusterer's ARI from "
        "0.604 to 0.509 and left the adversarial map level (5-nearest-"
        "neighbour accuracy 0.897 against 0.902, ARI 0.632 against 0.615); "
        "``'relu'`` made worse clusters than ``'tanh'``."
    ),
}
# discriminator_blocks, as both adversarial task estimators document it.
_DISCRIMINATOR_BLOCKS_PARAMETER = """\
    discriminator_blocks : {'joint', 'separate'}, default='joint'
        ``'joint'``: one discriminator on the whole code, which also sees
        whether class and style are independent, so that a style drawn from
        the prior decodes to a row of the chosen class; ``'separate'``: the
        paper's recipe, one discriminator for the class block and one for the
        style, each matching its block's marginal only (the style may then
        still carry the class). See the user guide for the two side by side.
"""
_ADVERSARIAL_CLASSIFIER_MEASURED = (
    "Measured on digits with ``activation='tanh'``, the default then (the "
    "benchmark's splits and seeds, 5 seeds, held-out error with 0.3 against "
    "0): 0.094 ± 0.033 against 0.173 ± 0.031 with 3 "
    "labels per class, 0.043 ± 0.009 against 0.094 ± 0.013 with 10; see the "
    "user guide."
)
_ADVERSARIAL_CLUSTERING_MEASURED = (
    "Off by default: with the adversary it lowered the held-out ARI on "
    "digits at every weight tried (the benchmark's 5 seeds: 0.301 ± 0.049 "
    "without, 0.284 ± 0.049 at 0.03, 0.175 ± 0.055 at 0.1, 0.047 ± 0.057 at "
    "0.3, where the clusters collapse); see the user guide."
)
_MMD_CLASSIFIER_MEASURED = (
    "Measured on digits with ``activation='tanh'``, the default then "
    "(benchmarks/bench_tasks.py, 5 seeds, held-out error with 0.3 against 0): "
    "0.088 against 0.109 with 3 labels per class (one "
    "seed worse, 0.138 against 0.113), 0.042 against 0.064 with 10; see the "
    "user guide."
)
_MMD_CLUSTERING_MEASURED = (
    "Measured on digits with ``activation='tanh'``, the default then "
    "(held-out ARI with 0.3 against 0): 0.755 ± 0.017 "
    "against 0.639 ± 0.131 over the benchmark's 5 seeds (one seed lower, 0.72 "
    "against 0.79), 0.723 against 0.598 over 3 splits x 4 other "
    "initialisations; a weight of 3 (noise 0.3) collapsed every fit (ARI "
    "below 0.12). See the user guide."
)


class MMDAutoencoderClassifier(_AutoencoderClassifierMixin, MMDAutoencoder):
    """Semi-supervised classifier: an MMD autoencoder with a class block.

    The encoder outputs class probabilities ``q(y|x)`` (a softmax over the
    classes) beside a style code ``q(z|x)`` of ``n_components`` dimensions;
    the decoder reconstructs the row from both. Every code ``(y, z)`` is pulled
    to the product prior ``Cat(K) x p(z)`` by the closed-form MMD of the
    product kernel, which also pushes the class and the style to be
    independent; the labelled rows add a cross-entropy term. The
    adversarial-autoencoder paper's semi-supervised classification (Makhzani
    et al. 2015, section 5), without an adversary.

    Read more in the :ref:`User Guide <tasks>`.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the style code (what :meth:`transform` returns).
    prior : prior object, default=None
        The style's prior, a prior of :mod:`sklearn_aae.priors` (not a
        ``ConditionalPrior``); ``None`` is ``GaussianPrior(scale=0.1)``, narrow
        beside the class block's vertices so that the content goes to the
        heads rather than the style (see the user guide). The class block's
        prior is the uniform ``CategoricalPrior(n_classes)``.
    reg_weight : float, default=0.3
        Weight of the MMD of the codes to the product prior.
    supervised_weight : float, default=0.1
        Weight of the cross-entropy of the labelled rows (averaged over the
        labelled rows of each batch). Measured on digits with 10 labels per
        class: 1.0 lets the few labelled rows be memorised (held-out error
        12%), 0.1 leaves room for the unlabelled rows (7.6-8.4%).
    {consistency}
    kernel : {'rbf', 'imq'}, default='rbf'
        As for :class:`~sklearn_aae.MMDAutoencoder`.
    bandwidth : 'auto', float or list of float, default='auto'
        As for :class:`~sklearn_aae.MMDAutoencoder`, for the whole code.
    {other}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of the labelled rows, sorted.
    encoder_, decoder_ : torch.nn.Module
        The trained networks; the encoder outputs ``n_classes + n_components``
        columns, the class block first.
    prior_ : ProductPrior
        ``[("class", CategoricalPrior(n_classes)), ("style", prior)]``.
    noise_variance_ : float
        As for :class:`~sklearn_aae.MMDAutoencoder`: :meth:`score_samples` is
        the log-likelihood of the generative model with the classes
        enumerated.
    device_, loss_curve_, history_, validation_loss_curve_, best_loss_, \
n_iter_, n_features_in_, feature_names_in_ : see MMDAutoencoder
        ``history_`` holds ``'classification'``, the cross-entropy, beside the
        reconstruction and the MMD.

    See Also
    --------
    AdversarialAutoencoderClassifier : the same with a discriminator.
    MMDAutoencoderClustering : the same without labels.
    sklearn.semi_supervised.LabelSpreading : a graph-based semi-supervised
        classifier.

    Notes
    -----
    :meth:`score` is the mean accuracy (``ClassifierMixin``); the
    log-likelihood stays available as :meth:`score_samples`. ``y`` is ``-1``
    for unlabelled rows, so ``-1`` cannot be a class.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import MMDAutoencoderClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> y_semi = np.where(np.arange(len(y)) % 10 == 0, y, -1)  # 10% labelled
    >>> clf = MMDAutoencoderClassifier(max_iter=3, random_state=0)
    >>> clf.fit(X / 16, y_semi).predict_proba(X[:2] / 16).shape
    (2, 10)
    >>> clf.transform(X[:2] / 16).shape
    (2, 2)
    >>> clf.sample(3, random_state=0, y=7).shape
    (3, 64)
    """

    _parameter_constraints = {
        **MMDAutoencoder._parameter_constraints,
        **_CLASSIFIER_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=0.3,
        supervised_weight=0.1,
        kernel="rbf",
        bandwidth="auto",
        consistency_weight=_CONSISTENCY,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="leaky_relu",
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
            kernel=kernel,
            bandwidth=bandwidth,
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
        self.supervised_weight = supervised_weight


class AdversarialAutoencoderClassifier(
    _AutoencoderClassifierMixin, AdversarialAutoencoder
):
    """Semi-supervised classifier: an adversarial autoencoder with a class block.

    The adversarial-autoencoder paper's semi-supervised classification
    (Makhzani et al. 2015, section 5): the encoder outputs class probabilities
    ``q(y|x)`` beside a style code ``q(z|x)``, the decoder reads both, a
    discriminator pushes the codes ``(y, z)`` to ``Cat(K) x p(z)`` and the
    labelled rows add a cross-entropy term. By default one discriminator reads
    the whole code, so it also sees whether class and style are independent;
    ``discriminator_blocks='separate'`` has one per block, as in the paper.

    Read more in the :ref:`User Guide <tasks>`.

    Parameters
    ----------
    n_components : int, default=2
        Dimension of the style code (what :meth:`transform` returns).
    prior : prior object, default=None
        The style's prior (see :class:`MMDAutoencoderClassifier`).
    reg_weight : float, default=0.01
        Weight of the generator's adversarial loss.
    supervised_weight : float, default=0.1
        Weight of the cross-entropy of the labelled rows (see
        :class:`MMDAutoencoderClassifier`).
    {consistency}
    discriminator_hidden_layer_sizes, discriminator_learning_rate, \
discriminator_steps, instance_noise : see AdversarialAutoencoder
        As for :class:`~sklearn_aae.AdversarialAutoencoder`.
    {discriminator_blocks}
    discriminator_batch_statistics : bool, default=False
        Give the discriminator each batch's mean and standard deviation beside
        each code (see :class:`~sklearn_aae.AdversarialAutoencoder`).
    {other}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of the labelled rows, sorted.
    encoder_, decoder_, discriminator_ : torch.nn.Module
        The trained networks; the encoder outputs ``n_classes + n_components``
        columns, the class block first.
    prior_ : ProductPrior
        ``[("class", CategoricalPrior(n_classes)), ("style", prior)]``.
    noise_variance_, device_, loss_curve_, history_, validation_loss_curve_, \
best_loss_, n_iter_, n_features_in_, feature_names_in_ : see \
AdversarialAutoencoder
        ``history_`` holds ``'classification'``, the cross-entropy.

    See Also
    --------
    MMDAutoencoderClassifier : the same with a closed-form MMD.

    Notes
    -----
    :meth:`score` is the mean accuracy; :meth:`score_samples` the
    log-likelihood. ``-1`` in ``y`` marks an unlabelled row.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import AdversarialAutoencoderClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> y_semi = np.where(np.arange(len(y)) % 10 == 0, y, -1)
    >>> clf = AdversarialAutoencoderClassifier(max_iter=3, random_state=0)
    >>> clf.fit(X / 16, y_semi).predict(X[:4] / 16).shape
    (4,)
    """

    _parameter_constraints = {
        **AdversarialAutoencoder._parameter_constraints,
        **_CLASSIFIER_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components=2,
        *,
        prior=None,
        reg_weight=0.01,
        supervised_weight=0.1,
        discriminator_hidden_layer_sizes=(128, 128),
        discriminator_learning_rate=1e-4,
        discriminator_steps=1,
        discriminator_blocks="joint",
        discriminator_batch_statistics=False,
        instance_noise=0.0,
        consistency_weight=_CONSISTENCY,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="leaky_relu",
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
            discriminator_hidden_layer_sizes=discriminator_hidden_layer_sizes,
            discriminator_learning_rate=discriminator_learning_rate,
            discriminator_steps=discriminator_steps,
            discriminator_blocks=discriminator_blocks,
            discriminator_batch_statistics=discriminator_batch_statistics,
            instance_noise=instance_noise,
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
        self.supervised_weight = supervised_weight


class MMDAutoencoderClustering(_AutoencoderClusteringMixin, MMDAutoencoder):
    """Clustering with an MMD autoencoder: ``n_clusters`` heads beside a style.

    The encoder outputs a softmax over ``n_clusters`` heads beside a style
    code of ``n_components`` dimensions; the decoder reconstructs the row from
    both, and the closed-form MMD pulls every code to ``Cat(n_clusters) x
    p(z)``: the heads towards one-hot vertices used equally often, the style
    towards its prior, independent of the head. A row's cluster is its most
    probable head (the adversarial-autoencoder paper's unsupervised
    clustering, Makhzani et al. 2015, section 6, without an adversary).
    ``predict`` is inductive: new rows are encoded, not re-clustered.

    Read more in the :ref:`User Guide <tasks>`.

    Parameters
    ----------
    n_clusters : int, default=10
        The number of heads, the most clusters found.
    n_init : int, default=1
        Fits from as many initialisations (seeds drawn from
        ``random_state``), combined as ``consensus`` says. Costs ``n_init``
        fits (and, with the consensus, up to 50 epochs more). Measured on
        digits (``benchmarks/bench_tasks.py``, 5 seeds, held-out ARI):
        ``n_init=5`` with the consensus 0.833 ± 0.050, against 0.800 ± 0.079
        with 1 fit and 0.805 ± 0.057 keeping the lowest loss (on five other
        seeds 0.839 against 0.741); see the user guide. ``partial_fit`` and
        ``warm_start`` continue the kept fit (without the consensus's term);
        a first ``partial_fit`` trains one initialisation, as
        ``MiniBatchKMeans.partial_fit`` does.
    consensus : bool, default=True
        With ``n_init > 1``: True combines the fits' partitions by evidence
        accumulation (Fred & Jain 2005): rows are clustered by spectral
        clustering of how often the fits put them together (their heads'
        co-association, never formed as an ``n x n`` matrix), and the fit with
        the lowest final loss is trained on for ``min(max_iter, 50)`` epochs
        more with a cross-entropy pulling each row to the head matched to its
        consensus cluster, so that one network, and an inductive
        ``predict``, carries the consensus. Those epochs follow the fit's in
        ``loss_curve_`` (whose objective then has one more term) and
        ``n_iter_``; ``history_['consensus']`` records the term, NaN before
        them. False keeps the fit with the lowest final training loss, as
        ``KMeans`` keeps the lowest inertia. Ctrl-C during the fits ends them
        all and skips the consensus (the best fit so far is kept, with a
        warning).
    n_components : int, default=2
        Dimension of the style code (what :meth:`transform` returns).
    prior : prior object, default=None
        The style's prior (see :class:`MMDAutoencoderClassifier`).
    reg_weight : float, default=1.0
        Weight of the MMD of the codes to the product prior. Measured on
        digits with ``activation='tanh'`` (seed 0): held-out ARI 0.79 at 1.0,
        0.72 at 0.3 (three seeds at 1.0: 0.61-0.79).
    {consistency}
    kernel : {'rbf', 'imq'}, default='rbf'
    bandwidth : 'auto', float or list of float, default='auto'
        As for :class:`~sklearn_aae.MMDAutoencoder`, for the whole code.
    {other}

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        The cluster of each row of the last ``fit`` (or ``partial_fit``
        block), in ``0..n_clusters_ - 1``.
    cluster_heads_ : ndarray of shape (`n_clusters_`,)
        The heads that hold a row of the last ``fit``: cluster ``c`` is head
        ``cluster_heads_[c]``. Empty heads are left out, so the labels are
        consecutive from 0.
    n_clusters_ : int
        The number of clusters found (at most ``n_clusters``; fewer raise a
        ``ConvergenceWarning``).
    n_init_losses_ : ndarray of shape (n_init,)
        With ``n_init > 1``: the final training loss of each initialisation.
    encoder_, decoder_, prior_, noise_variance_, device_, loss_curve_, \
history_, validation_loss_curve_, best_loss_, n_iter_, n_features_in_, \
feature_names_in_ : see MMDAutoencoderClassifier
        ``prior_`` is ``[("class", CategoricalPrior(n_clusters)), ("style",
        prior)]``.

    See Also
    --------
    AdversarialAutoencoderClustering : the same with a discriminator.
    sklearn.cluster.KMeans, sklearn.mixture.GaussianMixture : clusterings of
        the data space.

    Notes
    -----
    :meth:`score` is the log-likelihood of the generative model, heads
    enumerated (as ``GaussianMixture.score``); ``y`` is ignored.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import MMDAutoencoderClustering
    >>> X = load_digits().data / 16
    >>> est = MMDAutoencoderClustering(n_clusters=10, max_iter=3, random_state=0)
    >>> est.fit_predict(X).shape
    (1797,)
    >>> est.transform(X[:2]).shape
    (2, 2)
    """

    _parameter_constraints = {
        **MMDAutoencoder._parameter_constraints,
        **_CLUSTERING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=10,
        n_components=2,
        *,
        n_init=1,
        consensus=True,
        prior=None,
        reg_weight=1.0,
        kernel="rbf",
        bandwidth="auto",
        consistency_weight=_CONSISTENCY,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="leaky_relu",
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
            kernel=kernel,
            bandwidth=bandwidth,
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
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.consensus = consensus


class AdversarialAutoencoderClustering(
    _AutoencoderClusteringMixin, AdversarialAutoencoder
):
    """Clustering with an adversarial autoencoder: ``n_clusters`` heads.

    The adversarial-autoencoder paper's unsupervised clustering (Makhzani et
    al. 2015, section 6): a softmax over ``n_clusters`` heads beside a style
    code, a discriminator pushing the codes to ``Cat(n_clusters) x p(z)`` (one
    on the whole code by default; one per block, as in the paper, with
    ``discriminator_blocks='separate'``), and a row's cluster its most
    probable head.

    Read more in the :ref:`User Guide <tasks>`.

    Parameters
    ----------
    n_clusters : int, default=10
        The number of heads, the most clusters found.
    n_init : int, default=1
        Fits from as many initialisations, combined as ``consensus`` says
        (see :class:`MMDAutoencoderClustering`). Measured on digits
        (``benchmarks/bench_tasks.py``, 5 seeds, held-out ARI): ``n_init=5``
        with the consensus 0.703 ± 0.059, against 0.604 ± 0.090 with 1 fit.
    consensus : bool, default=True
        With ``n_init > 1``, fine-tune the fit with the lowest loss to the
        consensus of the fits' partitions (True), or keep that fit as it is
        (False); see :class:`MMDAutoencoderClustering`.
    n_components : int, default=2
        Dimension of the style code (what :meth:`transform` returns).
    prior : prior object, default=None
        The style's prior (see :class:`MMDAutoencoderClassifier`).
    reg_weight : float, default=0.01
        Weight of the generator's adversarial loss.
    {consistency}
    discriminator_hidden_layer_sizes, discriminator_learning_rate, \
discriminator_steps, instance_noise : see AdversarialAutoencoder
        As for :class:`~sklearn_aae.AdversarialAutoencoder`.
    {discriminator_blocks}
    discriminator_batch_statistics : bool, default=True
        Give the discriminator each batch's mean and standard deviation beside
        each code (see :class:`~sklearn_aae.AdversarialAutoencoder`): without
        them nothing stops the encoder from putting a batch's rows on few
        heads, which a discriminator reading one row at a time cannot see.
        Measured on digits (5 seeds, held-out ARI): see the user guide.
    n_iter_no_change : int, default=50
        Epochs without an improvement of ``tol`` that training tolerates (as
        for :class:`~sklearn_aae.AdversarialAutoencoder`, whose default is
        15): the game keeps the training loss moving, and with 15 the fits
        stopped after about 30 epochs, the heads still soft. Measured on
        digits (the benchmark's 5 seeds, held-out ARI): 15 0.521, 50 0.604, 100
        0.590, 300 (every epoch) 0.593.
    {other}

    Attributes
    ----------
    labels_, cluster_heads_, n_clusters_, n_init_losses_ : \
see MMDAutoencoderClustering
        The clusters found, numbered from 0.
    encoder_, decoder_, discriminator_, prior_, noise_variance_, device_, \
loss_curve_, history_, validation_loss_curve_, best_loss_, n_iter_, \
n_features_in_, feature_names_in_ : see AdversarialAutoencoderClassifier
        The fitted networks and records.

    See Also
    --------
    MMDAutoencoderClustering : the same with a closed-form MMD.

    Notes
    -----
    :meth:`score` is the log-likelihood of the generative model; ``y`` is
    ignored.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import AdversarialAutoencoderClustering
    >>> X = load_digits().data / 16
    >>> est = AdversarialAutoencoderClustering(max_iter=3, random_state=0)
    >>> est.fit(X).labels_.shape
    (1797,)
    """

    _parameter_constraints = {
        **AdversarialAutoencoder._parameter_constraints,
        **_CLUSTERING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=10,
        n_components=2,
        *,
        n_init=1,
        consensus=True,
        prior=None,
        reg_weight=0.01,
        discriminator_hidden_layer_sizes=(128, 128),
        discriminator_learning_rate=1e-4,
        discriminator_steps=1,
        discriminator_blocks="joint",
        discriminator_batch_statistics=True,
        instance_noise=0.0,
        consistency_weight=0.0,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="tanh",
        encoder="deterministic",
        batch_size=100,
        max_iter=300,
        learning_rate_init=2e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=50,
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
            discriminator_hidden_layer_sizes=discriminator_hidden_layer_sizes,
            discriminator_learning_rate=discriminator_learning_rate,
            discriminator_steps=discriminator_steps,
            discriminator_blocks=discriminator_blocks,
            discriminator_batch_statistics=discriminator_batch_statistics,
            instance_noise=instance_noise,
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
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.consensus = consensus


_EMBEDDING_PARAMETERS = """\
    n_clusters : int, default=10
        The number of heads, the most clusters found.
    n_components : int, default=2
        Dimension of the map (and of the style code).
    head_distance : float, default=1.0
        The distance ``eta`` below which two heads are pushed apart: the
        training objective adds the mean over pairs of heads of ``max(0, eta
        - d)``, ``d`` their distance in the map (the paper's penalty). In the
        units of the style: the default style prior, ``N(0, 0.1^2 I)``, puts
        most of a cluster within 0.3 of its head, so heads at least 1.0 apart
        leave gaps between the clusters. Scale it with the style prior's
        scale.
    n_init : int, default=1
        Fits from as many initialisations, combined as ``consensus`` says.
    consensus : bool, default=True
        With ``n_init > 1``, fine-tune the fit with the lowest loss to the
        consensus of the fits' partitions (True), or keep that fit (False);
        see :class:`MMDAutoencoderClustering`. Not measured for the maps.
"""


class MMDAutoencoderEmbedding(_AutoencoderEmbeddingMixin, MMDAutoencoder):
    """A low-dimensional map made of cluster heads and style, with an MMD.

    The adversarial-autoencoder paper's dimensionality reduction (Makhzani et
    al. 2015, section 7), with the closed-form MMD of
    :class:`MMDAutoencoderClustering` in place of the adversary. The encoder
    outputs a softmax over ``n_clusters`` heads, ``y``, beside a style code
    ``z`` of ``n_components`` dimensions, both matched to ``Cat(n_clusters) x
    p(z)``; each head has a learned position ``W[k]`` in the map, and a row's
    map is ``y W + z``, which the decoder reads. A penalty keeps every two
    heads at least ``head_distance`` apart, so that the clusters lie apart in
    the map, each spread by its style. It is also a clusterer (``labels_``,
    ``predict``), inductive like the map: new rows are encoded.

    Read more in the :ref:`User Guide <embedding>`.

    Parameters
    ----------
{embedding}
    prior : prior object, default=None
        The style's prior (see :class:`MMDAutoencoderClassifier`).
    reg_weight : float, default=1.0
        Weight of the MMD of the codes to the product prior.
    {consistency}
    kernel : {'rbf', 'imq'}, default='rbf'
    bandwidth : 'auto', float or list of float, default='auto'
        As for :class:`~sklearn_aae.MMDAutoencoder`, for the whole code.
    {other}

    Attributes
    ----------
    head_positions_ : ndarray of shape (`n_clusters_`, n_components)
        The positions of the found clusters' heads in the map (row ``c`` for
        cluster ``c``).
    labels_, cluster_heads_, n_clusters_, n_init_losses_ : \
see MMDAutoencoderClustering
        The clusters found, numbered from 0.
    encoder_, decoder_, prior_, noise_variance_, device_, loss_curve_, \
history_, validation_loss_curve_, best_loss_, n_iter_, n_features_in_, \
feature_names_in_ : see MMDAutoencoderClassifier
        ``decoder_[0]`` is the map (its ``heads`` are the positions of every
        head, found or empty); ``history_`` records the penalty as
        ``'head_distance'``.

    See Also
    --------
    AdversarialAutoencoderEmbedding : the same with a discriminator.
    MMDAutoencoderClustering : the clusters without the map.
    sklearn.manifold.Isomap, sklearn.decomposition.PCA : inductive maps.
    sklearn.manifold.TSNE : a map of the training rows only.

    Notes
    -----
    :meth:`score` is the log-likelihood of the generative model, heads
    enumerated; ``sample`` draws a head and a style, maps and decodes them.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import MMDAutoencoderEmbedding
    >>> X = load_digits().data / 16
    >>> est = MMDAutoencoderEmbedding(n_clusters=10, max_iter=3, random_state=0)
    >>> est.fit_transform(X).shape
    (1797, 2)
    >>> est.inverse_transform(est.transform(X[:2])).shape
    (2, 64)
    """

    _parameter_constraints = {
        **MMDAutoencoder._parameter_constraints,
        **_EMBEDDING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=10,
        n_components=2,
        *,
        head_distance=1.0,
        n_init=1,
        consensus=True,
        prior=None,
        reg_weight=1.0,
        kernel="rbf",
        bandwidth="auto",
        consistency_weight=_CONSISTENCY,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="leaky_relu",
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
            kernel=kernel,
            bandwidth=bandwidth,
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
        self.n_clusters = n_clusters
        self.head_distance = head_distance
        self.n_init = n_init
        self.consensus = consensus


class AdversarialAutoencoderEmbedding(
    _AutoencoderEmbeddingMixin, AdversarialAutoencoder
):
    """A low-dimensional map made of cluster heads and style, adversarially.

    The adversarial-autoencoder paper's dimensionality reduction (Makhzani et
    al. 2015, section 7): :class:`AdversarialAutoencoderClustering`'s heads
    and style, a learned position ``W[k]`` for each head, and the map ``y W +
    z`` that the decoder reads; a penalty keeps every two heads at least
    ``head_distance`` apart.

    Read more in the :ref:`User Guide <embedding>`.

    Parameters
    ----------
{embedding}
    prior : prior object, default=None
        The style's prior (see :class:`MMDAutoencoderClassifier`).
    reg_weight : float, default=0.01
        Weight of the generator's adversarial loss.
    {consistency}
    discriminator_hidden_layer_sizes, discriminator_learning_rate, \
discriminator_steps, instance_noise : see AdversarialAutoencoder
        As for :class:`~sklearn_aae.AdversarialAutoencoder`.
    {discriminator_blocks}
    discriminator_batch_statistics : bool, default=True
        As for :class:`AdversarialAutoencoderClustering`.
    n_iter_no_change : int, default=50
        As for :class:`AdversarialAutoencoderClustering`.
    {other}

    Attributes
    ----------
    head_positions_, labels_, cluster_heads_, n_clusters_, n_init_losses_ : \
see MMDAutoencoderEmbedding
        The found clusters' heads in the map, and the clusters.
    encoder_, decoder_, discriminator_, prior_, noise_variance_, device_, \
loss_curve_, history_, validation_loss_curve_, best_loss_, n_iter_, \
n_features_in_, feature_names_in_ : see AdversarialAutoencoderClassifier
        ``decoder_[0]`` is the map.

    See Also
    --------
    MMDAutoencoderEmbedding : the same with a closed-form MMD.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_aae import AdversarialAutoencoderEmbedding
    >>> X = load_digits().data / 16
    >>> est = AdversarialAutoencoderEmbedding(max_iter=3, random_state=0)
    >>> est.fit_transform(X).shape
    (1797, 2)
    """

    _parameter_constraints = {
        **AdversarialAutoencoder._parameter_constraints,
        **_EMBEDDING_CONSTRAINTS,
    }

    def __init__(
        self,
        n_clusters=10,
        n_components=2,
        *,
        head_distance=1.0,
        n_init=1,
        consensus=True,
        prior=None,
        reg_weight=0.01,
        discriminator_hidden_layer_sizes=(128, 128),
        discriminator_learning_rate=1e-4,
        discriminator_steps=1,
        discriminator_blocks="joint",
        discriminator_batch_statistics=True,
        instance_noise=0.0,
        consistency_weight=0.0,
        consistency_noise=0.2,
        hidden_layer_sizes=(256, 256),
        activation="tanh",
        encoder="deterministic",
        batch_size=100,
        max_iter=300,
        learning_rate_init=2e-3,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=50,
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
            discriminator_hidden_layer_sizes=discriminator_hidden_layer_sizes,
            discriminator_learning_rate=discriminator_learning_rate,
            discriminator_steps=discriminator_steps,
            discriminator_blocks=discriminator_blocks,
            discriminator_batch_statistics=discriminator_batch_statistics,
            instance_noise=instance_noise,
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
        self.n_clusters = n_clusters
        self.head_distance = head_distance
        self.n_init = n_init
        self.consensus = consensus


for _cls, _parent, _measured in [
    (MMDAutoencoderClassifier, "MMDAutoencoder", _MMD_CLASSIFIER_MEASURED),
    (
        AdversarialAutoencoderClassifier,
        "AdversarialAutoencoder",
        _ADVERSARIAL_CLASSIFIER_MEASURED,
    ),
    (MMDAutoencoderClustering, "MMDAutoencoder", _MMD_CLUSTERING_MEASURED),
    (
        AdversarialAutoencoderClustering,
        "AdversarialAutoencoder",
        _ADVERSARIAL_CLUSTERING_MEASURED,
    ),
    (MMDAutoencoderEmbedding, "MMDAutoencoder", _MMD_CLUSTERING_MEASURED),
    (
        AdversarialAutoencoderEmbedding,
        "AdversarialAutoencoder",
        _ADVERSARIAL_CLUSTERING_MEASURED,
    ),
]:
    _default = _cls().consistency_weight
    _activation = _cls().activation
    _other = _SHARED_OTHER_PARAMETERS.format(
        parent=_parent,
        activation=_activation,
        activation_text=textwrap.fill(
            "The hidden layers' activation (the plain autoencoders default to "
            f"``'relu'``). {_ACTIVATION_MEASURED[_activation]} See the user "
            'guide, "Why the style prior is narrow, and the activation".',
            79,
            initial_indent=" " * 8,
            subsequent_indent=" " * 8,
        ),
    )
    if _cls in (AdversarialAutoencoderClustering, AdversarialAutoencoderEmbedding):
        # (its own n_iter_no_change is documented with its parameters)
        _other = _other.replace("n_iter_no_change, tol,", "tol,")
    _cls.__doc__ = (
        _cls.__doc__.replace("    {other}", _other)
        .replace("{embedding}\n", _EMBEDDING_PARAMETERS)
        .replace("    {discriminator_blocks}\n", _DISCRIMINATOR_BLOCKS_PARAMETER)
    ).replace(
        "    {consistency}\n",
        _CONSISTENCY_PARAMETERS.format(
            default=_default,
            measured=textwrap.fill(
                _measured, 79, initial_indent=" " * 8, subsequent_indent=" " * 8
            ),
        ),
    )
del _cls, _parent, _measured, _default, _activation
