"""GPU check: the CUDA path end to end, in one run of a few minutes.

1. **Fit matrix.** Every estimator x input kind (dense, CSR, read-only memmap) x
   encoder kind x precision is fitted, then used for ``transform``,
   ``score_samples``, ``sample`` and ``inverse_transform``, under
   ``torch.cuda.set_sync_debug_mode('warn')``: the table counts the
   synchronising CUDA calls of the fit (per epoch, next to the number of
   batches per epoch: a count that grows with the batches is a per-batch host
   synchronisation) and of the inference calls. Each row also says whether the
   global random state is untouched: the CPU generator and, on a GPU, every
   CUDA generator (``torch.cuda.get_rng_state_all()`` before and after), plus
   how many times ``torch.cuda.manual_seed_all`` was called (which, on a
   machine without CUDA, queues a reseed for when CUDA starts).
2. **Pickle to a CPU-only process.** A model of each estimator and encoder kind
   is trained on the device, pickled, and loaded in a subprocess with
   ``CUDA_VISIBLE_DEVICES=''``, which checks ``device_`` is the CPU and computes
   ``transform`` and ``score_samples``; the table compares them with the
   device's values on the same weights.
3. **Speed.** ``benchmarks/bench_speed.py --device <device>`` prints its table.

``--device cpu`` is a dry run of the same code on the CPU (smaller data, the
speed table with ``--quick``): the sync counts are then ``n/a``, the pickle
comparison is CPU against CPU. The exit status is 1 when a check fails
(non-finite output, a changed random state or a call to
``torch.cuda.manual_seed_all``, a failed or mismatching CPU-only load); sync
counts are reported, not judged.

Usage::

    python benchmarks/gpu_check.py                 # on a machine with CUDA
    python benchmarks/gpu_check.py --device cpu    # dry run, ~2 min of CPU
    python benchmarks/gpu_check.py --skip-speed
"""

import argparse
import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import sparse

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's package, here and in the child

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder  # noqa: E402

ESTIMATORS = {
    "MMD": (MMDAutoencoder, {}),
    "AAE": (AdversarialAutoencoder, {"discriminator_hidden_layer_sizes": (64, 64)}),
}
INPUTS = ("dense", "csr", "memmap")
ENCODERS = ("deterministic", "gaussian", "universal")
PRECISIONS = ("float32", "bfloat16")
BATCH = 128
# Relative differences between the device's and the CPU's outputs on the same
# weights above which the pickle check fails (float32 on both, no TF32).
RTOL_CODES, RTOL_SCORES = 1e-3, 1e-3

CHILD = """
import pickle, sys
import numpy as np, torch
est = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2])
assert not torch.cuda.is_available(), "CUDA is visible in the CPU-only process"
assert est.device_.type == "cpu", est.device_
np.savez(sys.argv[3], Z=est.transform(X), scores=est.score_samples(X))
"""


def make_inputs(n_samples, n_features, tmpdir):
    """The same float32 rows (half of the entries zero) as each input kind."""
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(n_samples, n_features)).astype(np.float32)
    X[X < 0.5] = 0.0
    path = Path(tmpdir) / "X.dat"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    del mm
    memmap = np.memmap(path, dtype=np.float32, mode="r", shape=X.shape)
    return {"dense": X, "csr": sparse.csr_matrix(X), "memmap": memmap}


@contextlib.contextmanager
def count_syncs(device):
    """Collects the messages of synchronising CUDA calls made inside the block.

    On the CPU nothing is counted (the list stays None in the report).
    """
    found = []
    if device.type != "cuda":
        yield None
        return
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield found
        finally:
            torch.cuda.set_sync_debug_mode(previous)
            found.extend(
                str(w.message) for w in caught if "synchroniz" in str(w.message).lower()
            )


@contextlib.contextmanager
def watch_cuda_reseeds():
    """Counts calls to ``torch.cuda.manual_seed_all`` (which still run)."""
    calls = []
    original = torch.cuda.manual_seed_all

    def counting(seed):
        calls.append(seed)
        return original(seed)

    torch.cuda.manual_seed_all = counting
    try:
        yield calls
    finally:
        torch.cuda.manual_seed_all = original


def rng_states():
    states = [torch.get_rng_state()]
    if torch.cuda.is_available():
        states += torch.cuda.get_rng_state_all()
    return states


def same_states(a, b):
    if len(a) != len(b):
        return False
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def make_estimator(name, device, epochs, **params):
    Estimator, extra = ESTIMATORS[name]
    return Estimator(
        hidden_layer_sizes=(256, 128),
        batch_size=BATCH,
        max_iter=epochs,
        device=device,
        random_state=0,
        **extra,
        **params,
    )


def fit_matrix(device, inputs, epochs):
    """Section 1; returns (rows, failures)."""
    n = inputs["dense"].shape[0]
    batches = -(-n // BATCH)
    head = (
        f"{'est':<4} {'input':<7} {'encoder':<14} {'precision':<9} {'fit s':>7} "
        f"{'syncs/epoch':>11} {'batches':>7} {'inference syncs':>15} "
        f"{'RNG untouched':>13} {'reseeds':>7} {'finite':>6}"
    )
    print(head)
    print("-" * len(head))
    failures, reseeding = [], []
    for name in ESTIMATORS:
        for kind in INPUTS:
            for encoder in ENCODERS:
                for precision in PRECISIONS:
                    X = inputs[kind]
                    est = make_estimator(
                        name, device, epochs, encoder=encoder, precision=precision
                    )
                    before = rng_states()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # bf16 notice
                        warnings.simplefilter("ignore", RuntimeWarning)
                        with watch_cuda_reseeds() as reseeds:
                            t0 = time.perf_counter()
                            with count_syncs(device) as fit_syncs:
                                est.fit(X)
                            if device.type == "cuda":
                                torch.cuda.synchronize(device)
                            seconds = time.perf_counter() - t0
                            with count_syncs(device) as inference_syncs:
                                Z = est.transform(X)
                                scores = est.score_samples(X[:256])
                                drawn = est.sample(8, random_state=0)
                                back = est.inverse_transform(Z[:8])
                    after = rng_states()
                    untouched = same_states(before, after)
                    finite = all(
                        np.all(np.isfinite(a)) for a in (Z, scores, drawn, back)
                    )
                    if fit_syncs is None:
                        per_epoch, inference = "n/a", "n/a"
                    else:
                        per_epoch = f"{len(fit_syncs) / epochs:.1f}"
                        inference = str(len(inference_syncs))
                    print(
                        f"{name:<4} {kind:<7} {encoder:<14} {precision:<9} "
                        f"{seconds:>7.2f} {per_epoch:>11} {batches:>7} "
                        f"{inference:>15} {'yes' if untouched else 'NO':>13} "
                        f"{len(reseeds):>7} {'yes' if finite else 'NO':>6}",
                        flush=True,
                    )
                    label = f"{name}/{kind}/{encoder}/{precision}"
                    if not untouched:
                        failures.append(f"{label}: the global RNG state changed")
                    if reseeds:
                        reseeding.append(f"{label} ({len(reseeds)})")
                    if not finite:
                        failures.append(f"{label}: non-finite outputs")
    if reseeding:
        failures.append(
            f"torch.cuda.manual_seed_all was called by {len(reseeding)} of "
            f"{len(ESTIMATORS) * len(INPUTS) * len(ENCODERS) * len(PRECISIONS)} "
            f"fits (calls per fit in brackets): {', '.join(reseeding[:3])}, ..."
        )
    return failures


def pickle_round_trip(device, X, epochs, tmpdir):
    """Section 2: device-trained pickles, loaded where CUDA is hidden."""
    head = (
        f"{'est':<4} {'encoder':<14} {'child device':<12} "
        f"{'rel diff codes':>18} {'rel diff scores':>19}"
    )
    print(head)
    print("-" * len(head))
    failures = []
    np.save(Path(tmpdir) / "X.npy", X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
    for name in ESTIMATORS:
        for encoder in ENCODERS:
            label = f"{name}/{encoder}"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est = make_estimator(name, device, epochs, encoder=encoder).fit(X)
            Z, scores = est.transform(X), est.score_samples(X)
            model = Path(tmpdir) / f"{name}-{encoder}.pkl"
            out = Path(tmpdir) / f"{name}-{encoder}.npz"
            with open(model, "wb") as f:
                pickle.dump(est, f)
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, str(model), str(Path(tmpdir) / "X.npy")]
                + [str(out)],
                env=env,
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                print(f"{name:<4} {encoder:<14} FAILED: {proc.stderr.strip()[-500:]}")
                failures.append(f"{label}: the CPU-only process failed")
                continue
            child = np.load(out)
            dz = _max_rel_diff(child["Z"], Z)
            ds = _max_rel_diff(child["scores"], scores)
            print(f"{name:<4} {encoder:<14} {'cpu':<12} {dz:>18.2e} {ds:>19.2e}")
            if not (dz <= RTOL_CODES and ds <= RTOL_SCORES):
                failures.append(f"{label}: CPU and {device} outputs differ")
    return failures


def _max_rel_diff(a, b):
    """Largest difference relative to the array's largest magnitude.

    Element-wise ratios blow up on entries near zero (the first GPU run saw
    4e-3 on a code of about 1e-4 with every other entry within 1e-3), so the
    scale is the array's, as in ``assert_allclose(..., atol=...)``.
    """
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-12))


def speed_table(device, quick):
    """Section 3: bench_speed.py on the same device, its table as printed."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_speed.py")]
    cmd += ["--device", str(device)]
    if quick:
        cmd += [
            "--n-samples",
            "500",
            "--repeats",
            "1",
            "--skip-pythae",
            "--threads",
            "1",
        ]
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    print(proc.stdout)
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
        return [f"bench_speed.py exited with status {proc.returncode}"]
    return []


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--device", default="cuda", help="'cuda' (default), 'cuda:1', or 'cpu'"
    )
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(
            f"--device {args.device}: CUDA is not available here "
            "(use --device cpu for a dry run)"
        )
    on_gpu = device.type == "cuda"
    if on_gpu:
        device = torch.device("cuda", device.index or 0)
    n_samples, epochs = (4096, 2) if on_gpu else (512, 1)

    print(f"torch {torch.__version__}, device {device}", end="")
    if on_gpu:
        print(f" ({torch.cuda.get_device_name(device)})", end="")
    print(f"; {n_samples} x 64 rows, batch {BATCH}, {epochs} epoch(s) per fit\n")
    failures = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmpdir:
        inputs = make_inputs(n_samples, 64, tmpdir)
        print("1. Fit matrix (sync counts under set_sync_debug_mode('warn'))\n")
        failures += fit_matrix(device, inputs, epochs)
        print("\n2. Device-trained pickle loaded with CUDA_VISIBLE_DEVICES=''\n")
        failures += pickle_round_trip(device, inputs["dense"][:1024], epochs, tmpdir)
        del inputs
    if not args.skip_speed:
        print(f"\n3. bench_speed.py --device {device}\n")
        failures += speed_table(device, quick=not on_gpu)
    print()
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for failure in failures:
            print(f"- {failure}")
        return 1
    print("All checks passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
