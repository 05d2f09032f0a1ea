"""The saved state of a fitted estimator: NumPy arrays and configuration only.

``BaseAutoencoder.__getstate__`` (used by pickle, joblib, ``copy.deepcopy`` and
``skops.io``) stores each fitted torch module as its state dict of NumPy arrays;
``__setstate__`` rebuilds the modules from the architecture recorded at the
fresh fit and loads the arrays into them. No torch object is in the state, so
``skops.io`` can load a model trusting only this library's classes, and a
model trained on a GPU loads on a machine without one.

The state carries the library's version and a format number. A state of a
format this version reads loads, whatever version wrote it; another format
fails with an error that names both versions.
"""

import numpy as np
import torch

from ._version import __version__

# The layout of the state written by this version. Bump it, and teach
# ``restore_modules`` the older layouts it can still read, when the layout of
# the state changes (a renamed attribute, another module, other shapes).
STATE_FORMAT = 1
# The oldest format this version reads.
OLDEST_READABLE_FORMAT = 1

# The keys of the metadata, the modules' weights and the optimisers' state.
META_KEY = "_sklearn_aae_state"
WEIGHTS_KEY = "_module_weights"
OPTIMIZERS_KEY = "_optimizer_states"


def module_arrays(module):
    """A module's state dict as float NumPy copies on the host.

    Examples
    --------
    >>> arrays = module_arrays(torch.nn.Linear(3, 2))
    >>> {k: v.shape for k, v in arrays.items()}
    {'weight': (2, 3), 'bias': (2,)}
    """
    return {
        name: t.detach().to("cpu", copy=True).numpy()
        for name, t in module.state_dict().items()
    }


def load_arrays(module, arrays, name):
    """Load ``arrays`` (from :func:`module_arrays`) into ``module``, or a ValueError."""
    try:
        module.load_state_dict(
            {k: torch.tensor(np.asarray(v)) for k, v in arrays.items()}
        )
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"The stored weights of {name} do not fit the architecture recorded "
            f"with them (the state is damaged or was edited): {exc}"
        ) from None
    return module


def optimizer_arrays(optimizer):
    """An optimiser's state as NumPy: per parameter (in order) its tensors, and
    each parameter group's learning rate.

    Examples
    --------
    >>> w = torch.nn.Parameter(torch.ones(3))
    >>> opt = torch.optim.Adam([w], lr=0.1)
    >>> w.sum().backward(); opt.step()
    >>> arrays = optimizer_arrays(opt)
    >>> {k: v.shape for k, v in arrays["state"][0].items()}
    {'step': (), 'exp_avg': (3,), 'exp_avg_sq': (3,)}
    """
    state = optimizer.state_dict()
    n_params = sum(len(group["params"]) for group in state["param_groups"])

    def host(value):
        if torch.is_tensor(value):
            return value.detach().to("cpu", copy=True).numpy()
        return value

    return {
        "state": [
            {k: host(v) for k, v in state["state"][i].items()}
            if i in state["state"]
            else None
            for i in range(n_params)
        ],
        "lr": [float(group["lr"]) for group in state["param_groups"]],
    }


def load_optimizer_arrays(optimizer, arrays, name):
    """Load :func:`optimizer_arrays` into a fresh ``optimizer``, or a ValueError."""
    saved = optimizer.state_dict()
    try:
        n_params = sum(len(group["params"]) for group in saved["param_groups"])
        if len(arrays["state"]) != n_params or len(arrays["lr"]) != len(
            saved["param_groups"]
        ):
            raise ValueError("the number of parameters differs")
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for param, entry in zip(params, arrays["state"], strict=True):
            for key, value in (entry or {}).items():
                shape = np.shape(value)
                if shape and shape != tuple(param.shape):
                    raise ValueError(
                        f"{key} has shape {shape}, its parameter {tuple(param.shape)}"
                    )
        saved["state"] = {
            i: {
                k: torch.tensor(np.asarray(v)) if isinstance(v, np.ndarray) else v
                for k, v in entry.items()
            }
            for i, entry in enumerate(arrays["state"])
            if entry is not None
        }
        for group, lr in zip(saved["param_groups"], arrays["lr"], strict=True):
            group["lr"] = lr
        optimizer.load_state_dict(saved)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(
            f"The stored state of {name} does not fit its parameters (the state "
            f"is damaged or was edited): {exc}"
        ) from None
    return optimizer


def state_metadata(device_param_is_torch_device):
    """What a state records about how it was written."""
    return {
        "version": __version__,
        "format": STATE_FORMAT,
        "device_param_is_torch_device": bool(device_param_is_torch_device),
    }


def check_state_metadata(meta, class_name):
    """Refuse a state this version cannot read, naming both versions.

    Examples
    --------
    >>> check_state_metadata(state_metadata(False), "MMDAutoencoder")
    >>> try:
    ...     check_state_metadata({"version": "9.0", "format": 99}, "MMDAutoencoder")
    ... except ValueError as exc:
    ...     print(str(exc).split(",")[0])
    This MMDAutoencoder was saved by sklearn_aae 9.0 (state format 99)
    """
    if not isinstance(meta, dict):
        raise ValueError(
            f"This {class_name} state has unreadable version information "
            f"({meta!r}); it was not written by sklearn_aae."
        )
    saved, fmt = meta.get("version", "unknown"), meta.get("format")
    if (
        isinstance(fmt, bool)
        or not isinstance(fmt, int)
        or not OLDEST_READABLE_FORMAT <= fmt <= STATE_FORMAT
    ):
        readable = (
            f"format {STATE_FORMAT}"
            if OLDEST_READABLE_FORMAT == STATE_FORMAT
            else f"formats {OLDEST_READABLE_FORMAT} to {STATE_FORMAT}"
        )
        raise ValueError(
            f"This {class_name} was saved by sklearn_aae {saved} (state format "
            f"{fmt}), but this is sklearn_aae {__version__}, which reads "
            f"{readable}. Load it with sklearn_aae {saved}, or fit it again "
            f"with sklearn_aae {__version__}."
        )
