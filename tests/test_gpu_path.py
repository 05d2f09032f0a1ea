"""The GPU path's rules, checked on the CPU: no GPU RNG touched, errors not
swallowed, memory-sized scoring chunks, unsupported devices refused."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.base import clone

from sklearn_aae import AdversarialAutoencoder, MMDAutoencoder
from sklearn_aae import _data as data_module
from sklearn_aae._scoring import _chunk_rows
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae.priors import GaussianMixturePrior, GaussianPrior

FAST = dict(hidden_layer_sizes=(8,), max_iter=2, batch_size=16, device="cpu")
ESTIMATORS = [MMDAutoencoder, AdversarialAutoencoder]


def _data(n=64, p=5, seed=0):
    return np.random.RandomState(seed).normal(size=(n, p))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fit_does_not_seed_the_gpu_generators(Estimator, monkeypatch):
    # torch.manual_seed reseeds every CUDA device (lazily, even on a CPU-only
    # run); the fit must seed only the forked CPU generator.
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda s: calls.append(s))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: calls.append(s))
    Estimator(n_components=2, random_state=0, **FAST).fit(_data())
    assert calls == []


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_fit_leaves_the_cpu_generator_alone(Estimator):
    state = torch.random.get_rng_state()
    Estimator(n_components=2, random_state=0, **FAST).fit(_data())
    assert torch.equal(torch.random.get_rng_state(), state)


@pytest.mark.parametrize("device", ["mps", "meta"])
def test_devices_other_than_cpu_and_cuda_are_refused(device):
    with pytest.raises(ValueError, match="is not supported"):
        MMDAutoencoder(n_components=2, **{**FAST, "device": device}).fit(_data())


def test_score_samples_does_not_swallow_prior_errors(monkeypatch):
    # A RuntimeError in the prior (e.g. CUDA out of memory) must surface rather
    # than silently dropping the prior's gradient from the proposal.
    est = MMDAutoencoder(n_components=2, random_state=0, **FAST).fit(_data())
    tprior_cls = type(tensor_prior(est.prior_, 2))

    def fail(self, Z):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(tprior_cls, "log_prob", fail)
    with pytest.raises(RuntimeError, match="out of memory"):
        est.score_samples(_data(4))


def test_score_samples_does_not_swallow_errors_in_the_prior_gradient(monkeypatch):
    # The error raised only where the proposal takes the prior's gradient: the
    # importance weights' own log_prob call would otherwise raise it anyway.
    est = MMDAutoencoder(n_components=2, random_state=0, **FAST).fit(_data())
    tprior_cls = type(tensor_prior(est.prior_, 2))
    log_prob = tprior_cls.log_prob
    calls = []

    def fail_under_grad(self, Z):
        calls.append(Z.requires_grad)
        if Z.requires_grad:
            raise RuntimeError("CUDA out of memory (simulated)")
        return log_prob(self, Z)

    monkeypatch.setattr(tprior_cls, "log_prob", fail_under_grad)
    with pytest.raises(RuntimeError, match="out of memory"):
        est.score_samples(_data(4))
    # The mode search's density evaluations, then the gradient pass, which
    # raised: nothing ran after it.
    assert calls == [False, False, True]


class _NumpyPrior:
    """A user's prior with NumPy sample and log_prob (no gradient)."""

    def sample(self, n_samples, random_state=None):
        return np.random.RandomState(random_state).normal(size=(n_samples, 2))

    def log_prob(self, Z):
        return multivariate_normal(np.zeros(2), np.eye(2)).logpdf(Z)


def test_score_samples_with_a_numpy_prior_matches_the_same_gaussian():
    X = _data()
    user = MMDAutoencoder(n_components=2, prior=_NumpyPrior(), random_state=0)
    user.set_params(**FAST).fit(X)
    builtin = MMDAutoencoder(n_components=2, prior=GaussianPrior(), random_state=0)
    builtin.set_params(**FAST)
    builtin.fit(X)
    # Same networks (copied), same prior density: the scores differ only by the
    # proposal's prior-gradient term, which the NumPy prior cannot give. Measured
    # gap below 0.05 nats per row here; the bound leaves a 4x margin.
    builtin.encoder_.load_state_dict(user.encoder_.state_dict())
    builtin.decoder_.load_state_dict(user.decoder_.state_dict())
    builtin.noise_variance_ = user.noise_variance_
    a, b = user.score_samples(X[:8]), builtin.score_samples(X[:8])
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, atol=0.2)


def test_score_chunks_shrink_with_wide_data_and_many_components():
    assert _chunk_rows(128, 64, 2) == 512  # the usual case: 65536 // 128
    assert _chunk_rows(128, 20_000, 2) < 20
    assert _chunk_rows(128, 64, 64, n_mixture_components=100) < 512
    # Whatever the size, one chunk's main buffers stay within 256 MiB.
    for p, d, k in [(20_000, 2, 1), (64, 64, 10), (10**6, 8, 1)]:
        rows = _chunk_rows(128, p, d, k)
        assert rows == 1 or rows * 4 * (2 * 128 * p + 128 * k * d) <= 256 * 2**20


def test_scores_of_wide_data_do_not_depend_on_the_chunking():
    # 600 features: 128 importance samples make the chunk ~400 rows, so 900 rows
    # are scored over three chunks; each row's score must equal its own.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(900, 600)).astype(np.float32)
    est = MMDAutoencoder(n_components=2, random_state=0, **FAST).fit(X[:64])
    rows = _chunk_rows(128, 600, 2)
    assert rows < 900 // 2
    whole = est.score_samples(X)
    picked = [0, rows - 1, rows, 2 * rows + 1, 899]
    alone = np.concatenate([est.score_samples(X[[i]]) for i in picked])
    np.testing.assert_allclose(whole[picked], alone, rtol=1e-5)


def test_mixture_log_prob_matches_scipy_without_batched_factors():
    prior = GaussianMixturePrior.ring(n_mixture_components=10)
    tprior = tensor_prior(prior, 2, dtype=torch.float64)
    Z = np.random.RandomState(0).normal(scale=3, size=(50, 2))
    means, covs, w = (np.asarray(a) for a in prior._mixture_params(2))
    expected = np.log(
        sum(w[k] * multivariate_normal(means[k], covs[k]).pdf(Z) for k in range(len(w)))
    )
    got = tprior.log_prob(torch.from_numpy(Z)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


# Dense training data too large for the device's free memory are streamed a
# batch at a time; the free memory is faked here, so that the CPU takes the
# streamed path. Batches are gathered in the same order as from the whole copy,
# so training is bit-identical on the CPU.
RING = GaussianMixturePrior.ring(n_mixture_components=3)
STREAMING_CASES = [
    (MMDAutoencoder, dict(), False),
    (AdversarialAutoencoder, dict(), False),
    (MMDAutoencoder, dict(encoder="gaussian", early_stopping=True), False),
    (AdversarialAutoencoder, dict(encoder="gaussian", early_stopping=True), False),
    (MMDAutoencoder, dict(prior=RING), True),
]


@pytest.mark.parametrize("Estimator, params, labelled", STREAMING_CASES)
def test_training_streamed_for_lack_of_device_memory_equals_the_whole_copy(
    Estimator, params, labelled, monkeypatch, capsys
):
    X = _data(n=80)
    y = np.tile([0, 1, 2, -1], 20) if labelled else None
    est = Estimator(n_components=2, random_state=0, **{**FAST, "max_iter": 3})
    est.set_params(**params)
    whole = clone(est).fit(X, y)
    monkeypatch.setattr(data_module, "_free_device_memory", lambda device: 1000)
    streamed = clone(est).set_params(verbose=1).fit(X, y)
    assert "streamed to it a batch at a time" in capsys.readouterr().out
    assert streamed.loss_curve_ == whole.loss_curve_
    assert streamed.noise_variance_ == whole.noise_variance_
    np.testing.assert_array_equal(streamed.transform(X), whole.transform(X))


def test_training_data_that_fit_on_the_device_are_not_streamed(monkeypatch):
    # The same fit with ample free memory: one whole copy, and nothing said.
    seen = []
    init = data_module._Data.__init__

    def record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        seen.append(self.streamed)

    monkeypatch.setattr(data_module, "_free_device_memory", lambda device: 10**9)
    monkeypatch.setattr(data_module._Data, "__init__", record)
    MMDAutoencoder(n_components=2, random_state=0, **FAST).fit(_data())
    assert seen == [False]
