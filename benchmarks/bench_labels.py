"""Labels in the regulariser: each digit in its own component of the ring prior.

scikit-learn's digits scaled to [0, 1], a held-out quarter (stratified); 10% of
each class's training labels kept, the rest set to -1 (unlabelled); the
10-component ring prior of the adversarial-autoencoder paper
(``GaussianMixturePrior.ring()``), 2-D codes, the estimators' default
architecture and regulariser settings, exactly ``--max-iter`` epochs (no early
stop), several seeds (the seed draws the kept labels and the estimator's).
Prints mean and standard deviation over seeds of

- component accuracy: the share of held-out rows whose code is most probable
  under their own class's component (digit ``k``, component ``k``);
- the same with no labels (``fit(X)``, components assigned by nothing: about
  chance, 0.1), with ``--no-labels``;
- MMD^2 of held-out codes to the ring (``sklearn_aae.mmd_to_prior``, 'auto'
  bandwidths, closed form), beside the value true prior samples of the same
  size give;
- fit time (one torch thread by default).

With ``--consistency-weight W`` (default 0.1; 0 leaves it out), also
``MMDAutoencoder(consistency_weight=W)``: the code's consistency under input
noise (see the estimator's parameters).

``--rows`` picks the estimators (by default ``mmd adversarial consistency
mixture adversarial-mixture``: the last two with ``encoder='mixture'`` and
the consistency term; ``deep`` adds the consistency row with a
third hidden layer, ``(256, 256, 256)``); ``--first-seed S`` runs seeds
``S .. S + seeds - 1`` (other label draws and initialisations on the same
split, to check a setting chosen on seeds 0-4).

Run: ``python benchmarks/bench_labels.py [--seeds 5] [--max-iter 300]``;
smoke run: ``--seeds 1 --max-iter 5``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior
from sklearn_aae.priors import GaussianMixturePrior


def keep_labels(y, fraction, rng):
    """``y`` with ``fraction`` of each class's labels kept (at least one), rest -1."""
    out = np.full_like(y, -1)
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        kept = rng.choice(rows, max(1, round(fraction * rows.size)), replace=False)
        out[kept] = c
    return out


def component_accuracy(Z, y, prior):
    """Share of rows whose code is most probable under component ``y``."""
    means = np.asarray(prior.means)
    log_p = []
    for mean, cov in zip(means, np.asarray(prior.covariances), strict=True):
        diff = Z - mean
        maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
        log_p.append(-0.5 * maha - 0.5 * np.linalg.slogdet(cov)[1])
    return float(np.mean(np.argmax(np.stack(log_p, 1), 1) == y))


# The rows, by key: ``--rows`` picks them (the first five by default).
ROWS = ("mmd", "adversarial", "consistency", "mixture", "adversarial-mixture", "deep")
DEFAULT_ROWS = ROWS[:5]


def make_models(prior, seed, max_iter, consistency_weight=0.0, rows=DEFAULT_ROWS):
    common = dict(
        n_components=2,
        prior=prior,
        max_iter=max_iter,
        n_iter_no_change=max_iter,  # exactly max_iter epochs
        device="cpu",
        random_state=seed,
    )
    models = {}
    if "mmd" in rows:
        models["MMDAutoencoder"] = MMDAutoencoder(**common)
    if "adversarial" in rows:
        models["AdversarialAutoencoder"] = AdversarialAutoencoder(**common)
    if consistency_weight and "consistency" in rows:
        name = f"MMDAutoencoder(consistency_weight={consistency_weight:g})"
        models[name] = MMDAutoencoder(consistency_weight=consistency_weight, **common)
    if consistency_weight and "deep" in rows:
        # The same with a third hidden layer (encoder and mirrored decoder).
        name = f"MMDAutoencoder(consistency_weight={consistency_weight:g}, 3 layers)"
        models[name] = MMDAutoencoder(
            consistency_weight=consistency_weight,
            hidden_layer_sizes=(256, 256, 256),
            **common,
        )
    if consistency_weight and "mixture" in rows:
        # The mixture encoder: responsibilities, a style in the ring's components.
        name = (
            "MMDAutoencoder(encoder='mixture', "
            f"consistency_weight={consistency_weight:g})"
        )
        models[name] = MMDAutoencoder(
            encoder="mixture", consistency_weight=consistency_weight, **common
        )
    if "adversarial-mixture" in rows:
        # The same settings as the MMD mixture row (its consistency term too).
        name = "AdversarialAutoencoder(encoder='mixture'"
        extra = {}
        if consistency_weight:
            name += f", consistency_weight={consistency_weight:g}"
            extra["consistency_weight"] = consistency_weight
        models[name + ")"] = AdversarialAutoencoder(
            encoder="mixture", **extra, **common
        )
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed, first-seed+1, ..."
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=ROWS,
        default=list(DEFAULT_ROWS),
        help="which estimators (deep: the consistency row with hidden (256, 256, 256); "
        "mixture: the consistency row with encoder='mixture')",
    )
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--label-fraction", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--no-labels", action="store_true", help="also fit without labels"
    )
    parser.add_argument(
        "--consistency-weight",
        type=float,
        default=0.1,
        help="also fit MMDAutoencoder with this consistency_weight (0: not)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    prior = GaussianMixturePrior.ring()
    reference = [
        mmd_to_prior(prior.sample(len(X_test), random_state=s), prior)
        for s in range(args.first_seed, args.first_seed + args.seeds)
    ]
    results = {}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for seed in seeds:
        y_fit = keep_labels(y_train, args.label_fraction, np.random.RandomState(seed))
        runs = [("", y_fit)] + ([(" (no labels)", None)] if args.no_labels else [])
        for suffix, labels in runs:
            models = make_models(
                prior, seed, args.max_iter, args.consistency_weight, args.rows
            )
            for name, est in models.items():
                t0 = time.perf_counter()
                est.fit(X_train, labels)
                elapsed = time.perf_counter() - t0
                Z = est.transform(X_test)
                row = results.setdefault(name + suffix, [])
                row.append(
                    (
                        component_accuracy(Z, y_test, prior),
                        mmd_to_prior(Z, prior),
                        elapsed,
                    )
                )
                print(f"seed {seed} {name + suffix}: {row[-1]}", flush=True)

    n_labels = int(np.sum(y_fit >= 0))
    print(
        f"\ndigits, {len(X_train)} training rows ({n_labels} labelled, "
        f"{args.label_fraction:.0%} per class), {len(X_test)} held out; ring "
        f"prior, 10 components; {args.max_iter} epochs; {args.seeds} seeds "
        f"({seeds.start}-{seeds.stop - 1}) "
        f"(mean ± std); {args.threads} torch thread(s)\n"
    )
    header = f"{'estimator':<66}{'component accuracy':>20}{'MMD² to prior':>22}"
    print(header + f"{'fit time (s)':>16}")
    print("-" * (len(header) + 16))
    for name, rows in results.items():
        a = np.asarray(rows)
        m, s = a.mean(0), a.std(0)
        print(
            f"{name:<66}{m[0]:>12.3f} ± {s[0]:.3f}{m[1]:>14.5f} ± {s[1]:.5f}"
            f"{m[2]:>10.1f} ± {s[2]:.1f}"
        )
    ref = np.asarray(reference)
    print(f"{'true prior samples':<66}{'':>20}{ref.mean():>14.5f} ± {ref.std():.5f}")


if __name__ == "__main__":
    main()
