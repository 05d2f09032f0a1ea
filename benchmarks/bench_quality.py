"""Headline comparison: MMD (closed form), MMD (sampled prior), adversarial, peers, PCA.

What a user gets: our estimators at their defaults (only ``n_components=2`` and
``random_state`` set; epochs as the default stopping rule decides), beside
pythae's ``Adversarial_AE`` and ``WAE_MMD`` on the same networks and batch size
(``PEERS``), a plain autoencoder and whitened PCA. Same data for all:
scikit-learn's digits scaled to [0, 1], a held-out quarter stratified by class
(``_digits.split``, one split per seed). Prints mean and standard deviation
over seeds of

- epochs run;
- kNN accuracy (k=5) of held-out codes, the classifier fitted on training codes;
- MMD^2 of held-out codes to the prior (``sklearn_aae.mmd_to_prior``, 'auto'
  bandwidths, closed form), beside the value that true prior samples of the same
  size give;
- reconstruction MSE of held-out rows (per feature);
- fit time (ours: the whole ``fit`` call; pythae: its ``train_step`` calls);

and, with ``--figure PATH``, saves a figure of the held-out codes of seed 0.

``--max-iter N`` instead runs every autoencoder, ours and pythae's, for exactly
N epochs. pythae's models learn an N(0, I) prior only: with ``--prior ring``
they are left out.

Run: ``python benchmarks/bench_quality.py [--seeds 5] [--prior gaussian|ring]
[--figure docs/images/codes_mmd_vs_adversarial.png]``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from _digits import PythaePeer, digits, quality, split
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder, mmd_to_prior
from sklearn_aae.priors import GaussianMixturePrior, GaussianPrior

# pythae's models, on our default networks and batch size. Their loss is
# 0.5 * (sum over features of the squared error) + 0.5 * BCE for Adversarial_AE
# (pythae's default adversarial_loss_scale): a generator weight of 1/64 of a
# per-feature mean squared error on digits' 64 features, trained with pythae's
# default discriminator learning rate (1e-4). WAE_MMD's loss is the sum over
# features of the squared error + reg_weight * MMD^2: 19.2 = 64 x 0.3, our
# MMDAutoencoder's default weight on a per-feature mean, with the RBF kernel at
# the middle of our three bandwidths (C = 2 * 2 * 1.0^2: l^2 = 2). Autoencoder
# learning rates: the better of 1e-3 and 2e-3 for each, by held-out kNN after
# 200 epochs over 5 seeds (pythae's default 1e-4 learns far more slowly):
# Adversarial_AE 0.884 at 1e-3 vs 0.875 at 2e-3; WAE_MMD 0.869 vs 0.892.
PEERS = {
    "pythae Adversarial_AE": dict(kind="adversarial", trainer=dict(learning_rate=1e-3)),
    "pythae WAE_MMD": dict(
        kind="mmd",
        model=dict(reg_weight=19.2, kernel_choice="rbf", kernel_bandwidth=1.0),
        trainer=dict(learning_rate=2e-3),
    ),
}
PEER_EPOCHS = 200  # pythae trains a fixed number of epochs (it has no stopping)


def make_peer(name, X_train, seed):
    """One of ``PEERS`` on our default networks and batch size."""
    mmd, aae = MMDAutoencoder(), AdversarialAutoencoder()
    return PythaePeer(
        X=X_train,
        hidden=mmd.hidden_layer_sizes,
        discriminator_hidden=aae.discriminator_hidden_layer_sizes,
        batch_size=mmd.batch_size,
        seed=seed,
        **PEERS[name],
    )


class SampleOnlyPrior:
    """Hides the closed forms of a prior: MMD then estimates them by sampling."""

    def __init__(self, prior):
        self.prior = prior

    def sample(self, n_samples, random_state=None):
        return self.prior.sample(n_samples, random_state=random_state)

    def log_prob(self, Z):
        return self.prior.log_prob(Z)


class WhitenedPCA:
    """PCA with whitening, scaled to unit variance codes like the N(0, I) prior."""

    def __init__(self, random_state):
        self.pca = PCA(n_components=2, whiten=True, random_state=random_state)
        self.n_iter_ = np.nan

    def fit(self, X):
        self.pca.fit(X)
        return self

    def transform(self, X):
        return self.pca.transform(X)

    def inverse_transform(self, Z):
        return self.pca.inverse_transform(Z)


class Peer:
    """A pythae peer behind ``fit``: a fixed number of epochs."""

    def __init__(self, name, seed, epochs):
        self.name, self.seed, self.epochs = name, seed, epochs

    def fit(self, X):
        self.model = make_peer(self.name, X, self.seed)
        self.seconds = sum(self.model.train_epoch()[0] for _ in range(self.epochs))
        self.n_iter_ = self.epochs
        return self

    def transform(self, X):
        return self.model.transform(X)

    def inverse_transform(self, Z):
        return self.model.inverse_transform(Z)


def make_models(prior, seed, max_iter):
    common = dict(n_components=2, prior=prior, random_state=seed)
    if max_iter is not None:
        common.update(max_iter=max_iter, n_iter_no_change=max_iter)
    models = {
        "MMDAutoencoder": MMDAutoencoder(**common),
        "MMD (sampled prior)": MMDAutoencoder(
            **{**common, "prior": SampleOnlyPrior(prior)}
        ),
        "AdversarialAutoencoder": AdversarialAutoencoder(**common),
        "Autoencoder (reg_weight=0)": MMDAutoencoder(**common, reg_weight=0),
    }
    if isinstance(prior, GaussianPrior):
        for name in PEERS:
            models[name] = Peer(name, seed, max_iter or PEER_EPOCHS)
        models["PCA (whitened)"] = WhitenedPCA(seed)
    return models


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--prior", choices=["gaussian", "ring"], default="gaussian")
    parser.add_argument(
        "--max-iter", type=int, default=None, help="exactly N epochs for all"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--figure",
        default=None,
        help="where to save the held-out codes of seed 0 (the README's: "
        "docs/images/codes_mmd_vs_adversarial.png)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the benchmark process only
    prior = (
        GaussianPrior(loc=np.zeros(2))
        if args.prior == "gaussian"
        else GaussianMixturePrior.ring()
    )

    X, y = digits()
    codes, codes_y = {}, None  # held-out codes of seed 0, for the figure
    with warnings.catch_warnings():  # one-off start-up costs, outside the timings
        warnings.simplefilter("ignore", ConvergenceWarning)
        MMDAutoencoder(max_iter=1).fit(X[:200])
    rows = {}
    for seed in range(args.seeds):
        X_tr, X_te, y_tr, y_te = split(X, y, seed)
        ref = prior.sample(len(X_te), random_state=seed)
        rows.setdefault("true prior samples", []).append(
            (np.nan, np.nan, mmd_to_prior(ref, prior), np.nan, np.nan)
        )
        for name, model in make_models(prior, seed, args.max_iter).items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                start = time.perf_counter()
                model.fit(X_tr)
                seconds = getattr(model, "seconds", time.perf_counter() - start)
            q = quality(model, X_tr, X_te, y_tr, y_te, prior)
            rows.setdefault(name, []).append(
                (model.n_iter_, q["knn"], q["mmd2"], q["mse"], seconds)
            )
            if seed == 0:
                codes[name] = model.transform(X_te)
        if seed == 0:
            codes_y = y_te

    budget = (
        f"{args.max_iter} epochs for every autoencoder"
        if args.max_iter
        else f"ours at their defaults, pythae {PEER_EPOCHS} epochs"
    )
    print(
        f"digits, held-out stratified quarter, n_components=2, prior={args.prior}, "
        f"{args.seeds} seeds, {budget}, {torch.get_num_threads()} torch thread(s); "
        "mean ± std over seeds"
    )
    header = ["model", "epochs", "kNN accuracy", "MMD^2 to prior", "recon MSE"]
    header += ["fit time (s)"]
    print(f"| {' | '.join(header)} |")
    print("|" + "---|" * len(header))
    for name, values in rows.items():
        values = np.asarray(values, dtype=float)
        cells = []
        for j, fmt in enumerate([".0f", ".3f", ".4f", ".4f", ".2f"]):
            col = values[:, j]
            if np.all(np.isnan(col)):
                cells.append("–")
            elif j == 0:
                cells.append(f"{col.min():{fmt}}–{col.max():{fmt}}")
            else:
                cells.append(f"{col.mean():{fmt}} ± {col.std():{fmt}}")
        print(f"| {name} | {' | '.join(cells)} |")
    if args.figure:
        figure(codes, codes_y, args.prior, args.figure)


def figure(codes, y, prior_name, path):
    """Held-out codes of seed 0, coloured by digit, over the prior's circles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(codes), figsize=(2.3 * len(codes), 2.6), sharex=True, sharey=True
    )
    for ax, (name, Z) in zip(axes, codes.items(), strict=True):
        if prior_name == "gaussian":
            for r in (1, 2, 3):
                ax.add_patch(plt.Circle((0, 0), r, fill=False, color="0.7", lw=0.8))
        ax.scatter(Z[:, 0], Z[:, 1], c=y, cmap="tab10", s=3, vmin=0, vmax=9)
        ax.set_title(name, fontsize=8)
        ax.set_xlim(-4, 4)
        ax.set_ylim(-4, 4)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
