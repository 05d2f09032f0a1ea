"""Behaviour specific to AdversarialAutoencoder (shared behaviour: test_base.py)."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from sklearn_aae import AdversarialAutoencoder, mmd_to_prior
from sklearn_aae._torch_priors import tensor_prior
from sklearn_aae.priors import (
    BernoulliPrior,
    CategoricalPrior,
    GaussianMixturePrior,
    GaussianPrior,
    ProductPrior,
)

X_DIGITS = load_digits().data[:600] / 16.0
FAST = dict(
    hidden_layer_sizes=(32,),
    discriminator_hidden_layer_sizes=(32,),
    batch_size=64,
    device="cpu",
    random_state=0,
)


class SampleOnlyPrior:
    """A user's prior that can only sample (2-D standard normal)."""

    def sample(self, n_samples, random_state=None):
        return np.random.RandomState(random_state).normal(size=(n_samples, 2))


def _fit(**params):
    est = AdversarialAutoencoder(**{**FAST, **params})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X_DIGITS)


def test_adversarial_codes_match_ring_prior_better_than_plain_autoencoder():
    prior = GaussianMixturePrior.ring()
    X_train, X_test = X_DIGITS[:450], X_DIGITS[450:]
    mmd = {}
    for reg_weight in (0.0, 0.01):
        # 60 epochs of 8 batches: a game this short needs a discriminator as
        # fast as the autoencoder (the defaults' 1e-4 is tuned for longer fits).
        est = AdversarialAutoencoder(
            **{**FAST, "max_iter": 60, "n_iter_no_change": 60},
            prior=prior,
            reg_weight=reg_weight,
            learning_rate_init=1e-3,
            discriminator_learning_rate=1e-3,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train)
        mmd[reg_weight] = mmd_to_prior(est.transform(X_test), prior)
    # Measured: 0.38 without the adversary, 0.07 with it (MMDAutoencoder: 0.01).
    assert mmd[0.01] < 0.15
    assert mmd[0.01] < mmd[0.0] / 4


def test_adversarial_history_records_discriminator_per_epoch():
    est = _fit(max_iter=4, n_iter_no_change=10)
    assert set(est.history_) == {
        "reconstruction",
        "regularization",
        "discriminator_loss",
        "discriminator_accuracy",
    }
    for values in est.history_.values():
        assert len(values) == est.n_iter_ == 4
        assert np.all(np.isfinite(values))
    assert all(0.0 <= a <= 1.0 for a in est.history_["discriminator_accuracy"])
    assert all(v > 0 for v in est.history_["discriminator_loss"])


def test_adversarial_discriminator_has_no_batchnorm_and_outputs_a_logit():
    est = _fit(max_iter=1)
    modules = list(est.discriminator_.modules())
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in modules
    )
    out = est.discriminator_(torch.zeros(5, est.n_components))
    assert out.shape == (5, 1)


@pytest.mark.parametrize(
    "params",
    [
        dict(encoder="gaussian"),
        dict(encoder="universal"),
        dict(discriminator_steps=3),
        dict(instance_noise=0.1),
        dict(prior=SampleOnlyPrior()),
        dict(prior=GaussianMixturePrior.ring()),
        dict(prior=GaussianPrior(scale=[1.0, 2.0])),
    ],
)
def test_adversarial_variants_fit_and_are_reproducible(params):
    a = _fit(max_iter=2, **params)
    b = _fit(max_iter=2, **params)
    np.testing.assert_array_equal(a.transform(X_DIGITS), b.transform(X_DIGITS))
    assert a.loss_curve_ == b.loss_curve_
    assert np.all(np.isfinite(a.transform(X_DIGITS)))


def test_adversarial_generator_loss_does_not_reach_discriminator():
    est = _fit(max_iter=1)
    tprior = tensor_prior(GaussianPrior(), 2, "cpu")
    est._discriminator_optimizer = torch.optim.Adam(est.discriminator_.parameters())
    reg = est._make_regularizer(tprior, torch.Generator().manual_seed(0))
    Z = torch.randn(32, 2, requires_grad=True)
    out = reg(Z)
    before = [p.grad.clone() for p in est.discriminator_.parameters()]
    out["regularization"].backward()
    after = [p.grad for p in est.discriminator_.parameters()]
    for g0, g1 in zip(before, after, strict=True):
        torch.testing.assert_close(g0, g1, rtol=0, atol=0)
    assert Z.grad is not None and torch.all(torch.isfinite(Z.grad))


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_adversarial_bfloat16_runs_discriminator_update_not_generator_loss(precision):
    # precision='bfloat16' autocasts the discriminator's own update; the
    # generator loss through it (the gradient to the encoder) stays float32.
    est = _fit(max_iter=1)
    tprior = tensor_prior(GaussianPrior(), 2, "cpu")
    est._discriminator_optimizer = torch.optim.Adam(est.discriminator_.parameters())
    est.set_params(precision=precision)
    reg = est._make_regularizer(tprior, torch.Generator().manual_seed(0))
    dtypes = []
    hook = est.discriminator_.register_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype)
    )
    out = reg(torch.randn(32, 2, requires_grad=True))
    hook.remove()
    update = torch.bfloat16 if precision == "bfloat16" else torch.float32
    assert dtypes == [update, torch.float32]
    assert all(v.dtype == torch.float32 for v in out.values())
    assert all(p.dtype == torch.float32 for p in est.discriminator_.parameters())


def test_adversarial_partial_fit_keeps_discriminator_and_optimizers():
    est = AdversarialAutoencoder(**FAST)
    est.partial_fit(X_DIGITS)
    disc = est.discriminator_
    opt = est._discriminator_optimizer
    est.partial_fit(X_DIGITS)
    assert est.discriminator_ is disc and est._discriminator_optimizer is opt
    assert est.n_iter_ == 2
    # A full fit releases the optimisers' state.
    _ = est.set_params(max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X_DIGITS)
    assert est._optimizer is None and est._discriminator_optimizer is None


@pytest.mark.parametrize(
    "param, value",
    [
        ("discriminator_hidden_layer_sizes", (0,)),
        ("discriminator_learning_rate", 0.0),
        ("discriminator_steps", 0),
        ("instance_noise", -1.0),
        ("discriminator_blocks", "per_block"),
    ],
)
def test_adversarial_invalid_discriminator_parameters_raise(param, value):
    est = AdversarialAutoencoder(**{**FAST, param: value})
    with pytest.raises(ValueError, match=param):
        est.fit(X_DIGITS)


def test_adversarial_warm_start_rejects_changed_discriminator():
    est = _fit(warm_start=True, max_iter=1)
    est.set_params(discriminator_hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match="discriminator_hidden_layer_sizes changed"):
        est.fit(X_DIGITS)


PRODUCT = ProductPrior(
    [
        ("class", CategoricalPrior(3)),
        ("bits", BernoulliPrior(2)),
        ("style", GaussianPrior()),
    ]
)


def test_separate_discriminators_read_only_their_own_block():
    est = _fit(
        prior=PRODUCT, n_components=7, discriminator_blocks="separate", max_iter=1
    )
    disc = est.discriminator_
    assert [net[0].in_features for net in disc.nets] == [3, 2, 2]
    Z = torch.randn(16, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = disc(Z)
        changed = Z.clone()
        changed[:, 5:] += 1.0  # the style block only
        after = disc(changed)
    assert logits.shape == (16, 3)
    torch.testing.assert_close(after[:, :2], logits[:, :2])
    assert not torch.allclose(after[:, 2], logits[:, 2])
    # The joint discriminator reads the whole code and gives one logit.
    joint = _fit(prior=PRODUCT, n_components=7, max_iter=1).discriminator_
    assert joint[0].in_features == 7 and joint(Z).shape == (16, 1)


def test_every_separate_discriminator_is_trained():
    est = _fit(prior=PRODUCT, n_components=7, discriminator_blocks="separate")
    assert np.isfinite(est.loss_curve_).all()
    # Every block's discriminator was trained: none is left at its initial
    # weights.
    fresh = _fit(
        prior=PRODUCT, n_components=7, discriminator_blocks="separate", max_iter=1
    )
    for trained, initial in zip(
        est.discriminator_.nets, fresh.discriminator_.nets, strict=True
    ):
        assert not torch.equal(trained[0].weight, initial[0].weight)


def test_separate_discriminators_with_one_block_are_the_joint_one():
    joint = _fit(max_iter=2)
    separate = _fit(max_iter=2, discriminator_blocks="separate")
    np.testing.assert_array_equal(
        joint.transform(X_DIGITS), separate.transform(X_DIGITS)
    )


def test_warm_start_rejects_changed_discriminator_blocks():
    est = _fit(prior=PRODUCT, n_components=7, warm_start=True, max_iter=1)
    est.set_params(discriminator_blocks="separate")
    with pytest.raises(ValueError, match="discriminator_block_widths changed"):
        est.fit(X_DIGITS)


def test_universal_posterior_is_random_in_training_and_deterministic_in_transform():
    est = _fit(encoder="universal", max_iter=5)
    X = torch.as_tensor(X_DIGITS[:50], dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        draws = torch.stack([est.encoder_.sample(X, g) for _ in range(64)])
    # q(z|x) has spread for a fixed x (the noise inputs are used) ...
    assert float(draws.std(0).mean()) > 1e-3
    # ... and transform is its mean: deterministic, and (an average of 16 fixed
    # draws against one of 64 others) within one standard deviation of q(z|x)
    # of the average of the draws, coordinate by coordinate.
    Z = est.transform(X_DIGITS[:50])
    np.testing.assert_array_equal(Z, est.transform(X_DIGITS[:50]))
    spread = draws.std(0).numpy()
    assert np.all(np.abs(Z - draws.mean(0).numpy()) < spread + 1e-3)


# ------------------------------------------------------- batch statistics
def test_batch_statistics_feed_each_row_its_own_batch_mean_and_std():
    est = _fit(discriminator_batch_statistics=True, max_iter=1)
    # code, then its batch's mean and standard deviation per coordinate
    assert est.discriminator_[0].in_features == 3 * 2
    reg = est._make_regularizer(tensor_prior(est.prior_, 2), torch.Generator())
    real = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    fake = torch.full((8, 2), 0.5)  # a collapsed batch: every code the same
    inputs = reg._inputs(torch.cat([real, fake]), None, noisy=False, n_batches=2)
    torch.testing.assert_close(inputs[:8, 2:4], real.mean(0).expand(8, 2))
    torch.testing.assert_close(
        inputs[:8, 4:], real.var(0, unbiased=False).add(1e-8).sqrt().expand(8, 2)
    )
    # the collapsed batch shows itself in its statistics, not in its rows
    torch.testing.assert_close(inputs[8:, 2:4], fake)
    assert torch.all(inputs[8:, 4:] < 1e-3)


def test_batch_statistics_sharpen_the_clusters():
    # A discriminator reading one code at a time barely pushes the class heads
    # to one-hot vertices in this short game (most of a batch's rows stay
    # between heads); with its batch's statistics it sees that the batch's
    # heads are not spread like the prior's (measured on random_state 0, 1, 2:
    # mean top probability 0.35-0.49 without, 0.70-0.78 with, every head used,
    # and a higher ARI on each).
    from sklearn.metrics import adjusted_rand_score

    from sklearn_aae import AdversarialAutoencoderClustering

    y = load_digits().target[:600]
    top, ari = {}, {}
    for statistics in (False, True):
        est = AdversarialAutoencoderClustering(
            n_clusters=10,
            reg_weight=0.03,
            discriminator_learning_rate=3e-4,
            discriminator_batch_statistics=statistics,
            n_iter_no_change=1000,
            max_iter=60,
            **FAST,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_DIGITS)
        top[statistics] = est.predict_proba(X_DIGITS).max(axis=1).mean()
        ari[statistics] = adjusted_rand_score(y, est.labels_)
        if statistics:
            assert est.n_clusters_ == 10
    assert top[True] > top[False] + 0.2, top
    assert ari[True] > ari[False], ari


def test_separate_discriminators_read_their_own_blocks_batch_statistics():
    est = _fit(
        prior=PRODUCT,
        n_components=7,
        discriminator_blocks="separate",
        discriminator_batch_statistics=True,
        max_iter=2,
    )
    assert np.isfinite(est.loss_curve_).all()
    disc = est.discriminator_
    # each block: its columns, their batch mean and their batch std
    assert [net[0].in_features for net in disc.nets] == [9, 6, 6]
    reg = est._make_regularizer(tensor_prior(est.prior_, 7), torch.Generator())
    Z = torch.randn(16, 7, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = disc(reg._inputs(Z, None, noisy=False))
        shifted = Z.clone()
        shifted[:, 5:] += 1.0  # the style block only: its values and its mean
        after = disc(reg._inputs(shifted, None, noisy=False))
        spread = Z.clone()
        spread[:, 5:] *= 3.0  # the style block's spread too
        wider = disc(reg._inputs(spread, None, noisy=False))
    assert logits.shape == (16, 3)
    torch.testing.assert_close(after[:, :2], logits[:, :2])
    torch.testing.assert_close(wider[:, :2], logits[:, :2])
    assert not torch.allclose(after[:, 2], logits[:, 2])
    # each block's network reads its own block's statistics (columns 7-13:
    # the means, 14-20: the stds), and no other block's
    inputs = reg._inputs(Z, None, noisy=False)
    with torch.no_grad():
        for columns, block in [([7, 8, 9], 0), ([12, 13], 2), ([19, 20], 2)]:
            moved = inputs.clone()
            moved[:, columns] += 1.0
            out = disc(moved)
            others = [b for b in range(3) if b != block]
            torch.testing.assert_close(out[:, others], logits[:, others])
            assert not torch.allclose(out[:, block], logits[:, block])
