"""
=====================================================
Nonlinear ICA with a Laplace prior, compared with ICA
=====================================================

Two independent, heavy-tailed (Laplace) sources are mixed by an invertible
*nonlinear* map into four observed features. :class:`~sklearn.decomposition.FastICA`
undoes a linear mixing; here it can only find the best linear unmixing. An
:class:`~sklearn_aae.MMDAutoencoder` whose codes are pulled towards a
factorised :class:`~sklearn_aae.priors.LaplacePrior` learns a nonlinear
encoder instead. We measure how well each recovers the sources by the mean,
over the true sources, of the absolute Spearman rank correlation with the
matched recovered component (matching by the Hungarian algorithm): 1 means
each source is recovered up to a monotone transformation.

Nonlinear ICA is not identifiable in general (many nonlinear maps send
independent sources to independent codes), so nothing guarantees the
autoencoder finds the true sources; the numbers below are what this run gives.
When an auxiliary variable is observed (a time segment, a condition) and the
sources' distribution changes with it, they are identifiable: see
:ref:`sphx_glr_auto_examples_plot_nonlinear_ica_auxiliary.py`, which fits a
:class:`~sklearn_aae.priors.ConditionalPrior` with ``y`` set to it.
"""

# %%
# Data: Laplace sources through a nonlinear mixing
# ------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import spearmanr
from sklearn.decomposition import FastICA
from sklearn.preprocessing import StandardScaler

from sklearn_aae import MMDAutoencoder
from sklearn_aae.priors import LaplacePrior

rng = np.random.RandomState(0)
n_samples = 3000
S = rng.laplace(size=(n_samples, 2))  # the true sources
A = np.array([[1.0, 0.6], [-0.5, 1.0]])
H = np.tanh(S @ A.T)  # a linear mixing squashed by tanh ...
B = rng.normal(size=(2, 4))
X = H @ B + 0.3 * (H**2) @ rng.normal(size=(2, 4))  # ... then a quadratic map
X = StandardScaler().fit_transform(X)


def source_recovery(S_true, S_est):
    """Mean |Spearman| between each true source and its matched component."""
    k = S_true.shape[1]
    rho = np.abs(spearmanr(S_true, S_est).statistic[:k, k:])
    rows, cols = linear_sum_assignment(-rho)
    return rho[rows, cols].mean()


# %%
# FastICA: the best linear unmixing
# ---------------------------------
S_ica = FastICA(n_components=2, whiten="unit-variance", random_state=0).fit_transform(X)
score_ica = source_recovery(S, S_ica)
print(f"FastICA:                     mean |Spearman| = {score_ica:.3f}")

# %%
# MMD autoencoder with a factorised Laplace prior
# -----------------------------------------------
# The MMD's prior terms are closed-form for the Laplace prior, so training
# draws no prior samples.
est = MMDAutoencoder(
    n_components=2,
    prior=LaplacePrior(),
    reg_weight=10.0,
    hidden_layer_sizes=(32, 32),
    activation="tanh",
    batch_size=250,
    max_iter=30,
    learning_rate_init=3e-3,
    device="cpu",
    random_state=0,
)
S_aae = est.fit(X).transform(X)
score_aae = source_recovery(S, S_aae)
print(f"MMDAutoencoder(LaplacePrior): mean |Spearman| = {score_aae:.3f}")

# %%
# The sources against what each method recovered
# -----------------------------------------------
fig, axes = plt.subplots(1, 3, figsize=(12, 4))
for ax, Z, title in [
    (axes[0], S, "true sources"),
    (axes[1], S_ica, f"FastICA ({score_ica:.2f})"),
    (axes[2], S_aae, f"MMDAutoencoder, Laplace prior ({score_aae:.2f})"),
]:
    ax.scatter(Z[:, 0], Z[:, 1], s=2, alpha=0.3, c=np.sign(S[:, 0]), cmap="coolwarm")
    lim = np.percentile(np.abs(Z), 99)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), title=title)
fig.suptitle("Colour: sign of the first true source")
plt.tight_layout()
plt.show()

# %%
# When this example was written (torch 2.13, CPU), FastICA scored 0.80 and the
# MMD autoencoder 0.92 (0.93 with two other seeds of the estimator); the same
# network without the prior term (``reg_weight=0``) scored 0.81. The Laplace
# prior is what helps here, on this mixing; it is no identifiability guarantee
# (with the auxiliary variable there is one: see the example linked above).
