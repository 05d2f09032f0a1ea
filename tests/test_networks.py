"""The encoder kinds: one interface, ``sample(X, generator)`` and ``mean(X)``."""

import pytest
import torch

from sklearn_aae._networks import ENCODERS, build_networks

X = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))


def _encoder(kind):
    return build_networks(5, 3, (7,), "tanh", kind, seed=0)[0]


@pytest.mark.parametrize("kind", ENCODERS)
def test_encoder_kinds_share_one_interface(kind):
    enc = _encoder(kind)
    assert isinstance(enc, ENCODERS[kind])
    with torch.no_grad():
        Z = enc.sample(X, torch.Generator().manual_seed(1))
        again = enc.sample(X, torch.Generator().manual_seed(1))
        mean = enc.mean(X)
    assert Z.shape == mean.shape == (6, 3)
    torch.testing.assert_close(Z, again, rtol=0, atol=0)  # the generator decides
    torch.testing.assert_close(enc.mean(X), mean, rtol=0, atol=0)  # deterministic


@pytest.mark.parametrize(
    "kind, random", [("deterministic", False), ("gaussian", True), ("universal", True)]
)
def test_sample_is_random_only_for_random_encoders(kind, random):
    enc = _encoder(kind)
    with torch.no_grad():
        a = enc.sample(X, torch.Generator().manual_seed(1))
        b = enc.sample(X, torch.Generator().manual_seed(2))
    assert (not torch.equal(a, b)) == random


def test_gaussian_mean_is_the_mean_head():
    enc = _encoder("gaussian")
    with torch.no_grad():
        torch.testing.assert_close(enc.mean(X), enc(X)[0], rtol=0, atol=0)


def test_deterministic_encoder_is_an_indexable_sequential():
    enc = _encoder("deterministic")
    assert isinstance(enc, torch.nn.Sequential)
    assert enc[0].in_features == 5 and enc[-1].out_features == 3
    assert list(enc.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_build_networks_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    build_networks(5, 3, (7,), "relu", "universal", seed=0)
    assert torch.equal(torch.get_rng_state(), state)
