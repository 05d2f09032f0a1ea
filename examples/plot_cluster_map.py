"""
=================================================
A 2-D map of digits from cluster heads and style
=================================================

The adversarial-autoencoder paper's dimensionality reduction (Makhzani et al.
2015, section 7) with the closed-form MMD:
:class:`~sklearn_aae.MMDAutoencoderEmbedding` encodes each digit as a softmax
over 10 heads, ``y``, beside a 2-D style ``z``; every head has a learned
position ``W[k]`` in the plane, and the digit's point in the map is ``y W +
z``. The decoder reads that point, so any point of the map decodes to an
image, and a penalty keeps every two heads at least ``head_distance`` apart,
so the clusters lie apart.

We fit on three quarters of the digits and map the held-out quarter (the map
is inductive: new rows are encoded), beside
:class:`~sklearn.manifold.Isomap`, another inductive map, and score both by
how well a 5-nearest-neighbour classifier fitted on the training rows' map
labels the held-out rows. ``benchmarks/bench_embedding.py`` runs five seeds,
both flavours, PCA, UMAP and t-SNE.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import Isomap
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from sklearn_aae import MMDAutoencoderEmbedding

warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X = X / 16.0
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# Fit the map and an Isomap
# -------------------------
# Fewer epochs than the defaults (300), to keep this page quick.
emb = MMDAutoencoderEmbedding(n_clusters=10, max_iter=100, random_state=0)
emb.fit(X_train)
isomap = Isomap(n_components=2).fit(X_train)

maps = {"MMDAutoencoderEmbedding": emb, "Isomap": isomap}
for name, model in maps.items():
    knn = KNeighborsClassifier(5).fit(model.transform(X_train), y_train)
    accuracy = knn.score(model.transform(X_test), y_test)
    print(f"{name:>24}: held-out 5-NN accuracy in the map {accuracy:.3f}")

# %%
# The held-out digits in both maps
# --------------------------------
# Each held-out digit is a dot coloured by its label. In the
# autoencoder's map the crosses are the found clusters' heads
# (``head_positions_``); each cluster is spread around its head by the style.
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, (name, model) in zip(axes, maps.items(), strict=True):
    M = model.transform(X_test)
    for digit in range(10):
        rows = M[y_test == digit]
        ax.scatter(*rows.T, s=8, color=plt.cm.tab10(digit), label=str(digit))
    ax.set_title(name)
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].scatter(*emb.head_positions_.T, marker="x", s=80, c="k")
axes[1].legend(markerscale=2, fontsize=8, loc="best")
fig.tight_layout()

# %%
# Decoding the map
# ----------------
# ``inverse_transform`` decodes any point of the map: a grid over the map's
# range shows each cluster's digit around its head, its styles in the
# cluster's spread, and blends between heads.
M = emb.transform(X_train)
lo, hi = np.percentile(M, [2, 98], axis=0)
n = 12
gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(hi[1], lo[1], n))
images = emb.inverse_transform(np.column_stack([gx.ravel(), gy.ravel()]))
images = images.reshape(n, n, 8, 8)
canvas = np.zeros((10 * n, 10 * n))  # each 8 x 8 digit in a 10 x 10 cell
for i in range(n):
    for j in range(n):
        canvas[10 * i + 1 : 10 * i + 9, 10 * j + 1 : 10 * j + 9] = images[i, j]
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
ax.set_title("inverse_transform over a grid of the map")
ax.set_xticks([])
ax.set_yticks([])
plt.show()
