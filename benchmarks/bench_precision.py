"""Accuracy of ``precision='bfloat16'`` against float32, paired by seed.

The protocol of ``bench_quality.py``: scikit-learn's digits scaled to [0, 1],
a held-out quarter stratified by class (``_digits.split``, one split per seed),
2-D codes, N(0, I) prior, each estimator at its defaults (hidden layers
(256, 256), batch 100, learning rate 2e-3, ``reg_weight`` 0.3 for the MMD and
0.01 for the adversarial autoencoder; epochs as the default stopping rule
decides, or exactly ``--max-iter``), fitted twice per seed, once per precision,
from the same seed. Prints, per estimator and precision, the mean and standard
deviation over seeds of

- epochs run and fit time (wall, one thread);
- kNN accuracy (k=5) of held-out codes, the classifier fitted on training codes;
- MMD^2 of held-out codes to the prior (``sklearn_aae.mmd_to_prior``);
- reconstruction MSE of held-out rows (per feature);

and then the paired differences bfloat16 - float32 (same seed, same split):
kNN and MMD^2 as differences, MSE as a relative change. The accuracy bound we
state for bfloat16 is read from this table (see ``benchmarks/README.md``).

Run: ``python benchmarks/bench_precision.py [--seeds 5] [--max-iter N]``
(a few minutes on one thread), or ``--quick`` for a smoke run (2 seeds, 5
epochs).
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _digits import digits, quality, split
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder
from sklearn_aae.priors import GaussianPrior

PRECISIONS = ("float32", "bfloat16")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--max-iter",
        type=int,
        default=None,
        help="exactly N epochs (default: the estimators' own stopping rule)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 seeds, 5 epochs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.max_iter = 2, 5
    torch.set_num_threads(args.threads)  # the benchmark process only

    X, y = digits()
    prior = GaussianPrior(loc=np.zeros(2))
    with warnings.catch_warnings():  # one-off start-up costs, outside the timings
        warnings.simplefilter("ignore", ConvergenceWarning)
        MMDAutoencoder(max_iter=1).fit(X[:200])
    # (estimator, precision) -> list of (epochs, seconds, knn, mmd2, mse) per seed
    results = {}
    for seed in range(args.seeds):
        X_train, X_test, y_train, y_test = split(X, y, seed)
        for Estimator in (MMDAutoencoder, AdversarialAutoencoder):
            for precision in PRECISIONS:
                params = dict(n_components=2, prior=prior, random_state=seed)
                if args.max_iter is not None:
                    params.update(
                        max_iter=args.max_iter, n_iter_no_change=args.max_iter
                    )
                est = Estimator(precision=precision, device="cpu", **params)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    start = time.perf_counter()
                    est.fit(X_train)
                    seconds = time.perf_counter() - start
                q = quality(est, X_train, X_test, y_train, y_test, prior)
                row = (est.n_iter_, seconds, q["knn"], q["mmd2"], q["mse"])
                results.setdefault((Estimator.__name__, precision), []).append(row)

    epochs = (
        f"{args.max_iter} epochs"
        if args.max_iter is not None
        else "epochs by the default stopping rule"
    )
    print(
        f"digits, 2-D codes, N(0, I) prior, defaults, {epochs}, "
        f"{args.seeds} seeds (mean ± sd over seeds)"
    )
    print(
        f"{'estimator':24s} {'precision':9s} {'epochs':>11s} {'fit s':>12s} "
        f"{'kNN acc':>14s} {'MMD^2':>17s} {'recon MSE':>16s}"
    )
    for (name, precision), rows in results.items():
        m, s = np.mean(rows, axis=0), np.std(rows, axis=0)
        print(
            f"{name:24s} {precision:9s} {m[0]:5.0f} ± {s[0]:3.0f}  "
            f"{m[1]:5.1f} ± {s[1]:4.1f}  {m[2]:.3f} ± {s[2]:.3f}  "
            f"{m[3]:+.4f} ± {s[3]:.4f}  {m[4]:.4f} ± {s[4]:.4f}"
        )
    print("\npaired, bfloat16 - float32 (same seed and split), mean ± sd:")
    for name in (MMDAutoencoder.__name__, AdversarialAutoencoder.__name__):
        f32 = np.array(results[name, "float32"])[:, 2:]
        b16 = np.array(results[name, "bfloat16"])[:, 2:]
        d = b16 - f32
        rel = 100 * (b16[:, 2] / f32[:, 2] - 1)
        print(
            f"{name:24s} kNN {d[:, 0].mean():+.3f} ± {d[:, 0].std():.3f}   "
            f"MMD^2 {d[:, 1].mean():+.4f} ± {d[:, 1].std():.4f}   "
            f"MSE {rel.mean():+.1f}% ± {rel.std():.1f}%"
        )


if __name__ == "__main__":
    main()
