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
EVERY = 5  # epochs between evaluations in --curves
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
    return ", ".join(f"{k}={v:g}" for k, v in params.items())


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"MMD": "o-", "Adversarial": "s--"}
    for name, grid in GRIDS.items():
        default = defaults_of(name)
        groups = {}
        for params in grid:
            rest = {k: v for k, v in params.items() if k != "reg_weight"}
            groups.setdefault(label(rest), []).append(params)
        for rest, members in groups.items():
            stats = []
            for params in members:
                rows = table[name, label(params)]
                knn = [r["knn"] for r in rows]
                mmd = [r["mmd2"] for r in rows]
                score = [r["score"] for r in rows]
                stats.append(
                    (params["reg_weight"], np.mean(mmd), np.std(mmd))
                    + (np.mean(knn), np.std(knn), np.mean(score), np.std(score))
                )
            w, mx, sx, ky, sy, sc, ss = map(np.array, zip(*stats, strict=True))
            text = f"{name}" + (f" ({rest})" if rest else "")
            line = ax.errorbar(mx, ky, xerr=sx, yerr=sy, fmt=styles[name], label=text)
            ax2.errorbar(w, sc, yerr=ss, fmt=styles[name], color=line[0].get_color())
            for params, x_, y_ in zip(members, mx, ky, strict=True):
                ax.annotate(
                    f"{params['reg_weight']:g}",
                    (x_, y_),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
                if params == default:
                    ax.plot(x_, y_, "*", ms=16, mfc="none", color="k")
            for w_pick in set(picks.get(name, [])):
                for params, x_, y_ in zip(members, mx, ky, strict=True):
                    if params == {**default, "reg_weight": w_pick}:
                        ax.plot(x_, y_, "o", ms=14, mfc="none", color="tab:red")
    ax.set_xlabel("MMD² of held-out codes to N(0, I)  (lower: closer to the prior)")
    ax.set_ylabel("held-out kNN accuracy of the codes")
    ax.set_title("reg_weight (labels); ☆ default, ○ GridSearchCV's pick")
    ax.legend(fontsize=7, loc="lower right")
    ax2.set_xscale("log")
    ax2.set_xlabel("reg_weight")
    ax2.set_ylabel("held-out score (mean log-likelihood)")
    ax2.set_title("the default scorer of GridSearchCV")
    fig.suptitle("digits, 2-D codes, mean ± std over seeds")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)
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


def trace(name, seed, data, max_iter):
    X_tr, X_te, y_tr, y_te = data
    est = make(name, seed, max_iter=max_iter, n_iter_no_change=max_iter)
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--results", default=None, help="JSON-lines file (resume)")
    parser.add_argument("--figure", default="docs/images/tradeoff_digits.png")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--curves", action="store_true")
    parser.add_argument("--max-iter", type=int, default=400, help="with --curves")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the benchmark process only
    if args.quick:
        global GRIDS, SEARCH
        args.seeds, args.max_iter, args.figure = 1, 10, None
        GRIDS = {k: v[:2] for k, v in GRIDS.items()}
        SEARCH = {k: v[:2] for k, v in SEARCH.items()}
        EXTRA["max_iter"] = 3
    results = Results(args.results)
    (run_curves if args.curves else run_grid)(args, results)


if __name__ == "__main__":
    main()
