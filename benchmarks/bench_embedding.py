"""Two-dimensional maps of digits from cluster heads and style (issue 14, §7).

The adversarial-autoencoder paper's dimensionality reduction (Makhzani et al.
2015, section 7) as estimators, both flavours, beside the maps that
scikit-learn and a peer library offer, on the same split: a held-out quarter
(stratified) of scikit-learn's digits, 2-D maps fitted on the training rows and
applied to the held-out rows (inductive), and for each map

- **knn accuracy**: a 5-nearest-neighbour classifier fitted on the training
  rows' map, scored on the held-out rows' map (how well the map keeps the
  classes apart);
- **trustworthiness** (``sklearn.manifold.trustworthiness``, 5 neighbours) of
  the held-out rows' map: how many of a row's map neighbours are neighbours in
  the data;
- **ari**: the held-out rows' clusters (``predict``) against the digits, for
  the estimators that cluster;
- fit time (wall seconds, one torch thread per process).

Rows: ``MMDAutoencoderEmbedding`` and ``AdversarialAutoencoderEmbedding`` at
their defaults (and the MMD one without its consistency term), the plain
``MMDAutoencoder`` and ``AdversarialAutoencoder`` with a 2-D code (their
defaults), ``PCA``, ``Isomap``, UMAP (``umap-learn``, the strongest inductive
peer; skipped when it is not installed) and ``TSNE``, which has no transform:
it is fitted on the training and held-out rows together (transductive), an
upper reference rather than a competitor.

Every row is the mean and standard deviation over the seeds; a seed sets the
split and every model's initialisation.

Run: ``python benchmarks/bench_embedding.py --seeds 5 --jobs 2``
(``--quick``: 2 seeds, 30 epochs, a smoke test of the script).
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _digits import digits, split
from bench_tasks import table
from joblib import Parallel, delayed
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.manifold import TSNE, Isomap, trustworthiness
from sklearn.metrics import adjusted_rand_score
from sklearn.neighbors import KNeighborsClassifier

from sklearn_aae import (
    AdversarialAutoencoder,
    AdversarialAutoencoderEmbedding,
    MMDAutoencoder,
    MMDAutoencoderEmbedding,
)

TASK = "Held-out rows (higher is better)"

try:
    from umap import UMAP
except ImportError:  # optional: pip install umap-learn
    UMAP = None


def models(seed, max_iter):
    """``(name, estimator)`` of every inductive map."""
    out = [
        ("MMDAutoencoderEmbedding", MMDAutoencoderEmbedding(random_state=seed)),
        (
            "MMDAutoencoderEmbedding(consistency_weight=0)",
            MMDAutoencoderEmbedding(consistency_weight=0.0, random_state=seed),
        ),
        (
            "AdversarialAutoencoderEmbedding",
            AdversarialAutoencoderEmbedding(random_state=seed),
        ),
        ("MMDAutoencoder(n_components=2)", MMDAutoencoder(2, random_state=seed)),
        (
            "AdversarialAutoencoder(n_components=2)",
            AdversarialAutoencoder(2, random_state=seed),
        ),
    ]
    for _, est in out:
        est.set_params(max_iter=max_iter)
    out += [("PCA", PCA(2, random_state=seed)), ("Isomap", Isomap(n_components=2))]
    if UMAP is not None:
        out.append(("UMAP (umap-learn)", UMAP(n_components=2, random_state=seed)))
    return out


def scores(M_train, M_test, X_test, y_train, y_test):
    knn = KNeighborsClassifier(5).fit(M_train, y_train)
    return {
        "knn accuracy": knn.score(M_test, y_test),
        "trustworthiness": trustworthiness(X_test, M_test, n_neighbors=5),
    }


def run(seed, max_iter):
    torch.set_num_threads(1)
    X, y = digits()
    X_train, X_test, y_train, y_test = split(X, y, seed)
    rows = []
    for name, est in models(seed, max_iter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence, umap's notices
            t0 = time.perf_counter()
            est.fit(X_train)
            seconds = time.perf_counter() - t0
            row = scores(
                est.transform(X_train), est.transform(X_test), X_test, y_train, y_test
            )
        if hasattr(est, "predict"):
            row["ari"] = adjusted_rand_score(y_test, est.predict(X_test))
        rows.append(
            {"task": TASK, "model": name, "seed": seed, "seconds": seconds, **row}
        )
    # TSNE: no transform; the training and held-out rows are embedded together.
    t0 = time.perf_counter()
    M = TSNE(2, random_state=seed).fit_transform(np.vstack([X_train, X_test]))
    seconds = time.perf_counter() - t0
    n = len(X_train)
    row = scores(M[:n], M[n:], X_test, y_train, y_test)
    rows.append(
        {
            "task": TASK,
            "model": "TSNE (transductive)",
            "seed": seed,
            "seconds": seconds,
            **row,
        }
    )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.max_iter = 2, 30
    t0 = time.perf_counter()
    results = Parallel(n_jobs=args.jobs)(
        delayed(run)(seed, args.max_iter) for seed in range(args.seeds)
    )
    rows = [r for rs in results for r in rs]
    print(
        f"digits, held-out quarter, 2-D maps, {args.seeds} seeds, "
        f"max_iter={args.max_iter}, {time.perf_counter() - t0:.0f} s in all"
        + ("" if UMAP is not None else "; umap-learn not installed: no UMAP row")
    )
    print(table(rows, ["knn accuracy", "trustworthiness", "ari"]))


if __name__ == "__main__":
    # (the workers' warnings are silenced in run; these are the parent's)
    warnings.simplefilter("ignore", ConvergenceWarning)
    main()
