"""scikit-learn's estimator checks over every public estimator, with fast settings,
and the signature each estimator copies from the base."""

import inspect
import sys

import pytest
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_estimators_data_not_an_array,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_inplace_ensure_writeable,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

import sklearn_aae
import sklearn_aae.priors
from sklearn_aae import (
    AdversarialAutoencoder,
    AdversarialAutoencoderClassifier,
    AdversarialAutoencoderClustering,
    AdversarialAutoencoderEmbedding,
    GaussianMixturePrior,
    LaplacePrior,
    MMDAutoencoder,
    MMDAutoencoderClassifier,
    MMDAutoencoderClustering,
    MMDAutoencoderEmbedding,
)
from sklearn_aae._base import BaseAutoencoder
from sklearn_aae._tasks import _AutoencoderClusteringMixin
from sklearn_aae.priors import (
    CategoricalPrior,
    ConditionalPrior,
    GaussianPrior,
    ProductPrior,
    SwissRollPrior,
)

# Small networks and few epochs: the checks test the contract, not the fit.
FAST = dict(hidden_layer_sizes=(8,), max_iter=5, batch_size=16, device="cpu")

ESTIMATORS = [
    MMDAutoencoder(**FAST),
    MMDAutoencoder(encoder="gaussian", **FAST),
    MMDAutoencoder(kernel="imq", prior=LaplacePrior(), **FAST),
    MMDAutoencoder(
        n_components=4,
        prior=ProductPrior(
            [("class", CategoricalPrior(2)), ("style", GaussianPrior(scale=0.5))]
        ),
        **FAST,
    ),
    MMDAutoencoder(prior=GaussianMixturePrior.ring(3), **FAST),
    # The style mapped into the ring's components (labels train the
    # responsibilities too).
    MMDAutoencoder(prior=GaussianMixturePrior.ring(3), encoder="mixture", **FAST),
    # A swiss roll cut into 3 segments: labels 0..2, sampled per segment.
    MMDAutoencoder(prior=SwissRollPrior(n_segments=3), **FAST),
    # Needs y (its tag says so): the checks pass labels.
    MMDAutoencoder(prior=ConditionalPrior(), **FAST),
    AdversarialAutoencoder(discriminator_hidden_layer_sizes=(8,), **FAST),
    AdversarialAutoencoder(
        prior=GaussianMixturePrior.ring(3),
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
    AdversarialAutoencoder(
        prior=GaussianMixturePrior.ring(3),
        encoder="mixture",
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
    AdversarialAutoencoder(
        prior=SwissRollPrior(n_segments=3),
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
    AdversarialAutoencoder(
        n_components=4,
        prior=ProductPrior(
            [("class", CategoricalPrior(2)), ("style", GaussianPrior(scale=0.5))]
        ),
        discriminator_blocks="separate",
        discriminator_hidden_layer_sizes=(8,),
        **FAST,
    ),
    AdversarialAutoencoder(
        encoder="gaussian", discriminator_hidden_layer_sizes=(8,), **FAST
    ),
    AdversarialAutoencoder(
        encoder="universal", discriminator_hidden_layer_sizes=(8,), **FAST
    ),
    # check_classifiers_train asks for training accuracy above 0.83 on blobs
    # after one fit: a full-weight cross-entropy and 10 epochs reach it.
    MMDAutoencoderClassifier(supervised_weight=1.0, **{**FAST, "max_iter": 10}),
    AdversarialAutoencoderClassifier(
        supervised_weight=1.0,
        discriminator_hidden_layer_sizes=(8,),
        **{**FAST, "max_iter": 10},
    ),
    MMDAutoencoderClustering(n_clusters=3, **FAST),
    AdversarialAutoencoderClustering(
        n_clusters=3, discriminator_hidden_layer_sizes=(8,), **FAST
    ),
    # check_clustering asks for an ARI above 0.4 on blobs: after 5 epochs the
    # map's heads (drawn at random, then spread) are still moving (0.40 at
    # seed 0), after 20 they are not (0.83 and 0.94).
    MMDAutoencoderEmbedding(n_clusters=3, **{**FAST, "max_iter": 20}),
    AdversarialAutoencoderEmbedding(
        n_clusters=3, discriminator_hidden_layer_sizes=(8,), **{**FAST, "max_iter": 20}
    ),
]


# These checks set n_components=1 before fitting; a product prior of two blocks
# needs a dimension for each (see ProductPrior's width rule), so the fit raises
# a ValueError naming the width. Every other check runs with the product prior.
_SETS_N_COMPONENTS_TO_1 = [
    "check_dont_overwrite_parameters",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
]


# These checks fit with y = arbitrary integers (up to 40): a mixture prior of K
# components gives labels their meaning, 0..K-1, and refuses the others with a
# ValueError naming them (other priors ignore y, as PCA does).
_FIT_WITH_LABELS_OUTSIDE_0_TO_K = [
    "check_dtype_object",
    "check_estimator_sparse_array",
    "check_estimator_sparse_matrix",
]


# The task estimators (a class block beside the style code).
_TASK_EXPECTED_FAILURES = {
    # The check fits with y = -1 as an ordinary class; -1 marks an unlabelled
    # row (scikit-learn's semi-supervised convention), so the estimator sees
    # fewer classes than the check expects.
    "check_classifiers_classes": "reads -1 as 'unlabelled', not as a class",
    # transform of a subset differs from the subset of transform by one float32
    # ulp (1.2e-7) on some rows: torch's CPU matrix product blocks rows by the
    # batch's row count, and the 12-column output of a class block beside the
    # style takes a different kernel than the 2-column code of the plain
    # estimators (which pass). Whether the kernels differ depends on the CPU and
    # the thread count: on some hosts the check passes (an xpass, not strict).
    "check_methods_subset_invariance": "float32 matmul blocking: 1 ulp apart",
}
_CLUSTERER_EXPECTED_FAILURES = {
    # The sparse checks read tags.classifier_tags.multi_class of any estimator
    # with predict_proba; a clusterer has no classifier tags (None), so the
    # check itself raises AttributeError after fit and predict on sparse input
    # succeeded (sparse input is tested in tests/test_tasks.py).
    "check_estimator_sparse_array": "the check reads classifier tags of a clusterer",
    "check_estimator_sparse_matrix": "the check reads classifier tags of a clusterer",
    "check_methods_subset_invariance": "float32 matmul blocking: 1 ulp apart",
}


def _expected_failed_checks(estimator):
    if isinstance(
        estimator, (MMDAutoencoderClassifier, AdversarialAutoencoderClassifier)
    ):
        return _TASK_EXPECTED_FAILURES
    if isinstance(estimator, _AutoencoderClusteringMixin):  # (the maps too)
        return _CLUSTERER_EXPECTED_FAILURES
    if isinstance(estimator.prior, ProductPrior):
        reason = "sets n_components=1, narrower than the product's two blocks"
        return dict.fromkeys(_SETS_N_COMPONENTS_TO_1, reason)
    if isinstance(estimator.prior, SwissRollPrior):
        return {
            **dict.fromkeys(
                _SETS_N_COMPONENTS_TO_1, "sets n_components=1; the roll is 2-D"
            ),
            **dict.fromkeys(
                _FIT_WITH_LABELS_OUTSIDE_0_TO_K,
                "fits with labels beyond the roll's segments 0..K-1",
            ),
            # These checks call score, which needs the prior's density; the
            # swiss roll has none, so score raises AttributeError (documented).
            **dict.fromkeys(
                [
                    "check_fit_score_takes_y",
                    "check_pipeline_consistency",
                    "check_dataframe_column_names_consistency",
                ],
                "score needs a prior density; the swiss roll has none",
            ),
        }
    if isinstance(estimator.prior, GaussianMixturePrior):
        return {
            **dict.fromkeys(
                _SETS_N_COMPONENTS_TO_1, "sets n_components=1; the ring is 2-D"
            ),
            **dict.fromkeys(
                _FIT_WITH_LABELS_OUTSIDE_0_TO_K,
                "fits with labels beyond the mixture's components 0..K-1",
            ),
        }
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def check_clusterer_data_not_an_array(name, estimator_orig):
    """scikit-learn's check_estimators_data_not_an_array, which it runs for
    classifiers and regressors only, for an estimator that predicts: fit and
    predict on an array-like and on a data frame give the array's predictions."""
    if not hasattr(estimator_orig, "predict"):
        return
    X, y = make_blobs(n_samples=60, centers=3, random_state=0)
    for obj_type in ["NotAnArray", "PandasDataframe"]:
        check_estimators_data_not_an_array(name, estimator_orig, X, y, obj_type)


# scikit-learn defines these checks but parametrize_with_checks does not yield
# them (its own suite runs them apart), so they run here over every estimator:
# transform and fit_transform follow set_output (a class that inherits its
# transform from a plain mixin escapes scikit-learn's wrapping unless the mixin
# is a TransformerMixin: the task estimators once did), get_feature_names_out
# raises NotFittedError before fit (it once returned names), the parameter
# constraints reject bad values, feature names are checked, fit leaves a
# read-only X alone, and the clusterers take array-likes and data frames.
# (check_classifiers_predictions and check_estimator_cloneable run inside the
# yielded checks; the sample-weight, regressor, outlier, multi-label, pairwise
# and polars checks do not apply.)
@pytest.mark.parametrize(
    "check",
    [
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
        check_param_validation,
        check_dataframe_column_names_consistency,
        check_get_feature_names_out_error,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_inplace_ensure_writeable,
        check_clusterer_data_not_an_array,
    ],
    ids=lambda check: check.__name__,
)
@pytest.mark.parametrize(
    "estimator", ESTIMATORS, ids=lambda est: "".join(repr(est).split())
)
# The checks themselves fit on arrays and transform data frames.
@pytest.mark.filterwarnings("ignore:X has feature names:UserWarning")
def test_checks_not_yielded_by_parametrize_with_checks(estimator, check, request):
    reason = _expected_failed_checks(estimator).get(check.__name__)
    if reason is not None:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
    check(type(estimator).__name__, clone(estimator))


# The public estimators built on BaseAutoencoder, from the package's namespace.
PUBLIC_ESTIMATORS = [
    obj
    for obj in (getattr(sklearn_aae, name) for name in sklearn_aae.__all__)
    if isinstance(obj, type) and issubclass(obj, BaseAutoencoder)
]
# Defaults that an estimator may set otherwise, with the reason.
OWN_DEFAULTS = {"reg_weight"}  # the penalties' scales differ (MMD^2 vs -log D)
# The task estimators train with tanh: measured better clusters and
# semi-supervised errors on digits than relu (see _tasks.py).
TASK_OWN_DEFAULTS = {"activation", "consistency_weight"}
TASKS = (
    MMDAutoencoderClassifier,
    AdversarialAutoencoderClassifier,
    MMDAutoencoderClustering,
    AdversarialAutoencoderClustering,
    MMDAutoencoderEmbedding,
    AdversarialAutoencoderEmbedding,
)


def test_public_estimators_are_found():
    assert {MMDAutoencoder, AdversarialAutoencoder} <= set(PUBLIC_ESTIMATORS)


# Every public class and function of the package and of sklearn_aae.priors.
PUBLIC_API = sorted(
    {
        (module.__name__, name)
        for module in (sklearn_aae, sklearn_aae.priors)
        for name in module.__all__
        if inspect.isclass(getattr(module, name))
        or inspect.isfunction(getattr(module, name))
    }
)


@pytest.mark.parametrize("module, name", PUBLIC_API, ids=lambda v: v)
def test_public_docstrings_have_an_example_and_classes_link_the_user_guide(
    module, name
):
    obj = getattr(sys.modules[module], name)
    doc = inspect.getdoc(obj)
    assert ">>> " in doc, f"{name}: no doctest example"
    if inspect.isclass(obj):
        assert "Read more in the :ref:`User Guide <" in doc, f"{name}: no link"


@pytest.mark.parametrize("cls", PUBLIC_ESTIMATORS, ids=lambda c: c.__name__)
def test_init_carries_the_base_parameters_in_the_base_order(cls):
    # scikit-learn needs each estimator's __init__ to spell out its parameters,
    # so the base's signature is copied into each: keep the copies honest.
    base = inspect.signature(BaseAutoencoder.__init__).parameters
    own = inspect.signature(cls.__init__).parameters
    assert [name for name in own if name in base] == list(base)
    own_defaults = OWN_DEFAULTS | (TASK_OWN_DEFAULTS if cls in TASKS else set())
    if cls in (AdversarialAutoencoderClustering, AdversarialAutoencoderEmbedding):
        # The game keeps its training loss moving: measured on digits, 50
        # epochs of patience partition better than 15 (see _tasks.py).
        own_defaults = own_defaults | {"n_iter_no_change"}
    for name, param in base.items():
        assert own[name].kind == param.kind, name
        if name not in own_defaults:
            assert own[name].default == param.default, name
    # ... and hands every one of them to the base (get_params sees them all).
    est = cls()
    assert set(base) - {"self"} <= set(est.get_params())
    for name in set(base) - {"self"} - own_defaults:
        assert getattr(est, name) == base[name].default, name
