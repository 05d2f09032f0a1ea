"""A Dask array several times a worker's memory, through dask-ml, against in-memory fit.

The data: rows of ``--features`` float64 features (default 784, an
image-sized row), as many as make ``--ratio`` (default 4) times a worker's
memory limit (``--rows`` sets them instead), built lazily block by block
(``--block-rows``, default 4,096: 24.5 MiB) from a seed: a 2-D latent through a
fixed random ``tanh`` layer and a linear map, plus noise (one generating
process for every block, so every block is a sample of the same law).
Held out: 10,000 rows of another seed, in memory.

Dask: a ``distributed.LocalCluster`` of 2 worker processes, one thread each,
with ``--memory-limit`` per worker (default 1 GiB; a worker that has imported
torch and dask-ml holds about 470 MiB before any data). Before timing, every
worker imports the libraries. ``Incremental(MMDAutoencoder(...), random_state=...)`` is
called ``--passes`` times with ``partial_fit`` (one pass over the blocks, in a
new random order, per call); then the whole array is transformed block by
block on the cluster (``map_blocks(est.transform)``) and reduced to the codes'
mean and standard deviation, without gathering it. Peak memory per worker is
the peak resident set size of each worker process (``VmHWM`` of
``/proc/<pid>/status``: since the worker started, so torch's import is
included).

In memory: the same rows, materialised in this process, and
``MMDAutoencoder(...).fit`` with ``max_iter`` = the passes (same settings,
same seed); building the rows is timed apart (on Dask every pass builds its
blocks again, inside the timed passes). Quality, both: the held-out
reconstruction error (mean squared, per feature) and the MMD² of the held-out
codes to the prior
(``sklearn_aae.mmd_to_prior``); the spread of the MMD² over the held-out set's
4 quarters gives the measurement's noise (not the seed-to-seed noise of the
training, which this single run does not measure). Time per row: wall-clock
seconds of the training calls over rows x passes.

Run ``python benchmarks/bench_dask.py`` (a few minutes on 2 cores) or
``--quick`` (a 64 MiB array: smaller than a worker's limit, a smoke run).
"""

import argparse
import time
import warnings

import numpy as np

SEED = 20260611
N_LATENT, N_HIDDEN = 2, 32


def _mixing(n_features):
    """The fixed generating maps: latent -> tanh layer -> features."""
    rng = np.random.default_rng(SEED)
    A = rng.normal(size=(N_LATENT, N_HIDDEN))
    B = rng.normal(size=(N_HIDDEN, n_features)) / np.sqrt(N_HIDDEN)
    return A, B


def make_block(index, n_rows, n_features):
    """Block ``index`` of the data: float64, the same for a given index."""
    A, B = _mixing(n_features)
    rng = np.random.default_rng([SEED, index])
    z = rng.standard_normal((n_rows, N_LATENT))
    X = np.tanh(z @ A) @ B
    X += 0.1 * rng.standard_normal((n_rows, n_features))
    return X


def lazy_array(n_rows, n_features, block_rows):
    """The data as a Dask array, one delayed block per chunk (nothing computed)."""
    import dask
    import dask.array as da

    blocks = []
    for i, start in enumerate(range(0, n_rows, block_rows)):
        n = min(block_rows, n_rows - start)
        blocks.append(
            da.from_delayed(
                dask.delayed(make_block)(i, n, n_features),
                shape=(n, n_features),
                dtype=np.float64,
            )
        )
    return da.concatenate(blocks)


def _peak_rss_mib():
    """This process's peak resident set size (MiB) since it started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _import_libraries():
    import dask_ml.wrappers  # noqa: F401
    import torch  # noqa: F401

    import sklearn_aae  # noqa: F401


def _estimator(args):
    from sklearn_aae import MMDAutoencoder

    return MMDAutoencoder(
        n_components=2,
        hidden_layer_sizes=(64,),
        batch_size=256,
        device="cpu",
        random_state=0,
    )


def _quality(est, X_test):
    from sklearn_aae import mmd_to_prior

    Z = est.transform(X_test)
    recon = float(np.mean((X_test - est.inverse_transform(Z)) ** 2))
    mmd2 = mmd_to_prior(Z, est.prior_)
    quarters = [mmd_to_prior(q, est.prior_) for q in np.array_split(Z, 4)]
    return recon, mmd2, float(np.std(quarters))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--ratio", type=float, default=4.0)
    parser.add_argument("--features", type=int, default=784)
    parser.add_argument("--block-rows", type=int, default=4096)
    parser.add_argument("--memory-limit", default="1GiB")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.passes = 10_240, 2

    import dask
    import torch
    from dask.utils import parse_bytes
    from dask_ml.wrappers import Incremental
    from distributed import Client, LocalCluster

    torch.set_num_threads(args.threads)
    if args.rows is None:
        args.rows = int(
            np.ceil(args.ratio * parse_bytes(args.memory_limit) / (8 * args.features))
        )
    warnings.simplefilter("ignore")
    gib = args.rows * args.features * 8 / 2**30
    limit = parse_bytes(args.memory_limit) / 2**20
    print(
        f"data: {args.rows:,} x {args.features} float64 = {gib:.2f} GiB in "
        f"{-(-args.rows // args.block_rows)} blocks of {args.block_rows:,} rows; "
        f"2 worker processes x 1 thread, memory limit {limit:.0f} MiB each "
        f"(array = {gib * 1024 / limit:.1f}x a worker's limit); "
        f"{args.passes} passes; dask {dask.__version__}, torch {torch.__version__}"
    )
    X_test = make_block(10**6, 10_000, args.features)
    rows = []

    # ------------------------------------------------------------- on Dask
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit=args.memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(_import_libraries)
        X = lazy_array(args.rows, args.features, args.block_rows)
        inc = Incremental(_estimator(args), random_state=np.random.RandomState(0))
        t0 = time.perf_counter()
        for _ in range(args.passes):
            inc.partial_fit(X)
        fit_s = time.perf_counter() - t0
        est = inc.estimator_
        assert est.n_iter_ == args.passes * X.numblocks[0]
        t0 = time.perf_counter()
        Z = X.map_blocks(
            est.transform, chunks=(X.chunks[0], (est.n_components,)), dtype=X.dtype
        )
        mean, std = dask.compute(Z.mean(axis=0), Z.std(axis=0))
        transform_s = time.perf_counter() - t0
        peaks = sorted(client.run(_peak_rss_mib).values())
    rows.append(("Incremental, LocalCluster", fit_s, est, peaks))
    print(
        f"codes of the whole array, computed on the cluster: mean "
        f"{np.round(mean, 3).tolist()}, std {np.round(std, 3).tolist()} "
        f"({transform_s:.1f} s, {1e6 * transform_s / args.rows:.1f} us/row)"
    )

    # ----------------------------------------------------------- in memory
    t0 = time.perf_counter()
    X_mem = np.concatenate(
        [
            make_block(i, min(args.block_rows, args.rows - s), args.features)
            for i, s in enumerate(range(0, args.rows, args.block_rows))
        ]
    )
    make_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    est = _estimator(args).set_params(max_iter=args.passes).fit(X_mem)
    rows.append(("fit in memory", time.perf_counter() - t0, est, None))
    del X_mem
    print(
        f"building the rows in memory took {make_s:.1f} s "
        f"({1e6 * make_s / args.rows:.1f} us/row), not in the in-memory row's time; "
        "on Dask, each pass builds its blocks again inside the timed passes"
    )

    header = (
        f"{'how':<27}{'passes':>7}{'train s':>9}{'us/row':>8}"
        f"{'peak RSS per worker (MiB)':>27}{'held-out recon':>16}"
        f"{'held-out MMD2':>15}{'+- (quarters)':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, seconds, est, peaks in rows:
        recon, mmd2, spread = _quality(est, X_test)
        peak = "-" if peaks is None else " / ".join(f"{p:.0f}" for p in peaks)
        print(
            f"{name:<27}{args.passes:>7}{seconds:>9.1f}"
            f"{1e6 * seconds / (args.rows * args.passes):>8.1f}{peak:>27}"
            f"{recon:>16.4f}{mmd2:>15.5f}{spread:>14.5f}"
        )


if __name__ == "__main__":
    main()
