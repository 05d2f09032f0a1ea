"""Scaling of MMDAutoencoder.fit with n, and memory of a fit on a memory-mapped file.

Table 1: n = 10k, 20k, 40k, 80k rows of 784 float32 features (synthetic,
uniform in [0, 1)), ``MMDAutoencoder(hidden_layer_sizes=(256, 128),
n_components=8, batch_size=100, max_iter=1)`` -- a smaller network than the
speed benchmark's, so that 80k rows stay quick. Each size runs in its own
subprocess; a sampling thread reads the process's resident set size every
5 ms during ``fit``. Reported: the epoch's seconds per 1,000 rows (the
training pass alone) and for the whole ``fit`` call, the RSS before ``fit``
(the data are already in memory), the peak RSS during ``fit`` and the
difference.

Table 2: a read-only ``np.memmap`` of 2 GiB of float32 (684,784 x 784) is
fitted for one epoch (``hidden_layer_sizes=(64,)``, batch 100), in a
subprocess. The target is a peak RSS during ``fit`` under half the file size.
RSS counts the pages of the mapped file that the process has touched
(``RssFile`` in ``/proc/self/status``) as well as its private memory
(``RssAnon``); both are reported.

Run ``python benchmarks/bench_scale.py`` (a few minutes; the 2 GiB file is
written once to ``--tmpdir`` and reused) or ``--quick`` (n = 2k and 4k, a
256 MiB file).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np

N_FEATURES = 784


# ------------------------------------------------------------------ memory
def _status():
    """Current (rss, anon, file) in bytes, from /proc, or psutil elsewhere."""
    try:
        with open("/proc/self/status") as f:
            fields = dict(line.split(":", 1) for line in f)
        kb = {
            k: int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "RssAnon", "RssFile")
        }
        return kb["VmRSS"], kb["RssAnon"], kb["RssFile"]
    except (OSError, KeyError):
        import psutil

        info = psutil.Process().memory_info()
        return (
            info.rss,
            info.rss - getattr(info, "shared", 0),
            getattr(info, "shared", 0),
        )


class PeakSampler:
    """Samples RSS in a thread; ``peak`` holds the largest (rss, anon, file)."""

    def __init__(self, interval=0.005):
        self.interval, self.peak = interval, [0, 0, 0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        for i, v in enumerate(_status()):
            self.peak[i] = max(self.peak[i], v)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


# ------------------------------------------------------------------ children
def _estimator(hidden):
    from sklearn_aae import MMDAutoencoder

    return MMDAutoencoder(
        n_components=8,
        hidden_layer_sizes=hidden,
        batch_size=100,
        max_iter=1,
        device="cpu",
        random_state=0,
    )


def _timed_fit(est, X):
    inner = []
    run_epoch = est._run_epoch

    def timed(*args, **kwargs):  # measures, changes nothing
        t0, c0 = time.perf_counter(), time.process_time()
        out = run_epoch(*args, **kwargs)
        inner.append((time.perf_counter() - t0, time.process_time() - c0))
        return out

    est._run_epoch = timed
    before = _status()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PeakSampler() as sampler:
            t0 = time.perf_counter()
            c0 = time.process_time()
            est.fit(X)
            total = time.perf_counter() - t0
            total_cpu = time.process_time() - c0
    return {
        "epoch_s": inner[0][0],
        "epoch_cpu_s": inner[0][1],
        "fit_s": total,
        "fit_cpu_s": total_cpu,
        "rss_before": before[0],
        "anon_before": before[1],
        "file_before": before[2],
        "peak_rss": sampler.peak[0],
        "peak_anon": sampler.peak[1],
        "peak_file": sampler.peak[2],
    }


def child_dense(n):
    X = np.empty((n, N_FEATURES), dtype=np.float32)
    rng = np.random.default_rng(0)
    for s in range(0, n, 10_000):  # no float64 temporary of the whole array
        X[s : s + 10_000] = rng.random((min(10_000, n - s), N_FEATURES), np.float32)
    # One small fit first, so torch's one-off allocations are not counted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _estimator((256, 128)).fit(X[:200])
    out = _timed_fit(_estimator((256, 128)), X)
    out["n"], out["data_bytes"] = n, X.nbytes
    return out


def child_memmap(path, n_rows, patch):
    if patch:
        sys.path.insert(0, os.path.dirname(os.path.abspath(patch)))
        __import__(os.path.splitext(os.path.basename(patch))[0])
    X = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, N_FEATURES))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _estimator((64,)).fit(np.asarray(X[:200]))
    out = _timed_fit(_estimator((64,)), X)
    out["n"], out["data_bytes"] = n_rows, X.nbytes
    return out


# -------------------------------------------------------------------- parent
def run_child(args, threads):
    cmd = [sys.executable, os.path.abspath(__file__), *args]
    if threads:
        cmd += ["--threads", str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def write_memmap(path, n_rows):
    if os.path.exists(path) and os.path.getsize(path) == n_rows * N_FEATURES * 4:
        return
    X = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, N_FEATURES))
    rng = np.random.default_rng(0)
    for s in range(0, n_rows, 50_000):
        X[s : s + 50_000] = rng.random(
            (min(50_000, n_rows - s), N_FEATURES), np.float32
        )
    X.flush()
    del X


def mib(b):
    return f"{b / 2**20:,.0f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tmpdir", default=tempfile.gettempdir())
    parser.add_argument("--skip-memmap", action="store_true")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument(
        "--patch",
        default=None,
        help="a Python file imported in the memmap child before fitting "
        "(to measure a candidate fix)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        kind, *rest = args.child
        if kind == "dense":
            out = child_dense(int(rest[0]))
        else:
            out = child_memmap(
                rest[0], int(rest[1]), rest[2] if len(rest) > 2 else None
            )
        print(json.dumps(out))
        return

    import torch

    sizes = (2_000, 4_000) if args.quick else (10_000, 20_000, 40_000, 80_000)
    print(
        "MMDAutoencoder(hidden_layer_sizes=(256, 128), n_components=8, "
        "batch_size=100, max_iter=1), 784 float32 features, one subprocess per row; "
        f"torch {torch.__version__}, {args.threads or torch.get_num_threads()} "
        f"thread(s), {os.cpu_count()} logical CPUs"
    )
    head = (
        f"{'n':>8}{'data MiB':>10}{'epoch ms/1k':>13}{'cpu ms/1k':>11}{'fit ms/1k':>11}"
        f"{'RSS before':>12}{'peak RSS':>10}{'fit adds':>10}"
    )
    print(head)
    print("-" * len(head))
    for n in () if args.skip_dense else sizes:
        r = run_child(["--child", "dense", str(n)], args.threads)
        print(
            f"{n:>8}{mib(r['data_bytes']):>10}{1e6 * r['epoch_s'] / n:>13.2f}"
            f"{1e6 * r['epoch_cpu_s'] / n:>11.2f}"
            f"{1e6 * r['fit_s'] / n:>11.2f}{mib(r['rss_before']):>12}"
            f"{mib(r['peak_rss']):>10}{mib(r['peak_rss'] - r['rss_before']):>10}"
        )
    print(
        "(ms per 1,000 rows: epoch = training pass, wall and process CPU time; "
        "fit = the whole fit call, wall; MiB; 'fit adds' = peak RSS during fit "
        "- RSS before fit)"
    )
    if args.skip_memmap:
        return

    n_rows = (256 if args.quick else 2048) * 2**20 // (N_FEATURES * 4)
    path = os.path.join(args.tmpdir, f"bench_scale_{n_rows}x{N_FEATURES}.f32")
    write_memmap(path, n_rows)
    child = ["--child", "memmap", path, str(n_rows)]
    rows = [("as is", run_child(child, args.threads))]
    if args.patch:
        rows.append(("with --patch", run_child([*child, args.patch], args.threads)))
    print()
    size = n_rows * N_FEATURES * 4
    print(
        f"read-only np.memmap, float32, {n_rows} x {N_FEATURES} = {mib(size)} MiB, "
        "MMDAutoencoder(hidden_layer_sizes=(64,), batch_size=100, max_iter=1)"
    )
    head = (
        f"{'run':<14}{'fit s':>7}{'cpu s':>7}{'RSS before':>12}{'peak RSS':>10}"
        f"{'of file':>9}{'fit adds':>10}{'anon adds':>11}{'file adds':>11}"
        "  target: peak < 50% of file"
    )
    print(head)
    print("-" * len(head))
    for label, r in rows:
        ok = "met" if r["peak_rss"] < size / 2 else "NOT met"
        print(
            f"{label:<14}{r['fit_s']:>7.1f}{r['fit_cpu_s']:>7.1f}"
            f"{mib(r['rss_before']):>12}"
            f"{mib(r['peak_rss']):>10}{r['peak_rss'] / size:>8.0%} "
            f"{mib(r['peak_rss'] - r['rss_before']):>10}"
            f"{mib(r['peak_anon'] - r['anon_before']):>11}"
            f"{mib(r['peak_file'] - r['file_before']):>11}  {ok}"
        )
    print(
        "(MiB; 'adds' = peak during fit - value before fit; anon = private "
        "memory, file = file-backed pages in RSS: the mapped data, and shared "
        "libraries such as libtorch, which are part of 'RSS before')"
    )


if __name__ == "__main__":
    main()
