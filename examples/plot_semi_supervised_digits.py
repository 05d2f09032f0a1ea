"""
=====================================================================
Digits from a few labels, digits without labels, and style vs content
=====================================================================

The adversarial-autoencoder paper's sections 5 and 6 as scikit-learn
estimators. The encoder outputs class probabilities (a softmax over the
classes) beside a 2-D style code; the decoder reconstructs the digit from
both. :class:`~sklearn_aae.MMDAutoencoderClassifier` pulls every code to the
product prior ``Cat(10) x N(0, 0.1^2 I)`` with a closed-form MMD and adds a
cross-entropy on the few labelled rows; :class:`~sklearn_aae.MMDAutoencoderClustering`
does the same with no labels, and its clusters are its most probable heads.

We compare, on a held-out quarter of the digits:

- the classifier with 3 and 10 labels per class against
  :class:`~sklearn.semi_supervised.LabelSpreading` and an SVC on the labelled
  rows only;
- the clusterer against :class:`~sklearn.cluster.KMeans` and
  :class:`~sklearn.mixture.GaussianMixture` (both inductive, like ours) and
  :class:`~sklearn.cluster.SpectralClustering` (transductive);
- and we draw every digit in the same eight styles: ``sample(8,
  random_state=0, y=k)`` keeps the styles and changes the class.

One seed and fewer epochs than ``benchmarks/bench_tasks.py``, which runs both
flavours (MMD and adversarial) over five seeds with 3 and 10 labels per class
and reports the means and spreads.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.semi_supervised import LabelSpreading
from sklearn.svm import SVC

from sklearn_aae import MMDAutoencoderClassifier, MMDAutoencoderClustering

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Keep 3 or 10 labels per class
# -----------------------------
# ``-1`` marks an unlabelled row, as in :mod:`sklearn.semi_supervised`.
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)


def keep_labels(n_per_class, seed=0):
    rng = np.random.RandomState(seed)
    y_semi = np.full_like(y_train, -1)
    for k in range(10):
        keep = rng.choice(np.flatnonzero(y_train == k), n_per_class, replace=False)
        y_semi[keep] = k
    return y_semi


# %%
# Semi-supervised classification
# ------------------------------
# 30 and 100 labelled rows of 1,347.
for n_per_class in (3, 10):
    y_semi = keep_labels(n_per_class)
    labelled = y_semi >= 0
    clf = MMDAutoencoderClassifier(max_iter=150, random_state=0)
    clf.fit(X_train, y_semi)
    errors = {
        "MMDAutoencoderClassifier": 1 - clf.score(X_test, y_test),
        "LabelSpreading (rbf)": 1
        - LabelSpreading().fit(X_train, y_semi).score(X_test, y_test),
        "SVC, labelled rows only": 1
        - SVC().fit(X_train[labelled], y_semi[labelled]).score(X_test, y_test),
    }
    print(f"{labelled.sum()} labels:")
    for name, error in errors.items():
        print(f"  {name:28s} held-out error {error:.3f}")

# %%
# ``predict_proba`` is the encoder's class block and ``transform`` the style.
print(clf.predict_proba(X_test[:3]).round(2))
print(clf.transform(X_test[:3]).round(3))

# %%
# Clustering without labels
# -------------------------
# ``predict`` is inductive: held-out rows are encoded, not re-clustered.
km = MMDAutoencoderClustering(n_clusters=10, max_iter=150, random_state=0)
km.fit(X_train)
ari = {
    "MMDAutoencoderClustering": adjusted_rand_score(y_test, km.predict(X_test)),
    "KMeans": adjusted_rand_score(
        y_test, KMeans(10, n_init=10, random_state=0).fit(X_train).predict(X_test)
    ),
    "GaussianMixture": adjusted_rand_score(
        y_test,
        GaussianMixture(10, reg_covar=1e-3, random_state=0)
        .fit(X_train)
        .predict(X_test),
    ),
    # Spectral clustering has no predict: it clusters the training and
    # held-out rows together (transductive), an easier task.
    "SpectralClustering (transd.)": adjusted_rand_score(
        y_test,
        SpectralClustering(
            10, affinity="nearest_neighbors", random_state=0
        ).fit_predict(np.vstack([X_train, X_test]))[len(X_train) :],
    ),
}
for name, value in ari.items():
    print(f"{name:30s} held-out ARI {value:.3f}")

# %%
# Style and content
# -----------------
# The same ``random_state`` draws the same eight styles for every class: each
# row of the figure is one digit, each column one style.
fig, axes = plt.subplots(10, 8, figsize=(6, 7.5))
for k in range(10):
    rows = clf.sample(8, random_state=0, y=k)
    for j, ax in enumerate(axes[k]):
        ax.imshow(rows[j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[k, 0].set_ylabel(str(k), rotation=0, labelpad=10)
fig.suptitle("sample(8, random_state=0, y=k): one class per row, one style per column")
plt.tight_layout()
plt.show()
