"""
================================================
The ring prior of the adversarial autoencoder
================================================

Makhzani et al. (2015) shaped the codes of their adversarial autoencoder like a
mixture of ten elongated Gaussians on a ring, one per digit class in the
semi-supervised setting; here, unsupervised, the codes are only asked to fill
the ring.
:meth:`~sklearn_aae.priors.GaussianMixturePrior.ring` builds that prior. We
train both estimators on it:

- :class:`~sklearn_aae.AdversarialAutoencoder`: a discriminator on the codes
  (default ``reg_weight=0.01``);
- :class:`~sklearn_aae.MMDAutoencoder`: a kernel MMD whose prior-side terms are
  exact for a Gaussian mixture (default ``reg_weight=0.3``).

The two ``reg_weight`` defaults differ by a factor of 30 because the two
penalties have different sizes and gradients; see the user guide.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior
from sklearn_aae.priors import GaussianMixturePrior

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Fit both estimators on the ring
# -------------------------------
X, y = load_digits(return_X_y=True)
X = X / 16.0
prior = GaussianMixturePrior.ring()
common = dict(
    n_components=2,
    prior=prior,
    hidden_layer_sizes=(128, 64),
    batch_size=32,  # many small steps: the adversarial game needs them
    max_iter=30,
    random_state=0,
)
estimators = {
    "AdversarialAutoencoder": AdversarialAutoencoder(**common),
    "MMDAutoencoder": MMDAutoencoder(**common),
}
for name, est in estimators.items():
    est.fit(X)
    mmd2 = mmd_to_prior(est.transform(X), prior)
    print(f"{name:<24} MMD^2 of the codes to the ring: {mmd2:.4f}")

# %%
# Codes over the prior's density
# ------------------------------
# ``prior.log_prob`` on a grid gives the density; the codes of all digits are
# drawn on top, coloured by class.
grid = np.linspace(-3, 3, 200)
G0, G1 = np.meshgrid(grid, grid)
density = np.exp(prior.log_prob(np.column_stack([G0.ravel(), G1.ravel()])))
density = density.reshape(G0.shape)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharex=True, sharey=True)
for ax, (name, est) in zip(axes, estimators.items(), strict=True):
    ax.contourf(G0, G1, density, levels=12, cmap="Greys")
    Z = est.transform(X)
    sc = ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
    ax.set_title(name)
    ax.set_aspect("equal")
    ax.set_xlabel("code 0")
axes[0].set_ylabel("code 1")
fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
plt.show()

# %%
# Digits sampled from the prior
# -----------------------------
# ``est.sample`` draws codes from the prior and decodes them: a generative
# model. Where the codes fill the ring well, the samples look like digits.
n_rows, n_cols = 6, 8
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
for ax, (name, est) in zip(axes, estimators.items(), strict=True):
    images = est.sample(n_rows * n_cols, random_state=0).reshape(n_rows, n_cols, 8, 8)
    mosaic = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=0.0)
    mosaic = mosaic.transpose(0, 2, 1, 3).reshape(n_rows * 10, n_cols * 10)
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"{name}: est.sample(48)")
    ax.axis("off")
plt.show()
