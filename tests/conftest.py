"""Test-suite settings."""

import pytest
import torch
from hypothesis import settings


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    # The tests train tiny networks, which gain nothing from intra-op threads; on
    # a loaded 2-core machine OpenMP spin-waits make them up to 100x slower. The
    # library itself never changes the thread count; restored after the session.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


# Property-based tests are deterministic: the same examples on every run.
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")
