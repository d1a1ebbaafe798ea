"""Fixtures of the codec tests: a tiny rate–distortion run and real images to code."""

from __future__ import annotations

import numpy as np
import pytest


def _train_tiny_rd(tmp_path_factory, name: str, train_options: dict | None = None, **model):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train

    run_dir = tmp_path_factory.mktemp("runs") / name
    config = from_dict(RunConfig, {
        "model": {"name": "conv-rd", "hidden": [16, 16], "latent_channels": 4, "likelihood": "gaussian",
                  "rd_lambdas": [0.05, 0.5, 5.0], **model},
        "data": {"name": "digits"},
        "train": {"epochs": 2, "batch_size": 64, "lr": 3e-3, "report": False, "threads": 1, **(train_options or {})},
    })
    train(config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_rd_run(tmp_path_factory):
    """A conv-rd model (3 quality levels, latent 4×2×2) trained 2 epochs on the 8×8 digits."""
    return _train_tiny_rd(tmp_path_factory, "tiny-rd")


@pytest.fixture(scope="session")
def tiny_rd(tiny_rd_run):
    import vaelab

    return vaelab.load(tiny_rd_run)


@pytest.fixture(scope="session")
def tiny_rd_context_run(tmp_path_factory):
    """The same with the context model over its latent grid (``rd_context``)."""
    return _train_tiny_rd(tmp_path_factory, "tiny-rd-context", rd_context=8)


@pytest.fixture(scope="session")
def tiny_rd_context(tiny_rd_context_run):
    import vaelab

    return vaelab.load(tiny_rd_context_run)


@pytest.fixture(scope="session")
def tiny_rd_groups_run(tmp_path_factory, tiny_rd_context_run):
    """The context run fine-tuned (``init_from``) one epoch with channel context: 2 groups of 2."""
    return _train_tiny_rd(tmp_path_factory, "tiny-rd-groups", rd_context=8, rd_context_groups=2,
                          train_options={"epochs": 1, "init_from": str(tiny_rd_context_run)})


@pytest.fixture(scope="session")
def tiny_rd_groups(tiny_rd_groups_run):
    import vaelab

    return vaelab.load(tiny_rd_groups_run)


@pytest.fixture(scope="session")
def digit_images() -> np.ndarray:
    """40 real 8×8 digits as uint8 (40, 1, 8, 8), scaled as the digits data set scales them
    (whether training saw them does not matter to a codec test)."""
    from sklearn.datasets import load_digits

    images = load_digits().images[-40:]
    return np.round(images * (255.0 / 16.0)).astype(np.uint8)[:, None]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and on a busy machine a second thread's
    spin-waits make each small convolution ~100× slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
