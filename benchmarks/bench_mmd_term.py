"""Cost of the MMD regulariser alone: forward + backward per batch, in microseconds.

Run: ``python benchmarks/bench_mmd_term.py [n_threads]`` (default 1 thread).
Priors: standard normal (2-D, batch 128; 8-D, batch 100), the ring mixture, and
the IMQ kernel; 'auto' bandwidths (three RBF scales).
"""

import sys
import time

import torch

from sklearn_aae._mmd import _bandwidths, _MMDRegularizer
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae.priors import GaussianMixturePrior, GaussianPrior

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)


def bench(prior, n, d, kernel="rbf", reps=300):
    tp = tensor_prior(prior, d, torch.device("cpu"))
    reg = _MMDRegularizer(
        tp, _bandwidths("auto", tp), torch.Generator().manual_seed(0), kernel
    )
    Z = torch.randn(n, d, requires_grad=True)
    for _ in range(20):
        reg(Z)["regularization"].backward()
    t = time.perf_counter()
    for _ in range(reps):
        reg(Z)["regularization"].backward()
    return (time.perf_counter() - t) / reps * 1e6


for name, prior, n, d, k in [
    ("gauss d2 n128", GaussianPrior(), 128, 2, "rbf"),
    ("gauss d8 n100", GaussianPrior(), 100, 8, "rbf"),
    ("ring d2 n128", GaussianMixturePrior.ring(), 128, 2, "rbf"),
    ("gauss d8 n100 imq", GaussianPrior(), 100, 8, "imq"),
]:
    print(f"{name:<20} {bench(prior, n, d, k):8.0f} us (fwd+bwd)")
