"""Behaviour shared by every autoencoder built on BaseAutoencoder.

Each test is parametrized over ``ESTIMATOR_FACTORIES``: a new estimator is
covered by adding one line there. The factories build tiny, fast models; a test
overrides what it needs (``make(max_iter=5)``).
"""

import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from _settings import ESTIMATOR_FACTORIES, interrupt_at_epoch
from scipy import sparse
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils._testing import assert_allclose, assert_array_equal

from sklearn_aae import GaussianPrior, LaplacePrior
from sklearn_aae import _base as base_module
from sklearn_aae import _data as data_module
from sklearn_aae import _devices as devices_module

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


ENCODERS = ["deterministic", "gaussian"]

digits = load_digits()
X_DIGITS = digits.data[:200] / 16.0  # (200, 64) in [0, 1]
Y_DIGITS = digits.target[:200]


def _factory_id(make):
    return make.func.__name__


parametrize_factories = pytest.mark.parametrize(
    "make", ESTIMATOR_FACTORIES, ids=_factory_id
)


def _prefix(est):
    return type(est).__name__.lower()


def _parameters(est):
    modules = [est.encoder_, est.decoder_]
    return [p for m in modules for p in m.parameters()]


def _all_finite(est):
    return all(bool(torch.isfinite(p).all()) for p in _parameters(est))


# --------------------------------------------------------------------- scoring
@parametrize_factories
def test_score_samples_matches_linear_gaussian_marginal(make):
    # With affine maps and a standard-normal prior the generative model is
    # probabilistic PCA: x ~ N(b, W W^T + noise_variance_ I). The importance
    # sampler's proposal is then the exact posterior (mixed with 1/8 prior), so
    # the estimate is tight: the remaining error is Monte Carlo noise of the
    # defensive mixture and float32 round-off. Measured on this problem over 5
    # seeds, for both estimators: max per-row error <= 0.038 nats, error of the
    # mean <= 0.004 nats.
    rng = np.random.RandomState(0)
    n_samples, n_components, n_features = 200, 2, 5
    X = rng.normal(size=(n_samples, n_components)) @ rng.normal(
        size=(n_components, n_features)
    )
    X += 0.3 * rng.normal(size=X.shape)
    est = make(n_components=n_components, hidden_layer_sizes=(), max_iter=30).fit(X)

    W = est.decoder_[-1].weight.detach().double().numpy()
    b = est.decoder_[-1].bias.detach().double().numpy()
    cov = W @ W.T + est.noise_variance_ * np.eye(n_features)
    expected = multivariate_normal(mean=b, cov=cov).logpdf(X)

    scores = est.score_samples(X)
    assert scores.shape == (n_samples,)
    assert scores.dtype == np.float64
    assert_allclose(scores, expected, rtol=0, atol=0.05)
    assert est.score(X) == pytest.approx(expected.mean(), abs=0.01)


@parametrize_factories
def test_score_samples_is_a_function_of_each_row(make):
    # Common random numbers from a fixed seed: a row's score does not depend on
    # the other rows of X, nor on how many times score_samples is called.
    est = make().fit(X_DIGITS)
    all_rows = est.score_samples(X_DIGITS)
    assert_allclose(est.score_samples(X_DIGITS[:7]), all_rows[:7], rtol=1e-5)
    assert_array_equal(est.score_samples(X_DIGITS), all_rows)


@parametrize_factories
def test_score_higher_for_training_like_data(make):
    est = make(max_iter=10).fit(X_DIGITS[:150])
    held_out = X_DIGITS[150:]
    garbage = np.random.RandomState(0).uniform(5.0, 10.0, size=held_out.shape)
    # Measured over seeds 0-2: a gap of 15,091-16,803 nats (AAE) and
    # 24,857-25,560 (MMD); asserted: 10,000.
    assert est.score(held_out) > est.score(garbage) + 10_000


@parametrize_factories
def test_score_does_not_depend_on_reg_weight(make):
    # By construction the score is the log-likelihood of the fitted generative
    # model (encoder, decoder, noise_variance_, prior): reg_weight shapes the
    # fit but is not a term of the score. So changing reg_weight on a fitted
    # model leaves its score unchanged, which is what makes GridSearchCV over
    # reg_weight with the default scorer a fair comparison.
    est = make(reg_weight=1.0).fit(X_DIGITS)
    score = est.score_samples(X_DIGITS)
    for reg_weight in [0.0, 100.0]:
        est.set_params(reg_weight=reg_weight)
        assert_array_equal(est.score_samples(X_DIGITS), score)


# ---------------------------------------------------------- model selection
@parametrize_factories
def test_pipeline_in_grid_search_over_reg_weight(make):
    est = make()
    pipe = Pipeline(
        [
            ("standardscaler", StandardScaler()),
            (_prefix(est), est),
            ("logisticregression", LogisticRegression(max_iter=200)),
        ]
    )
    grid = GridSearchCV(pipe, {f"{_prefix(est)}__reg_weight": [0.1, 10.0]}, cv=2).fit(
        X_DIGITS, Y_DIGITS
    )
    means = grid.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(means))
    assert grid.best_params_ == grid.cv_results_["params"][np.argmax(means)]
    assert grid.predict(X_DIGITS[:5]).shape == (5,)


@parametrize_factories
def test_grid_search_over_reg_weight_with_own_score(make):
    grid = GridSearchCV(make(), {"reg_weight": [0.0, 1.0]}, cv=2).fit(X_DIGITS)
    means = grid.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(means))
    assert grid.best_estimator_.reg_weight == [0.0, 1.0][np.argmax(means)]
    assert grid.transform(X_DIGITS).shape == (X_DIGITS.shape[0], 2)


@parametrize_factories
def test_grid_search_over_nested_prior_params(make):
    grid = GridSearchCV(
        make(prior=GaussianPrior()), {"prior__scale": [0.5, 2.0]}, cv=2
    ).fit(X_DIGITS)
    best = grid.best_estimator_
    means = grid.cv_results_["mean_test_score"]
    assert best.prior.scale == [0.5, 2.0][np.argmax(means)]
    assert best.prior_.scale == best.prior.scale
    assert [p["prior__scale"] for p in grid.cv_results_["params"]] == [0.5, 2.0]


# ------------------------------------------------- clone, pickle, randomness
@parametrize_factories
def test_clone_refit_gives_identical_transform(make):
    est = make().fit(X_DIGITS)
    cloned = clone(est)
    assert not hasattr(cloned, "encoder_")
    assert_array_equal(
        cloned.fit(X_DIGITS).transform(X_DIGITS), est.transform(X_DIGITS)
    )


@parametrize_factories
@pytest.mark.parametrize("encoder", ENCODERS)
def test_pickle_round_trip(make, encoder):
    est = make(encoder=encoder).fit(X_DIGITS)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.transform(X_DIGITS), est.transform(X_DIGITS))
    Z = est.transform(X_DIGITS[:5])
    assert_array_equal(restored.inverse_transform(Z), est.inverse_transform(Z))
    assert_array_equal(
        restored.sample(3, random_state=0), est.sample(3, random_state=0)
    )
    assert_array_equal(
        restored.score_samples(X_DIGITS[:5]), est.score_samples(X_DIGITS[:5])
    )


@parametrize_factories
def test_joblib_round_trip(make, tmp_path):
    est = make().fit(X_DIGITS)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    restored = joblib.load(path)
    assert_array_equal(restored.transform(X_DIGITS), est.transform(X_DIGITS))


@parametrize_factories
def test_pickled_state_holds_no_torch_object(make):
    # Weights travel as NumPy arrays and are rebuilt into modules on loading
    # (what lets a GPU-trained model load anywhere, and skops trust the file).
    est = make().fit(X_DIGITS)
    est.partial_fit(X_DIGITS)  # leaves an optimiser behind
    state = est.__getstate__()
    assert "_optimizer" not in state

    def torch_objects(value):
        if isinstance(value, dict):
            return [t for v in value.values() for t in torch_objects(v)]
        if isinstance(value, list | tuple):
            return [t for v in value for t in torch_objects(v)]
        return [value] if type(value).__module__.startswith("torch") else []

    assert torch_objects(state) == []
    assert isinstance(state["device_"], str)
    restored = pickle.loads(pickle.dumps(est))
    tensors = [t for m in restored._modules().values() for t in m.state_dict().values()]
    assert tensors
    assert all(t.device.type == "cpu" for t in tensors)


@parametrize_factories
def test_pickling_does_not_modify_the_estimator(make):
    # Pickling between partial_fit calls must not change the training.
    reference = make()
    reference.partial_fit(X_DIGITS)
    reference.partial_fit(X_DIGITS)

    est = make()
    est.partial_fit(X_DIGITS)
    encoder = est.encoder_
    pickle.dumps(est)
    assert est.encoder_ is encoder
    assert est.__dict__.get("_optimizer") is not None
    est.partial_fit(X_DIGITS)
    assert_array_equal(est.transform(X_DIGITS), reference.transform(X_DIGITS))


@parametrize_factories
@pytest.mark.parametrize("encoder", ENCODERS)
def test_same_random_state_is_reproducible(make, encoder):
    est1 = make(encoder=encoder, random_state=42).fit(X_DIGITS)
    est2 = make(encoder=encoder, random_state=42).fit(X_DIGITS)
    assert_array_equal(est1.transform(X_DIGITS), est2.transform(X_DIGITS))
    assert est1.loss_curve_ == est2.loss_curve_
    assert est1.history_ == est2.history_
    assert est1.noise_variance_ == est2.noise_variance_


@parametrize_factories
def test_different_random_states_differ(make):
    Z1 = make(random_state=0).fit_transform(X_DIGITS)
    Z2 = make(random_state=1).fit_transform(X_DIGITS)
    assert not np.allclose(Z1, Z2)


@parametrize_factories
def test_global_torch_state_is_unchanged(make):
    rng_state = torch.get_rng_state()
    dtype = torch.get_default_dtype()
    n_threads = torch.get_num_threads()

    est = make(random_state=None).fit(X_DIGITS)
    est.partial_fit(X_DIGITS)
    Z = est.transform(X_DIGITS)
    est.inverse_transform(Z)
    est.score(X_DIGITS[:10])
    est.sample(5)
    est.sample(5, random_state=0)

    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_default_dtype() == dtype
    assert torch.get_num_threads() == n_threads
    assert torch.is_grad_enabled()


# ------------------------------------------------------- dtypes and pandas
@parametrize_factories
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_and_inverse_transform_preserve_dtype(make, dtype):
    X = X_DIGITS.astype(dtype)
    est = make().fit(X)
    Z = est.transform(X)
    assert Z.dtype == dtype
    assert Z.shape == (X.shape[0], 2)
    X_back = est.inverse_transform(Z)
    assert X_back.dtype == dtype
    assert X_back.shape == X.shape


@parametrize_factories
def test_float32_and_float64_inputs_agree(make):
    est = make().fit(X_DIGITS)
    Z64 = est.transform(X_DIGITS)
    Z32 = est.transform(X_DIGITS.astype(np.float32))
    assert_allclose(Z32, Z64, rtol=1e-5, atol=1e-6)


@parametrize_factories
def test_pandas_input_and_output(make):
    pd = pytest.importorskip("pandas")
    columns = [f"pixel{i}" for i in range(X_DIGITS.shape[1])]
    index = np.arange(X_DIGITS.shape[0]) + 1000
    df = pd.DataFrame(X_DIGITS, columns=columns, index=index)

    est = make().set_output(transform="pandas").fit(df)
    assert_array_equal(est.feature_names_in_, columns)
    Z = est.transform(df)
    assert isinstance(Z, pd.DataFrame)
    assert list(Z.columns) == [f"{_prefix(est)}0", f"{_prefix(est)}1"]
    assert_array_equal(Z.index, index)
    assert_array_equal(Z.to_numpy(), make().fit(X_DIGITS).transform(X_DIGITS))


@pytest.fixture
def torch_warns_always():
    """torch warns once per process about read-only NumPy arrays: always here."""
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    yield
    torch.set_warn_always(before)


@parametrize_factories
def test_read_only_input_reaches_torch_without_its_writable_warning(
    make, torch_warns_always
):
    # A read-only float32 array (joblib's shared memory, np.load with
    # mmap_mode='r' copied, a frozen cache) is fit without a view, and the
    # pandas frame of set_output (whose values are read-only under pandas'
    # copy-on-write) is decoded without one: torch would warn that writing
    # to its tensor is undefined behaviour.
    pd = pytest.importorskip("pandas")
    X = X_DIGITS.astype(np.float32)
    X.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make().fit(X).partial_fit(X)
        est.set_output(transform="pandas")
        Z = est.transform(X)
        assert isinstance(Z, pd.DataFrame)
        X_back = est.inverse_transform(Z)
    assert_allclose(X_back, est.inverse_transform(Z.to_numpy().copy()))
    assert not X.flags.writeable


@parametrize_factories
def test_get_feature_names_out(make):
    est = make(n_components=3).fit(X_DIGITS)
    assert_array_equal(
        est.get_feature_names_out(), [f"{_prefix(est)}{i}" for i in range(3)]
    )


@parametrize_factories
def test_fitted_model_reads_its_width_from_the_fit_not_from_parameters_set_since(
    make,
):
    est = make(n_components=3, max_iter=2).fit(X_DIGITS)
    Z = est.transform(X_DIGITS[:5])
    est.set_params(n_components=5)
    assert est.transform(X_DIGITS[:5]).shape == (5, 3)
    assert len(est.get_feature_names_out()) == 3
    assert est.inverse_transform(Z).shape == (5, X_DIGITS.shape[1])


@parametrize_factories
def test_fitted_model_samples_and_scores_with_its_fitted_width_after_set_params(
    make,
):
    # sample and score_samples drew codes of the new n_components from the
    # fitted prior: a shape error in the decoder or the likelihood.
    est = make(max_iter=2).fit(X_DIGITS)
    expected = est.sample(3, random_state=0), est.score_samples(X_DIGITS[:5])
    est.set_params(n_components=3)
    assert_array_equal(est.sample(3, random_state=0), expected[0])
    assert_array_equal(est.score_samples(X_DIGITS[:5]), expected[1])
    del est._architecture["code_width"]  # a state written before it was kept
    assert_array_equal(est.sample(3, random_state=0), expected[0])


# --------------------------------------------------------------- bad input
@parametrize_factories
@pytest.mark.parametrize(
    "value, match", [(np.nan, "Input X contains NaN"), (np.inf, "infinity")]
)
def test_fit_rejects_non_finite_input(make, value, match):
    X = X_DIGITS.copy()
    X[3, 5] = value
    with pytest.raises(ValueError, match=match):
        make().fit(X)


@parametrize_factories
@pytest.mark.parametrize(
    "value, match", [(np.nan, "Input X contains NaN"), (-np.inf, "infinity")]
)
def test_transform_and_score_reject_non_finite_input(make, value, match):
    est = make().fit(X_DIGITS)
    X = X_DIGITS.copy()
    X[3, 5] = value
    with pytest.raises(ValueError, match=match):
        est.transform(X)
    with pytest.raises(ValueError, match=match):
        est.score_samples(X)


@parametrize_factories
def test_inverse_transform_rejects_non_finite_codes(make):
    est = make().fit(X_DIGITS)
    with pytest.raises(ValueError, match="NaN"):
        est.inverse_transform([[np.nan, 0.0]])


@parametrize_factories
def test_transform_rejects_wrong_number_of_features(make):
    est = make().fit(X_DIGITS)
    msg = f"X has 3 features, but {type(est).__name__} is expecting 64 features"
    with pytest.raises(ValueError, match=msg):
        est.transform(X_DIGITS[:, :3])
    with pytest.raises(ValueError, match=msg):
        est.score(X_DIGITS[:, :3])


@parametrize_factories
def test_inverse_transform_rejects_wrong_number_of_features(make):
    est = make().fit(X_DIGITS)
    with pytest.raises(ValueError, match=r"Z has 3 features.*expecting 2 features"):
        est.inverse_transform(np.zeros((4, 3)))


@parametrize_factories
def test_prior_dimension_must_match_n_components(make):
    est = make(n_components=2, prior=GaussianPrior(loc=[0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match=r"dimension 3.*n_components=2"):
        est.fit(X_DIGITS)


@parametrize_factories
def test_user_prior_dimension_must_match_n_components(make):
    class WrongDimPrior:
        def sample(self, n_samples, random_state=None):
            return np.zeros((n_samples, 5))

    with pytest.raises(ValueError, match=r"expected \(2, 2\) for n_components=2"):
        make(prior=WrongDimPrior()).fit(X_DIGITS)


@parametrize_factories
@pytest.mark.parametrize(
    "X",
    [
        np.array([["a", "b"], ["c", "d"], ["e", "f"]]),
        np.array([["a", 1.0], ["b", 2.0], ["c", 3.0]], dtype=object),
    ],
    ids=["str", "object"],
)
def test_fit_rejects_non_numeric_input(make, X):
    with pytest.raises(ValueError, match="could not convert string to float"):
        make().fit(X)


@parametrize_factories
@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "'n_components' parameter"),
        ({"reg_weight": -1.0}, "'reg_weight' parameter"),
        ({"activation": "swish"}, "'activation' parameter"),
        ({"encoder": "vae"}, "'encoder' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"max_iter": 0}, "'max_iter' parameter"),
        ({"learning_rate_init": 0.0}, "'learning_rate_init' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"n_iter_no_change": 0}, "'n_iter_no_change' parameter"),
        ({"tol": -1.0}, "'tol' parameter"),
        ({"prior": "normal"}, "'prior' parameter"),
        ({"device": 0}, "'device' parameter"),
        ({"early_stopping": "yes"}, "'early_stopping' parameter"),
        ({"consistency_weight": -0.1}, "'consistency_weight' parameter"),
        ({"consistency_noise": 0.0}, "'consistency_noise' parameter"),
    ],
)
def test_invalid_parameters_raise(make, params, match):
    with pytest.raises(InvalidParameterError, match=match):
        make(**params).fit(X_DIGITS)


def _code_shift_under_noise(est, X, noise, seed=0):
    """Mean distance between the codes of rows and of the same rows plus noise."""
    e = np.random.RandomState(seed).normal(scale=noise, size=X.shape)
    return float(np.linalg.norm(est.transform(X) - est.transform(X + e), axis=1).mean())


@parametrize_factories
def test_consistency_brings_the_codes_of_nearby_rows_together(make):
    fits = {}
    for w in (0.0, 1.0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits[w] = make(max_iter=20, consistency_weight=w).fit(X_DIGITS)
    shift = {w: _code_shift_under_noise(est, X_DIGITS, 0.2) for w, est in fits.items()}
    assert shift[1.0] < 0.5 * shift[0.0], shift
    assert "consistency" not in fits[0.0].history_


@parametrize_factories
def test_consistency_is_part_of_the_objective_and_deterministic(make):
    params = dict(consistency_weight=0.5, consistency_noise=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = make(**params).fit(X_DIGITS)
        again = make(**params).fit(X_DIGITS)
    h = est.history_
    expected = (
        np.array(h["reconstruction"])
        + est.reg_weight * np.array(h["regularization"])
        + 0.5 * np.array(h["consistency"])
    )
    np.testing.assert_allclose(est.loss_curve_, expected, rtol=1e-5)
    # The noise comes from the fit's own generator.
    np.testing.assert_array_equal(est.transform(X_DIGITS), again.transform(X_DIGITS))


@parametrize_factories
@pytest.mark.parametrize("hidden_layer_sizes", [(0,), (8, -1), (8, 2.5)])
def test_invalid_hidden_layer_sizes_raise(make, hidden_layer_sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be a sequence"):
        make(hidden_layer_sizes=hidden_layer_sizes).fit(X_DIGITS)


@parametrize_factories
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_raises(make):
    with pytest.raises(ValueError, match="CUDA is not available"):
        make(device="cuda").fit(X_DIGITS)


@parametrize_factories
def test_device_accepts_torch_device(make):
    est = make(device=torch.device("cpu")).fit(X_DIGITS)
    assert est.device_ == torch.device("cpu")
    reference = make(device="cpu").fit(X_DIGITS)
    assert_allclose(est.transform(X_DIGITS), reference.transform(X_DIGITS))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_resolve_device_auto_is_cpu_without_cuda():
    assert devices_module.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        devices_module.resolve_device(torch.device("cuda", 1))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_resolve_device_pins_cuda_index_and_rejects_missing_gpu():
    current = torch.cuda.current_device()
    assert devices_module.resolve_device("cuda") == torch.device("cuda", current)
    assert devices_module.resolve_device("auto") == torch.device("cuda", current)
    missing = torch.cuda.device_count()
    with pytest.raises(ValueError, match="CUDA device"):
        devices_module.resolve_device(f"cuda:{missing}")


@pytest.mark.parametrize(
    "capability, precision, warns",
    [
        ((7, 5), "bfloat16", True),
        ((8, 0), "bfloat16", False),
        ((7, 0), "float32", False),
    ],
)
def test_bfloat16_on_gpu_without_native_support_warns(
    monkeypatch, capability, precision, warns
):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device: capability)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        devices_module.warn_if_bfloat16_is_emulated(precision, torch.device("cuda", 0))
        devices_module.warn_if_bfloat16_is_emulated(precision, torch.device("cpu"))
    messages = [str(w.message) for w in caught]
    assert len(messages) == int(warns)
    if warns:
        assert "no native bfloat16" in messages[0] and "cuda:0" in messages[0]


@parametrize_factories
def test_invalid_device_raises(make):
    with pytest.raises(ValueError, match="not a valid torch device"):
        make(device="banana").fit(X_DIGITS)


@parametrize_factories
def test_single_sample_raises(make):
    with pytest.raises(ValueError, match="a minimum of 2 is required"):
        make().fit(X_DIGITS[:1])


@parametrize_factories
def test_too_small_validation_set_raises(make):
    est = make(early_stopping=True, validation_fraction=0.1)
    with pytest.raises(ValueError, match="validation set is too small"):
        est.fit(X_DIGITS[:5])


@parametrize_factories
def test_unfitted_transform_raises(make):
    with pytest.raises(ValueError, match="not fitted yet"):
        make().transform(X_DIGITS)


# -------------------------------------------- fit, partial_fit, warm_start
@parametrize_factories
def test_partial_fit_runs_one_epoch(make):
    est = make(max_iter=5)
    est.partial_fit(X_DIGITS)
    assert est.n_iter_ == 1
    assert len(est.loss_curve_) == 1
    est.partial_fit(X_DIGITS)
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    assert all(len(v) == 2 for v in est.history_.values())


@parametrize_factories
def test_partial_fit_after_fit_continues(make):
    est = make(max_iter=3).fit(X_DIGITS)
    curve = list(est.loss_curve_)
    Z_before = est.transform(X_DIGITS)
    est.partial_fit(X_DIGITS)
    assert est.n_iter_ == 4
    assert est.loss_curve_[:3] == curve
    assert not np.allclose(est.transform(X_DIGITS), Z_before)


@parametrize_factories
def test_warm_start_extends_training(make):
    est = make(max_iter=3, warm_start=True).fit(X_DIGITS)
    curve = list(est.loss_curve_)
    est.fit(X_DIGITS)
    assert est.n_iter_ == 6
    assert len(est.loss_curve_) == 6
    assert est.loss_curve_[:3] == curve
    assert all(len(v) == 6 for v in est.history_.values())


@parametrize_factories
def test_fit_without_warm_start_starts_afresh(make):
    est = make(max_iter=3).fit(X_DIGITS)
    Z = est.transform(X_DIGITS)
    est.fit(X_DIGITS)
    assert est.n_iter_ == 3
    assert len(est.loss_curve_) == 3
    assert_array_equal(est.transform(X_DIGITS), Z)


@parametrize_factories
def test_refused_warm_start_leaves_the_fitted_model_unchanged(make):
    # The refusal came after prior_ was replaced by the new parameters':
    # the fitted model then sampled and scored with another prior.
    est = make(warm_start=True, max_iter=2).fit(X_DIGITS)
    expected = est.sample(3, random_state=0), est.score_samples(X_DIGITS[:5])
    est.set_params(hidden_layer_sizes=(4,), prior=LaplacePrior())
    with pytest.raises(ValueError, match="hidden_layer_sizes changed"):
        est.fit(X_DIGITS)
    assert isinstance(est.prior_, GaussianPrior)
    assert_array_equal(est.sample(3, random_state=0), expected[0])
    assert_array_equal(est.score_samples(X_DIGITS[:5]), expected[1])


@parametrize_factories
def test_warm_start_rejects_changed_n_components(make):
    est = make(warm_start=True).fit(X_DIGITS)
    est.set_params(n_components=3)
    with pytest.raises(ValueError, match="n_components changed from 2 to 3"):
        est.fit(X_DIGITS)


@parametrize_factories
@pytest.mark.parametrize(
    "before, after, match",
    [
        (
            {"encoder": "gaussian"},
            {"encoder": "deterministic"},
            "encoder changed from 'gaussian' to 'deterministic'",
        ),
        (
            {"encoder": "deterministic"},
            {"encoder": "universal"},
            "encoder changed from 'deterministic' to 'universal'",
        ),
        (
            {"hidden_layer_sizes": (16,)},
            {"hidden_layer_sizes": (16, 8)},
            r"hidden_layer_sizes changed from \(16,\) to \(16, 8\)",
        ),
        ({"activation": "relu"}, {"activation": "tanh"}, "activation changed"),
    ],
)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_warm_start_rejects_changed_architecture(make, before, after, match, method):
    est = make(warm_start=True, **before).fit(X_DIGITS)
    est.set_params(**after)
    with pytest.raises(ValueError, match=match + ".*same architecture"):
        getattr(est, method)(X_DIGITS)
    # The same widths written another way are the same architecture.
    est.set_params(**{**before, "hidden_layer_sizes": [16]})
    getattr(est, method)(X_DIGITS)


@parametrize_factories
def test_warm_start_can_turn_on_early_stopping(make):
    est = make(max_iter=2, warm_start=True).fit(X_DIGITS)
    est.set_params(early_stopping=True)
    est.fit(X_DIGITS)
    assert est.n_iter_ == 4
    assert len(est.validation_loss_curve_) >= 2


@parametrize_factories
def test_early_stopping_with_batch_size_one(make):
    est = make(batch_size=1, max_iter=2, reg_weight=0.0, early_stopping=True)
    est.fit(X_DIGITS[:20])
    assert np.all(np.isfinite(est.validation_loss_curve_))


@parametrize_factories
def test_history_has_loss_components(make):
    est = make(max_iter=4, reg_weight=2.0).fit(X_DIGITS)
    # Estimators may record more diagnostics (the AAE its discriminator's).
    assert {"reconstruction", "regularization"} <= set(est.history_)
    assert all(len(v) == 4 for v in est.history_.values())
    assert_allclose(
        est.loss_curve_,
        np.add(
            est.history_["reconstruction"],
            2.0 * np.asarray(est.history_["regularization"]),
        ),
        rtol=1e-5,
    )


@parametrize_factories
def test_reg_weight_zero_trains_on_reconstruction_only(make):
    est = make(max_iter=2, reg_weight=0.0).fit(X_DIGITS)
    assert_allclose(est.loss_curve_, est.history_["reconstruction"], rtol=1e-6)


@parametrize_factories
def test_convergence_warning_when_max_iter_reached(make):
    with pytest.warns(ConvergenceWarning, match=r"maximum iterations \(2\)"):
        make(max_iter=2).fit(X_DIGITS)


@parametrize_factories
def test_stops_on_training_loss_plateau_without_warning(make, recwarn):
    # With an unreachable tol every epoch after the first counts as "no
    # improvement"; training stops after n_iter_no_change + 1 of them.
    est = make(max_iter=50, tol=1e9, n_iter_no_change=2).fit(X_DIGITS)
    assert est.n_iter_ == 4
    assert not [w for w in recwarn if issubclass(w.category, ConvergenceWarning)]


@parametrize_factories
def test_verbose_prints_epoch_losses(make, capsys):
    make(max_iter=2, verbose=1).fit(X_DIGITS)
    out = capsys.readouterr().out
    for epoch in (1, 2):
        line = re.search(rf"^Epoch {epoch}: (.*)$", out, flags=re.MULTILINE)
        assert line is not None, out
        for key in ("loss", "reconstruction", "regularization"):
            assert re.search(rf"\b{key} = [-+0-9.e]+", line.group(1)), line.group(1)
    assert "Epoch 3" not in out


@parametrize_factories
def test_silent_by_default(make, capsys):
    make(max_iter=2).fit(X_DIGITS)
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------- early stopping
@parametrize_factories
def test_early_stopping_records_validation_loss(make):
    est = make(max_iter=4, early_stopping=True, validation_fraction=0.2).fit(X_DIGITS)
    assert len(est.validation_loss_curve_) == est.n_iter_ == 4
    assert np.all(np.isfinite(est.validation_loss_curve_))
    assert est.best_loss_ == min(est.validation_loss_curve_)

    no_es = make(max_iter=4).fit(X_DIGITS)
    assert no_es.validation_loss_curve_ is None


@parametrize_factories
def test_early_stopping_restores_best_weights(make, monkeypatch):
    # Script the validation losses so that epoch 2 is the best one, record the
    # codes the encoder gives after each epoch, and check that the fitted
    # estimator transforms with epoch 2's weights.
    est = make(max_iter=20, early_stopping=True, n_iter_no_change=2, tol=0.0)
    scripted = iter([5.0, 1.0, 3.0, 4.0, 2.0, 6.0, 7.0, 8.0])
    X_t = torch.as_tensor(X_DIGITS, dtype=torch.float32)
    codes_after_epoch = []
    cls = type(est)
    run_epoch = cls._run_epoch

    def recording_run_epoch(self, *args, **kwargs):
        record = run_epoch(self, *args, **kwargs)
        with torch.no_grad():
            codes_after_epoch.append(self.encoder_.mean(X_t).numpy().copy())
        return record

    monkeypatch.setattr(cls, "_run_epoch", recording_run_epoch)
    monkeypatch.setattr(cls, "_validation_loss", lambda self, *a: next(scripted))
    est.fit(X_DIGITS)

    # epoch 2 is best; epochs 3, 4, 5 do not improve on it -> stop after 5.
    assert est.n_iter_ == 5
    assert est.validation_loss_curve_ == [5.0, 1.0, 3.0, 4.0, 2.0]
    assert est.best_loss_ == 1.0
    Z = est.transform(X_DIGITS.astype(np.float32))
    assert_array_equal(Z, codes_after_epoch[1])
    assert not np.allclose(Z, codes_after_epoch[-1])


# ----------------------------------------------------- divergence, Ctrl-C
@parametrize_factories
def test_diverging_training_raises_and_keeps_finite_weights(make):
    X = digits.data[:200]  # unscaled, in [0, 16]
    est = make(learning_rate_init=1e6, max_iter=10)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+"):
        est.fit(X)
    assert _all_finite(est)
    assert np.all(np.isfinite(est.transform(X)))
    assert np.isfinite(est.noise_variance_)
    assert len(est.loss_curve_) == est.n_iter_
    assert np.all(np.isfinite(est.loss_curve_))


@parametrize_factories
def test_diverging_epoch_is_named_and_previous_weights_kept(make, monkeypatch):
    # A non-finite epoch loss at epoch 3 (scripted) must restore epoch 2.
    est = make(max_iter=10)
    cls = type(est)
    run_epoch = cls._run_epoch
    X_t = torch.as_tensor(X_DIGITS, dtype=torch.float32)
    codes = []

    def run_epoch_nan_at_3(self, *args, **kwargs):
        record = run_epoch(self, *args, **kwargs)
        with torch.no_grad():
            codes.append(self.encoder_.mean(X_t).numpy().copy())
        if len(codes) == 3:
            record["loss"] = float("nan")
        return record

    monkeypatch.setattr(cls, "_run_epoch", run_epoch_nan_at_3)
    with pytest.raises(FloatingPointError, match="epoch 3.*weights of epoch 2"):
        est.fit(X_DIGITS)
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == 2
    assert_array_equal(est.transform(X_DIGITS.astype(np.float32)), codes[1])


@parametrize_factories
def test_non_finite_weights_are_never_kept(make, monkeypatch):
    est = make(max_iter=10)
    cls = type(est)
    run_epoch = cls._run_epoch
    calls = []

    def run_epoch_poisoning_weights(self, *args, **kwargs):
        record = run_epoch(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            # As an overflowing gradient in the last step would: the losses of
            # the epoch were finite, the weights after it are not.
            with torch.no_grad():
                self.decoder_[-1].weight.fill_(float("nan"))
        return record

    monkeypatch.setattr(cls, "_run_epoch", run_epoch_poisoning_weights)
    with pytest.raises(FloatingPointError, match="diverged"):
        est.fit(X_DIGITS)
    assert _all_finite(est)


@parametrize_factories
def test_keyboard_interrupt_leaves_usable_model(make, monkeypatch):
    est = make(max_iter=10)
    interrupt_at_epoch(monkeypatch, type(est), 2)
    with pytest.warns(UserWarning, match="interrupted by the user after 1 epochs"):
        est.fit(X_DIGITS)
    assert est.n_iter_ == 1
    assert len(est.loss_curve_) == 1
    assert np.isfinite(est.noise_variance_)
    Z = est.transform(X_DIGITS)
    assert Z.shape == (X_DIGITS.shape[0], 2)
    assert np.all(np.isfinite(Z))
    assert np.all(np.isfinite(est.score_samples(X_DIGITS[:5])))
    assert est.sample(2, random_state=0).shape == (2, X_DIGITS.shape[1])


# ------------------------------------------------ sparse and memory-mapped
@parametrize_factories
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_matches_dense(make, fmt):
    X_sparse = sparse.csr_matrix(X_DIGITS).asformat(fmt)
    dense = make().fit(X_DIGITS)
    est = make().fit(X_sparse)
    # The same batches in another row order: equal up to float32 summation.
    assert_allclose(est.loss_curve_, dense.loss_curve_, rtol=1e-4)
    assert_allclose(est.transform(X_sparse), dense.transform(X_DIGITS), atol=1e-4)
    assert_allclose(
        est.transform(X_sparse), est.transform(X_DIGITS), rtol=1e-6, atol=1e-6
    )
    assert_allclose(
        est.score_samples(X_sparse[:10]),
        dense.score_samples(X_DIGITS[:10]),
        rtol=1e-3,
    )


@parametrize_factories
def test_memmap_input_is_streamed_and_matches_array(make, tmp_path, monkeypatch):
    path = tmp_path / "X.dat"
    writable = np.memmap(path, dtype=np.float64, mode="w+", shape=X_DIGITS.shape)
    writable[:] = X_DIGITS
    writable.flush()
    del writable
    X_mm = np.memmap(path, dtype=np.float64, mode="r", shape=X_DIGITS.shape)

    streamed = []
    data_cls = data_module._Data

    class SpyData(data_cls):
        def __init__(self, X, device, **kwargs):
            super().__init__(X, device, **kwargs)
            streamed.append(self.streamed)

    monkeypatch.setattr(base_module, "_Data", SpyData)
    est = make().fit(X_mm)
    Z_mm = est.transform(X_mm)
    assert streamed == [True, True]

    in_memory = make().fit(np.array(X_mm))
    assert streamed[-1] is False
    assert_allclose(est.loss_curve_, in_memory.loss_curve_, rtol=1e-4)
    assert_allclose(Z_mm, in_memory.transform(X_DIGITS), atol=1e-4)
    assert_allclose(Z_mm, est.transform(X_DIGITS), rtol=1e-6, atol=1e-6)


@parametrize_factories
def test_inference_streams_dense_input_chunk_by_chunk(make, monkeypatch):
    # transform and score_samples never convert (or move to the device) the
    # whole input at once: float64 rows become float32 a chunk at a time.
    est = make().fit(X_DIGITS)
    Z_whole, scores_whole = est.transform(X_DIGITS), est.score_samples(X_DIGITS)
    sizes = []
    to_device = data_module._Data._rows_to_device

    def spy(self, rows):
        sizes.append(rows.shape[0])
        return to_device(self, rows)

    monkeypatch.setattr(data_module._Data, "_rows_to_device", spy)
    monkeypatch.setattr(data_module, "_INFERENCE_CHUNK", 100)
    Z = est.transform(X_DIGITS)
    assert sizes and max(sizes) == 100 and sum(sizes) == X_DIGITS.shape[0]
    assert_allclose(Z, Z_whole, rtol=1e-6, atol=1e-6)
    sizes.clear()
    scores = est.score_samples(X_DIGITS)
    assert sum(sizes) == X_DIGITS.shape[0]  # converted by the chunk, too
    assert_allclose(scores, scores_whole, rtol=1e-5)


# ------------------------------------------------------------------ sample
@parametrize_factories
def test_sample_shape_dtype_and_reproducibility(make):
    est = make().fit(X_DIGITS)
    X_new = est.sample(7, random_state=0)
    assert X_new.shape == (7, X_DIGITS.shape[1])
    assert X_new.dtype == np.float64
    assert_array_equal(est.sample(7, random_state=0), X_new)
    assert_array_equal(est.sample(7, random_state=np.random.RandomState(0)), X_new)
    assert not np.allclose(est.sample(7, random_state=1), X_new)
    assert est.sample().shape == (1, X_DIGITS.shape[1])


@parametrize_factories
@pytest.mark.parametrize(
    "n_samples, err, match",
    [(0, ValueError, "n_samples must be >= 1"), (2.5, TypeError, "must be an int")],
)
def test_sample_rejects_bad_n_samples(make, n_samples, err, match):
    est = make().fit(X_DIGITS)
    with pytest.raises(err, match=match):
        est.sample(n_samples)


@parametrize_factories
def test_sample_is_decoded_prior_draw(make):
    # sample decodes draws from the prior: with a prior concentrated at the
    # origin, every sample is the decoded origin.
    est = make(prior=GaussianPrior(scale=1e-6)).fit(X_DIGITS)
    X_new = est.sample(3, random_state=0)
    X_zero = est.inverse_transform(np.zeros((3, 2)))
    assert_allclose(X_new, X_zero, atol=1e-4)


# ------------------------------------------------------------------- precision
@parametrize_factories
@pytest.mark.parametrize("encoder", ENCODERS)
def test_bfloat16_precision_trains_like_float32(make, encoder):
    fits = {
        precision: make(precision=precision, encoder=encoder, max_iter=10).fit(X_DIGITS)
        for precision in ("float32", "bfloat16")
    }
    Z = fits["bfloat16"].transform(X_DIGITS)
    assert Z.dtype == np.float64 and np.all(np.isfinite(Z))
    assert all(p.dtype == torch.float32 for p in _parameters(fits["bfloat16"]))
    # Same training budget: final reconstruction losses measured within 1.5% of
    # each other over seeds 0-2 (0.5% for the deterministic encoder); asserted:
    # within 3%, and not identical (bfloat16 is used).
    recon = {k: est.history_["reconstruction"][-1] for k, est in fits.items()}
    assert recon["bfloat16"] == pytest.approx(recon["float32"], rel=0.03)
    assert recon["bfloat16"] != recon["float32"]


# ------------------------------------------------------------------- labels
class _LabelCheckingRegularizer(base_module._Regularizer):
    """A regulariser stub: each code must arrive with its own row's label.

    The estimator's encoder is frozen to copy X's first column, the row's
    index, into the code's first coordinate, and the label is that index.
    """

    def __init__(self):
        self.trained, self.evaluated = [], []

    @staticmethod
    def _ids(Z, y):
        assert y is not None
        ids = Z[:, 0].detach().to(torch.int64)
        assert_array_equal(y.cpu().numpy(), ids.cpu().numpy())
        return ids.cpu().numpy()

    def __call__(self, Z, y=None):
        self.trained.append(self._ids(Z, y))
        return {"regularization": Z.sum() * 0.0}

    def evaluate(self, Z, y=None):
        self.evaluated.append(self._ids(Z, y))
        return Z.sum() * 0.0


class _AnyLabelsPrior(GaussianPrior):
    """A standard normal that keeps labels of any number of classes (as a
    conditional prior would), so that they reach the regulariser."""

    def _n_classes(self):
        return "any"


def _label_checking(cls):
    """``cls`` whose regulariser is the stub and whose encoder copies the row id."""

    def _make_regularizer(self, tprior, generator):
        layer = self.encoder_[0]  # hidden_layer_sizes=(): one Linear
        with torch.no_grad():
            layer.weight.zero_()
            layer.weight[0, 0] = 1.0
            layer.bias.zero_()
        layer.requires_grad_(False)
        self.stub_ = _LabelCheckingRegularizer()
        return self.stub_

    return type(
        f"LabelChecking{cls.__name__}", (cls,), {"_make_regularizer": _make_regularizer}
    )


@parametrize_factories
@pytest.mark.parametrize("kind", ["dense", "csr", "memmap"])
def test_labels_travel_aligned_with_their_rows(make, kind, tmp_path):
    n = 120
    X = np.random.RandomState(0).uniform(size=(n, 6))
    X[:, 0] = np.arange(n)  # the row id, exact in float32
    if kind == "csr":
        X = sparse.csr_matrix(X)
    elif kind == "memmap":
        mm = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        X = np.memmap(tmp_path / "X.dat", dtype=np.float64, mode="r", shape=X.shape)
    base = make(hidden_layer_sizes=(), batch_size=16, max_iter=2)
    est = _label_checking(type(base))(
        **{
            **base.get_params(),
            "prior": _AnyLabelsPrior(),
            "early_stopping": True,
            "validation_fraction": 0.25,
        }
    )
    est.fit(X, np.arange(n))  # label = row id (classes_ = arange(n): code = id)

    stub = est.stub_  # (each batch was checked as it came)
    # Each epoch sees every training row once, validation the other rows.
    epochs = [
        stub.trained[: len(stub.trained) // 2],
        stub.trained[len(stub.trained) // 2 :],
    ]
    train_ids = [np.sort(np.concatenate(batches)) for batches in epochs]
    assert_array_equal(train_ids[0], train_ids[1])
    val_ids = np.concatenate(stub.evaluated[: len(stub.evaluated) // 2])
    assert_array_equal(np.sort(np.concatenate([train_ids[0], val_ids])), np.arange(n))
    # Every kind trains on the batches in their random order (streamed rows
    # are read sorted, then put back in the batch's order).
    unsorted = [b for b in stub.trained if np.any(np.diff(b) < 0)]
    assert unsorted


@parametrize_factories
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_labels_must_have_one_entry_per_row(make, method):
    with pytest.raises(ValueError, match="y has 10 entries but X has 200 rows"):
        getattr(make(), method)(X_DIGITS, Y_DIGITS[:10])


@parametrize_factories
def test_labels_are_ignored_by_priors_without_classes(make):
    # Numeric or string labels (as a Pipeline passes them) change nothing with
    # a prior that gives labels no meaning (here the default standard normal).
    plain = make().fit(X_DIGITS)
    for y in (Y_DIGITS, Y_DIGITS.astype(str)):
        est = make().fit(X_DIGITS, y)
        assert est.loss_curve_ == plain.loss_curve_
        assert_array_equal(est.transform(X_DIGITS), plain.transform(X_DIGITS))
        assert not hasattr(est, "classes_")
