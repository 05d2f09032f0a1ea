"""Devices and precision: resolving ``device``, autocast, the optimiser."""

import contextlib
import warnings

import torch


def resolve_device(device):
    """``'auto'`` -> CUDA when available, else CPU; other devices are checked.

    A CUDA device without an index gets the current one, so that the networks
    and every later batch stay on one GPU whatever the current device becomes.
    """
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device.") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine; use device='auto' (CUDA when available, else CPU) "
                "or 'cpu'."
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise ValueError(
                f"device={device!r} was requested but this machine has {count} "
                f"CUDA device(s), cuda:0 to cuda:{count - 1}."
            )
        dev = torch.device("cuda", index)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"device={device!r} is not supported: training runs on 'cpu' or 'cuda'. "
            "(Apple's 'mps' lacks float64, in which the closed-form kernel terms, "
            "noise_variance_ and the validation loss are accumulated.)"
        )
    return dev


def warn_if_tf32(device):
    """TF32 matmuls (a global torch setting) degrade the closed-form MMD terms.

    The codes' squared distances are float32 matmuls; with TF32 they keep about
    10 mantissa bits, enough to bias a small MMD. The setting is the user's, so
    it is reported, not changed.
    """
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        warnings.warn(
            "TF32 matmuls are enabled (torch.backends.cuda.matmul.allow_tf32 or "
            "torch.set_float32_matmul_precision('high'/'medium')): the kernel "
            "distances lose precision and small MMD values are biased. Set "
            "torch.backends.cuda.matmul.allow_tf32 = False for full float32.",
            UserWarning,
            stacklevel=5,
        )


def warn_if_bfloat16_is_emulated(precision, device):
    """bfloat16 on a GPU older than Ampere runs emulated: slower, not faster."""
    if precision != "bfloat16" or device.type != "cuda":
        return
    major, minor = torch.cuda.get_device_capability(device)
    if major < 8:
        warnings.warn(
            f"precision='bfloat16' was requested on {device} (compute capability "
            f"{major}.{minor}), which has no native bfloat16 arithmetic: training "
            "will likely be slower than with precision='float32'.",
            UserWarning,
            stacklevel=5,
        )


def autocast(precision, device):
    """bfloat16 autocast of the network passes in training, when asked for."""
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adam(params, lr):
    """Adam, fused where this torch build supports it on the parameters' device."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)
