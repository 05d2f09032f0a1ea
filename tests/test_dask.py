"""Dask arrays through dask-ml's wrappers, and what ``partial_fit`` takes from them.

``dask_ml.wrappers.Incremental`` streams a Dask array's blocks through
``partial_fit``; ``ParallelPostFit`` transforms block by block. The wrappers
run here on Dask's synchronous scheduler (no cluster): what is checked is what
they pass to the estimators and that training through them is training on the
blocks in turn. ``partial_fit``'s own additions for them (the placeholder that
stands for ``y=None``, ``classes=``) are tested without Dask.
"""

from functools import partial

import numpy as np
import pytest
from sklearn.utils._testing import assert_array_equal

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder
from sklearn_aae.priors import ConditionalPrior, GaussianMixturePrior

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(hidden_layer_sizes=(8,), batch_size=25, device="cpu", random_state=0)
ESTIMATORS = [
    partial(MMDAutoencoder, **FAST),
    partial(AdversarialAutoencoder, discriminator_hidden_layer_sizes=(8,), **FAST),
]
parametrize_estimators = pytest.mark.parametrize(
    "make", ESTIMATORS, ids=lambda make: make.func.__name__
)

X = np.random.RandomState(0).rand(200, 6)
Y3 = np.arange(200) % 3
BLOCK = 50  # rows per Dask block: 4 blocks


@pytest.fixture
def dask_modules():
    """dask.array, dask-ml's wrappers and a synchronous scheduler."""
    pytest.importorskip("dask_ml")
    import dask
    import dask.array as da
    from dask_ml.wrappers import Incremental, ParallelPostFit

    with dask.config.set(scheduler="synchronous"):
        yield da, Incremental, ParallelPostFit


# ------------------------------------------------------ partial_fit, no Dask
@parametrize_estimators
def test_partial_fit_takes_dask_mls_placeholder_for_no_labels(make):
    # Incremental(...).fit(X) without y calls partial_fit(block, ('', i)).
    with_placeholder = make().partial_fit(X, ("", 3))
    without = make().partial_fit(X)
    assert_array_equal(with_placeholder.transform(X), without.transform(X))
    # Any other tuple is a y like any other (and has the wrong length here).
    with pytest.raises(ValueError, match="y has 2 entries but X has 200 rows"):
        make().partial_fit(X, ("a", 3))


def test_partial_fit_classes_declares_classes_missing_from_the_first_block():
    # A ConditionalPrior learns one scale vector per class: the first block
    # must know every class, which `classes` declares.
    est = MMDAutoencoder(prior=ConditionalPrior(), **FAST)
    first, later = Y3 < 2, Y3 == 2
    with pytest.raises(ValueError, match=r"y has classes \[2\] not in classes_"):
        est.partial_fit(X[first], Y3[first]).partial_fit(X[later], Y3[later])

    est = MMDAutoencoder(prior=ConditionalPrior(), **FAST)
    est.partial_fit(X[first], Y3[first], classes=[2, 0, 1])
    assert_array_equal(est.classes_, [0, 1, 2])
    assert est.prior_scales_.shape == (3, 2)
    est.partial_fit(X[later], Y3[later], classes=[0, 1, 2])
    est.partial_fit(X[later], Y3[later])  # None: the classes of the first call
    assert est.n_iter_ == 3


def test_partial_fit_classes_must_stay_those_of_the_first_call():
    est = MMDAutoencoder(prior=ConditionalPrior(), **FAST)
    est.partial_fit(X, Y3, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=r"classes=\[0, 1\] differs from classes_"):
        est.partial_fit(X, Y3, classes=[0, 1])


def test_partial_fit_classes_of_a_mixture_prior_are_its_components():
    # Labels index the components: classes_ is arange(K) whatever `classes`
    # lists, and a class outside 0..K-1 is refused.
    prior = GaussianMixturePrior(means=[[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    est = MMDAutoencoder(prior=prior, **FAST)
    est.partial_fit(X[Y3 == 0], Y3[Y3 == 0], classes=[0, 2])
    assert_array_equal(est.classes_, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels \[5\]"):
        MMDAutoencoder(prior=prior, **FAST).partial_fit(X, Y3, classes=[0, 5])


@parametrize_estimators
def test_partial_fit_classes_is_ignored_by_a_prior_without_classes(make):
    with_classes = make().partial_fit(X, Y3, classes=[0, 1, 2])
    assert not hasattr(with_classes, "classes_")
    assert_array_equal(with_classes.transform(X), make().partial_fit(X).transform(X))


# ------------------------------------------------------------ through Dask
@parametrize_estimators
def test_incremental_fit_is_partial_fit_on_each_block_in_turn(make, dask_modules):
    da, Incremental, _ = dask_modules
    inc = Incremental(make(), shuffle_blocks=False)
    inc.fit(da.from_array(X, chunks=(BLOCK, X.shape[1])))
    by_hand = make()
    for start in range(0, len(X), BLOCK):
        by_hand.partial_fit(X[start : start + BLOCK])
    assert inc.estimator_.n_iter_ == len(X) // BLOCK
    assert_array_equal(inc.estimator_.transform(X), by_hand.transform(X))
    assert inc.estimator_.noise_variance_ == by_hand.noise_variance_


@parametrize_estimators
def test_incremental_partial_fit_makes_one_pass_per_call(make, dask_modules):
    # Incremental.fit starts afresh (a clone); partial_fit continues: passes
    # over the data are calls to Incremental.partial_fit.
    da, Incremental, _ = dask_modules
    Xd = da.from_array(X, chunks=(BLOCK, X.shape[1]))
    inc = Incremental(make(), random_state=0)
    for _ in range(3):
        inc.partial_fit(Xd)
    assert inc.estimator_.n_iter_ == 3 * len(X) // BLOCK
    assert len(inc.estimator_.loss_curve_) == 3 * len(X) // BLOCK
    inc.fit(Xd)
    assert inc.estimator_.n_iter_ == len(X) // BLOCK


def test_incremental_fit_with_labels_and_classes(dask_modules):
    da, Incremental, _ = dask_modules
    order = np.argsort(Y3, kind="stable")  # the first block holds class 0 only
    Xd = da.from_array(X[order], chunks=(BLOCK, X.shape[1]))
    yd = da.from_array(Y3[order], chunks=BLOCK)
    inc = Incremental(
        MMDAutoencoder(prior=ConditionalPrior(), **FAST), shuffle_blocks=False
    )
    inc.fit(Xd, yd, classes=[0, 1, 2])
    assert_array_equal(inc.estimator_.classes_, [0, 1, 2])
    assert inc.estimator_.prior_weights_ == pytest.approx(np.bincount(Y3) / len(Y3))


@parametrize_estimators
def test_parallel_post_fit_transforms_block_by_block(make, dask_modules):
    da, _, ParallelPostFit = dask_modules
    est = make(max_iter=2).fit(X)
    Xd = da.from_array(X, chunks=(BLOCK, X.shape[1]))
    Z = ParallelPostFit(est).transform(Xd)
    assert isinstance(Z, da.Array)  # lazy, one task per block
    assert_array_equal(Z.compute(), est.transform(X))
    # Documented limitation of dask-ml 2025.1: the lazy result declares the
    # input's columns (map_blocks without chunks), though its blocks have
    # n_components; the user guide's map_blocks recipe declares them right.
    assert Z.shape == X.shape
    Z = Xd.map_blocks(
        est.transform, chunks=(Xd.chunks[0], (est.n_components,)), dtype=Xd.dtype
    )
    assert Z.shape == (len(X), 2)
    assert_array_equal(Z.compute(), est.transform(X))


@parametrize_estimators
def test_log_likelihood_block_by_block(make, dask_modules):
    # The user guide's recipe: score_samples per block, then the mean; as
    # score itself on the whole array (same importance-sampling seed).
    da, _, _ = dask_modules
    est = make(max_iter=2).fit(X)
    Xd = da.from_array(X, chunks=(BLOCK, X.shape[1]))
    scores = Xd.map_blocks(est.score_samples, drop_axis=1, dtype=np.float64)
    assert scores.shape == (len(X),)
    assert scores.mean().compute() == pytest.approx(est.score(X), rel=1e-6)
