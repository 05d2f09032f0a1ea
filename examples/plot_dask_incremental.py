"""
=============================================
Training on a Dask array with dask-ml
=============================================

Data that do not fit in memory, or that already live in a Dask array, can
train an autoencoder block by block: ``dask_ml.wrappers.Incremental`` calls
the estimator's ``partial_fit`` on each block of the array in turn (one
epoch per block), and each call to ``Incremental.partial_fit`` is one pass
over the array. The fitted model then transforms and scores a Dask array
block by block, on the cluster, without gathering it.

Here a lazily built Dask array (no block exists before a task computes it)
trains an :class:`~sklearn_aae.MMDAutoencoder` for three passes, and the
result is compared with an in-memory ``fit`` of three epochs on the same
rows: the MMD² of held-out codes to the prior and the held-out
reconstruction error.

The cluster below runs its two workers as **threads** of this process, so
that the example starts in a second and runs as a plain script (worker
*processes* need an ``if __name__ == "__main__":`` guard in a script); the
array is small so that the example runs in seconds. With worker processes,
a memory limit per worker and an array four times that limit,
``benchmarks/bench_dask.py`` runs the same recipe: its table is in the user
guide's section on Dask.
"""

import warnings

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
from dask_ml.wrappers import Incremental, ParallelPostFit
from distributed import Client, LocalCluster
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import MMDAutoencoder, mmd_to_prior

warnings.filterwarnings("ignore", category=ConvergenceWarning)

# %%
# A lazily built Dask array
# -------------------------
# Each block is made by a task from its own seed: a 2-D latent through a
# fixed nonlinear map into 64 features, plus noise. Building the array
# computes nothing.
N_BLOCKS, BLOCK_ROWS, N_FEATURES = 8, 10_000, 64
mixing = np.random.default_rng(0).normal(size=(2, 16))
loadings = np.random.default_rng(1).normal(size=(16, N_FEATURES)) / 4


def make_block(seed, n_rows):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_rows, 2))
    return np.tanh(z @ mixing) @ loadings + 0.1 * rng.standard_normal(
        (n_rows, N_FEATURES)
    )


X = da.concatenate(
    [
        da.from_delayed(
            dask.delayed(make_block)(seed, BLOCK_ROWS),
            shape=(BLOCK_ROWS, N_FEATURES),
            dtype=np.float64,
        )
        for seed in range(N_BLOCKS)
    ]
)
X_test = make_block(1000, 5000)  # held out, in memory
print(X)

# %%
# Training block by block
# -----------------------
# ``Incremental.fit`` would start afresh (it clones the estimator) and make
# one pass; ``Incremental.partial_fit`` continues, so a loop of it makes the
# passes. ``random_state`` (a ``RandomState`` instance) shuffles the order of
# the blocks differently at every pass. Between blocks the model may move
# from one worker to another: its saved state carries the optimiser's
# moments, so training goes on exactly as in one process.
cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False)
client = Client(cluster)

estimator = MMDAutoencoder(
    n_components=2, hidden_layer_sizes=(64,), batch_size=256, random_state=0
)
incremental = Incremental(estimator, random_state=np.random.RandomState(0))
N_PASSES = 3
for _ in range(N_PASSES):
    incremental.partial_fit(X)
on_dask = incremental.estimator_
print(f"epochs (one per block): {on_dask.n_iter_}")

# %%
# Transform and score on the cluster
# ----------------------------------
# ``ParallelPostFit`` transforms a Dask array block by block. (With dask-ml
# 2025.1 the lazy result declares the input's 64 columns although its blocks
# have 2: compute it, or use ``X.map_blocks(est.transform, chunks=...)`` as
# below to keep working lazily on the codes.) The log-likelihood of a Dask
# array is the mean of ``score_samples`` over its blocks.
X_test_dask = da.from_array(X_test, chunks=(1000, N_FEATURES))
Z_test = ParallelPostFit(on_dask).transform(X_test_dask).compute()
print("held-out codes:", Z_test.shape)

codes = X.map_blocks(on_dask.transform, chunks=(X.chunks[0], (2,)), dtype=X.dtype)
mean, std = dask.compute(codes.mean(axis=0), codes.std(axis=0))
print(f"codes of the whole array: mean {mean.round(2)}, std {std.round(2)}")
log_likelihood = X_test_dask.map_blocks(
    on_dask.score_samples, drop_axis=1, dtype=np.float64
).mean()
print(f"held-out log-likelihood per row: {log_likelihood.compute():.1f}")

client.close()
cluster.close()

# %%
# Against an in-memory fit of as many epochs
# ------------------------------------------
# The same rows in memory, ``fit`` with ``max_iter`` = the passes: each of its
# epochs shuffles all the rows, where a pass of ``Incremental`` shuffles the
# blocks and the rows within each block.
in_memory = MMDAutoencoder(
    n_components=2,
    hidden_layer_sizes=(64,),
    batch_size=256,
    max_iter=N_PASSES,
    random_state=0,
).fit(X.compute())

results = {}
for name, model in {"Incremental on Dask": on_dask, "fit in memory": in_memory}.items():
    Z = model.transform(X_test)
    recon = np.mean((X_test - model.inverse_transform(Z)) ** 2)
    results[name] = Z
    print(
        f"{name:<20} held-out MMD^2 to N(0, I) {mmd_to_prior(Z):.4f}   "
        f"reconstruction error {recon:.4f}"
    )

# %%
# The held-out codes of both models
# ---------------------------------
fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharex=True, sharey=True)
for ax, (name, Z) in zip(axes, results.items(), strict=True):
    ax.scatter(Z[:, 0], Z[:, 1], s=3, alpha=0.4)
    ax.set_title(name)
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
