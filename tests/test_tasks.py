"""The task estimators: semi-supervised classifiers and clusterers."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _settings import interrupt_at_epoch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

import sklearn_aae._tasks
from sklearn_aae import (
    AdversarialAutoencoderClassifier,
    AdversarialAutoencoderClustering,
    AdversarialAutoencoderEmbedding,
    MMDAutoencoderClassifier,
    MMDAutoencoderClustering,
    MMDAutoencoderEmbedding,
)
from sklearn_aae._tasks import _consensus_partition, _heads_for
from sklearn_aae.priors import (
    CategoricalPrior,
    ConditionalPrior,
    GaussianPrior,
    LaplacePrior,
    ProductPrior,
)

FAST = dict(hidden_layer_sizes=(16,), batch_size=32, device="cpu", random_state=0)
# On 240 rows (800 steps) the adversary at its digits defaults (learning rate
# 1e-4, weight 0.01) has not yet pulled the style to its prior, so the decoder
# still reads the class from the style; ten times both does.
CLASSIFIERS = [
    MMDAutoencoderClassifier(max_iter=100, **FAST),
    AdversarialAutoencoderClassifier(
        max_iter=100,
        reg_weight=0.1,
        discriminator_learning_rate=1e-3,
        discriminator_hidden_layer_sizes=(16,),
        **FAST,
    ),
]
CLUSTERERS = [
    MMDAutoencoderClustering(n_clusters=3, max_iter=100, **FAST),
    AdversarialAutoencoderClustering(
        n_clusters=3, max_iter=100, discriminator_hidden_layer_sizes=(16,), **FAST
    ),
]
EMBEDDINGS = [
    MMDAutoencoderEmbedding(n_clusters=3, max_iter=100, **FAST),
    AdversarialAutoencoderEmbedding(
        n_clusters=3, max_iter=100, discriminator_hidden_layer_sizes=(16,), **FAST
    ),
]
ids = lambda est: type(est).__name__  # noqa: E731


def _blobs(n=240, seed=0):
    """Three well-separated blobs in 6-D, standardised; labels 0, 1, 2."""
    return _blobs_and_new_rows(n, seed)[:2]


def _blobs_and_new_rows(n=240, seed=0, n_new=90):
    """``X, y, X_new, y_new``: ``n`` rows and ``n_new`` held-out rows of the
    same blobs (the same scaling)."""
    X, y = make_blobs(n_samples=n + n_new, n_features=6, centers=3, random_state=seed)
    X = StandardScaler().fit_transform(X)
    return X[:n], y[:n], X[n:], y[n:]


def _semi(y, n_per_class, seed=0):
    """``y`` with ``n_per_class`` labelled rows per class, the rest -1."""
    rng = np.random.RandomState(seed)
    out = np.full_like(y, -1)
    for k in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == k), n_per_class, replace=False)
        out[keep] = y[keep]
    return out


def _fit(est, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone(est).fit(X, y)


@pytest.mark.parametrize("est", [CLASSIFIERS[0], CLUSTERERS[0]], ids=ids)
def test_fitted_task_model_ignores_widths_set_after_fit(est):
    # What a fitted model returns comes from the fit, as PCA's comes from
    # components_: set_params(n_clusters=...) once emptied transform.
    X, y = _blobs(60)
    est = _fit(clone(est).set_params(max_iter=2), X, y)
    expected = est.transform(X), est.predict(X), est.predict_proba(X)
    est.set_params(n_components=4)
    if hasattr(est, "n_clusters"):
        est.set_params(n_clusters=5)
    for got, want in zip(
        (est.transform(X), est.predict(X), est.predict_proba(X)), expected, strict=True
    ):
        np.testing.assert_array_equal(got, want)
    assert len(est.get_feature_names_out()) == expected[0].shape[1]
    assert est.inverse_transform(expected[0], est.predict(X)).shape == X.shape


@pytest.mark.parametrize("est", [CLASSIFIERS[1], CLUSTERERS[0]], ids=ids)
def test_fitted_task_model_samples_and_scores_with_its_fitted_widths(est):
    # sample, score_samples and inverse_transform read n_components and
    # n_clusters from the parameters: shape errors after set_params.
    X, y = _blobs(60)
    est = _fit(clone(est).set_params(max_iter=2), X, y)
    label = est.predict(X[:1])[0]
    expected = (
        est.sample(3, random_state=0),
        est.sample(3, random_state=0, y=label),
        est.score_samples(X[:5]),
        est.inverse_transform(est.transform(X[:5]), est.predict(X[:5])),
    )
    est.set_params(n_components=4)
    if hasattr(est, "n_clusters"):
        est.set_params(n_clusters=5)
    got = (
        est.sample(3, random_state=0),
        est.sample(3, random_state=0, y=label),
        est.score_samples(X[:5]),
        est.inverse_transform(est.transform(X[:5]), est.predict(X[:5])),
    )
    for g, want in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, want)


# ------------------------------------------------------------------ classifier
@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_learns_from_few_labels(est):
    X, y, X_test, y_test = _blobs_and_new_rows()
    clf = _fit(est, X, _semi(y, 3))
    assert clf.score(X_test, y_test) > 0.9  # chance: 1/3
    assert clf.history_["classification"][-1] < clf.history_["classification"][0]


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_takes_string_labels_and_sorts_classes(est):
    X, y = _blobs(120)
    names = np.array(["c", "a", "b"], dtype=object)[y]
    y_semi = np.where(_semi(y, 5) >= 0, names, -1).astype(object)
    clf = _fit(est, X, y_semi)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    assert set(clf.predict(X)) <= {"a", "b", "c"}


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_probabilities_are_the_class_block(est):
    X, y = _blobs(120)
    clf = _fit(est, X, y)  # fully supervised: no -1
    P = clf.predict_proba(X)
    assert P.shape == (120, 3)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[P.argmax(1)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P)
    # the encoder's output is [class block, style]
    codes = clf.encoder_.mean(torch.as_tensor(X[:2], dtype=torch.float32))
    assert codes.shape == (2, 3 + clf.n_components)


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_transform_is_the_style_and_inverse_needs_the_class(est):
    X, y = _blobs(120)
    clf = _fit(clone(est).set_params(n_components=3), X, y)
    Z = clf.transform(X)
    assert Z.shape == (120, 3)
    with pytest.raises(ValueError, match="needs y, the class of each row"):
        clf.inverse_transform(Z)
    rec = clf.inverse_transform(Z, clf.predict(X))
    # better than predicting the column means (the data are standardised)
    assert np.mean((rec - X) ** 2) < 0.5 * np.mean(X**2)
    with pytest.raises(ValueError, match="not in classes_"):
        clf.inverse_transform(Z, np.full(120, 7))


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_samples_rows_of_the_chosen_class_with_shared_styles(est):
    X, y = _blobs()
    clf = _fit(est, X, y)
    for k in clf.classes_:
        rows = clf.sample(50, random_state=1, y=k)
        assert np.mean(clf.predict(rows) == k) > 0.9
    # the same seed: the same styles whatever the class, so only the class moves
    a = clf.sample(5, random_state=1, y=0)
    assert np.array_equal(a, clf.sample(5, random_state=1, y=[0] * 5))
    assert not np.allclose(a, clf.sample(5, random_state=1, y=1))
    assert clf.sample(4, random_state=0).shape == (4, X.shape[1])


def test_classifier_names_labels_of_another_type_that_are_not_classes():
    # Integers for string classes (or strings beside them) cannot be sorted
    # among the classes: a TypeError from comparing str with int came out.
    X, y = _blobs(60)
    names = np.array(["c", "a", "b"], dtype=object)[y]
    clf = _fit(MMDAutoencoderClassifier(max_iter=1, **FAST), X, names)
    with pytest.raises(ValueError, match=r"labels \[0\] that are not in classes_"):
        clf.sample(3, y=0)
    with pytest.raises(ValueError, match=r"labels \[1\] that are not in classes_"):
        clf.inverse_transform(clf.transform(X[:2]), np.array(["a", 1], dtype=object))
    Z = clf.transform(X[:2])
    np.testing.assert_array_equal(
        clf.inverse_transform(Z, np.array(["a", "b"], dtype=object)),
        clf.inverse_transform(Z, ["a", "b"]),
    )


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_refuses_unlabelled_only_one_class_and_continuous_y(est):
    X, y = _blobs(60)
    with pytest.raises(ValueError, match="requires y"):
        clone(est).fit(X)
    with pytest.raises(ValueError, match="every row of y is unlabelled"):
        clone(est).fit(X, np.full(60, -1))
    with pytest.raises(ValueError, match="at least 2 classes"):
        clone(est).fit(X, np.where(y == 0, 0, -1))
    with pytest.raises(ValueError, match="Unknown label type"):
        clone(est).fit(X, np.linspace(0, 1, 60))


def test_classifier_refuses_the_string_minus_one_a_list_makes_of_unlabelled_rows():
    # NumPy turns ["a", "b", -1] into strings, "-1" among them: it was taken
    # for a class of its own (a fourth head) instead of an unlabelled row.
    X, y = _blobs(60)
    names = np.array(["c", "a", "b"], dtype=object)[y]
    y_list = [name if i % 3 else -1 for i, name in enumerate(names)]
    clf = MMDAutoencoderClassifier(max_iter=1, **FAST)
    with pytest.raises(ValueError, match="string '-1'.*dtype=object"):
        clf.fit(X, y_list)
    fitted = _fit(clf, X, np.array(y_list, dtype=object))
    assert fitted.classes_.tolist() == ["a", "b", "c"]


def test_classifier_refuses_a_prior_that_cannot_be_a_style():
    X, y = _blobs(60)
    clf = MMDAutoencoderClassifier(prior=ConditionalPrior(), max_iter=1, **FAST)
    with pytest.raises(TypeError, match="style code"):
        clf.fit(X, y)


def test_classifier_style_prior_is_the_product_s_style_block():
    X, y = _blobs(60)
    clf = _fit(
        MMDAutoencoderClassifier(
            n_components=2, prior=LaplacePrior(scale=0.5), max_iter=1, **FAST
        ),
        X,
        y,
    )
    assert isinstance(clf.prior_, ProductPrior)
    params = clf.prior_.get_params()
    assert isinstance(params["class"], CategoricalPrior)
    assert params["class"].n_categories == 3 and params["style__scale"] == 0.5


@pytest.mark.parametrize("est", [CLASSIFIERS[0], CLUSTERERS[1]], ids=ids)
def test_default_style_prior_is_a_narrow_gaussian(est):
    # prior=None: the style is N(0, 0.1^2 I), narrow beside the class block
    X, y = _blobs(60)
    fitted = _fit(clone(est).set_params(max_iter=1), X, y)
    params = fitted.prior_.get_params()
    assert isinstance(params["style"], GaussianPrior)
    assert params["style__scale"] == 0.1
    assert fitted.get_params()["prior"] is None


def test_classifier_partial_fit_takes_the_classes_at_the_first_call():
    X, y = _blobs(90)
    clf = MMDAutoencoderClassifier(**FAST)
    first = y < 2  # the first block has classes 0 and 1 only
    clf.partial_fit(X[first], y[first], classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2]
    clf.partial_fit(X[~first], np.full((~first).sum(), -1))  # unlabelled block
    assert clf.n_iter_ == 2 and clf.predict_proba(X).shape == (90, 3)


def test_classifier_partial_fit_first_block_may_be_unlabelled_given_classes():
    # classes= tells the classes, so a stream may start with unlabelled rows:
    # this was refused as "needs labelled rows to know its classes".
    X, y = _blobs(90)
    clf = MMDAutoencoderClassifier(**FAST)
    clf.partial_fit(X[:45], np.full(45, -1), classes=[0, 1, 2])
    assert clf.classes_.tolist() == [0, 1, 2]
    clf.partial_fit(X[45:], y[45:])
    assert clf.n_iter_ == 2 and clf.predict_proba(X).shape == (90, 3)
    with pytest.raises(ValueError, match="every row of y is unlabelled"):
        MMDAutoencoderClassifier(**FAST).partial_fit(X, np.full(90, -1))


def test_classifier_partial_fit_refuses_labels_outside_the_declared_classes():
    # At the first call, the error names the classes given, not an earlier fit.
    X, y = _blobs(90)
    clf = MMDAutoencoderClassifier(**FAST)
    with pytest.raises(
        ValueError, match=r"y has classes \[2\] not in the classes= given"
    ):
        clf.partial_fit(X, y, classes=[0, 1])


def test_classifier_partial_fit_refuses_other_classes_at_a_later_call():
    # As SGDClassifier: the same classes (in any order) or none.
    X, y = _blobs(90)
    clf = MMDAutoencoderClassifier(**FAST).partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y, classes=[2, 1, 0])
    clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs from classes_"):
        clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1])
    assert clf.n_iter_ == 3


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_classifier_score_is_accuracy_and_score_samples_the_likelihood(est):
    X, y = _blobs(90)
    clf = _fit(est, X, y)
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)
    ll = clf.score_samples(X[:10])
    assert ll.shape == (10,) and np.all(np.isfinite(ll))


def test_classifier_score_counts_unlabelled_rows_wrong_with_string_classes():
    # As documented (user guide, "Classifier"): a -1 row of y counts as a
    # wrong prediction. With string classes, accuracy_score refused y mixing
    # strings with -1 (a TypeError from sorting them).
    X, y = _blobs(60)
    names = np.array(["c", "a", "b"], dtype=object)[y]
    clf = _fit(MMDAutoencoderClassifier(max_iter=2, **FAST), X, names)
    y_semi = np.where(np.arange(60) % 3 == 0, names, -1).astype(object)
    hits = clf.predict(X) == names
    assert clf.score(X, y_semi) == np.sum(hits & (y_semi != -1)) / 60
    weights = np.linspace(0.5, 2.0, 60)
    np.testing.assert_allclose(
        clf.score(X, y_semi, sample_weight=weights),
        np.sum(weights * (hits & (y_semi != -1))) / weights.sum(),
    )
    assert clf.score(X, names) == np.mean(hits)


def test_supervised_weight_drives_the_labelled_rows():
    X, y = _blobs()
    y_semi = _semi(y, 3)
    est = MMDAutoencoderClassifier(max_iter=30, reg_weight=0.0, **FAST)
    with_ce = _fit(est, X, y_semi)
    without = _fit(clone(est).set_params(supervised_weight=0.0), X, y_semi)
    labelled = y_semi >= 0
    assert with_ce.score(X[labelled], y[labelled]) == 1.0
    # without the cross-entropy the heads do not know the classes' names
    assert without.score(X, y) < with_ce.score(X, y) - 0.3


def test_classifier_reads_sparse_input():
    X, y = _blobs(60)
    clf = _fit(MMDAutoencoderClassifier(max_iter=2, **FAST), sp.csr_matrix(X), y)
    np.testing.assert_allclose(
        clf.predict_proba(sp.csr_matrix(X)), clf.predict_proba(X), rtol=1e-6
    )


def test_adversarial_discriminator_reads_the_whole_code_without_label_slots():
    X, y = _blobs(60)
    clf = _fit(clone(CLASSIFIERS[1]).set_params(max_iter=1, n_components=2), X, y)
    # 3 heads + 2 style columns; labels go to the cross-entropy, not the game
    assert clf.discriminator_[0].in_features == 5


# ------------------------------------------------------------------ clusterer
def test_mmd_clusterer_finds_separated_blobs_inductively():
    # The adversarial clusterer does not, on these data: ARI 0.01-0.93 over
    # seeds and settings after 100 epochs (reported in the user guide), so it
    # is held to the contract below, not to this.
    X, y, X_new, y_new = _blobs_and_new_rows()
    km = _fit(CLUSTERERS[0], X)
    assert adjusted_rand_score(y, km.labels_) > 0.9
    assert adjusted_rand_score(y_new, km.predict(X_new)) > 0.9


@pytest.mark.parametrize("est", [*CLUSTERERS, *EMBEDDINGS], ids=ids)
def test_clusterer_labels_are_predict_and_fit_predict(est):
    X, _ = _blobs(120)
    km = _fit(est, X)
    np.testing.assert_array_equal(km.labels_, km.predict(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(clone(est).fit_predict(X), km.labels_)
    assert km.labels_.min() == 0 and km.labels_.max() == km.n_clusters_ - 1
    np.testing.assert_allclose(km.predict_proba(X).sum(1), 1.0)
    assert km.transform(X).shape == (120, km.n_components)
    # score is the log-likelihood (ClusterMixin leaves it to the base)
    np.testing.assert_allclose(km.score(X), km.score_samples(X).mean())


def test_clusterer_numbers_found_clusters_from_zero_and_skips_empty_heads():
    X, _ = _blobs(60)
    km = _fit(MMDAutoencoderClustering(n_clusters=4, max_iter=1, **FAST), X)
    # Pretend the encoder uses heads 1 and 3 only: 2 clusters, labelled 0 and 1.
    codes = np.zeros((60, 4 + km.n_components))
    codes[:30, 1] = 1.0
    codes[30:, 3] = 1.0
    km._encode = lambda X: codes[: len(X)]
    with pytest.warns(ConvergenceWarning, match=r"\(2\) found smaller"):
        km.partial_fit(X)
    assert km.cluster_heads_.tolist() == [1, 3] and km.n_clusters_ == 2
    np.testing.assert_array_equal(km.labels_, np.repeat([0, 1], 30))
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    assert km.predict_proba(X).shape == (60, 2)
    # cluster c decodes and samples through head cluster_heads_[c]
    assert km._heads_of(np.array([0, 1]), 2).tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"integers in \[0, 2\)"):
        km.sample(2, y=2)


def test_clusterer_probabilities_are_renormalised_over_the_found_clusters():
    X, _ = _blobs(60)
    km = _fit(MMDAutoencoderClustering(n_clusters=3, max_iter=1, **FAST), X)
    # Soft codes: heads 0 and 2 win the rows, head 1 holds mass but no row.
    codes = np.zeros((60, 3 + km.n_components))
    codes[:30, :3] = [0.6, 0.3, 0.1]
    codes[30:, :3] = [0.1, 0.3, 0.6]
    km._encode = lambda X: codes[: len(X)]
    with pytest.warns(ConvergenceWarning, match=r"\(2\) found smaller"):
        km.partial_fit(X)
    assert km.cluster_heads_.tolist() == [0, 2]
    # head 1's mass is dropped and the rows renormalised over heads 0 and 2
    P = km.predict_proba(X)
    np.testing.assert_allclose(P[:30], np.tile([6 / 7, 1 / 7], (30, 1)))
    np.testing.assert_allclose(P[30:], np.tile([1 / 7, 6 / 7], (30, 1)))
    np.testing.assert_array_equal(km.predict(X), np.repeat([0, 1], 30))


def test_clusterer_warm_start_names_a_changed_n_clusters():
    # The refusal named the internal code_width ("changed from 5 to 6").
    X, _ = _blobs(60)
    km = _fit(
        MMDAutoencoderClustering(n_clusters=3, max_iter=1, warm_start=True, **FAST), X
    )
    with pytest.raises(ValueError, match="n_clusters changed from 3 to 4"):
        km.set_params(n_clusters=4).fit(X)


def test_clusterer_ignores_y():
    X, y = _blobs(90)
    est = MMDAutoencoderClustering(n_clusters=3, max_iter=3, **FAST)
    np.testing.assert_array_equal(_fit(est, X).labels_, _fit(est, X, y).labels_)
    assert not hasattr(_fit(est, X, y), "classes_")


@pytest.mark.parametrize("est", [*CLASSIFIERS, *CLUSTERERS, *EMBEDDINGS], ids=ids)
def test_task_estimators_tag_the_dtypes_their_transform_preserves(est):
    # ClusterMixin empties preserves_dtype (KMeans's transform gives float64
    # distances); the style code keeps X's dtype, and the tag says so, so
    # that scikit-learn's check_transformer_preserve_dtypes tests it.
    assert est.__sklearn_tags__().transformer_tags.preserves_dtype == [
        "float64",
        "float32",
    ]
    X, y = _blobs(90)
    fitted = _fit(clone(est).set_params(max_iter=2), X.astype(np.float32), y)
    assert fitted.transform(X.astype(np.float32)).dtype == np.float32
    assert fitted.transform(X).dtype == np.float64


@pytest.mark.parametrize("est", [*CLUSTERERS, *EMBEDDINGS], ids=ids)
def test_clusterer_is_reproducible(est):
    X, _ = _blobs(90)
    np.testing.assert_array_equal(
        _fit(clone(est).set_params(max_iter=3), X).transform(X),
        _fit(clone(est).set_params(max_iter=3), X).transform(X),
    )


@pytest.mark.parametrize("est", [*CLASSIFIERS, *CLUSTERERS, *EMBEDDINGS], ids=ids)
def test_task_estimators_round_trip_through_skops(est):
    sio = pytest.importorskip("skops.io")
    X, y = _blobs(60)
    fitted = _fit(clone(est).set_params(max_iter=2), X, y)
    blob = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=blob)
    assert all(name.startswith("sklearn_aae.") for name in untrusted), untrusted
    loaded = sio.loads(blob, trusted=untrusted)
    np.testing.assert_array_equal(loaded.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    np.testing.assert_array_equal(
        loaded.sample(3, random_state=0), fitted.sample(3, random_state=0)
    )


def test_clusterer_n_init_keeps_the_initialisation_with_the_lowest_loss():
    X, _ = _blobs(90)
    est = MMDAutoencoderClustering(
        n_clusters=3, n_init=3, consensus=False, max_iter=3, **FAST
    )
    km = _fit(est, X)
    assert km.n_init == 3 and km.random_state == 0  # parameters untouched
    assert km.n_init_losses_.shape == (3,)
    best = int(np.argmin(km.n_init_losses_))
    assert km.loss_curve_[-1] == km.n_init_losses_[best]
    # ... and it is exactly that initialisation's fit.
    seed = np.random.RandomState(0).randint(2**31 - 1, size=3)[best]
    alone = _fit(clone(est).set_params(n_init=1, random_state=int(seed)), X)
    np.testing.assert_array_equal(km.transform(X), alone.transform(X))
    np.testing.assert_array_equal(km.labels_, alone.labels_)
    # a later fit with one initialisation drops the record
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        assert not hasattr(km.set_params(n_init=1).fit(X), "n_init_losses_")


def test_consensus_partition_takes_the_majority_and_ignores_head_order():
    rng = np.random.RandomState(0)
    truth = np.repeat([0, 1, 2, 3], 25)
    P = np.eye(4)[truth]
    # Two fits agree up to the order of their heads; a third merges clusters 0
    # and 1 and splits cluster 2 over two heads: the majority wins.
    wrong = truth.copy()
    wrong[truth == 1] = 0
    wrong[(truth == 2) & (rng.rand(100) < 0.5)] = 1
    fits = [P, P[:, [2, 0, 3, 1]], np.eye(4)[wrong]]
    labels = _consensus_partition(fits, 4, random_state=0)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_heads_for_matches_consensus_clusters_to_the_heads_one_to_one():
    # The fit's head 2 holds consensus cluster 0, head 0 cluster 1, head 1
    # cluster 2; one row of cluster 2 sits on head 0 and is moved to head 1.
    partition = np.array([0, 0, 1, 1, 2, 2, 2])
    fit_heads = np.array([2, 2, 0, 0, 1, 1, 0])
    heads = _heads_for(partition, np.eye(3)[fit_heads])
    np.testing.assert_array_equal(heads, [2, 2, 0, 0, 1, 1, 1])


@pytest.mark.parametrize(
    "est",
    [MMDAutoencoderClustering(**FAST), MMDAutoencoderEmbedding(**FAST)],
    ids=ids,
)
def test_consensus_fine_tunes_the_kept_fit_to_the_consensus(est, monkeypatch):
    # Whatever the fits found, the kept one ends on the consensus partition:
    # here a consensus forced to the blobs' truth, after fits too short to
    # find them.
    X, y = _blobs(120)
    seen = []

    def consensus(probabilities, n_clusters, random_state):
        seen.append(len(probabilities))
        return y

    monkeypatch.setattr(sklearn_aae._tasks, "_consensus_partition", consensus)
    est = clone(est).set_params(n_clusters=3, n_init=2, max_iter=30)
    short = _fit(clone(est).set_params(n_init=1, max_iter=1), X)
    assert adjusted_rand_score(y, short.labels_) < 0.9
    km = _fit(est, X)
    assert seen == [2]
    assert adjusted_rand_score(y, km.labels_) == 1.0
    # the fine-tuning's term is recorded for its epochs, after the fit's
    # (NaN there, so that every list of history_ has one entry per epoch)
    consensus = np.asarray(km.history_["consensus"])
    assert km.n_iter_ == 60 == len(km.loss_curve_)
    assert {len(v) for v in km.history_.values()} == {60}
    assert np.isnan(consensus[:30]).all() and np.isfinite(consensus[30:]).all()
    assert km.max_iter == 30 and not km.warm_start  # parameters untouched
    assert not hasattr(km, "_fine_tuning")


# ---------------------------------------------------------------- consistency
def _mean_kl(P, Q):
    return float(np.mean(np.sum(P * (np.log(P + 1e-12) - np.log(Q + 1e-12)), axis=1)))


@pytest.mark.parametrize("est", CLASSIFIERS, ids=ids)
def test_consistency_makes_the_heads_agree_under_input_noise(est):
    X, y = _blobs()
    y_semi = _semi(y, 3)
    noisy = X + 0.5 * np.random.RandomState(1).standard_normal(X.shape)
    fits = {
        w: _fit(
            clone(est).set_params(consistency_weight=w, consistency_noise=0.5),
            X,
            y_semi,
        )
        for w in (0.0, 10.0)
    }
    kl = {
        w: _mean_kl(f.predict_proba(X), f.predict_proba(noisy)) for w, f in fits.items()
    }
    assert kl[10.0] < 0.5 * kl[0.0], kl
    # the term is recorded in history_ when (and only when) it is on
    assert "consistency" not in fits[0.0].history_
    curve = fits[10.0].history_["consistency"]
    assert len(curve) == fits[10.0].n_iter_ and np.all(np.isfinite(curve))


def test_consistency_is_part_of_the_clusterers_objective():
    X, _ = _blobs(120)
    est = clone(CLUSTERERS[0]).set_params(max_iter=5)
    on = _fit(clone(est).set_params(consistency_weight=1.0), X)
    off = _fit(clone(est).set_params(consistency_weight=0.0), X)
    h = on.history_
    expected = (
        np.array(h["reconstruction"])
        + on.reg_weight * np.array(h["regularization"])
        + np.array(h["consistency"])
    )
    np.testing.assert_allclose(on.loss_curve_, expected, rtol=1e-5)
    assert "consistency" not in off.history_
    # deterministic: the noise is drawn from the fit's own generator
    np.testing.assert_array_equal(_fit(clone(on), X).labels_, on.labels_)


@pytest.mark.parametrize("est", CLUSTERERS, ids=ids)
def test_clusterer_samples_only_the_clusters_it_found(est, monkeypatch):
    # Heads that hold no training row were never decoded in training: sample
    # without y draws among the found clusters, not from every head.
    X, _ = _blobs()
    clu = _fit(clone(est).set_params(n_clusters=8), X)
    assert clu.n_clusters_ < 8  # the precondition: some heads are empty
    decoded = []
    original = clu._decode
    monkeypatch.setattr(
        clu,
        "_decode",
        lambda codes, dtype: decoded.append(codes) or original(codes, dtype),
    )
    rows = clu.sample(400, random_state=0)
    heads = np.argmax(decoded[-1][:, :8], axis=1)
    assert set(heads) == set(clu.cluster_heads_)
    assert rows.shape == (400, X.shape[1])
    # reproducible, and an int seed gives the styles that y= gives
    np.testing.assert_array_equal(rows, clu.sample(400, random_state=0))
    drawn = np.searchsorted(clu.cluster_heads_, heads)
    np.testing.assert_array_equal(rows, clu.sample(400, random_state=0, y=drawn))


def test_classifier_one_class_error_names_the_label_plainly():
    X, _ = _blobs(60)
    with pytest.raises(ValueError, match=r"only one class: 0\.$"):
        _fit(MMDAutoencoderClassifier(max_iter=1, **FAST), X, np.zeros(60, dtype=int))


def _memmap(X, tmp_path):
    """A read-only memory map of ``X``."""
    path = tmp_path / "X.dat"
    writable = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
    writable[:] = X
    writable.flush()
    del writable
    return np.memmap(path, dtype=X.dtype, mode="r", shape=X.shape)


@pytest.mark.parametrize("est", CLASSIFIERS + CLUSTERERS, ids=ids)
@pytest.mark.parametrize("kind", ["csr", "memmap"])
def test_task_estimators_fit_streamed_input_as_the_dense_array(est, kind, tmp_path):
    # Streamed rows are read in sorted order but trained in the batch's own
    # order: the per-row noise of the consistency term falls on the same rows,
    # so the model is the dense array's.
    X, y = _blobs(96)
    y = _semi(y, 5)
    X_kind = sp.csr_matrix(X) if kind == "csr" else _memmap(X, tmp_path)
    est = clone(est).set_params(max_iter=2, consistency_weight=1.0)
    dense = _fit(est, X, y)
    streamed = _fit(est, X_kind, y)
    np.testing.assert_allclose(streamed.loss_curve_, dense.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(
        streamed.transform(X_kind), dense.transform(X), atol=1e-5
    )
    np.testing.assert_allclose(
        streamed.predict_proba(X_kind), dense.predict_proba(X), atol=1e-5
    )


@pytest.mark.parametrize("est", [CLASSIFIERS[0], CLUSTERERS[0]], ids=ids)
def test_task_estimators_stream_an_integer_memmap_without_a_whole_copy(
    est, tmp_path, monkeypatch
):
    # Validation used to convert an integer memory map (uint8 images, say)
    # into a float64 array in memory, eight times the file's size.
    import sklearn_aae._base as base_module
    from sklearn_aae._data import _Data, _is_memory_mapped

    X, y = _blobs(96)
    X = np.round((X - X.min()) * 40).astype(np.uint8)
    X_mm = _memmap(X, tmp_path)
    mapped = []

    class SpyData(_Data):
        def __init__(self, X, device, **kwargs):
            super().__init__(X, device, **kwargs)
            mapped.append(_is_memory_mapped(self.X))

    monkeypatch.setattr(base_module, "_Data", SpyData)
    est = clone(est).set_params(max_iter=2)
    streamed = _fit(est, X_mm, _semi(y, 5))
    Z = streamed.transform(X_mm)
    assert len(mapped) >= 2 and all(mapped)  # fit, transform
    assert Z.dtype == np.float64
    dense = _fit(est, X.astype(np.float64), _semi(y, 5))
    np.testing.assert_allclose(Z, dense.transform(X.astype(np.float64)), atol=1e-5)
    np.testing.assert_array_equal(streamed.predict(X_mm), dense.predict(X))


# ------------------------------------------------------------------ embedding
@pytest.mark.parametrize("est", EMBEDDINGS, ids=ids)
def test_embedding_decoder_reads_the_map(est):
    # The map of a row decodes to its reconstruction: the decoder reads y W + z,
    # so inverse_transform(transform(X)) is decoder_(encoder code).
    X, _ = _blobs(90)
    emb = _fit(clone(est).set_params(max_iter=3), X)
    with torch.no_grad():
        code = emb.encoder_.mean(torch.as_tensor(X, dtype=torch.float32))
        reconstruction = emb.decoder_(code).double().numpy()
    np.testing.assert_allclose(
        emb.inverse_transform(emb.transform(X)), reconstruction, atol=1e-5
    )
    # the map is the head probabilities times the head positions plus the style
    K = emb.n_clusters
    codes = emb._encode(X)
    heads = emb.decoder_[0].heads.detach().double().numpy()
    np.testing.assert_allclose(
        emb.transform(X), codes[:, :K] @ heads + codes[:, K:], atol=1e-6
    )


@pytest.mark.parametrize("est", EMBEDDINGS, ids=ids)
def test_embedding_keeps_every_two_heads_head_distance_apart(est):
    X, _ = _blobs(120)
    for distance in (0.5, 3.0):
        emb = _fit(clone(est).set_params(head_distance=distance), X)
        W = emb.decoder_[0].heads.detach().double().numpy()
        d = np.sqrt(((W[:, None] - W[None]) ** 2).sum(-1))[np.triu_indices(3, 1)]
        assert d.min() > 0.95 * distance, (distance, d)
        assert emb.history_["head_distance"][-1] < 0.05 * distance
    # head_positions_ are those of the found clusters, in cluster order
    np.testing.assert_array_equal(emb.head_positions_, W[emb.cluster_heads_])
    assert emb.head_positions_.shape == (emb.n_clusters_, emb.n_components)


def test_mmd_embedding_separates_blobs_in_the_map_inductively():
    # New rows land in the map beside the training rows of their blob: a
    # nearest-neighbour classifier on the training map labels them.
    from sklearn.neighbors import KNeighborsClassifier

    X, y, X_new, y_new = _blobs_and_new_rows()
    emb = _fit(EMBEDDINGS[0], X)
    knn = KNeighborsClassifier(5).fit(emb.transform(X), y)
    assert knn.score(emb.transform(X_new), y_new) > 0.95
    assert adjusted_rand_score(y_new, emb.predict(X_new)) > 0.9


def test_embedding_samples_decode_points_of_the_map():
    # sample(y=c) maps a prior style around head c and decodes it: the
    # decoder's output for head_positions_[c] + z.
    X, _ = _blobs(90)
    emb = _fit(clone(EMBEDDINGS[0]).set_params(max_iter=3), X)
    c = 0
    rows = emb.sample(4, random_state=0, y=c)
    styles = emb._prior_draws(4, 0).numpy()[:, emb.n_clusters :]
    points = emb.head_positions_[c] + styles
    np.testing.assert_allclose(rows, emb.inverse_transform(points), atol=1e-5)


def test_embedding_warm_start_names_a_changed_n_clusters():
    X, _ = _blobs(60)
    emb = _fit(
        MMDAutoencoderEmbedding(n_clusters=3, max_iter=1, warm_start=True, **FAST), X
    )
    with pytest.raises(ValueError, match="n_clusters changed from 3 to 4"):
        emb.set_params(n_clusters=4).fit(X)


def test_embedding_head_positions_are_the_found_clusters_heads():
    X, _ = _blobs(60)
    emb = _fit(MMDAutoencoderEmbedding(n_clusters=4, max_iter=1, **FAST), X)
    # Pretend the encoder uses heads 1 and 3 only: 2 clusters, two positions.
    codes = np.zeros((60, 4 + emb.n_components))
    codes[:30, 1] = 1.0
    codes[30:, 3] = 1.0
    emb._encode = lambda X: codes[: len(X)]
    with pytest.warns(ConvergenceWarning, match=r"\(2\) found smaller"):
        emb.partial_fit(X)
    W = emb.decoder_[0].heads.detach().double().numpy()
    np.testing.assert_array_equal(emb.head_positions_, W[[1, 3]])
    # every row of a cluster sits on its head (a zero style)
    np.testing.assert_allclose(emb.transform(X)[:30], np.tile(W[1], (30, 1)))


def test_clusterer_n_init_refit_drops_feature_names_of_an_earlier_fit():
    # A refit with n_init > 1 copied the kept fit's state over the estimator's
    # but kept what the kept fit lacks: a DataFrame's feature names outlived a
    # refit on an array (a warning at every transform, stale output names).
    pd = pytest.importorskip("pandas")
    X, _ = _blobs(60)
    est = MMDAutoencoderEmbedding(n_clusters=3, n_init=2, max_iter=2, **FAST)
    est = _fit(est, pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert not hasattr(est, "feature_names_in_")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        est.transform(X)


def test_clusterer_refused_refit_keeps_n_init_losses():
    # A refit refused for its data leaves a fitted model intact (as the base's
    # validation does); the n_init record was dropped before the data were
    # checked.
    X, _ = _blobs(60)
    est = _fit(MMDAutoencoderClustering(n_clusters=3, n_init=2, max_iter=2, **FAST), X)
    losses = est.n_init_losses_.copy()
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.set_params(n_init=1).fit(bad)
    np.testing.assert_array_equal(est.n_init_losses_, losses)


def test_clusterer_n_init_interrupted_in_a_first_epoch_keeps_the_weights(monkeypatch):
    # Ctrl-C is caught by each fit (a warning, the weights kept); an
    # initialisation interrupted before its first epoch ended has no final
    # loss, and n_init's comparison of them raised IndexError.
    interrupt_at_epoch(monkeypatch, MMDAutoencoderClustering, 1)
    X, _ = _blobs(60)
    est = MMDAutoencoderClustering(n_clusters=3, n_init=2, max_iter=2, **FAST)
    with pytest.warns(UserWarning, match="interrupted"):
        est = _fit(est, X)
    assert est.n_iter_ == 0 and est.labels_.shape == (60,)


def test_clusterer_n_init_interrupted_ends_every_fit_and_skips_the_consensus(
    monkeypatch,
):
    # Ctrl-C during the second of three fits ends the whole n_init loop (it
    # once ended only the fit it fell in, and the next fit began): two fits
    # compared, no fine-tuning to a consensus.
    calls = interrupt_at_epoch(monkeypatch, MMDAutoencoderClustering, 3)

    def no_fine_tuning(self, X, heads):
        raise AssertionError("fine-tuned after an interruption")

    monkeypatch.setattr(MMDAutoencoderClustering, "_fine_tune", no_fine_tuning)
    X, _ = _blobs(60)
    est = MMDAutoencoderClustering(n_clusters=3, n_init=3, max_iter=2, **FAST)
    with pytest.warns(UserWarning, match="interrupted fit 2 of 3"):
        est = _fit(est, X)
    assert len(calls) == 3
    assert len(est.n_init_losses_) == 2
    assert est.n_iter_ == 2 and est.labels_.shape == (60,)


def test_consensus_fine_tuning_does_not_warn_that_it_reached_max_iter():
    # Each fit warns that it stopped at max_iter; the fine-tuning, a fixed
    # number of epochs by design, does not add a third such warning.
    X, _ = _blobs(60)
    est = MMDAutoencoderClustering(n_clusters=3, n_init=2, max_iter=2, **FAST)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est.fit(X)
    reached = [w for w in caught if "Stochastic optimizer" in str(w.message)]
    assert len(reached) == 2
    assert np.isfinite(est.history_["consensus"][2:]).all()  # (it did train)
    assert len(est.history_["consensus"]) == 4
