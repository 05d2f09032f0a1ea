"""Training speed per epoch: sklearn_aae vs a hand-written loop, pythae, the floor.

Workload W1 (the adversarial-autoencoder paper's MNIST set-up at MNIST's shape):
20,000 x 784 float32 rows (synthetic, uniform in [0, 1)), encoder 784-1000-1000-8
with ReLU, mirrored decoder, batch size 100, N(0, I) prior, CPU, float32. Each
row of the table is one epoch timed after one warm-up epoch; the rows are timed
interleaved, ``--repeats`` times, and the median is reported, so that a machine
shared with other work affects all rows alike.

Rows
----
- ``MMDAutoencoder`` / ``AdversarialAutoencoder``, timed with ``partial_fit``
  (exactly one epoch). The column ``epoch s`` is the training pass alone (the
  estimator's ``_run_epoch``, timed by a wrapper that changes nothing);
  ``call s`` is the whole ``partial_fit`` call: input validation, the epoch,
  and the pass over the data that estimates ``noise_variance_``.
- ``hand-written MMD loop`` / ``hand-written AAE loop``: the same networks,
  loss and update order in a minimal PyTorch loop (index-slice batches, fused
  Adam as in sklearn_aae, one host synchronisation per epoch) -- the floor for
  our overhead. ``hand-written MMD, default Adam`` is the same loop with
  ``torch.optim.Adam``'s defaults (the foreach implementation), as most
  hand-written loops are.
- ``pythae WAE_MMD`` (RBF kernel) and ``pythae Adversarial_AE``: the same
  encoder/decoder (and, for the AAE, discriminator) modules wrapped in pythae's
  ``BaseEncoder`` / ``BaseDecoder`` / ``BaseDiscriminator``, trained by pythae's
  own trainer (``BaseTrainer`` / ``AdversarialTrainer``, DataLoader included)
  as a user would; the timed epoch is one ``trainer.train_step(epoch)``, which
  is what ``trainer.train()`` runs per epoch, without its checkpointing.
- ``floor``: the epoch's matmul FLOPs (forward and backward of every Linear
  layer) divided by the best fp32 matmul rate measured on this machine for
  the layer shapes at batch 100.

Run ``python benchmarks/bench_speed.py`` (a few minutes) or ``--quick`` for a
smoke run; ``--device cuda`` trains every row on the GPU instead (the floor is
then measured there too, with a synchronisation after each timed loop).
pythae is optional (``pip install pythae --no-deps`` plus ``imageio tqdm``);
its rows are skipped with the reason when it cannot be imported.
"""

import argparse
import contextlib
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import torch
from _digits import PythaePeer, mlp
from torch import nn

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder

N_FEATURES, HIDDEN, N_COMPONENTS, BATCH = 784, (1000, 1000), 8, 100
DISC_HIDDEN = (1000, 1000)
LR = 1e-3
# Where every row trains: set by --device ('cpu' unless asked; 'cuda' on a GPU).
DEVICE = torch.device("cpu")
# Our 'auto' bandwidths for the N(0, I) prior: sqrt(d) * (0.5, 1, 2).
BANDWIDTHS = tuple(math.sqrt(N_COMPONENTS) * f for f in (0.5, 1.0, 2.0))


def encoder_sizes():
    return [N_FEATURES, *HIDDEN, N_COMPONENTS]


def decoder_sizes():
    return encoder_sizes()[::-1]


def disc_sizes():
    return [N_COMPONENTS, *DISC_HIDDEN, 1]


def sync():
    """Wait for the device: CUDA kernels run asynchronously."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


# --------------------------------------------------------------------- ours
class Ours:
    """One of our estimators, one epoch per ``partial_fit``."""

    def __init__(self, name, est, X):
        self.name, self.est, self.X = name, est, X
        self.inner = []
        run_epoch = est._run_epoch

        def timed(*args, **kwargs):  # measures, changes nothing
            t0, c0 = time.perf_counter(), time.process_time()
            out = run_epoch(*args, **kwargs)
            self.inner.append((time.perf_counter() - t0, time.process_time() - c0))
            return out

        est._run_epoch = timed

    def warmup(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.est.fit(self.X)  # max_iter=1: builds everything, one epoch
        self.est.partial_fit(self.X)  # and once through partial_fit's path
        self.inner.clear()

    def epoch(self):
        t0 = time.perf_counter()
        self.est.partial_fit(self.X)
        return (time.perf_counter() - t0, *self.inner[-1])


def ours(Estimator, X, precision="float32", **extra):
    """One of our estimators on W1, timed one ``partial_fit`` epoch at a time."""
    est = Estimator(
        precision=precision,
        n_components=N_COMPONENTS,
        hidden_layer_sizes=HIDDEN,
        batch_size=BATCH,
        max_iter=1,
        learning_rate_init=LR,
        device=DEVICE,
        random_state=0,
        **extra,
    )
    suffix = "" if precision == "float32" else f" ({precision})"
    return Ours(Estimator.__name__ + suffix, est, X)


def ours_mmd(X, precision="float32"):
    return ours(MMDAutoencoder, X, precision)


def ours_aae(X, precision="float32"):
    return ours(
        AdversarialAutoencoder,
        X,
        precision,
        discriminator_hidden_layer_sizes=DISC_HIDDEN,
    )


# ------------------------------------------------------------ hand-written
def closed_form_mmd(z, bandwidths=BANDWIDTHS):
    """Unbiased MMD^2 of codes to N(0, I), prior terms in closed form."""
    n, d = z.shape
    sq = (z * z).sum(1)
    D = (sq[:, None] + sq[None, :] - 2.0 * z @ z.T).clamp_min(0.0)
    qq = qp = pp = 0.0
    for bw in bandwidths:
        l2 = bw * bw
        K = torch.exp(-D / (2 * l2))
        qq = qq + (K.sum() - K.diagonal().sum()) / (n * (n - 1))
        qp = qp + (1 + 1 / l2) ** (-d / 2) * torch.exp(-sq / (2 * (1 + l2))).mean()
        pp = pp + (1 + 2 / l2) ** (-d / 2)
    B = len(bandwidths)
    return (qq - 2 * qp + pp) / B


class HandWritten:
    """Minimal loops: tensor in memory, index slices, Adam, one sync per epoch."""

    def __init__(self, name, X, adversarial, fused=True):
        torch.manual_seed(0)
        self.name, self.adversarial = name, adversarial
        self.X = torch.from_numpy(X).to(DEVICE)
        self.enc = mlp(encoder_sizes()).to(DEVICE)
        self.dec = mlp(decoder_sizes()).to(DEVICE)
        # fused=True as in sklearn_aae; fused=False is torch's default (foreach).
        adam = {"lr": LR, "fused": True} if fused else {"lr": LR}
        self.opt = torch.optim.Adam(
            [*self.enc.parameters(), *self.dec.parameters()], **adam
        )
        if adversarial:
            self.disc = mlp(disc_sizes()).to(DEVICE)
            self.dopt = torch.optim.Adam(self.disc.parameters(), **adam)
        self.g = torch.Generator(device=DEVICE).manual_seed(0)

    def _step(self, xb):
        z = self.enc(xb)
        loss = nn.functional.mse_loss(self.dec(z), xb)
        if self.adversarial:
            n = z.shape[0]
            real = torch.randn(n, N_COMPONENTS, generator=self.g, device=DEVICE)
            logits = self.disc(torch.cat([real, z.detach()]))
            target = torch.cat(
                [torch.ones(n, 1, device=DEVICE), torch.zeros(n, 1, device=DEVICE)]
            )
            d_loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
            self.dopt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.dopt.step()
            for p in self.disc.parameters():
                p.requires_grad_(False)
            loss = loss + 0.01 * nn.functional.softplus(-self.disc(z)).mean()
            for p in self.disc.parameters():
                p.requires_grad_(True)
        else:
            loss = loss + closed_form_mmd(z)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def epoch(self):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(self.X.shape[0], generator=self.g, device=DEVICE)
        total = torch.zeros((), device=DEVICE)
        for idx in perm.split(BATCH):
            total += self._step(self.X.index_select(0, idx))
        float(total)  # the one host synchronisation of the epoch
        dt = time.perf_counter() - t0
        return dt, dt, time.process_time() - c0

    def warmup(self):
        self.epoch()


# ------------------------------------------------------------------ pythae
def pythae_runner(name, X, adversarial, tmpdir):
    # pythae's trainer keeps its tqdm progress bars, as a user gets them (their
    # cost is part of its loop); they go to stderr, the table to stdout.
    trainer = dict(
        output_dir=tmpdir,
        learning_rate=LR,
        no_cuda=DEVICE.type != "cuda",
    )
    if adversarial:
        trainer["discriminator_learning_rate"] = LR
        model = {}
    else:
        model = dict(
            kernel_choice="rbf",
            kernel_bandwidth=1.0,  # C = 2 d: the middle of our three scales
            reg_weight=1.0,
        )
    peer = PythaePeer(
        "adversarial" if adversarial else "mmd",
        X,
        hidden=HIDDEN,
        n_components=N_COMPONENTS,
        discriminator_hidden=DISC_HIDDEN,
        batch_size=BATCH,
        seed=0,
        model=model,
        trainer=trainer,
    )
    return PythaeRunner(name, peer.trainer)


class PythaeRunner:
    def __init__(self, name, trainer):
        self.name, self.trainer, self.k = name, trainer, 0

    def epoch(self):
        self.k += 1
        t0, c0 = time.perf_counter(), time.process_time()
        self.trainer.train_step(self.k)
        sync()
        dt = time.perf_counter() - t0
        return dt, dt, time.process_time() - c0

    def warmup(self):
        self.epoch()


# ------------------------------------------------------------------- floor
def linear_matmuls(sizes, rows, input_grad_first):
    """(m, k, n) of the three matmuls per Linear layer in a training step."""
    out = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        out.append((rows, a, b))  # forward x @ W^T
        out.append((b, rows, a))  # weight gradient dY^T @ x
        if i > 0 or input_grad_first:
            out.append((rows, b, a))  # input gradient dY @ W
    return out


def step_matmuls(adversarial):
    mm = linear_matmuls(encoder_sizes(), BATCH, False)
    mm += linear_matmuls(decoder_sizes(), BATCH, True)
    if adversarial:
        # Discriminator step on 2 * BATCH rows (its input needs no gradient).
        mm += linear_matmuls(disc_sizes(), 2 * BATCH, False)
        # Generator loss: forward, then input gradients only.
        for a, b in zip(disc_sizes()[:-1], disc_sizes()[1:], strict=True):
            mm += [(BATCH, a, b), (BATCH, b, a)]
    return mm


def matmul_rate(m, k, n, dtype=torch.float32, min_time=0.2, clock=time.perf_counter):
    """Measured GFLOP/s of torch.matmul for (m, k) @ (k, n), best of several runs."""
    a = torch.randn(m, k, dtype=dtype, device=DEVICE)
    b = torch.randn(k, n, dtype=dtype, device=DEVICE)
    out = torch.empty(m, n, dtype=dtype, device=DEVICE)
    for _ in range(5):
        torch.matmul(a, b, out=out)
    sync()
    reps, best = 1, math.inf
    while True:
        t0 = clock()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        sync()
        dt = clock() - t0
        if dt > min_time / 4:
            best = min(best, dt / reps)
            if dt > min_time:
                break
        reps *= 2
    for _ in range(3):
        t0 = clock()
        for _ in range(reps):
            torch.matmul(a, b, out=out)
        sync()
        best = min(best, (clock() - t0) / reps)
    return 2 * m * k * n / best / 1e9


def floor(n_rows, adversarial, rates):
    mm = step_matmuls(adversarial)
    flops = sum(2 * m * k * n for m, k, n in mm) * (n_rows / BATCH)
    peak = max(rates.values())
    shape_aware = sum(2 * m * k * n / (rates[(m, k, n)] * 1e9) for m, k, n in mm)
    return flops, flops / (peak * 1e9), shape_aware * (n_rows / BATCH)


# -------------------------------------------------------------------- main
def machine():
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    gpu = (
        f", training on {torch.cuda.get_device_name(DEVICE)}"
        if DEVICE.type == "cuda"
        else ""
    )
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} intra-op threads), Python "
        f"{platform.python_version()}{gpu}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows, 1 repeat")
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pythae", action="store_true")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads for this benchmark process (default: torch's)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where every row trains: 'cpu' (the issue's workload) or 'cuda'",
    )
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here")
    if args.threads:
        torch.set_num_threads(args.threads)
    n, repeats = args.n_samples, args.repeats
    if args.quick:
        n, repeats = 2_000, 1

    X = np.random.RandomState(0).uniform(size=(n, N_FEATURES)).astype(np.float32)
    tmpdir = tempfile.mkdtemp(prefix="bench_speed_")
    runners, skipped = [ours_mmd(X), ours_aae(X)], []
    runners += [ours_mmd(X, "bfloat16"), ours_aae(X, "bfloat16")]
    runners += [
        HandWritten("hand-written MMD loop", X, False),
        HandWritten("hand-written MMD, default Adam", X, False, fused=False),
        HandWritten("hand-written AAE loop", X, True),
    ]
    if args.skip_pythae:
        skipped.append("pythae rows: --skip-pythae")
    else:
        for name, adv in (("pythae WAE_MMD", False), ("pythae Adversarial_AE", True)):
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    runners.append(pythae_runner(name, X, adv, tmpdir))
            except Exception as exc:  # noqa: BLE001 - report and keep the rest
                skipped.append(f"{name}: {type(exc).__name__}: {exc}")

    # On one thread the ratios use process CPU time, which a machine shared
    # with other work disturbs far less than wall time; else wall time.
    on_cpu_time = torch.get_num_threads() == 1 and DEVICE.type == "cpu"
    clock = time.process_time if on_cpu_time else time.perf_counter
    shapes = set(step_matmuls(True))
    rates = {s: matmul_rate(*s, clock=clock) for s in sorted(shapes)}

    for r in runners:
        with contextlib.redirect_stdout(sys.stderr):
            r.warmup()
    times = {r.name: [] for r in runners}
    for _ in range(repeats):
        for r in runners:
            with contextlib.redirect_stdout(sys.stderr):
                times[r.name].append(r.epoch())

    med = {
        k: tuple(statistics.median(t[i] for t in v) for i in range(3))
        for k, v in times.items()
    }
    fl = {adv: floor(n, adv, rates) for adv in (False, True)}
    peer = {
        "MMDAutoencoder": "pythae WAE_MMD",
        "MMDAutoencoder (bfloat16)": "pythae WAE_MMD",
        "AdversarialAutoencoder (bfloat16)": "pythae Adversarial_AE",
        "hand-written MMD loop": "pythae WAE_MMD",
        "hand-written MMD, default Adam": "pythae WAE_MMD",
        "pythae WAE_MMD": "pythae WAE_MMD",
        "AdversarialAutoencoder": "pythae Adversarial_AE",
        "hand-written AAE loop": "pythae Adversarial_AE",
        "pythae Adversarial_AE": "pythae Adversarial_AE",
    }

    print(
        f"W1: {n} x {N_FEATURES} float32, encoder {encoder_sizes()}, mirrored "
        f"decoder, batch {BATCH}, N(0, I) prior, discriminator {disc_sizes()}, "
        f"device {DEVICE}"
    )
    print(f"machine: {machine()}")
    print(f"median of {repeats} interleaved epochs, each after a warm-up epoch")
    print()
    head = (
        f"{'row':<32}{'epoch s':>9}{'call s':>9}{'cpu s':>8}{'samples/s':>11}"
        f"{'vs pythae':>11}{'x floor':>9}"
    )
    print(head)
    print("-" * len(head))
    col = 2 if on_cpu_time else 1
    for name, row in med.items():
        call, inner, cpu = row
        p = peer.get(name)
        adv = p == "pythae Adversarial_AE"
        vs = f"{med[p][col] / row[col]:.2f}x" if p in med else "n/a"
        print(
            f"{name:<32}{inner:>9.3f}{call:>9.3f}{cpu:>8.2f}{n / row[col]:>11.0f}"
            f"{vs:>11}{row[col] / fl[adv][1]:>9.2f}"
        )
    for adv, label in ((False, "floor, MMD model"), (True, "floor, AAE model")):
        flops, t, t_shape = fl[adv]
        print(f"{label:<32}{t:>9.3f}{'':>17}{n / t:>11.0f}{'':>11}{1.0:>9.2f}")
    print()
    print(
        "epoch s: training pass (wall); call s: the whole partial_fit call (ours) "
        "or the same as epoch s; cpu s: process CPU time of the training pass."
    )
    basis = "cpu s" if on_cpu_time else "epoch s"
    print(
        f"samples/s, vs pythae (pythae's time / this row's, higher is faster) and "
        f"x floor use {basis}."
    )
    peak = max(rates.values())
    best = max(rates, key=rates.get)
    for adv, label in ((False, "MMD"), (True, "AAE")):
        flops, t, t_shape = fl[adv]
        print(
            f"floor {label}: {flops / 1e9:.1f} GFLOP per epoch / peak "
            f"{peak:.1f} GFLOP/s = {t:.3f} s (per-shape rates: {t_shape:.3f} s)"
        )
    print(
        f"fp32 matmul GFLOP/s ({basis.split()[0]} time) at batch {BATCH} "
        "(m x k @ k x n): "
        + ", ".join(
            f"{m}x{k}@{k}x{nn_}: {r:.0f}" for (m, k, nn_), r in sorted(rates.items())
        )
        + f"; peak at {best}"
    )
    for s in skipped:
        print(f"skipped {s}")


if __name__ == "__main__":
    main()
