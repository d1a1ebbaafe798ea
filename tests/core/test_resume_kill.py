"""A run killed with SIGKILL and resumed ends with the weights of an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import torch

from vaelab.training.checkpoint import load_checkpoint

ARGS = ["train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3",
        "--binarize", "dynamic", "--epochs", "4", "--batch-size", "32", "--deterministic", "--threads", "1",
        "--no-report", "--quiet"]


def vaelab(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "vaelab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


def wait_for_epoch(run_dir, epoch, proc, timeout=300):
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


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    straight = vaelab(*ARGS, "--out", str(tmp_path / "straight"))
    killed_dir = tmp_path / "killed"
    proc = vaelab(*ARGS, "--out", str(killed_dir))
    wait_for_epoch(killed_dir, 1, proc)
    time.sleep(0.3)  # somewhere inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = vaelab("train", "--out", str(killed_dir), "--resume", "--quiet", "--threads", "1")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    straight.communicate(timeout=600)
    assert straight.returncode == 0
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(killed_dir)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 4
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
