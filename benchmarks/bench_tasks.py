"""Semi-supervised classification and clustering of digits (issue 14).

The adversarial-autoencoder paper's sections 5 and 6 as estimators, both
flavours, beside scikit-learn's strongest methods on the same split:

- **classification**: a held-out quarter (stratified), ``N`` labels per class
  kept in the training part (the rest ``-1``), test error of
  ``MMDAutoencoderClassifier`` and ``AdversarialAutoencoderClassifier`` beside
  ``LabelSpreading`` (rbf, knn), ``SelfTrainingClassifier(SVC)`` and ``SVC`` on
  the labelled rows only;
- **clustering**: 10 clusters, held-out rows, accuracy after Hungarian
  matching, NMI and ARI of ``MMDAutoencoderClustering`` and
  ``AdversarialAutoencoderClustering`` (inductive ``predict``; the latter also
  with ``discriminator_blocks='separate'``, the paper's recipe; both with
  ``n_init=5``, whose fits are combined by their consensus, and the MMD one
  with ``consensus=False``, the lowest loss kept) beside
  ``KMeans``, ``GaussianMixture`` (inductive) and ``SpectralClustering``
  (transductive: fitted on the training and held-out rows together);
- **16 clusters** with the paper's protocol: each cluster is named by the label
  of its most confident training row; held-out accuracy.

Every row is the mean and standard deviation over the seeds; a seed sets the
split, the labelled rows and every model's initialisation. Fit times are wall
seconds of one fit with one torch thread per process.

Run: ``python benchmarks/bench_tasks.py --seeds 5 --jobs 2``
(``--quick``: 2 seeds, 30 epochs, a smoke test of the script).
"""

import argparse
import json
import time
import warnings

import numpy as np
import torch
from _digits import digits, split
from joblib import Parallel, delayed
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.mixture import GaussianMixture
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier
from sklearn.svm import SVC

from sklearn_aae import (
    AdversarialAutoencoderClassifier,
    AdversarialAutoencoderClustering,
    MMDAutoencoderClassifier,
    MMDAutoencoderClustering,
)


def semi_labels(y, n_per_class, seed):
    """``y`` with ``n_per_class`` labelled rows per class, the rest ``-1``."""
    rng = np.random.RandomState(seed)
    out = np.full_like(y, -1)
    for k in np.unique(y):
        keep = rng.choice(np.flatnonzero(y == k), n_per_class, replace=False)
        out[keep] = y[keep]
    return out


def hungarian_accuracy(y, labels):
    """Accuracy after the best one-to-one matching of clusters to classes."""
    classes, clusters = np.unique(y), np.unique(labels)
    count = np.zeros((len(clusters), len(classes)))
    for i, c in enumerate(clusters):
        for j, k in enumerate(classes):
            count[i, j] = np.sum((labels == c) & (y == k))
    rows, cols = linear_sum_assignment(-count)
    return count[rows, cols].sum() / len(y)


def timed_fit(est, *args):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # SVC(probability=True), which self-training needs, is deprecated in
        # scikit-learn 1.9 with a FutureWarning per fit.
        warnings.simplefilter("ignore", FutureWarning)
        est.fit(*args)
    return time.perf_counter() - t0


def classifiers(seed, max_iter):
    common = dict(max_iter=max_iter, random_state=seed, device="cpu")
    return {
        "MMDAutoencoderClassifier": MMDAutoencoderClassifier(**common),
        "AdversarialAutoencoderClassifier": AdversarialAutoencoderClassifier(**common),
        "LabelSpreading(rbf)": LabelSpreading(kernel="rbf"),
        "LabelSpreading(knn)": LabelSpreading(kernel="knn", n_neighbors=7),
        "SelfTraining(SVC)": SelfTrainingClassifier(
            SVC(probability=True, random_state=seed)
        ),
        "SVC(labelled only)": "labelled",
    }


def run_classification(seed, n_per_class, max_iter):
    torch.set_num_threads(1)
    X, y = digits()
    X_train, X_test, y_train, y_test = split(X, y, seed)
    y_semi = semi_labels(y_train, n_per_class, seed)
    rows = []
    for name, est in classifiers(seed, max_iter).items():
        if est == "labelled":
            est, fit_args = SVC(), (X_train[y_semi >= 0], y_semi[y_semi >= 0])
        else:
            fit_args = (X_train, y_semi)
        seconds = timed_fit(est, *fit_args)
        error = 1.0 - est.score(X_test, y_test)
        epochs = getattr(est, "n_iter_", None)
        rows.append(
            dict(
                task=f"{n_per_class} labels/class",
                model=name,
                seed=seed,
                error=error,
                seconds=seconds,
                epochs=int(epochs) if isinstance(epochs, (int, np.integer)) else None,
            )
        )
    return rows


def cluster_scores(y, labels):
    return dict(
        accuracy=hungarian_accuracy(y, labels),
        nmi=normalized_mutual_info_score(y, labels),
        ari=adjusted_rand_score(y, labels),
    )


def run_clustering(seed, max_iter):
    torch.set_num_threads(1)
    X, y = digits()
    X_train, X_test, y_train, y_test = split(X, y, seed)
    common = dict(max_iter=max_iter, random_state=seed, device="cpu")
    models = {
        "MMDAutoencoderClustering": MMDAutoencoderClustering(10, **common),
        # n_init fits combined by their consensus (the default), or the one
        # with the lowest final loss kept
        "MMDAutoencoderClustering(n_init=5)": MMDAutoencoderClustering(
            10, n_init=5, **common
        ),
        "MMDAutoencoderClustering(n_init=5, consensus=False)": (
            MMDAutoencoderClustering(10, n_init=5, consensus=False, **common)
        ),
        "AdversarialAutoencoderClustering": AdversarialAutoencoderClustering(
            10, **common
        ),
        "AdversarialAutoencoderClustering(n_init=5)": (
            AdversarialAutoencoderClustering(10, n_init=5, **common)
        ),
        # the paper's recipe: one discriminator for the heads, one for the style
        "AdversarialAutoencoderClustering(separate)": AdversarialAutoencoderClustering(
            10, discriminator_blocks="separate", **common
        ),
        "KMeans": KMeans(10, n_init=10, random_state=seed),
        "GaussianMixture": GaussianMixture(
            10, covariance_type="full", reg_covar=1e-3, n_init=3, random_state=seed
        ),
    }
    rows = []
    for name, est in models.items():
        seconds = timed_fit(est, X_train)
        rows.append(
            dict(
                task="10 clusters",
                model=name,
                seed=seed,
                seconds=seconds,
                **cluster_scores(y_test, est.predict(X_test)),
            )
        )
    spectral = SpectralClustering(
        10, affinity="nearest_neighbors", n_neighbors=10, random_state=seed
    )
    t0 = time.perf_counter()
    labels = spectral.fit_predict(np.vstack([X_train, X_test]))[len(X_train) :]
    rows.append(
        dict(
            task="10 clusters",
            model="SpectralClustering (transductive)",
            seed=seed,
            seconds=time.perf_counter() - t0,
            **cluster_scores(y_test, labels),
        )
    )
    # 16 clusters, the paper's protocol: a cluster takes the label of its most
    # confident training row.
    for cls in (MMDAutoencoderClustering, AdversarialAutoencoderClustering):
        est = cls(16, **common)
        seconds = timed_fit(est, X_train)
        P = est.predict_proba(X_train)
        names = np.array([y_train[np.argmax(P[:, c])] for c in range(est.n_clusters_)])
        accuracy = float(np.mean(names[est.predict(X_test)] == y_test))
        rows.append(
            dict(
                task="16 clusters (paper's naming)",
                model=cls.__name__,
                seed=seed,
                seconds=seconds,
                accuracy=accuracy,
                found=int(est.n_clusters_),
            )
        )
    return rows


def table(rows, metrics):
    out = []
    for task in dict.fromkeys(r["task"] for r in rows):
        out.append(f"\n{task}")
        header = " | ".join(["model", *metrics, "fit s"])
        out.append(f"| {header} |")
        out.append("|" + "---|" * (len(metrics) + 2))
        for model in dict.fromkeys(r["model"] for r in rows if r["task"] == task):
            sel = [r for r in rows if r["task"] == task and r["model"] == model]
            cells = [model]
            for m in [*metrics, "seconds"]:
                v = np.array([r[m] for r in sel if m in r], dtype=float)
                cells.append(f"{v.mean():.3f} ± {v.std():.3f}" if len(v) else "–")
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--labels", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--skip-clustering", action="store_true")
    parser.add_argument("--skip-classification", action="store_true")
    parser.add_argument("--json", help="also write every row to this file")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.max_iter = 2, 30
    jobs = []
    for seed in range(args.seeds):
        if not args.skip_classification:
            jobs += [
                delayed(run_classification)(seed, n, args.max_iter) for n in args.labels
            ]
        if not args.skip_clustering:
            jobs.append(delayed(run_clustering)(seed, args.max_iter))
    t0 = time.perf_counter()
    results = Parallel(n_jobs=args.jobs)(jobs)
    rows = [r for rs in results for r in rs]
    print(
        f"digits, held-out quarter, {args.seeds} seeds, max_iter={args.max_iter}, "
        f"{time.perf_counter() - t0:.0f} s in all"
    )
    classification = [r for r in rows if "labels" in r["task"]]
    if classification:
        print("\nTest error (lower is better)")
        print(table(classification, ["error"]))
    clustering = [r for r in rows if r["task"] == "10 clusters"]
    if clustering:
        print("\nClustering of the held-out rows (higher is better)")
        print(table(clustering, ["accuracy", "nmi", "ari"]))
        print(
            table(
                [r for r in rows if r["task"].startswith("16")],
                ["accuracy", "found"],
            )
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
