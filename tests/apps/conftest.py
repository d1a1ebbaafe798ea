"""Fixtures of the application tests: loaded tiny models and their held-out digits."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test: on a shared 2-core machine, tiny models run many times
    faster that way than with threads fighting over busy cores. Restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits(tiny_vae_run):
    """100 held-out 8×8 digits, uint8 (100, 1, 8, 8)."""
    from vaelab.apps.common import run_images
    from vaelab.runs import open_run

    return run_images(open_run(tiny_vae_run), "test", 100)


@pytest.fixture
def cli(capsys):
    """Run ``vaelab ARGS``; returns (exit status, stdout, stderr)."""
    from vaelab.cli import main

    def run(*args):
        status = main([str(a) for a in args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


@pytest.fixture(scope="module")
def digit_files(digits, tmp_path_factory):
    """Four digits as 32×32 PNG files (so loading must resize them) and all 100 as a .npy."""
    import numpy as np
    from PIL import Image

    folder = tmp_path_factory.mktemp("digit-files")
    paths = []
    for i in range(4):
        path = folder / f"digit{i}.png"
        Image.fromarray(np.kron(digits[i, 0], np.ones((4, 4), np.uint8))).save(path)
        paths.append(path)
    npy = folder / "digits.npy"
    np.save(npy, digits)
    return paths, npy
