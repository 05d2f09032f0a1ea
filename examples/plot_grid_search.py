"""
======================================
Choosing ``reg_weight`` by grid search
======================================

``reg_weight`` trades reconstruction against matching the prior. Both
estimators are ordinary scikit-learn estimators, so
:class:`~sklearn.model_selection.GridSearchCV` tunes it inside a
:class:`~sklearn.pipeline.Pipeline`. We try two criteria:

1. the estimator's own ``score``: the mean log-likelihood of held-out rows
   under the fitted generative model (prior, decoder, Gaussian noise), which
   does not depend on ``reg_weight`` itself, so models fitted with different
   weights compare fairly;
2. a downstream task: the accuracy of a k-nearest-neighbours classifier on the
   codes.

To keep the example fast we use 600 digits, 3 folds, small networks and 60
epochs; ``n_jobs=-1`` would fit the candidates in parallel with joblib.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from sklearn_aae import MMDAutoencoder

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X, y = X[:600], y[:600]

autoencoder = MMDAutoencoder(
    n_components=2,
    hidden_layer_sizes=(64, 32),
    batch_size=64,
    max_iter=60,
    random_state=0,
)
reg_weights = [0.0, 0.1, 1.0, 10.0, 100.0]

# %%
# Criterion 1: the estimator's own score
# --------------------------------------
# A pipeline that ends with the autoencoder scores with ``MMDAutoencoder.score``.
pipe = Pipeline([("scale", MinMaxScaler()), ("aae", autoencoder)])
search_ll = GridSearchCV(pipe, {"aae__reg_weight": reg_weights}, cv=3)
search_ll.fit(X)
print("best by log-likelihood:", search_ll.best_params_)

# %%
# Criterion 2: a classifier on the codes
# --------------------------------------
# Add a kNN classifier after the autoencoder and pass the labels: the pipeline
# then scores by classification accuracy. The autoencoder still ignores ``y``.
pipe_knn = Pipeline(
    [("scale", MinMaxScaler()), ("aae", autoencoder), ("knn", KNeighborsClassifier())]
)
search_knn = GridSearchCV(pipe_knn, {"aae__reg_weight": reg_weights}, cv=3)
search_knn.fit(X, y)
print("best by kNN accuracy:", search_knn.best_params_)

# %%
# The cross-validation curves
# ---------------------------
# Mean and standard deviation over the folds for each ``reg_weight``. With
# ``reg_weight=0`` (a plain autoencoder) the codes go wherever the decoder likes,
# away from the prior, so the generative model (prior, then decoder) explains
# held-out data worse; a moderate weight gives both a better generative model
# and more useful codes, and very large weights squeeze the codes into the
# prior's shape at the expense of the reconstruction.
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
positions = np.arange(len(reg_weights))
for ax, search, label in [
    (axes[0], search_ll, "held-out log-likelihood per row"),
    (axes[1], search_knn, "held-out kNN accuracy"),
]:
    mean = search.cv_results_["mean_test_score"]
    std = search.cv_results_["std_test_score"]
    ax.errorbar(positions, mean, yerr=std, marker="o", capsize=3)
    best = search.best_index_
    ax.plot(positions[best], mean[best], "r*", markersize=14, label="best")
    ax.set_xticks(positions, [str(w) for w in reg_weights])
    ax.set_xlabel("reg_weight")
    ax.set_ylabel(label)
    ax.legend()
fig.suptitle("GridSearchCV over MMDAutoencoder's reg_weight (3 folds)")
fig.tight_layout()
plt.show()
