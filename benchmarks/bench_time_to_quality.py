"""Time to quality: training seconds until held-out codes are good enough.

The target (issue 11): held-out kNN accuracy of the codes >= 0.86 (k=5,
fitted on the training codes) with MMD^2 of the held-out codes to the N(0, I)
prior <= 0.002, on scikit-learn's digits scaled to [0, 1] with a held-out
quarter stratified by class (``_digits.split``), 2-D codes.

Side by side in one run, interleaved per seed:

- ``MMDAutoencoder`` and ``AdversarialAutoencoder`` at their defaults (only
  ``n_components=2`` and ``random_state``), trained by ``fit`` as a user
  would; the held-out codes are evaluated after every epoch, outside the
  timed training pass (``_digits.EpochClock``), and the fit is cut short once
  the target is met. A fit that its stopping rule ends first did not reach it.
- pythae's ``Adversarial_AE`` and ``WAE_MMD`` on the same networks, batch size
  and split (``_digits.PythaePeer``, settings as in ``bench_quality.py``),
  trained an epoch at a time by pythae's trainer for up to ``--max-epochs``
  epochs, evaluated after every epoch.

Prints, per model, the seeds that reached the target, and over those the
training seconds (wall and process CPU time) and epochs it took (mean ± std,
and the median), and the ratio of each model's median seconds to pythae's
``Adversarial_AE``. The training pass is all that is timed: not the
evaluations, nor model construction.

Run: ``python benchmarks/bench_time_to_quality.py [--seeds 5]`` (about ten
minutes on one core), or ``--quick``.
"""

import argparse
import json
import os
import statistics
import warnings

import numpy as np
import torch
from _digits import EpochClock, digits, quality, split
from bench_quality import PEERS, make_peer
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

KNN_TARGET, MMD2_TARGET = 0.86, 0.002
EXTRA = {}  # parameters set for our estimators (--quick: a few epochs)


class Reached(Exception):
    """Raised from inside ``fit`` to end it once the target is met."""


def met(q):
    return q["knn"] >= KNN_TARGET and q["mmd2"] <= MMD2_TARGET


def ours(Estimator, seed, data):
    X_tr, X_te, y_tr, y_te = data
    est = Estimator(n_components=2, random_state=seed, **EXTRA)

    def after(epoch, seconds):
        if met(quality(est, X_tr, X_te, y_tr, y_te)):
            raise Reached

    clock = EpochClock(est, after)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit(X_tr)
        except Reached:
            reached = True
        else:
            reached = False
    return {
        "reached": reached,
        "seconds": clock.train_seconds,
        "cpu": clock.cpu_seconds,
        "epochs": clock.epochs,
    }


def peer(name, seed, data, max_epochs):
    X_tr, X_te, y_tr, y_te = data
    model = make_peer(name, X_tr, seed)
    seconds = cpu = 0.0
    for epoch in range(1, max_epochs + 1):
        wall, c = model.train_epoch()
        seconds, cpu = seconds + wall, cpu + c
        if met(quality(model, X_tr, X_te, y_tr, y_te)):
            return {"reached": True, "seconds": seconds, "cpu": cpu, "epochs": epoch}
    return {"reached": False, "seconds": seconds, "cpu": cpu, "epochs": max_epochs}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-epochs", type=int, default=300, help="pythae's")
    parser.add_argument("--results", default=None, help="JSON-lines file (resume)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the benchmark process only
    if args.quick:
        args.seeds, args.max_epochs = 1, 3
        EXTRA["max_iter"] = 3

    models = {
        "MMDAutoencoder": lambda s, d: ours(MMDAutoencoder, s, d),
        "AdversarialAutoencoder": lambda s, d: ours(AdversarialAutoencoder, s, d),
        **{
            name: (lambda s, d, n=name: peer(n, s, d, args.max_epochs))
            for name in PEERS
        },
    }
    done = {}
    if args.results and os.path.exists(args.results):
        with open(args.results) as f:
            for line in f:
                row = json.loads(line)
                done[row["model"], row["seed"]] = row
    X, y = digits()
    for seed in range(args.seeds):
        data = split(X, y, seed)
        for name, run in models.items():
            if (name, seed) in done:
                continue
            row = {"model": name, "seed": seed, **run(seed, data)}
            done[name, seed] = row
            if args.results:
                with open(args.results, "a") as f:
                    f.write(json.dumps(row) + "\n")

    print(
        f"time to held-out kNN >= {KNN_TARGET} with MMD^2 <= {MMD2_TARGET}: digits, "
        f"held-out stratified quarter, n_components=2, {args.seeds} seeds, "
        f"{torch.get_num_threads()} torch thread(s); training passes only"
    )
    head = ["model", "reached", "seconds (wall)", "median s", "cpu s", "epochs"]
    head += ["vs pythae Adversarial_AE"]
    print(f"| {' | '.join(head)} |")
    print("|" + "---|" * len(head))
    medians = {}
    for name in models:
        rows = [done[name, s] for s in range(args.seeds)]
        ok = [r for r in rows if r["reached"]]
        if ok:
            medians[name] = statistics.median(r["seconds"] for r in ok)
    reference = medians.get("pythae Adversarial_AE")
    for name in models:
        rows = [done[name, s] for s in range(args.seeds)]
        ok = [r for r in rows if r["reached"]]
        cells = [f"{len(ok)}/{len(rows)}"]
        if ok:
            sec = np.array([r["seconds"] for r in ok])
            cpu = np.array([r["cpu"] for r in ok])
            ep = np.array([r["epochs"] for r in ok])
            ratio = f"{medians[name] / reference:.2f}x" if reference else "n/a"
            cells += [
                f"{sec.mean():.1f} ± {sec.std():.1f}",
                f"{medians[name]:.1f}",
                f"{cpu.mean():.1f} ± {cpu.std():.1f}",
                f"{ep.mean():.0f} ± {ep.std():.0f}",
                ratio,
            ]
        else:
            cells += ["–"] * 5
        print(f"| {name} | {' | '.join(cells)} |")
    missed = [
        f"{r['model']} seed {r['seed']} ({r['epochs']} epochs)"
        for r in done.values()
        if not r["reached"] and r["seed"] < args.seeds
    ]
    if missed:
        print("not reached: " + "; ".join(missed))


if __name__ == "__main__":
    main()
