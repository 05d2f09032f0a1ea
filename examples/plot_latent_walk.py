"""
==========================
Walking the latent space
==========================

Because the codes of an :class:`~sklearn_aae.MMDAutoencoder` follow the prior,
every point of the prior's bulk decodes to something that looks like data. Here
the prior is the standard normal in two dimensions; we lay a regular grid over
it at evenly spaced quantiles (from 2.5% to 97.5% in each coordinate) and decode
every grid point with ``inverse_transform``. Neighbouring codes decode to
similar digits, and the digits morph smoothly into each other along the grid.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import MMDAutoencoder

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# Fit on the digits
# -----------------
X, y = load_digits(return_X_y=True)
X = X / 16.0
est = MMDAutoencoder(
    n_components=2, hidden_layer_sizes=(128, 64), max_iter=100, random_state=0
).fit(X)
Z = est.transform(X)

# %%
# A grid of codes, decoded
# ------------------------
# The grid's coordinates are quantiles of N(0, 1), so each cell holds about the
# same prior mass.
n = 15
q = norm.ppf(np.linspace(0.025, 0.975, n))
codes = np.array([[a, b] for b in q[::-1] for a in q])  # rows top to bottom
images = est.inverse_transform(codes).reshape(n, n, 8, 8)
images = np.pad(images, ((0, 0), (0, 0), (1, 1), (1, 1)))  # white margins
mosaic = images.transpose(0, 2, 1, 3).reshape(n * 10, n * 10)

fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 5.2))
ax0.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
ax0.scatter(codes[:, 0], codes[:, 1], marker="+", c="k", s=12, linewidths=0.6)
ax0.set_aspect("equal")
ax0.set_title("codes of the digits (coloured by class)\nand the grid (+)")
ax0.set_xlabel("code 0")
ax0.set_ylabel("code 1")
ax1.imshow(mosaic, cmap="gray_r", vmin=0, vmax=1, extent=(0, n, 0, n))
ax1.set_title("est.inverse_transform(grid)")
ax1.axis("off")
plt.show()

# %%
# A straight line between two digits
# ----------------------------------
# Interpolating between the codes of a "0" and a "1" and decoding each point.
z0, z1 = Z[np.flatnonzero(y == 0)[0]], Z[np.flatnonzero(y == 1)[0]]
t = np.linspace(0, 1, 10)[:, None]
path = est.inverse_transform((1 - t) * z0 + t * z1)
fig, axes = plt.subplots(1, 10, figsize=(10, 1.4))
for ax, image, ti in zip(axes, path, t.ravel(), strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"t={ti:.1f}", fontsize=8)
    ax.axis("off")
plt.show()
