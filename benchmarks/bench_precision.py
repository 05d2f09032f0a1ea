"""Accuracy of ``precision='bfloat16'`` against float32, paired by seed.

The data, splits and protocol that ``bench_quality.py`` used before issue 11
(scikit-learn's digits scaled to [0, 1], a held-out quarter, not stratified,
2-D codes, N(0, I) prior, default architecture, exactly ``--max-iter``
epochs), each estimator fitted twice per
seed, once per precision, from the same seed. Prints, per estimator and
precision, the mean and standard deviation over seeds of

- kNN accuracy (k=5) of held-out codes, the classifier fitted on training codes;
- MMD^2 of held-out codes to the prior (``sklearn_aae.mmd_to_prior``);
- reconstruction MSE of held-out rows (per feature);

and then the paired differences bfloat16 - float32 (same seed, same split):
kNN and MMD^2 as differences, MSE as a relative change. The accuracy bound we
state for bfloat16 is read from this table (see ``benchmarks/README.md``).

Run: ``python benchmarks/bench_precision.py [--seeds 5] [--max-iter 100]``
(about a minute), or ``--quick`` for a smoke run.
"""

import argparse
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior

PRECISIONS = ("float32", "bfloat16")


def evaluate(est, X_train, X_test, y_train, y_test):
    Z_train, Z_test = est.transform(X_train), est.transform(X_test)
    knn = KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)
    mse = float(((est.inverse_transform(Z_test) - X_test) ** 2).mean())
    return knn, mmd_to_prior(Z_test), mse


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 seeds, 5 epochs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_iter = 2, 5
    torch.set_num_threads(args.threads)  # the benchmark process only

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    results = {}  # (estimator, precision) -> list of (knn, mmd2, mse) per seed
    for seed in range(args.seeds):
        split = train_test_split(X, y, random_state=seed)  # not stratified
        X_train, X_test, y_train, y_test = split
        for Estimator in (MMDAutoencoder, AdversarialAutoencoder):
            for precision in PRECISIONS:
                est = Estimator(
                    n_components=2,
                    max_iter=args.max_iter,
                    n_iter_no_change=args.max_iter,
                    precision=precision,
                    device="cpu",
                    random_state=seed,
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    est.fit(X_train)
                key = (Estimator.__name__, precision)
                row = evaluate(est, X_train, X_test, y_train, y_test)
                results.setdefault(key, []).append(row)

    print(
        f"digits, 2-D codes, N(0, I) prior, {args.max_iter} epochs, "
        f"{args.seeds} seeds (mean ± sd over seeds)"
    )
    print(
        f"{'estimator':24s} {'precision':9s} {'kNN acc':>14s} {'MMD^2':>16s} "
        f"{'recon MSE':>16s}"
    )
    for (name, precision), rows in results.items():
        m, s = np.mean(rows, axis=0), np.std(rows, axis=0)
        print(
            f"{name:24s} {precision:9s} {m[0]:.3f} ± {s[0]:.3f}  "
            f"{m[1]:.4f} ± {s[1]:.4f}  {m[2]:.4f} ± {s[2]:.4f}"
        )
    print("\npaired, bfloat16 - float32 (same seed and split), mean ± sd:")
    for name in (MMDAutoencoder.__name__, AdversarialAutoencoder.__name__):
        f32 = np.array(results[name, "float32"])
        b16 = np.array(results[name, "bfloat16"])
        d = b16 - f32
        rel = 100 * (b16[:, 2] / f32[:, 2] - 1)
        print(
            f"{name:24s} kNN {d[:, 0].mean():+.3f} ± {d[:, 0].std():.3f}   "
            f"MMD^2 {d[:, 1].mean():+.4f} ± {d[:, 1].std():.4f}   "
            f"MSE {rel.mean():+.1f}% ± {rel.std():.1f}%"
        )


if __name__ == "__main__":
    main()
