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

# The key of the metadata and of the modules' weights in a state.
META_KEY = "_sklearn_aae_state"
WEIGHTS_KEY = "_module_weights"


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
