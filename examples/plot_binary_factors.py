"""
==========================================================
Binary factors: a Bernoulli block beside a Gaussian style
==========================================================

Small 8x8 images are made of four binary factors, each a stroke that is there
or not (a horizontal bar, a vertical bar, a square, a diagonal), plus one
continuous "style" (a left-to-right shading of random strength) and noise.
An :class:`~sklearn_aae.MMDAutoencoder` with the prior
``ProductPrior([("bits", BernoulliPrior(4)), ("style", GaussianPrior())])``
gets a sigmoid head on the four bit columns of its code and the identity on
the style column (see :ref:`heads`). We check that the codes are near-binary,
that each bit matches one factor, and that flipping a bit of a code adds or
removes that factor's stroke in the decoded image.

Nothing forces a bit to match a single factor: any one-to-one map from the 16
stroke combinations to the 16 bit patterns fits the prior equally well. The
numbers below are what this run gives (other seeds are listed at the end).
"""

# %%
# Data: four strokes, a shading, noise
# ------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.model_selection import train_test_split

from sklearn_aae import MMDAutoencoder
from sklearn_aae.priors import BernoulliPrior, GaussianPrior, ProductPrior

names = ["horizontal bar", "vertical bar", "square", "diagonal"]
strokes = np.zeros((4, 8, 8))
strokes[0, 1, 1:7] = 1
strokes[1, 1:7, 6] = 1
strokes[2, 5:7, 1:3] = 1
strokes[3, [2, 3, 4, 5], [2, 3, 4, 5]] = 1
strokes = strokes.reshape(4, 64)
shading = 0.3 * np.tile(np.linspace(-1, 1, 8), 8)

rng = np.random.RandomState(0)
n_samples = 2400
factors = rng.randint(2, size=(n_samples, 4))  # the true binary factors
style = rng.normal(size=n_samples)  # the true continuous style
X = np.clip(factors @ strokes, 0, 1) + style[:, None] * shading
X += 0.05 * rng.normal(size=X.shape)
X_train, X_test, f_train, f_test, s_train, s_test = train_test_split(
    X, factors, style, test_size=400, random_state=0
)

fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, x, f in zip(axes, X_train, f_train, strict=False):
    ax.imshow(x.reshape(8, 8), cmap="gray_r", vmin=-0.5, vmax=1.5)
    ax.set(xticks=[], yticks=[], title="".join(map(str, f)))
fig.suptitle("Training images and their factors")
plt.show()

# %%
# A Bernoulli block beside a Gaussian style
# -----------------------------------------
# ``BernoulliPrior(4)`` fixes its width; ``GaussianPrior()`` has scalar
# parameters, so it takes the rest of ``n_components``: a 1-D style (see the
# width rule of :class:`~sklearn_aae.priors.ProductPrior`). The MMD's prior
# terms are closed-form for the product (the Bernoulli block's is a product of
# two-term sums).
prior = ProductPrior([("bits", BernoulliPrior(4)), ("style", GaussianPrior())])
est = MMDAutoencoder(
    n_components=5,
    prior=prior,
    reg_weight=3.0,
    hidden_layer_sizes=(32,),
    batch_size=100,
    max_iter=40,
    learning_rate_init=3e-3,
    device="cpu",
    random_state=0,
)
est.fit(X_train)
Z = est.transform(X_test)
bits, z_style = Z[:, :4], Z[:, 4]

# %%
# The codes are near-binary
# -------------------------
# The sigmoid head keeps each bit column in [0, 1]; the MMD to the Bernoulli
# block pulls the codes to its corners.
near = np.mean((bits < 0.1) | (bits > 0.9))
print(f"share of bit codes within 0.1 of 0 or 1: {near:.3f}")
fig, ax = plt.subplots(figsize=(5, 3))
ax.hist(bits.ravel(), bins=40, range=(0, 1))
ax.set(xlabel="bit code (held-out rows)", ylabel="count", title="Bit codes")
plt.show()

# %%
# Each bit matches one factor
# ---------------------------
# Agreement of bit ``j`` (thresholded at 1/2) with factor ``k``, up to a flip
# (a bit may mean "absent"), matched one to one by the Hungarian algorithm.
on = bits > 0.5
agreement = np.array(
    [
        [max(np.mean(on[:, j] == f), np.mean(on[:, j] != f)) for f in f_test.T]
        for j in range(4)
    ]
)
rows, cols = linear_sum_assignment(-agreement)
for j, k in zip(rows, cols, strict=True):
    print(f"bit {j} <-> {names[k]:<15s} agreement {agreement[j, k]:.3f}")
print(f"style code vs true style: correlation {np.corrcoef(z_style, s_test)[0, 1]:.3f}")

# %%
# Flipping a bit adds or removes its stroke
# -----------------------------------------
# Decode one held-out image's code, then the same code with one bit flipped
# (``1 - b``). ``inverse_transform`` takes any codes.
z0 = Z[:1]
flipped = np.repeat(z0, 4, axis=0)
flipped[np.arange(4), np.arange(4)] = 1 - flipped[np.arange(4), np.arange(4)]
decoded = est.inverse_transform(np.vstack([z0, flipped]))
fig, axes = plt.subplots(1, 6, figsize=(10, 2))
panels = [(X_test[0], "input"), (decoded[0], "decoded")]
panels += [(decoded[1 + j], f"bit {j} flipped") for j in range(4)]
for ax, (image, title) in zip(axes, panels, strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=-0.5, vmax=1.5)
    ax.set(xticks=[], yticks=[], title=title)
plt.show()

# %%
# The same, measured on every held-out row: the mean change of each stroke's
# pixels when a bit is flipped. A flip changes its matched stroke by about
# +/-1 and the others by little.
change = np.zeros((4, 4))
for j in range(4):
    Zf = Z.copy()
    Zf[:, j] = 1 - Zf[:, j]
    diff = est.inverse_transform(Zf) - est.inverse_transform(Z)
    change[j] = np.abs(diff @ strokes.T / strokes.sum(1)).mean(0)
print("mean |change| of each stroke's pixels (rows: bit flipped)")
print(" " * 7 + "".join(f"{name:>16s}" for name in names))
for j in range(4):
    print(f"bit {j}  " + "".join(f"{c:16.2f}" for c in change[j]))

# %%
# A log-likelihood over the 16 bit patterns
# -----------------------------------------
# ``score`` sums the 16 bit patterns exactly and importance-samples the style
# given each (see :ref:`score`), so it compares models fairly in a grid search.
print(f"held-out mean log-likelihood: {est.score(X_test):.1f}")

# %%
# When this example was written (torch 2.13, CPU), 0.94 of the bit codes were
# within 0.1 of 0 or 1, every bit matched its factor in all held-out rows, the
# style code correlated 0.99 with the true style, and the held-out mean
# log-likelihood was 85.8. Other seeds of the estimator did less well:
#
# ================  ===========  ========================  ===============
# ``random_state``  near-binary  mean bit agreement (min)  log-likelihood
# ================  ===========  ========================  ===============
# 0                 0.94         1.00 (1.00)               85.8
# 1                 0.90         0.99 (0.94)               71.1
# 3                 0.81         0.94 (0.76)               43.8
# 2                 0.87         0.88 (0.71)               32.8
# ================  ===========  ========================  ===============
#
# A bit that matches less mixes two strokes. The held-out log-likelihood ranks
# the four runs as their agreement with the true factors does, without knowing
# the factors: ``score`` can choose among seeds or settings, as the default
# scorer of a grid search. A deeper network (``hidden_layer_sizes=(64, 32)``,
# ``random_state=0``) matched worse (mean agreement 0.79, log-likelihood 32.9):
# a flexible decoder can draw any stroke combination from any bit pattern.
