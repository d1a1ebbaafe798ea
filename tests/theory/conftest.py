"""Shared set-up for the theory tests.

The tensors here are tiny; one intra-op thread is fastest and immune to OpenMP workers
spinning against other processes on a small machine. Restored after each test.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
