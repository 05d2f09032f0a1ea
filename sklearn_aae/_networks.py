"""Building the multilayer perceptrons: encoder, decoder, discriminator."""

import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def make_mlp(n_in, hidden_layer_sizes, n_out, activation="relu"):
    """A stack of ``Linear`` layers with ``activation`` between them.

    Parameters
    ----------
    n_in : int
    hidden_layer_sizes : sequence of int
        Empty for a single linear (affine) map.
    n_out : int
    activation : str, default='relu'
        A key of ``ACTIVATIONS``; none follows the last layer.

    Returns
    -------
    mlp : torch.nn.Sequential

    Examples
    --------
    >>> make_mlp(4, (8,), 2)
    Sequential(
      (0): Linear(in_features=4, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=2, bias=True)
    )
    """
    sizes = [n_in, *hidden_layer_sizes, n_out]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """Wraps a network whose output is ``[mean, log_var]`` of q(z|x).

    ``forward`` returns the pair ``(mean, log_var)``; the log-variance is
    clamped to ``[-15, 10]`` for numerical safety.

    Examples
    --------
    >>> import torch
    >>> head = GaussianHead(make_mlp(3, (), 4))
    >>> [tuple(t.shape) for t in head(torch.zeros(5, 3))]
    [(5, 2), (5, 2)]
    """

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, X):
        mean, log_var = self.body(X).chunk(2, dim=-1)
        return mean, log_var.clamp(-15.0, 10.0)


class NoiseInput(nn.Module):
    """Encoder fed with the data and Gaussian noise: ``z = f([x, eps])``.

    The "universal approximator" posterior of the adversarial-autoencoder paper:
    for a fixed ``x`` the code is random through ``eps ~ N(0, I)``, so q(z|x)
    can take any shape the network can express.

    Examples
    --------
    >>> import torch
    >>> enc = NoiseInput(make_mlp(3 + 2, (), 2), n_noise=2)
    >>> tuple(enc(torch.zeros(5, 3), torch.randn(5, 2)).shape)
    (5, 2)
    """

    def __init__(self, body, n_noise):
        super().__init__()
        self.body = body
        self.n_noise = n_noise

    def forward(self, X, noise):
        return self.body(torch.cat([X, noise], dim=1))


def build_networks(
    n_features, n_components, hidden_layer_sizes, activation, encoder, seed
):
    """Encoder and mirrored decoder, initialised reproducibly from ``seed``.

    The global torch RNG is forked, so it is left as it was.

    Returns
    -------
    encoder, decoder : torch.nn.Module
        The encoder of a ``'gaussian'`` q(z|x) is a :class:`GaussianHead`, of a
        ``'universal'`` one a :class:`NoiseInput` with ``n_components`` noise
        inputs.

    Examples
    --------
    >>> enc, dec = build_networks(6, 2, (4,), "relu", "gaussian", seed=0)
    >>> type(enc).__name__, dec[-1].out_features
    ('GaussianHead', 6)
    """
    hidden = tuple(hidden_layer_sizes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if encoder == "gaussian":
            enc = GaussianHead(
                make_mlp(n_features, hidden, 2 * n_components, activation)
            )
        elif encoder == "universal":
            enc = NoiseInput(
                make_mlp(n_features + n_components, hidden, n_components, activation),
                n_noise=n_components,
            )
        else:
            enc = make_mlp(n_features, hidden, n_components, activation)
        dec = make_mlp(n_components, hidden[::-1], n_features, activation)
    return enc, dec
