"""Fixtures of the hardening tests: tiny run configs, a CLI runner, real small disks."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and the machine is shared."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny_config(**train):
    # 256 digits, 8 steps per epoch, deterministic: a run in about a second
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig

    return from_dict(RunConfig, {
        "model": {"name": "mlp-vae", "latent_dim": 3},
        "data": {"name": "digits", "limit": 256},
        "train": {"epochs": 1, "batch_size": 32, "report": False, "deterministic": True, "threads": 1, **train},
    })


@pytest.fixture
def tiny_config():
    """``tiny_config(**train)`` -> the RunConfig of the TINY settings, with ``[train]`` overrides."""
    return _tiny_config


@pytest.fixture
def one_error_line():
    """``one_error_line(stderr)`` -> the single ``vaelab: error:`` line stderr must consist of."""

    def check(err: str) -> str:
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("vaelab: error: "), err
        return lines[0]

    return check


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """An mlp-vae trained one epoch on 256 digits (a run directory; copy it before damaging it)."""
    from vaelab.training import train

    run = tmp_path_factory.mktemp("hardening") / "tiny"
    train(_tiny_config(), run, progress=False)
    return run


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of ``tiny_run`` that a test may damage."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@pytest.fixture
def mounts():
    """Mount helpers (tmpfs of a given size, read-only bind); skipped where mounting is not allowed."""
    mounted: list[Path] = []

    class Mounts:
        def tmpfs(self, where: Path, size: str) -> Path:
            where.mkdir(parents=True, exist_ok=True)
            if os.geteuid() != 0 or not _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)):
                pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
            mounted.append(where)
            return where

        def read_only(self, where: Path) -> Path:
            if os.geteuid() != 0 or not _mount("--bind", str(where), str(where)):
                pytest.skip("cannot bind-mount here (needs root with CAP_SYS_ADMIN)")
            mounted.append(where)
            if not _mount("-o", "remount,ro,bind", str(where)):
                pytest.skip("cannot remount read-only here")
            return where

        @staticmethod
        def free(disk: Path) -> int:
            stat = os.statvfs(disk)
            return stat.f_bavail * stat.f_frsize

        def fill(self, disk: Path, leave: int) -> Path:
            """Fill the file system of ``disk`` until about ``leave`` bytes are free."""
            filler = disk / "filler"
            with open(filler, "ab") as handle:
                handle.write(b"\0" * max(0, self.free(disk) - leave))
            return filler

    yield Mounts()
    for where in reversed(mounted):
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)



@pytest.fixture(scope="module")
def loadtest(benchmark_script):
    """benchmarks/loadtest.py as a module: the load tests run the benchmark's own code."""
    return benchmark_script("loadtest")
