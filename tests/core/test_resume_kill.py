"""A run killed with SIGKILL and resumed ends with the weights of an uninterrupted run."""

import signal
import time

import torch

from vaelab.training.checkpoint import load_checkpoint

ARGS = ["train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3",
        "--binarize", "dynamic", "--epochs", "4", "--batch-size", "32", "--deterministic", "--threads", "1",
        "--no-report", "--quiet"]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, processes):
    straight = processes.start(*ARGS, "--out", str(tmp_path / "straight"))
    killed_dir = tmp_path / "killed"
    proc = processes.start(*ARGS, "--out", str(killed_dir))
    processes.wait_for_epoch(killed_dir, 1, proc)
    time.sleep(0.3)  # somewhere inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed = processes.start("train", "--out", str(killed_dir), "--resume", "--quiet", "--threads", "1")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    straight.communicate(timeout=600)
    assert straight.returncode == 0
    a = load_checkpoint(tmp_path / "straight")
    b = load_checkpoint(killed_dir)
    assert a["state"]["epoch"] == b["state"]["epoch"] == 4
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
