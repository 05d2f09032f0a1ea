"""Seconds per ``partial_fit`` block against ``fit``'s seconds per epoch.

Data: ``--n-samples`` rows (default 20,000) of 64 float64 features (a noisy
2-D curve embedded in 64 dimensions, scaled to about [0, 1]). Estimators: both,
``hidden_layer_sizes=(128, 128)``, ``n_components=2``, ``batch_size=256``, on
the CPU. ``fit`` runs ``--epochs`` epochs (default 3); its seconds per epoch
are the whole call divided by the epochs (validation, set-up and the final
``noise_variance_`` pass included, as a user pays them), after an untimed
one-epoch warm-up fit. ``partial_fit`` then
makes one pass over the same rows in blocks of each size (after one untimed
warm-up call); every call is timed. Reported per block size: the median
seconds per call, microseconds per row, the pass's total, and the pass
against ``fit``'s epoch (1.00: a block costs exactly its share of an epoch).

Run ``python benchmarks/bench_partial_fit.py`` (under a minute on one core)
or ``--quick`` (4,000 rows). ``PYTHONPATH`` picks the checkout measured.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
import torch


def _data(n, seed=0):
    rng = np.random.RandomState(seed)
    t = rng.uniform(-3, 3, size=(n, 2))
    W = rng.normal(size=(4, 64))
    feats = np.column_stack([np.sin(t), np.cos(t)]) @ W
    X = feats + 0.1 * rng.normal(size=feats.shape)
    return (X - X.min()) / (X.max() - X.min())


def _estimators():
    from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

    common = dict(
        n_components=2,
        hidden_layer_sizes=(128, 128),
        batch_size=256,
        device="cpu",
        random_state=0,
    )
    return {
        "MMDAutoencoder": lambda **kw: MMDAutoencoder(**common, **kw),
        "AdversarialAutoencoder": lambda **kw: AdversarialAutoencoder(
            discriminator_hidden_layer_sizes=(64,), **common, **kw
        ),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--blocks", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.n_samples, args.blocks = 4000, [500, 2000]
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    X = _data(args.n_samples)
    import sklearn_aae

    print(
        f"sklearn_aae {sklearn_aae.__version__}, torch {torch.__version__}, "
        f"{args.threads} thread(s); n = {args.n_samples}, 64 features"
    )
    header = (
        f"{'estimator':<24}{'block rows':>11}{'s / block':>11}{'us / row':>10}"
        f"{'s / pass':>10}{'fit s / epoch':>15}{'pass / epoch':>14}"
    )
    print(header)
    print("-" * len(header))
    for name, make in _estimators().items():
        make(max_iter=1).fit(X[:1000])  # untimed warm-up of torch's kernels
        t0 = time.perf_counter()
        make(max_iter=args.epochs).fit(X)
        epoch = (time.perf_counter() - t0) / args.epochs
        for block in args.blocks:
            if block > args.n_samples:
                continue
            est = make()
            est.partial_fit(X[:block])  # warm-up: builds the networks
            times = []
            for start in range(0, args.n_samples, block):
                t0 = time.perf_counter()
                est.partial_fit(X[start : start + block])
                times.append(time.perf_counter() - t0)
            total = sum(times)
            print(
                f"{name:<24}{block:>11}{statistics.median(times):>11.3f}"
                f"{1e6 * total / args.n_samples:>10.1f}{total:>10.2f}"
                f"{epoch:>15.2f}{total / epoch:>14.2f}"
            )


if __name__ == "__main__":
    main()
