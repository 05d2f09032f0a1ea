"""The CUDA path. Skipped on machines without CUDA.

Not yet run: no GPU has been lent to this project's sessions. The tolerances
below are therefore not measured; they assume float32 on both sides with TF32
off (torch's default for matmuls). ``benchmarks/gpu_check.py`` runs the wider
matrix (every input kind, encoder and precision) and prints what it finds.
"""

import os
import pickle
import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.utils._testing import assert_allclose

from sklearn_aae import (
    AdversarialAutoencoder,
    MMDAutoencoder,
    MMDAutoencoderClustering,
    MMDAutoencoderEmbedding,
)

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

REPO = Path(__file__).resolve().parents[1]
ON_GPU = dict(
    hidden_layer_sizes=(32,),
    batch_size=64,
    max_iter=2,
    device="cuda",
    random_state=0,
)
ESTIMATOR_FACTORIES = [
    partial(MMDAutoencoder, **ON_GPU),
    partial(AdversarialAutoencoder, discriminator_hidden_layer_sizes=(16,), **ON_GPU),
    # The task estimators that need no y: a class block beside the style (its
    # softmax head, the consistency term's second encoder pass), and the map
    # (its first decoder layer and the heads' penalty). Not yet run on a GPU.
    partial(MMDAutoencoderClustering, n_clusters=3, **ON_GPU),
    partial(MMDAutoencoderEmbedding, n_clusters=3, **ON_GPU),
]
X = np.random.RandomState(0).uniform(size=(512, 20)).astype(np.float32)
X[X < 0.5] = 0.0


def _factory_id(make):
    return make.func.__name__


parametrize_factories = pytest.mark.parametrize(
    "make", ESTIMATOR_FACTORIES, ids=_factory_id
)


def _as_kind(kind, tmp_path):
    if kind == "csr":
        return sparse.csr_matrix(X)
    if kind == "memmap":
        mm = np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        return np.memmap(tmp_path / "X.dat", dtype=np.float32, mode="r", shape=X.shape)
    return X


def _sync_count(func):
    """How many synchronising CUDA calls ``func()`` makes."""
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            func()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return sum("synchroniz" in str(w.message).lower() for w in caught)


@parametrize_factories
@pytest.mark.parametrize("kind", ["dense", "csr", "memmap"])
def test_fit_on_cuda_keeps_networks_on_the_gpu_and_outputs_on_the_host(
    make, kind, tmp_path
):
    X_in = _as_kind(kind, tmp_path)
    est = make().fit(X_in)
    assert est.device_ == torch.device("cuda", torch.cuda.current_device())
    assert all(p.is_cuda for p in est.decoder_.parameters())
    Z = est.transform(X_in)
    assert isinstance(Z, np.ndarray) and Z.dtype == np.float32
    assert np.all(np.isfinite(Z))
    assert np.all(np.isfinite(est.score_samples(X_in[:50])))
    assert est.sample(3, random_state=0).shape == (3, X.shape[1])


@parametrize_factories
@pytest.mark.parametrize("kind", ["csr", "memmap"])
def test_streamed_input_trains_like_dense_on_cuda(make, kind, tmp_path):
    dense = make().fit(X)
    streamed = make().fit(_as_kind(kind, tmp_path))
    assert_allclose(streamed.loss_curve_, dense.loss_curve_, rtol=1e-4)


@parametrize_factories
def test_bfloat16_autocasts_the_training_passes_on_cuda(make):
    est = make(precision="bfloat16", max_iter=1).fit(X)
    dtypes = []

    def record(module, args, out):
        if torch.is_grad_enabled():  # training passes only
            dtypes.append(out.dtype)

    hook = est.decoder_.register_forward_hook(record)
    est.partial_fit(X)
    hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}


@parametrize_factories
def test_fit_leaves_the_cuda_generators_alone(make):
    before = torch.cuda.get_rng_state_all()
    est = make().fit(X)
    est.score_samples(X[:20])
    est.sample(5, random_state=0)
    after = torch.cuda.get_rng_state_all()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


CHILD = """
import pickle, sys
import numpy as np, torch
est = pickle.load(open(sys.argv[1], "rb"))
assert not torch.cuda.is_available() and est.device_.type == "cpu"
X = np.load(sys.argv[2])
np.savez(sys.argv[3], Z=est.transform(X), scores=est.score_samples(X))
"""


def _outputs_in_a_cpu_only_process(est, tmp_path):
    """transform and score_samples of ``est`` unpickled where CUDA is hidden."""
    model, data, out = tmp_path / "m.pkl", tmp_path / "X.npy", tmp_path / "out.npz"
    model.write_bytes(pickle.dumps(est))
    np.save(data, X[:100])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p
    )
    subprocess.run(
        [sys.executable, "-c", CHILD, str(model), str(data), str(out)],
        env=env,
        check=True,
    )
    return np.load(out)


@parametrize_factories
@pytest.mark.parametrize("encoder", ["deterministic", "gaussian", "universal"])
def test_gpu_model_unpickles_in_a_cpu_only_process_with_the_same_outputs(
    make, encoder, tmp_path
):
    est = make(encoder=encoder).fit(X)
    cpu = _outputs_in_a_cpu_only_process(est, tmp_path)
    assert_allclose(cpu["Z"], est.transform(X[:100]), rtol=1e-4, atol=1e-5)
    assert_allclose(cpu["scores"], est.score_samples(X[:100]), rtol=1e-4)


@parametrize_factories
def test_dense_training_synchronises_per_epoch_not_per_batch(make):
    # 512 rows in 2 or in 16 batches per epoch, 2 epochs: a synchronisation per
    # batch would add 28. On an H100 (torch 2.11) the MMD fit counted 30 and 29:
    # a one-off that depends on the batch layout, not on the number of batches.
    counts = [_sync_count(lambda b=b: make(batch_size=b).fit(X)) for b in (256, 32)]
    assert abs(counts[1] - counts[0]) <= 2, counts


@parametrize_factories
@pytest.mark.parametrize("kind", ["csr", "memmap"])
def test_streamed_training_synchronises_per_epoch_not_per_batch(make, kind, tmp_path):
    # 2 or 16 batches per epoch, 2 epochs: a synchronisation per batch would
    # add 28. On an H200 (torch 2.11) the counts were equal in one run and one
    # apart in the next (38 and 37; after an uncounted warm-up fit, every
    # factory and kind one apart, the 2-batch fit the higher): a one-off, as
    # in the dense test, not one per batch.
    X_in = _as_kind(kind, tmp_path)
    counts = [_sync_count(lambda b=b: make(batch_size=b).fit(X_in)) for b in (256, 32)]
    assert abs(counts[1] - counts[0]) <= 2, counts


@pytest.mark.parametrize("make", ESTIMATOR_FACTORIES[:2], ids=_factory_id)
def test_mixture_encoder_trains_with_labels_without_a_sync_per_batch(make, tmp_path):
    # encoder='mixture' on the ring with labels: the cross-entropy of the
    # labelled rows and (MMD) the styles' MMD add no synchronisation per batch,
    # and the fitted model unpickles on the CPU. Not yet run on a GPU.
    from sklearn_aae.priors import GaussianMixturePrior

    y = np.where(np.arange(len(X)) % 5 == 0, np.arange(len(X)) % 3, -1)
    params = dict(prior=GaussianMixturePrior.ring(3), encoder="mixture")
    counts = [
        _sync_count(lambda b=b: make(batch_size=b, **params).fit(X, y))
        for b in (256, 32)
    ]
    assert abs(counts[1] - counts[0]) <= 2, counts
    est = make(**params).fit(X, y)
    assert est.encoder_.means.device.type == "cuda"
    cpu = _outputs_in_a_cpu_only_process(est, tmp_path)
    assert_allclose(cpu["Z"], est.transform(X[:100]), rtol=1e-4, atol=1e-5)
