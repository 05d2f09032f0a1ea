"""The networks: MLPs, the encoder kinds (``sample`` / ``mean``), their output
heads per code block, the builder."""

from numbers import Integral

import numpy as np
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

# Noise draws averaged for the mean code of the 'universal' encoder.
_UNIVERSAL_MEAN_DRAWS = 16


def check_layer_sizes(value, name="hidden_layer_sizes"):
    """Hidden layer sizes as a tuple of positive ints (one int is one layer).

    Examples
    --------
    >>> check_layer_sizes([8, 4]), check_layer_sizes(3), check_layer_sizes(())
    ((8, 4), (3,), ())
    """
    hidden = [value] if isinstance(value, Integral) else list(np.ravel(value))
    if not all(isinstance(h, Integral) and h >= 1 for h in hidden):
        raise ValueError(
            f"{name} must be a sequence of positive integers, got {value!r}."
        )
    return tuple(int(h) for h in hidden)


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


class BlockDiscriminator(nn.Module):
    """One discriminator per block of the code: a logit per block.

    The adversarial-autoencoder paper's semi-supervised and clustering models
    (Makhzani et al. 2015, sections 5 and 6) have one adversary for the class
    block and another for the style. Each block's MLP reads its own columns of
    the code, plus the label inputs (the last ``n_label_inputs`` columns of the
    input) when there are any.

    Parameters
    ----------
    widths : sequence of int
        The blocks' widths, in the order of the code's columns.
    n_label_inputs : int
        Columns after the code that every block's network also reads.
    hidden_layer_sizes : sequence of int
    activation : str
    batch_statistics : bool, default=False
        The input holds, after the code, the batch's mean and then its
        standard deviation per coordinate (two more code widths, before the
        label inputs): each block's network then also reads its own
        coordinates' mean and standard deviation.

    Examples
    --------
    >>> import torch
    >>> disc = BlockDiscriminator([3, 2], 0, (8,), "relu")
    >>> disc(torch.zeros(4, 5)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        widths,
        n_label_inputs,
        hidden_layer_sizes,
        activation,
        batch_statistics=False,
    ):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.code_width = sum(self.widths)
        self.n_label_inputs = int(n_label_inputs)
        # The code, then (with batch statistics) its mean and its std.
        self.n_parts = 3 if batch_statistics else 1
        self.nets = nn.ModuleList(
            make_mlp(
                self.n_parts * w + self.n_label_inputs,
                hidden_layer_sizes,
                1,
                activation,
            )
            for w in self.widths
        )

    def forward(self, x):
        cw = self.code_width
        labels = x[:, self.n_parts * cw :]
        logits, start = [], 0
        for width, net in zip(self.widths, self.nets, strict=True):
            columns = [
                x[:, part * cw + start : part * cw + start + width]
                for part in range(self.n_parts)
            ]
            if self.n_label_inputs:
                columns.append(labels)
            logits.append(net(torch.cat(columns, dim=1)))
            start += width
        return torch.cat(logits, dim=1)


def head_layout(support):
    """``support`` as a tuple of ``(width, kind)`` with adjacent real (or binary)
    blocks merged: their heads act column by column, so only the one-hot
    blocks' boundaries matter."""
    out = []
    for width, kind in support:
        if out and kind != "one_hot" and out[-1][1] == kind:
            out[-1] = (out[-1][0] + int(width), kind)
        else:
            out.append((int(width), kind))
    return tuple(out)


class BlockHead(nn.Module):
    """The encoder's output head: each block of the code onto its prior's support.

    A softmax over the columns of each one-hot block (its rows then sum to 1:
    the probabilities of the categories), a sigmoid on binary columns (each in
    [0, 1]: the probability of a 1) and the identity on real ones. It has no
    parameters, so it adds nothing to a state dict. The encoder kinds apply it
    to their codes; :func:`build_networks` gives them one only when the prior
    has a discrete block, so that an all-real code is computed exactly as
    without heads.

    Parameters
    ----------
    support : list of (int, str)
        The code's blocks, ``(width, kind)`` with ``kind`` in ``'real'``,
        ``'one_hot'``, ``'binary'`` (see ``_torch_priors.code_support``).

    Examples
    --------
    >>> import torch
    >>> head = BlockHead([(2, "one_hot"), (1, "binary"), (1, "real")])
    >>> head(torch.tensor([[0.0, 0.0, 0.0, -3.0]]))
    tensor([[ 0.5000,  0.5000,  0.5000, -3.0000]])
    """

    def __init__(self, support):
        super().__init__()
        self.support = head_layout(support)
        real = [kind == "real" for width, kind in self.support for _ in range(width)]
        # Not a state-dict entry: moves with the module, never saved.
        self.register_buffer("real_columns", torch.tensor(real), persistent=False)

    def forward(self, Z):
        parts, start = [], 0
        for width, kind in self.support:
            block = Z[..., start : start + width]
            start += width
            if kind == "one_hot":
                block = torch.softmax(block, dim=-1)
            elif kind == "binary":
                block = torch.sigmoid(block)
            parts.append(block)
        return torch.cat(parts, dim=-1)

    def extra_repr(self):
        return f"support={list(self.support)}"


class ClusterHeadMap(nn.Module):
    """A code of ``K`` heads and a style mapped to ``y W + z``: the map of a
    cluster embedding.

    The adversarial-autoencoder paper's dimensionality reduction (Makhzani et
    al. 2015, section 7): each head ``k`` has a learned position ``W[k]`` in
    the style's space (a cluster head), and a code ``[y, z]`` (``y`` the
    softmax over the heads, ``z`` the style) becomes ``y W + z``. It is the
    first layer of the decoder, which reads the map, so the map of a row
    decodes to its reconstruction.

    Parameters
    ----------
    n_heads : int
        ``K``, the width of the code's class block (its first columns).
    n_components : int
        The style's width, and the map's.

    Examples
    --------
    >>> import torch
    >>> head_map = ClusterHeadMap(2, 1)
    >>> with torch.no_grad():
    ...     _ = head_map.heads.copy_(torch.tensor([[-3.0], [3.0]]))
    >>> head_map(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]))
    tensor([[-2.5000],
            [ 3.5000]], grad_fn=<AddBackward0>)
    """

    def __init__(self, n_heads, n_components):
        super().__init__()
        self.n_heads = n_heads
        self.heads = nn.Parameter(torch.randn(n_heads, n_components))

    def forward(self, code):
        K = self.n_heads
        return code[..., :K] @ self.heads.to(code.dtype) + code[..., K:]

    def extra_repr(self):
        return f"n_heads={self.n_heads}, n_components={self.heads.shape[1]}"


def _apply(head, Z):
    return Z if head is None else head(Z)


class DeterministicEncoder(nn.Sequential):
    """The deterministic q(z|x): an MLP whose output is the code.

    A :class:`torch.nn.Sequential` (layers index as in :func:`make_mlp`, then
    the :class:`BlockHead` as the last layer when there is one) with the
    encoder interface: ``sample(X, generator)`` and ``mean(X)`` both return the
    code.

    Examples
    --------
    >>> import torch
    >>> enc = DeterministicEncoder.build(3, 2, (), "relu")
    >>> torch.equal(enc.sample(torch.ones(5, 3), None), enc.mean(torch.ones(5, 3)))
    True
    """

    # sample(X) is deterministic (it is mean(X)): a training code is also the
    # clean target of the consistency term (BaseAutoencoder._consistency), no
    # second pass needed.
    deterministic_sample = True

    @classmethod
    def build(cls, n_features, n_components, hidden_layer_sizes, activation, head=None):
        mlp = make_mlp(n_features, hidden_layer_sizes, n_components, activation)
        return cls(*mlp, *([] if head is None else [head]))

    def sample(self, X, generator):
        """A draw from q(z|x): the code itself."""
        return self(X)

    def mean(self, X):
        """The mean of q(z|x): the code itself."""
        return self(X)


class GaussianHead(nn.Module):
    """Wraps a network whose output is ``[mean, log_var]`` of a Gaussian q(z|x).

    ``forward`` returns the pair ``(mean, log_var)``; the log-variance is
    clamped to ``[-15, 10]`` for numerical safety. ``sample`` draws with the
    reparameterisation trick, ``mean`` returns the mean.

    With a :class:`BlockHead` (``head``), ``mean`` returns ``head(mean)`` and
    ``sample`` returns ``head(mean + exp(log_var / 2) * eps)`` with the noise
    on the real columns only: the columns of discrete blocks are deterministic
    given ``x`` (the encoder's probabilities, as the softmax head of the
    adversarial-autoencoder paper's clustering), and their log-variance outputs
    are not used. Noise on logits would have no closed-form mean, and pulling
    codes to the vertices drives the logits to where it has no effect.

    Examples
    --------
    >>> import torch
    >>> head = GaussianHead(make_mlp(3, (), 4))
    >>> [tuple(t.shape) for t in head(torch.zeros(5, 3))]
    [(5, 2), (5, 2)]
    >>> tuple(head.sample(torch.zeros(5, 3), torch.Generator()).shape)
    (5, 2)
    """

    deterministic_sample = False

    def __init__(self, body, head=None):
        super().__init__()
        self.body = body
        self.head = head

    @classmethod
    def build(cls, n_features, n_components, hidden_layer_sizes, activation, head=None):
        body = make_mlp(n_features, hidden_layer_sizes, 2 * n_components, activation)
        return cls(body, head)

    def forward(self, X):
        mean, log_var = self.body(X).chunk(2, dim=-1)
        return mean, log_var.clamp(-15.0, 10.0)

    def sample(self, X, generator):
        """``mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)`` from ``generator``."""
        mean, log_var = self(X)
        eps = torch.randn(
            mean.shape, generator=generator, device=mean.device, dtype=mean.dtype
        )
        if self.head is None:
            return mean + torch.exp(0.5 * log_var) * eps
        eps = eps * self.head.real_columns  # no noise on discrete columns
        return self.head(mean + torch.exp(0.5 * log_var) * eps)

    def mean(self, X):
        """The mean of q(z|x) (through the head, if any)."""
        return _apply(self.head, self(X)[0])


class NoiseInput(nn.Module):
    """Encoder fed with the data and Gaussian noise: ``z = f([x, eps])``.

    The "universal approximator" posterior of the adversarial-autoencoder paper:
    for a fixed ``x`` the code is random through ``eps ~ N(0, I)``, so q(z|x)
    can take any shape the network can express. ``mean`` averages the codes of
    ``_UNIVERSAL_MEAN_DRAWS`` noise draws, common to all rows and drawn on the
    CPU from a fixed seed, so it is deterministic and the same on every device.
    With a :class:`BlockHead` (``head``) every code goes through it, and
    ``mean`` averages the codes after it (still on the support's hull: a
    one-hot block's rows sum to 1).

    Examples
    --------
    >>> import torch
    >>> enc = NoiseInput(make_mlp(3 + 2, (), 2), n_noise=2)
    >>> tuple(enc(torch.zeros(5, 3), torch.randn(5, 2)).shape)
    (5, 2)
    >>> tuple(enc.mean(torch.zeros(5, 3)).shape)
    (5, 2)
    """

    deterministic_sample = False

    def __init__(self, body, n_noise, head=None):
        super().__init__()
        self.body = body
        self.n_noise = n_noise
        self.head = head

    @classmethod
    def build(cls, n_features, n_components, hidden_layer_sizes, activation, head=None):
        body = make_mlp(
            n_features + n_components, hidden_layer_sizes, n_components, activation
        )
        return cls(body, n_noise=n_components, head=head)

    def forward(self, X, noise):
        return _apply(self.head, self.body(torch.cat([X, noise], dim=1)))

    def sample(self, X, generator):
        """The code of ``X`` with fresh noise from ``generator``."""
        shape = (X.shape[0], self.n_noise)
        eps = torch.randn(shape, generator=generator, device=X.device)
        return self(X, eps.to(X.dtype))

    def mean(self, X):
        """The average code over a fixed set of noise draws."""
        g = torch.Generator().manual_seed(0)
        S, m = _UNIVERSAL_MEAN_DRAWS, self.n_noise
        noise = torch.randn(S, m, generator=g).to(X.device, X.dtype)
        Z = self(X.repeat_interleave(S, dim=0), noise.repeat(len(X), 1))
        return Z.reshape(len(X), S, -1).mean(1)


class MixtureEncoder(nn.Module):
    """q(z|x) for a Gaussian-mixture prior: which component, and where in it.

    The MLP outputs ``K`` logits (the responsibilities ``p(x)``, a softmax)
    and a standardised style ``s(x)`` of the code's width ``d``; the prior's
    component ``k`` maps the style into itself, ``mu_k + L_k s`` (``L_k`` the
    Cholesky factor of its covariance), as the mixture maps a standard normal
    draw. The training code (``sample``) is the responsibilities' mixture of
    these, ``sum_k p_k(x) (mu_k + L_k s(x))``, differentiable in both; the
    code of ``transform`` (``mean``) is the most probable component's, ``mu_k
    + L_k s(x)`` with ``k = argmax_k p_k(x)``, inside that component. The
    components are buffers (``means`` ``(K, d)``, ``cholesky`` ``(K, d, d)``)
    set from the fitted prior by :meth:`set_components` and stored with the
    weights.

    Examples
    --------
    >>> import torch
    >>> enc = MixtureEncoder.build(3, 2, (4,), "relu", n_mixture=2)
    >>> means = torch.tensor([[-5.0, 0.0], [5.0, 0.0]])
    >>> enc.set_components(means, torch.eye(2).repeat(2, 1, 1))
    >>> enc.mean(torch.ones(5, 3)).shape
    torch.Size([5, 2])
    """

    # The training code (the mixture) is deterministic: it is also the
    # consistency term's clean target. (Measured on the labelled ring: with
    # transform's code, one component's, as the target instead, the codes
    # collapsed, MMD^2 to the ring 0.24-0.49 on four seeds of four.)
    deterministic_sample = True

    def __init__(self, body, n_mixture, n_components):
        super().__init__()
        self.body = body
        self.n_mixture = int(n_mixture)
        self.register_buffer("means", torch.zeros(n_mixture, n_components))
        self.register_buffer(
            "cholesky", torch.eye(n_components).repeat(n_mixture, 1, 1)
        )

    @classmethod
    def build(
        cls,
        n_features,
        n_components,
        hidden_layer_sizes,
        activation,
        head=None,
        *,
        n_mixture,
    ):
        if head is not None:
            raise ValueError("encoder='mixture' takes a real-valued code, not heads.")
        body = make_mlp(
            n_features, hidden_layer_sizes, n_mixture + n_components, activation
        )
        return cls(body, n_mixture, n_components)

    def set_components(self, means, cholesky):
        """Copy the prior's component means ``(K, d)`` and Cholesky factors
        ``(K, d, d)`` into the buffers."""
        with torch.no_grad():
            self.means.copy_(torch.as_tensor(means))
            self.cholesky.copy_(torch.as_tensor(cholesky))

    def parts(self, X):
        """``(log_p, style, codes)``: the log-responsibilities ``(n, K)``, the
        style ``(n, d)`` and each component's code for the row, ``mu_k + L_k
        s(x)``, ``(n, K, d)``."""
        out = self.body(X)
        log_p = torch.log_softmax(out[:, : self.n_mixture], dim=1)
        style = out[:, self.n_mixture :]
        codes = self.means.to(style.dtype) + torch.einsum(
            "kij,nj->nki", self.cholesky.to(style.dtype), style
        )
        return log_p, style, codes

    def outputs(self, X, most_probable=False):
        """``(code, log_p, style)`` from one pass: the training code (the
        mixture), or with ``most_probable`` transform's code."""
        log_p, style, codes = self.parts(X)
        if most_probable:
            rows = torch.arange(len(codes), device=codes.device)
            return codes[rows, log_p.argmax(1)], log_p, style
        return (log_p.exp()[:, :, None] * codes).sum(dim=1), log_p, style

    def forward(self, X):
        return self.outputs(X)[0]

    def sample(self, X, generator):
        """The training code: the responsibilities' mixture of the components' codes."""
        return self(X)

    def mean(self, X):
        """The code of the most probable component, ``mu_k + L_k s(x)``."""
        return self.outputs(X, most_probable=True)[0]

    def extra_repr(self):
        return f"n_mixture={self.n_mixture}"


# The encoder kinds, by the name the ``encoder`` parameter gives them.
ENCODERS = {
    "deterministic": DeterministicEncoder,
    "gaussian": GaussianHead,
    "universal": NoiseInput,
    "mixture": MixtureEncoder,
}


def build_networks(
    n_features,
    n_components,
    hidden_layer_sizes,
    activation,
    encoder,
    seed,
    heads=None,
    head_map=None,
    n_mixture=None,
):
    """Encoder and mirrored decoder, initialised reproducibly from ``seed``.

    The global torch RNG is forked, so it is left as it was.

    Parameters
    ----------
    n_features, n_components : int
    hidden_layer_sizes : sequence of int
    activation : str
    encoder : str
        A key of ``ENCODERS``.
    seed : int
    heads : list of (int, str), default=None
        The code's blocks, ``(width, kind)``; with a discrete block the encoder
        gets a :class:`BlockHead`. ``None`` or only real blocks: no head, and
        the networks are those of a real-valued code.
    head_map : (int, float), default=None
        ``(K, scale)``: the decoder starts with a :class:`ClusterHeadMap` of
        the code's first ``K`` columns, its heads drawn from ``N(0, scale^2
        I)``, and reads the map (``n_components - K`` columns). None: the
        decoder reads the code.
    n_mixture : int, default=None
        The prior's number of components, for ``encoder='mixture'`` (a
        :class:`MixtureEncoder`, whose components are set afterwards).

    Returns
    -------
    encoder, decoder : torch.nn.Module
        The encoder is the class of ``ENCODERS[encoder]``: a
        :class:`DeterministicEncoder`, a :class:`GaussianHead` or a
        :class:`NoiseInput` with ``n_components`` noise inputs, or a
        :class:`MixtureEncoder`; each has
        ``sample(X, generator)`` and ``mean(X)``.

    Examples
    --------
    >>> enc, dec = build_networks(6, 2, (4,), "relu", "gaussian", seed=0)
    >>> type(enc).__name__, dec[-1].out_features
    ('GaussianHead', 6)
    """
    hidden = tuple(hidden_layer_sizes)
    discrete = heads is not None and any(kind != "real" for _, kind in heads)
    head = BlockHead(heads) if discrete else None
    with torch.random.fork_rng(devices=[]):
        # The CPU generator only: torch.manual_seed would also reseed every GPU.
        torch.default_generator.manual_seed(seed)
        kwargs = {} if encoder != "mixture" else {"n_mixture": n_mixture}
        enc = ENCODERS[encoder].build(
            n_features, n_components, hidden, activation, head, **kwargs
        )
        if head_map is None:
            dec = make_mlp(n_components, hidden[::-1], n_features, activation)
        else:
            n_heads, scale = head_map
            width = n_components - n_heads
            mapping = ClusterHeadMap(n_heads, width)
            with torch.no_grad():
                mapping.heads.mul_(scale)
            mlp = make_mlp(width, hidden[::-1], n_features, activation)
            dec = nn.Sequential(mapping, *mlp)
    return enc, dec
