"""
=======================================================
Ten percent of labels: each digit in its own component
=======================================================

The semi-supervised use of a mixture prior in the adversarial-autoencoder
paper (Makhzani et al. 2015, section 2.3 and Fig. 4): with
``fit(X, y)``, where ``y`` holds a class label for a few rows and ``-1`` for
the rest, the codes of the labelled rows of class ``k`` are matched to the
prior's component ``k`` and the unlabelled codes to the whole prior. With
enough structure in the data, the unlabelled rows of class ``k`` follow their
labelled neighbours, so the component a code lands in predicts its class.

- :class:`~sklearn_aae.MMDAutoencoder` compares each class's codes with its
  component by a kernel MMD whose prior-side terms are exact;
- :class:`~sklearn_aae.AdversarialAutoencoder` feeds the discriminator the
  code together with a one-hot of the label (plus an "unlabelled" slot), and
  pairs each row of class ``k`` with a prior sample of component ``k``.

Each also runs with ``encoder='mixture'``: the encoder says which component a
row belongs to (a softmax over the ring's components) and where in it (a
style that the component maps into itself, as the mixture maps a standard
normal draw), so each code lies in one component; the labelled rows'
component probabilities are also trained by their cross-entropy. Both use
``consistency_weight=0.1`` there (a row and the same row plus noise get
nearby codes), which carries the labels to the unlabelled rows nearby.

We keep 10% of the labels of the digits' training rows and measure, on a
held-out quarter, the share of codes that are most probable under their own
class's component, then generate each digit from its component with
``sample(n, y=k)``. ``benchmarks/bench_labels.py`` runs the same comparison
longer, over several seeds.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior
from sklearn_aae.priors import GaussianMixturePrior

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Keep 10% of the labels
# ----------------------
# ``-1`` marks an unlabelled row, as in :mod:`sklearn.semi_supervised`. The
# ring's components are numbered like the digits: label ``k`` is component
# ``k``, and ``classes_`` will be ``[0, ..., 9]``.
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
rng = np.random.RandomState(0)
y_partial = np.where(rng.rand(len(y_train)) < 0.1, y_train, -1)
print(f"{np.sum(y_partial >= 0)} labelled rows of {len(y_train)}")

# %%
# Fit both estimators
# -------------------
prior = GaussianMixturePrior.ring()
common = dict(n_components=2, prior=prior, max_iter=80, random_state=0)
estimators = {
    "MMDAutoencoder": MMDAutoencoder(**common),
    "AdversarialAutoencoder": AdversarialAutoencoder(**common),
    "MMDAutoencoder(encoder='mixture')": MMDAutoencoder(
        encoder="mixture", consistency_weight=0.1, **common
    ),
    "AdversarialAutoencoder(encoder='mixture')": AdversarialAutoencoder(
        encoder="mixture", consistency_weight=0.1, **common
    ),
}


def component_accuracy(Z, labels):
    """Share of codes most probable under their own class's component."""
    log_p = []
    for mean, cov in zip(prior.means, prior.covariances, strict=True):
        diff = Z - mean
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        log_p.append(-0.5 * maha - 0.5 * np.linalg.slogdet(cov)[1])
    return np.mean(np.argmax(np.stack(log_p, 1), 1) == labels)


for name, est in estimators.items():
    est.fit(X_train, y_partial)
    Z = est.transform(X_test)
    print(
        f"{name:<42} component accuracy {component_accuracy(Z, y_test):.3f}, "
        f"MMD^2 to the ring {mmd_to_prior(Z, prior):.4f}"
    )

# %%
# Held-out codes over the prior's density
# ---------------------------------------
# Each component is drawn in the colour of its digit; a held-out code in the
# right place has the colour of the component under it.
grid = np.linspace(-3, 3, 200)
G0, G1 = np.meshgrid(grid, grid)
density = np.exp(prior.log_prob(np.column_stack([G0.ravel(), G1.ravel()])))
density = density.reshape(G0.shape)

fig, axes = plt.subplots(2, 2, figsize=(10, 9.6), sharex=True, sharey=True)
cmap = plt.get_cmap("tab10")
for ax, (name, est) in zip(axes.ravel(), estimators.items(), strict=True):
    ax.contourf(G0, G1, density, levels=12, cmap="Greys")
    for k, mean in enumerate(prior.means):
        ax.annotate(str(k), 1.55 * mean, color=cmap(k), ha="center", va="center")
    Z = est.transform(X_test)
    sc = ax.scatter(Z[:, 0], Z[:, 1], c=y_test, cmap=cmap, s=5, vmin=-0.5, vmax=9.5)
    ax.set_title(name, fontsize=9)
    ax.set_aspect("equal")
for ax in axes[1]:
    ax.set_xlabel("code 0")
for ax in axes[:, 0]:
    ax.set_ylabel("code 1")
fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
plt.show()

# %%
# Generating the digit of each component
# --------------------------------------
# ``sample(n, y=k)`` decodes codes drawn from component ``k`` alone: with the
# labels in the regulariser, these are the rows of class ``k``. One row per
# digit, from the MMD autoencoder with the mixture encoder.
est = estimators["MMDAutoencoder(encoder='mixture')"]
fig, axes = plt.subplots(10, 8, figsize=(5, 6.4))
for k in range(10):
    rows = est.sample(8, random_state=k, y=k)
    for ax, row in zip(axes[k], rows, strict=True):
        ax.imshow(row.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_axis_off()
plt.show()
