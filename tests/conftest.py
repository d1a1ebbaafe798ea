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
def benchmark_script():
    """``benchmark_script("loadtest")``: a script of benchmarks/ imported as a module, so tests run
    the benchmark's own code (imported once per session)."""
    import importlib.util
    import sys
    from pathlib import Path

    def load(name: str):
        module_name = f"vaelab_benchmark_{name}"
        if module_name not in sys.modules:
            path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # its dataclasses look their module up there
            spec.loader.exec_module(module)
        return sys.modules[module_name]

    return load


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
def cond_vae_run(tmp_path_factory):
    """A cond-vae (latent 4 + 10 classes) trained 15 epochs on the 8×8 digits (about 20 s): a run directory."""
    return _train(tmp_path_factory.mktemp("runs") / "cond-vae", "cond-vae", {"name": "digits"}, epochs=15,
                  lr=3e-3, threads=1)


@pytest.fixture(scope="session")
def fmnist_vae_run(tmp_path_factory):
    """A conv VAE (latent 8) trained 1 epoch on 3,000 binarised Fashion-MNIST images (28×28)."""
    return _train(tmp_path_factory.mktemp("runs") / "fmnist-vae", "conv-vae",
                  {"name": "fashion-mnist", "binarize": "dynamic", "limit": 3000}, epochs=1, latent_dim=8)


@pytest.fixture(scope="session")
def fmnist_available() -> bool:
    from pathlib import Path

    return Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists()


@pytest.fixture
def cli(capfd):
    """Run ``vaelab ARGS`` in-process -> (exit status, stdout, stderr), at the file-descriptor level."""
    from vaelab.cli import main

    def run(*args):
        capfd.readouterr()
        status = main([str(a) for a in args])
        captured = capfd.readouterr()
        return status, captured.out, captured.err

    return run


class VaelabProcesses:
    """``vaelab`` as child processes, for the tests that kill one mid-epoch (SIGKILL) and resume it."""

    @staticmethod
    def start(*args, **kw):
        import subprocess
        import sys

        return subprocess.Popen([sys.executable, "-m", "vaelab", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)

    @staticmethod
    def kill_at(spec: str, *args):
        """Run ``vaelab ARGS`` and SIGKILL it from inside at ``spec`` (tests/hardening/killpoint.py: e.g.
        ``forward:12``, the 12th training step): a moment certain to be hit however loaded the machine."""
        import subprocess
        import sys
        from pathlib import Path

        killpoint = Path(__file__).parent / "hardening" / "killpoint.py"
        return subprocess.run([sys.executable, str(killpoint), spec, *map(str, args)], capture_output=True,
                              text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
                              timeout=600)

    @staticmethod
    def wait_for_epoch(run_dir, epoch, proc, timeout=300):
        """Return once the run's checkpoint has ``epoch`` epochs; fail if the process died first."""
        import time

        from vaelab.training.checkpoint import load_checkpoint

        start = time.time()
        while time.time() - start < timeout:
            if (run_dir / "checkpoint.json").exists():
                try:
                    if load_checkpoint(run_dir)["state"]["epoch"] >= epoch:
                        return
                except Exception:  # being written at this very moment; look again
                    pass
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.05)
        raise AssertionError("training made no progress")


@pytest.fixture
def processes():
    return VaelabProcesses
