"""Small helpers shared by the estimators and the priors."""

import inspect
from numbers import Integral

from sklearn.utils import check_random_state


def _check_n_samples(n_samples):
    """``n_samples`` of a ``sample`` method as an int >= 1, or a clear error."""
    if not isinstance(n_samples, Integral) or isinstance(n_samples, bool):
        raise TypeError(f"n_samples must be an int, got {n_samples!r}.")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}.")
    return int(n_samples)


def _seed_from(random_state):
    """An int seed for a torch.Generator, from anything check_random_state takes."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _set_missing_parameters(obj, before=None):
    """Give the parameters an unpickled ``obj`` lacks (a state written before
    they existed) the value that keeps the earlier behaviour: ``before[name]``
    where given, else the default of ``type(obj).__init__``."""
    defaults = inspect.signature(type(obj).__init__).parameters
    for name in obj._get_param_names():
        if name not in vars(obj):
            value = (before or {}).get(name, defaults[name].default)
            setattr(obj, name, value)
