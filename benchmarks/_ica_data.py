"""Nonstationary-source benchmark in the style of TCL (Hyvarinen & Morioka 2016)
and iVAE (Khemakhem et al. 2020), plus the MCC score.

Sources are independent given the segment label u; each source has a
per-segment scale (uniform in [scale_low, scale_high]) and, optionally, a
per-segment mean. The observations are an invertible MLP of the sources:
``n_layers`` random orthogonal matrices with a leaky-ReLU (slope 0.2) after
every layer except the last (the iVAE convention: L layers, L-1 nonlinearities),
observed dimension = n_sources. The conventions (unit-variance sources, scales
from U(0.5, 3), L-1 nonlinearities) follow the iVAE authors' code
(ilkhem/iVAE, ``data/data.py``). Used by ``bench_ica.py``; run it to print a
sanity check.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import ortho_group, spearmanr

__all__ = ["make_nonstationary_sources", "make_mixing", "mcc", "leaky_relu"]


def leaky_relu(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def make_mixing(n_sources, n_layers, slope=0.2, random_state=None):
    """A list of ``n_layers`` random orthogonal (Haar) matrices."""
    rng = np.random.default_rng(random_state)
    if n_sources == 1:
        return [np.array([[1.0]]) for _ in range(n_layers)]
    return [ortho_group.rvs(n_sources, random_state=rng) for _ in range(n_layers)]


def apply_mixing(S, weights, slope=0.2):
    H = S
    for i, W in enumerate(weights):
        H = H @ W.T
        if i < len(weights) - 1:
            H = leaky_relu(H, slope)
    return H


def _draw_sources(rng, source, scales, means, n_per_segment):
    n_segments, d = scales.shape
    if source == "laplace":
        # unit-variance Laplace: b = 1/sqrt(2)
        E = rng.laplace(0.0, 1.0 / np.sqrt(2.0), size=(n_segments, n_per_segment, d))
    elif source == "gaussian":
        E = rng.standard_normal((n_segments, n_per_segment, d))
    else:
        raise ValueError(source)
    S = means[:, None, :] + scales[:, None, :] * E
    u = np.repeat(np.arange(n_segments), n_per_segment)
    return S.reshape(-1, d), u


def make_nonstationary_sources(
    n_segments=30,
    n_per_segment=200,
    n_sources=4,
    n_layers=2,
    source="laplace",
    scale_range=(0.5, 3.0),
    mean_range=None,
    n_test_per_segment=0,
    slope=0.2,
    random_state=None,
):
    """Nonstationary sources and their nonlinear mixture.

    Parameters
    ----------
    n_segments : int
        Number of segments (values of the auxiliary variable u). 1 gives
        stationary sources (scale 1, mean 0).
    n_per_segment : int
        Training rows per segment.
    n_sources : int
        Number of sources = observed dimension.
    n_layers : int
        Layers of the mixing MLP (2 or 4 in the benchmark).
    source : {'laplace', 'gaussian'}
        Unit-variance base distribution, scaled per segment.
    scale_range : (low, high)
        Per-segment, per-source standard deviations ~ U(low, high).
    mean_range : (low, high) or None
        Per-segment, per-source means ~ U(low, high); None: zero means.
    n_test_per_segment : int
        If > 0, also return held-out rows drawn from the same segments
        and the same mixing.
    random_state : int or None

    Returns
    -------
    X, S, u  (and Xt, St, ut if n_test_per_segment > 0)
        X : (n, n_sources) observations, S : (n, n_sources) sources,
        u : (n,) int segment labels.
    """
    rng = np.random.default_rng(random_state)
    d = n_sources
    if n_segments == 1:
        scales = np.ones((1, d))
        means = np.zeros((1, d))
    else:
        scales = rng.uniform(*scale_range, size=(n_segments, d))
        means = (
            rng.uniform(*mean_range, size=(n_segments, d))
            if mean_range is not None
            else np.zeros((n_segments, d))
        )
    weights = make_mixing(d, n_layers, slope, rng)
    S, u = _draw_sources(rng, source, scales, means, n_per_segment)
    X = apply_mixing(S, weights, slope)
    if n_test_per_segment <= 0:
        return X, S, u
    St, ut = _draw_sources(rng, source, scales, means, n_test_per_segment)
    Xt = apply_mixing(St, weights, slope)
    return X, S, u, Xt, St, ut


def mcc(S_true, S_est, method="pearson"):
    """Mean absolute correlation after the best one-to-one matching.

    method : 'pearson' or 'spearman'
    """
    d = S_true.shape[1]
    if method == "pearson":
        C = np.corrcoef(S_true.T, S_est.T)[:d, d:]
    elif method == "spearman":
        C = spearmanr(S_true, S_est).correlation[:d, d:]
    else:
        raise ValueError(method)
    C = np.abs(np.nan_to_num(C))
    rows, cols = linear_sum_assignment(-C)
    return float(C[rows, cols].mean())


if __name__ == "__main__":
    X, S, u, Xt, St, ut = make_nonstationary_sources(
        30, 200, 4, 2, n_test_per_segment=100, random_state=0
    )
    print(
        X.shape,
        Xt.shape,
        u.max() + 1,
        "mcc(S,S)=",
        mcc(St, St),
        "mcc(S,X)=",
        mcc(St, Xt),
    )
