"""Reliability: bad input, parallel and distributed grid search, fuzzed inputs."""

import os
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

FAST = dict(
    hidden_layer_sizes=(8,), max_iter=2, batch_size=16, device="cpu", random_state=0
)
ESTIMATORS = [
    lambda **kw: MMDAutoencoder(**{**FAST, **kw}),
    lambda **kw: AdversarialAutoencoder(
        **{**FAST, "discriminator_hidden_layer_sizes": (8,), **kw}
    ),
]
RNG = np.random.RandomState(0)
X_OK = RNG.normal(size=(40, 5))


def _fit(make, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make(**kw).fit(X)


# Inputs that must raise a clear error at fit, and the message that names why.
BAD_FIT_INPUTS = [
    ("nan", np.where(RNG.rand(40, 5) < 0.1, np.nan, X_OK), ValueError, "NaN"),
    ("inf", np.where(RNG.rand(40, 5) < 0.1, np.inf, X_OK), ValueError, "infinity"),
    ("empty", np.empty((0, 5)), ValueError, "0 sample"),
    ("no features", np.empty((40, 0)), ValueError, "0 feature"),
    ("one sample", X_OK[:1], ValueError, "1 sample"),
    ("complex", X_OK + 1j, ValueError, "[Cc]omplex"),
    ("strings", np.array([["a", "b"]] * 10, dtype=object), ValueError, "string"),
    ("3-D", X_OK.reshape(40, 5, 1), ValueError, "3"),
    ("1-D", X_OK[:, 0], ValueError, "2D array"),
    ("beyond float32", X_OK * 1e300, ValueError, "float32"),
    # squares overflow float32 (1e20^2 > 3.4e38) though the values fit in it
    ("squares beyond float32", X_OK * 1e20, ValueError, "squares overflow float32"),
]


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize(
    "X, error, match",
    [case[1:] for case in BAD_FIT_INPUTS],
    ids=[case[0] for case in BAD_FIT_INPUTS],
)
def test_bad_input_at_fit_raises_a_clear_error(make, X, error, match):
    with pytest.raises(error, match=match):
        _fit(make, X)


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize("method", ["transform", "score_samples", "score"])
def test_bad_input_after_fit_raises_a_clear_error(make, method):
    est = _fit(make, X_OK)
    func = getattr(est, method)
    with pytest.raises(ValueError, match="NaN"):
        func(np.where(RNG.rand(10, 5) < 0.2, np.nan, X_OK[:10]))
    with pytest.raises(ValueError, match="4 features"):
        func(X_OK[:, :4])
    with pytest.raises(ValueError, match="string"):
        func(np.array([["a"] * 5] * 3, dtype=object))


@pytest.mark.parametrize("make", ESTIMATORS)
def test_bad_codes_at_inverse_transform_and_bad_sample_sizes(make):
    est = _fit(make, X_OK)
    with pytest.raises(ValueError, match="expecting 2 features"):
        est.inverse_transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="infinity"):
        est.inverse_transform(np.full((3, 2), np.inf))
    with pytest.raises(ValueError, match="n_samples must be >= 1"):
        est.sample(0)
    with pytest.raises(TypeError, match="n_samples must be an int"):
        est.sample(2.5)


# Inputs that must simply work.
GOOD_INPUTS = [
    ("list", X_OK.tolist()),
    ("int", (X_OK * 10).astype(np.int64)),
    ("bool", X_OK > 0),
    ("float32", X_OK.astype(np.float32)),
    ("one feature", X_OK[:, :1]),
    ("two samples", X_OK[:2]),
    ("csr", sparse.csr_matrix(np.where(X_OK > 0.5, X_OK, 0.0))),
    ("csc", sparse.csc_matrix(np.where(X_OK > 0.5, X_OK, 0.0))),
    ("large values", X_OK * 1e15),  # squares still fit in float32
]


@pytest.mark.parametrize("make", ESTIMATORS)
@pytest.mark.parametrize(
    "X", [case[1] for case in GOOD_INPUTS], ids=[case[0] for case in GOOD_INPUTS]
)
def test_valid_inputs_of_many_kinds_work(make, X):
    try:
        est = _fit(make, X)
    except FloatingPointError as exc:
        # Huge values may make training diverge: that must be a clear error.
        assert "diverged at epoch" in str(exc)
        return
    Z = est.transform(X)
    assert Z.shape == (np.shape(X)[0], 2)
    assert np.all(np.isfinite(Z))
    assert est.inverse_transform(Z).shape == np.shape(X)
    assert (
        np.isfinite(est.score(X))
        or np.max(
            np.abs(np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=float))
        )
        > 1e20
    )


@pytest.mark.parametrize("make", ESTIMATORS)
def test_read_only_memmap_is_streamed_and_matches_in_memory(make, tmp_path):
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X_OK.shape)
    mm[:] = X_OK
    mm.flush()
    ro = np.memmap(path, dtype=np.float32, mode="r", shape=X_OK.shape)
    a, b = _fit(make, ro), _fit(make, X_OK.astype(np.float32))
    np.testing.assert_allclose(
        a.transform(ro), b.transform(X_OK.astype(np.float32)), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("make", ESTIMATORS)
def test_fit_leaves_global_torch_state_alone(make):
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    dtype = torch.get_default_dtype()
    est = _fit(make, X_OK)
    est.transform(X_OK)
    est.score(X_OK)
    est.sample(3, random_state=0)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads
    assert torch.get_default_dtype() == dtype


def _torch_threads_scorer(estimator, X, y=None):
    return float(torch.get_num_threads())


def test_grid_search_with_loky_workers_bounds_torch_threads():
    grid = GridSearchCV(
        MMDAutoencoder(**FAST),
        {"reg_weight": [0.1, 1.0]},
        cv=2,
        n_jobs=2,
        scoring=_torch_threads_scorer,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X_OK)
    # joblib's loky workers get cpu_count // n_jobs threads: no oversubscription.
    limit = max(1, (os.cpu_count() or 1) // 2)
    assert np.all(grid.cv_results_["mean_test_score"] <= limit)


def test_grid_search_on_a_dask_cluster_matches_local_run():
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_backend

    def search():
        return GridSearchCV(
            MMDAutoencoder(**{**FAST, "max_iter": 3}),
            {"reg_weight": [0.0, 1.0, 10.0]},
            cv=2,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        local = search().fit(X_OK)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        with parallel_backend("dask"):
            remote = search().fit(X_OK)
    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-5,
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_samples=st.integers(2, 30),
    n_features=st.integers(1, 6),
    n_components=st.integers(1, 3),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.bool_]),
    scale=st.sampled_from([1e-6, 1.0, 1e3]),
    seed=st.integers(0, 2**16),
    use_aae=st.booleans(),
)
def test_random_valid_inputs_never_crash(
    n_samples, n_features, n_components, dtype, scale, seed, use_aae
):
    X = np.random.RandomState(seed).normal(size=(n_samples, n_features)) * scale
    X = X.astype(dtype)
    make = ESTIMATORS[int(use_aae)]
    est = _fit(make, X, n_components=n_components, max_iter=1)
    Z = est.transform(X)
    assert Z.shape == (n_samples, n_components) and np.all(np.isfinite(Z))
    assert est.inverse_transform(Z).shape == X.shape
    assert np.all(np.isfinite(est.score_samples(X)))


def test_memmap_with_nan_is_rejected_chunk_by_chunk(tmp_path):
    path = tmp_path / "X.dat"
    mm = np.memmap(path, dtype=np.float64, mode="w+", shape=X_OK.shape)
    mm[:] = X_OK
    mm[-1, -1] = np.nan
    mm.flush()
    ro = np.memmap(path, dtype=np.float64, mode="r", shape=X_OK.shape)
    with pytest.raises(ValueError, match="NaN"):
        MMDAutoencoder(**FAST).fit(ro)
