"""Trade-off curves of ``reg_weight``: class structure against the prior match.

Both estimators at their defaults (only ``n_components=2`` and ``random_state``
set), on scikit-learn's digits scaled to [0, 1] with a held-out quarter
stratified by class (one split per seed, ``_digits.split``), 2-D codes, the
N(0, I) prior, over a grid of ``reg_weight`` (and, for the adversarial
autoencoder, of ``discriminator_learning_rate``). For each setting and seed:

- held-out kNN accuracy of the codes (k=5, fitted on the training codes);
- MMD^2 of held-out codes to the prior (``sklearn_aae.mmd_to_prior``);
- held-out reconstruction MSE (per feature);
- the estimator's own held-out ``score`` (mean log-likelihood);
- fit time and the epochs that the stopping rule let it run.

Then, per seed and estimator, where ``GridSearchCV`` over ``reg_weight`` with
the default scorer (``score``, 3 folds of the training rows) lands. Prints one
table (mean ± std over seeds) and the grid search's picks, and saves a figure
of the curves (``--figure``, by default ``docs/images/tradeoff_digits.png``).

``--curves`` instead trains each estimator at its defaults without stopping
(``--max-iter`` epochs), evaluates the held-out codes every 5 epochs, and
prints quality against epochs, then where stopping rules would stop on the
same training-loss curves (the estimators' rule at several
``n_iter_no_change``, a windowed rule that was considered, fixed budgets) and
what a fit with ``early_stopping=True`` (the validation rule) gives: the
evidence behind the default ``n_iter_no_change`` and ``max_iter``.

Every finished fit is appended to ``--results`` (JSON lines), and a re-run
with the same file skips the fits already there, so an interrupted sweep
resumes. One torch thread (``--threads``).

Run: ``python benchmarks/bench_tradeoff.py --results tradeoff.jsonl`` (about
half an hour on one core), ``--curves --max-iter 300 --results curves.jsonl``
(a quarter of an hour), or ``--quick`` for a smoke run.
"""

import argparse
import json
import os
import time
import warnings
from functools import partial

import numpy as np
import torch
from _digits import EpochClock, digits, quality, split
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

ESTIMATORS = {"MMD": MMDAutoencoder, "Adversarial": AdversarialAutoencoder}
GRIDS = {
    "MMD": [{"reg_weight": w} for w in (0.03, 0.1, 0.3, 1.0, 3.0)],
    "Adversarial": [
        {"reg_weight": w, "discriminator_learning_rate": d}
        for d in (1e-4, 1e-3)
        for w in (0.003, 0.01, 0.03, 0.1)
    ],
}
SEARCH = {"MMD": (0.03, 0.1, 0.3, 1.0, 3.0), "Adversarial": (0.003, 0.01, 0.03, 0.1)}
# --variants: settings that differ from the defaults in one or two places.
# (256, 128), batch 128, learning rate 1e-3 were the networks, batch size and
# learning rate of both estimators before issue 11; MMD's reg_weight was 1.0,
# the adversary's discriminator_learning_rate 1e-3.
BEFORE = dict(hidden_layer_sizes=(256, 128), batch_size=128, learning_rate_init=1e-3)
VARIANTS = [
    ("MMD", {**BEFORE, "reg_weight": 1.0}),
    ("MMD", BEFORE),
    ("MMD", {**BEFORE, "batch_size": 100}),
    ("MMD", {**BEFORE, "hidden_layer_sizes": (256, 256)}),
    ("MMD", {"learning_rate_init": 1e-3}),
    ("MMD", {}),
    ("MMD", {"learning_rate_init": 3e-3}),
    ("MMD", {"reg_weight": 0.1}),
    ("MMD", {"reg_weight": 1.0}),
    ("Adversarial", {**BEFORE, "discriminator_learning_rate": 1e-3}),
    ("Adversarial", BEFORE),
    ("Adversarial", {"learning_rate_init": 1e-3, "discriminator_learning_rate": 1e-3}),
    ("Adversarial", {"learning_rate_init": 1e-3}),
    ("Adversarial", {"learning_rate_init": 1e-3, "discriminator_learning_rate": 3e-4}),
    ("Adversarial", {"learning_rate_init": 1e-3, "reg_weight": 1 / 64}),
    ("Adversarial", {"learning_rate_init": 1e-3, "reg_weight": 0.03}),
    ("Adversarial", {"discriminator_learning_rate": 3e-4}),
    ("Adversarial", {}),
]
EVERY = 5  # epochs between evaluations in --curves and --variants
EXTRA = {}  # parameters set for every fit (--quick: a few epochs)


class Results:
    """Rows in a JSON-lines file, keyed; a re-run skips keys already there."""

    def __init__(self, path):
        self.path, self.rows = path, {}
        if path and os.path.exists(path):
            with open(path) as f:
                for line in f:
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def get_or_run(self, key, run):
        if key not in self.rows:
            row = {"key": key, **run()}
            self.rows[key] = row
            if self.path:
                with open(self.path, "a") as f:
                    f.write(json.dumps(row) + "\n")
        return self.rows[key]


def label(params):
    def fmt(v):
        return str(tuple(v)).replace(" ", "") if isinstance(v, tuple) else f"{v:g}"

    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def make(name, seed, **params):
    params = {**EXTRA, **params}
    return ESTIMATORS[name](n_components=2, random_state=seed, **params)


def fit_and_measure(name, params, seed, data):
    X_tr, X_te, y_tr, y_te = data
    est = make(name, seed, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X_tr)
        seconds = time.perf_counter() - t0
    return {
        **quality(est, X_tr, X_te, y_tr, y_te),
        "score": est.score(X_te),
        "seconds": seconds,
        "epochs": est.n_iter_,
    }


def search(name, seed, data):
    X_tr = data[0]
    gs = GridSearchCV(
        make(name, seed), {"reg_weight": list(SEARCH[name])}, cv=3, refit=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gs.fit(X_tr)
    return {"reg_weight": gs.best_params_["reg_weight"]}


def mean_std(values, fmt):
    values = np.asarray(values, dtype=float)
    return f"{values.mean():{fmt}} ± {values.std():{fmt}}"


def defaults_of(name):
    est = ESTIMATORS[name]()
    return {k: getattr(est, k) for k in GRIDS[name][0]}


def run_grid(args, results):
    X, y = digits()
    seeds = range(args.seeds)
    for seed in seeds:
        data = split(X, y, seed)
        for name, grid in GRIDS.items():
            for params in grid:
                key = f"grid|{name}|{label(params)}|{seed}"
                results.get_or_run(
                    key, partial(fit_and_measure, name, params, seed, data)
                )
        if not args.skip_search:
            for name in GRIDS:
                results.get_or_run(
                    f"search|{name}|{seed}", partial(search, name, seed, data)
                )

    print(
        f"digits, held-out stratified quarter, n_components=2, N(0, I) prior, "
        f"{args.seeds} seeds; everything else at the defaults; mean ± std over seeds"
    )
    head = ["estimator", "setting", "epochs", "kNN acc", "MMD^2", "recon MSE"]
    head += ["score", "fit s"]
    print(f"| {' | '.join(head)} |")
    print("|" + "---|" * len(head))
    table = {}
    for name, grid in GRIDS.items():
        default = defaults_of(name)
        for params in grid:
            rows = [results.rows[f"grid|{name}|{label(params)}|{s}"] for s in seeds]
            table[name, label(params)] = rows
            mark = " (default)" if params == default else ""
            cells = [
                f"{np.mean([r['epochs'] for r in rows]):.0f}",
                mean_std([r["knn"] for r in rows], ".3f"),
                mean_std([r["mmd2"] for r in rows], ".4f"),
                mean_std([r["mse"] for r in rows], ".4f"),
                mean_std([r["score"] for r in rows], ".1f"),
                mean_std([r["seconds"] for r in rows], ".1f"),
            ]
            print(f"| {name} | {label(params)}{mark} | {' | '.join(cells)} |")

    picks = {}
    if not args.skip_search:
        print()
        print("GridSearchCV(reg_weight, cv=3, default scorer) on the training rows:")
        for name in GRIDS:
            default = defaults_of(name)
            chosen = [results.rows[f"search|{name}|{s}"]["reg_weight"] for s in seeds]
            picks[name] = chosen
            keys = [
                f"grid|{name}|{label({**default, 'reg_weight': w})}|{s}"
                for s, w in zip(seeds, chosen, strict=True)
            ]
            held = [results.rows[k] for k in keys if k in results.rows]
            there = (
                f"; held-out kNN {mean_std([r['knn'] for r in held], '.3f')}, "
                f"MMD^2 {mean_std([r['mmd2'] for r in held], '.4f')} (the grid's "
                "rows of those settings)"
                if len(held) == len(keys)
                else ""
            )
            print(f"  {name}: picks reg_weight {chosen} (seeds {list(seeds)}){there}")
    if args.figure:
        figure(table, picks, args.figure)


def figure(table, picks, path):
    """Three panels: kNN against MMD^2, kNN and score against reg_weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax_knn, ax_score) = plt.subplots(1, 3, figsize=(15, 4.4))
    styles = {"MMD": "o-", "Adversarial": "s--"}
    XLIM, YLIM = (-0.0008, 0.0025), (0.75, 0.93)  # the left panel's window
    off = []  # settings outside it
    for name, grid in GRIDS.items():
        default = defaults_of(name)
        groups = {}
        for params in grid:
            rest = {k: v for k, v in params.items() if k != "reg_weight"}
            groups.setdefault(label(rest), []).append(params)
        for rest, members in groups.items():
            stats = {}
            for params in members:
                rows = table[name, label(params)]
                for metric in ("knn", "mmd2", "score"):
                    values = [r[metric] for r in rows]
                    stats.setdefault(metric, []).append(
                        (np.mean(values), np.std(values))
                    )
            (kx, ks), (mx, ms), (sx, ss) = (
                np.array(stats[m]).T for m in ("knn", "mmd2", "score")
            )
            w = np.array([p["reg_weight"] for p in members])
            text = f"{name}" + (f" ({rest})" if rest else "")
            line = ax.errorbar(mx, kx, xerr=ms, yerr=ks, fmt=styles[name], label=text)
            color = line[0].get_color()
            ax_knn.errorbar(w, kx, yerr=ks, fmt=styles[name], color=color)
            ax_score.errorbar(w, sx, yerr=ss, fmt=styles[name], color=color)
            for params, x_, y_ in zip(members, mx, kx, strict=True):
                if not (XLIM[0] < x_ < XLIM[1] and YLIM[0] < y_ < YLIM[1]):
                    off.append(f"{name}, {label(params)}: kNN {y_:.2f}, MMD² {x_:.3f}")
                    continue
                ax.annotate(
                    f"{params['reg_weight']:g}",
                    (x_, y_),
                    textcoords="offset points",
                    xytext=(5, -9),
                    fontsize=7,
                    color=color,
                )
            for i, params in enumerate(members):
                if params == default:
                    for a, x_, y_ in ((ax, mx[i], kx[i]), (ax_knn, w[i], kx[i])):
                        a.plot(x_, y_, "*", ms=18, mfc="none", color="k")
                    ax_score.plot(w[i], sx[i], "*", ms=18, mfc="none", color="k")
                # how many seeds GridSearchCV picked this reg_weight on
                n_picks = list(picks.get(name, [])).count(params["reg_weight"])
                if n_picks and params == {**default, "reg_weight": w[i]}:
                    ax_score.plot(w[i], sx[i], "o", ms=14, mfc="none", color="r")
                    ax_score.annotate(
                        f"picked {n_picks}x",
                        (w[i], sx[i]),
                        textcoords="offset points",
                        xytext=(-20, 12),
                        fontsize=7,
                        color="r",
                    )
    ax.set_xlim(*XLIM)
    ax.set_ylim(*YLIM)
    if off:
        ax.text(
            0.98,
            0.03,
            "off this window:\n" + "\n".join(off),
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=6,
        )
    ax.set_xlabel("MMD² of held-out codes to N(0, I) (lower: nearer the prior)")
    ax.set_ylabel("held-out kNN accuracy of the codes")
    ax.set_title("the trade-off (labels: reg_weight)", fontsize=10)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=8)
    for a in (ax_knn, ax_score):
        a.set_xscale("log")
        a.set_xlabel("reg_weight")
    ax_knn.set_ylabel("held-out kNN accuracy of the codes")
    ax_knn.set_title("class structure against reg_weight (☆ default)", fontsize=10)
    ax_score.set_ylabel("held-out score (mean log-likelihood)")
    ax_score.set_title("the default scorer (○ GridSearchCV's picks, cv=3)", fontsize=10)
    fig.suptitle("digits, 2-D codes, N(0, I) prior, mean ± std over 5 seeds")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"figure: {path}")


# ------------------------------------------------------------------ --curves
def training_rule(losses, n_iter_no_change, tol):
    """Where the estimators' rule stops on a recorded curve of epoch losses.

    The rule of ``BaseAutoencoder._fit`` (scikit-learn MLP's): an epoch whose
    loss is not below the best so far by ``tol`` counts as no improvement, an
    improving one resets the count; training stops once the count exceeds
    ``n_iter_no_change``.
    """
    best, count = np.inf, 0
    for epoch, loss in enumerate(losses, 1):
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > n_iter_no_change:
            return epoch
    return len(losses)


def window_rule(losses, n_iter_no_change, tol):
    """A rule considered instead: improvement by ``tol`` over a window.

    Stops once the best of the last ``n_iter_no_change + 1`` losses is not below
    the best before them by ``tol``: a loss that falls by less than ``tol`` per
    epoch, but by more per window, is not stopped.
    """
    window = n_iter_no_change + 1
    for epoch in range(window + 1, len(losses) + 1):
        if min(losses[epoch - window : epoch]) > min(losses[: epoch - window]) - tol:
            return epoch
    return len(losses)


def validation_stop(name, seed, data):
    """A fit at the defaults with ``early_stopping=True`` (the validation rule)."""
    X_tr, X_te, y_tr, y_te = data
    est = make(name, seed, early_stopping=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_tr)
    return {"epochs": est.n_iter_, **quality(est, X_tr, X_te, y_tr, y_te)}


def trace(name, seed, data, max_iter, **params):
    X_tr, X_te, y_tr, y_te = data
    est = make(name, seed, **params, max_iter=max_iter, n_iter_no_change=max_iter)
    curve = []

    def after(epoch, seconds):
        if epoch % EVERY == 0:
            curve.append(
                {"epoch": epoch, "seconds": seconds}
                | quality(est, X_tr, X_te, y_tr, y_te)
            )

    EpochClock(est, after)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_tr)
    return {"curve": curve, "loss": est.loss_curve_}


def at_epoch(row, epoch):
    """The evaluation at the last multiple of EVERY not after ``epoch``."""
    points = [p for p in row["curve"] if p["epoch"] <= max(epoch, EVERY)]
    return points[-1]


def run_curves(args, results):
    X, y = digits()
    seeds = range(args.seeds)
    traces = {name: [] for name in ESTIMATORS}
    for seed in seeds:
        data = split(X, y, seed)
        for name in ESTIMATORS:
            key = f"curve|{name}|{args.max_iter}|{seed}"
            row = results.get_or_run(
                key, partial(trace, name, seed, data, args.max_iter)
            )
            traces[name].append(row)
            results.get_or_run(
                f"valstop|{name}|{seed}", partial(validation_stop, name, seed, data)
            )

    print(
        f"digits, held-out stratified quarter, n_components=2, defaults, no "
        f"stopping ({args.max_iter} epochs), {args.seeds} seeds; mean ± std"
    )
    epochs = (25, 50, 100, 150, 200, 300, 400, args.max_iter)
    epochs = sorted({e for e in epochs if e <= args.max_iter})
    print("| estimator | " + " | ".join(f"epoch {e}" for e in epochs) + " |")
    print("|" + "---|" * (len(epochs) + 1))
    for name, rows in traces.items():
        knn = [mean_std([at_epoch(r, e)["knn"] for r in rows], ".3f") for e in epochs]
        mmd = [mean_std([at_epoch(r, e)["mmd2"] for r in rows], ".4f") for e in epochs]
        print(f"| {name} kNN | " + " | ".join(knn) + " |")
        print(f"| {name} MMD^2 | " + " | ".join(mmd) + " |")
    print()
    print("where stopping rules stop on these training-loss curves:")
    head = ["estimator", "rule", "epochs (range)", "kNN acc", "MMD^2"]
    print(f"| {' | '.join(head)} |")
    print("|" + "---|" * len(head))
    for name, rows in traces.items():
        est = ESTIMATORS[name]()
        n, tol = est.n_iter_no_change, est.tol
        rules = {
            f"training loss, n_iter_no_change=10, tol={tol:g} (before)": partial(
                training_rule, n_iter_no_change=10, tol=tol
            ),
            f"training loss, n_iter_no_change={n}, tol={tol:g} (default)": partial(
                training_rule, n_iter_no_change=n, tol=tol
            ),
            f"training loss, n_iter_no_change=20, tol={tol:g}": partial(
                training_rule, n_iter_no_change=20, tol=tol
            ),
            f"window of n_iter_no_change+1={n + 1}, tol={tol:g}": partial(
                window_rule, n_iter_no_change=n, tol=tol
            ),
        }
        for e in (100, 200, 300):
            if e <= args.max_iter:
                rules[f"fixed {e} epochs"] = lambda L, e=e: min(e, len(L))
        for rule, stop in rules.items():
            at = [stop(r["loss"]) for r in rows]
            points = [at_epoch(r, e) for r, e in zip(rows, at, strict=True)]
            print(
                f"| {name} | {rule} | {np.mean(at):.0f} ({min(at)}-{max(at)}) | "
                f"{mean_std([p['knn'] for p in points], '.3f')} | "
                f"{mean_std([p['mmd2'] for p in points], '.4f')} |"
            )
        points = [results.rows[f"valstop|{name}|{s}"] for s in seeds]
        at = [p["epochs"] for p in points]
        print(
            f"| {name} | validation loss (early_stopping=True: 10% held out, "
            f"best weights restored) | {np.mean(at):.0f} ({min(at)}-{max(at)}) | "
            f"{mean_std([p['knn'] for p in points], '.3f')} | "
            f"{mean_std([p['mmd2'] for p in points], '.4f')} |"
        )


def run_variants(args, results):
    X, y = digits()
    seeds = range(args.seeds)
    rows = {}
    for seed in seeds:
        data = split(X, y, seed)
        for i, (name, params) in enumerate(VARIANTS):
            key = f"variant|{name}|{args.max_iter}|{label(params)}|{seed}"
            run = partial(trace, name, seed, data, args.max_iter, **params)
            rows.setdefault(i, []).append(results.get_or_run(key, run))

    print(
        f"digits, held-out stratified quarter, n_components=2, {args.seeds} seeds, "
        f"no stopping ({args.max_iter} epochs); each row changes the defaults as "
        "shown; kNN accuracy / MMD^2 of held-out codes (mean over seeds), and the "
        "epoch at which the default stopping rule would stop"
    )
    epochs = sorted(
        {e for e in (50, 100, 200, 300, args.max_iter) if e <= args.max_iter}
    )
    head = ["estimator", "changed from the defaults"]
    head += [f"epoch {e}" for e in epochs] + ["stops at", "kNN there"]
    print(f"| {' | '.join(head)} |")
    print("|" + "---|" * len(head))
    for i, (name, params) in enumerate(VARIANTS):
        cells = []
        for e in epochs:
            points = [at_epoch(r, e) for r in rows[i]]
            cells.append(
                f"{np.mean([p['knn'] for p in points]):.3f} / "
                f"{np.mean([p['mmd2'] for p in points]):.4f}"
            )
        est = ESTIMATORS[name]()
        at = [training_rule(r["loss"], est.n_iter_no_change, est.tol) for r in rows[i]]
        there = [at_epoch(r, e)["knn"] for r, e in zip(rows[i], at, strict=True)]
        cells += [f"{np.mean(at):.0f}", mean_std(there, ".3f")]
        print(f"| {name} | {label(params) or '(defaults)'} | {' | '.join(cells)} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--results", default=None, help="JSON-lines file (resume)")
    parser.add_argument("--figure", default="docs/images/tradeoff_digits.png")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--curves", action="store_true")
    parser.add_argument("--variants", action="store_true")
    parser.add_argument(
        "--max-iter", type=int, default=300, help="with --curves and --variants"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the benchmark process only
    if args.quick:
        global GRIDS, SEARCH
        args.seeds, args.max_iter, args.figure = 1, 10, None
        GRIDS = {k: v[:2] for k, v in GRIDS.items()}
        SEARCH = {k: v[:2] for k, v in SEARCH.items()}
        VARIANTS[:] = VARIANTS[:2]
        EXTRA["max_iter"] = 3
    results = Results(args.results)
    if args.variants:
        run_variants(args, results)
    elif args.curves:
        run_curves(args, results)
    else:
        run_grid(args, results)


if __name__ == "__main__":
    main()
