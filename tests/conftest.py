"""Shared fixtures: tiny trained runs that many tests use (trained once per session)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def _train(run_dir, model: str, data: dict, epochs: int = 2, latent_dim: int = 4, **train):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train as run_training

    config = from_dict(RunConfig, {
        "model": {"name": model, "latent_dim": latent_dim},
        "data": data,
        "train": {"epochs": epochs, "batch_size": 64, "lr": 2e-3, "report": False, **train},
    })
    run_training(config, run_dir, progress=False)
    return run_dir


@pytest.fixture(scope="session")
def tiny_vae_run(tmp_path_factory):
    """A conv VAE (latent 4) trained 2 epochs on the 8×8 digits: a run directory."""
    return _train(tmp_path_factory.mktemp("runs") / "tiny-vae", "conv-vae", {"name": "digits"})


@pytest.fixture(scope="session")
def tiny_ae_run(tmp_path_factory):
    """An MLP autoencoder (latent 4) trained 2 epochs on the 8×8 digits."""
    return _train(tmp_path_factory.mktemp("runs") / "tiny-ae", "mlp-ae", {"name": "digits"})


@pytest.fixture(scope="module")
def vae(tiny_vae_run):
    import vaelab

    return vaelab.load(tiny_vae_run)   # eval mode; shared by the apps and codec tests


@pytest.fixture(scope="module")
def ae(tiny_ae_run):
    import vaelab

    return vaelab.load(tiny_ae_run)


@pytest.fixture(scope="session")
def fmnist_vae_run(tmp_path_factory):
    """A conv VAE (latent 8) trained 1 epoch on 3,000 binarised Fashion-MNIST images (28×28)."""
    return _train(tmp_path_factory.mktemp("runs") / "fmnist-vae", "conv-vae",
                  {"name": "fashion-mnist", "binarize": "dynamic", "limit": 3000}, epochs=1, latent_dim=8)


@pytest.fixture(scope="session")
def fmnist_available() -> bool:
    from pathlib import Path

    return Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()
