"""A full disk or an unwritable directory: the previous checkpoint stays intact, and we say so.

The real cases use a small tmpfs (a disk that really fills up) and a read-only bind mount
(root ignores chmod, not a read-only mount); they are skipped where mounting is not allowed.
The simulated ones raise the OS errors in-process where a real disk cannot be aimed precisely.
"""

from __future__ import annotations

import errno
import tempfile

import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint

RESUME = ["train", "--resume", "--threads", "1", "--quiet", "--no-report"]


def temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_real_full_disk_at_the_checkpoint_keeps_the_previous_one_and_resume_recovers(
        tmp_path, mounts, tiny_config, cli, one_error_line):
    disk = mounts.tmpfs(tmp_path / "disk", "2m")
    run = disk / "run"
    train(tiny_config(epochs=1), run, progress=False)
    before = (run / "checkpoint.safetensors").read_bytes()
    # room for the new best weights and the small files, not for the larger checkpoint
    leave = (run / "model.safetensors").stat().st_size + (48 << 10)
    assert leave < len(before)
    filler = mounts.fill(disk, leave)

    status, _, err = cli(*RESUME, "--epochs", "2", "--out", run)
    line = one_error_line(err)
    assert status == 2
    assert f"{run / 'checkpoint.safetensors'}: could not be written (the disk is full)" in line
    assert "the previous version is intact" in line
    assert (run / "checkpoint.safetensors").read_bytes() == before
    assert load_checkpoint(run)["state"]["epoch"] == 1
    assert temporaries(run) == []

    filler.unlink()  # the user frees space and resumes: the run ends as if nothing happened
    status, _, err = cli(*RESUME, "--epochs", "2", "--out", run)
    assert status == 0, err
    train(tiny_config(epochs=2), tmp_path / "straight", progress=False)
    resumed, straight = load_checkpoint(run)["model"], load_checkpoint(tmp_path / "straight")["model"]
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


@pytest.mark.parametrize("leave_kib", [0, 4, 8, 12, 24, 64, 120])
def test_a_disk_that_fills_at_any_write_gives_one_line_and_no_debris(
        tmp_path, mounts, leave_kib, cli, one_error_line):
    # Each amount of free space makes a different write the first to fail (config, metrics
    # log, best weights, checkpoint, its mirror): every one must be a one-line error naming
    # a file of the run, never a traceback, and leave no temporary file.
    disk = mounts.tmpfs(tmp_path / "disk", "1m")
    mounts.fill(disk, leave_kib << 10)
    run = disk / "run"
    status, _, err = cli("train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3",
                         "--epochs", "2", "--batch-size", "32", "--log-every", "1", "--threads", "1", "--quiet",
                         "--no-report", "--out", run)
    line = one_error_line(err)
    assert status == 2
    assert f"vaelab: error: {run}/" in line and "the disk is full" in line
    assert not run.exists() or temporaries(run) == []
    if (run / "checkpoint.safetensors").exists():
        assert load_checkpoint(run)["state"]["epoch"] >= 1


def test_a_read_only_run_directory_fails_before_touching_anything(run_copy, mounts, cli, one_error_line):
    before = {p.name: p.read_bytes() for p in run_copy.iterdir()}
    mounts.read_only(run_copy)
    status, _, err = cli(*RESUME, "--epochs", "2", "--out", run_copy)
    line = one_error_line(err)
    assert status == 2
    assert f"vaelab: error: {run_copy}/" in line and "Read-only file system" in line
    assert "nothing was changed; the previous version is intact" in line
    assert {p.name: p.read_bytes() for p in run_copy.iterdir()} == before


def test_permission_denied_at_the_checkpoint_keeps_the_previous_one(run_copy, monkeypatch, tiny_config):
    from vaelab import fileio

    before = (run_copy / "checkpoint.safetensors").read_bytes()
    real_mkstemp = tempfile.mkstemp

    def denied(*args, prefix="", **kwargs):
        if prefix.startswith(".checkpoint.safetensors"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkstemp(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(fileio.tempfile, "mkstemp", denied)
    with pytest.raises(VaelabError) as err:
        train(tiny_config(epochs=2), run_copy, resume=True, progress=False)
    message = str(err.value)
    assert message.startswith(f"{run_copy / 'checkpoint.safetensors'}: cannot write here (Permission denied)")
    assert "the previous version is intact" in message
    monkeypatch.undo()
    assert (run_copy / "checkpoint.safetensors").read_bytes() == before


def test_a_run_directory_under_a_regular_file_is_one_line(tmp_path, cli, one_error_line):
    (tmp_path / "not-a-folder").write_text("a file where the run's parent folder should be\n")
    run = tmp_path / "not-a-folder" / "run"
    status, _, err = cli("train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--epochs", "1",
                         "--threads", "1", "--quiet", "--no-report", "--out", run)
    assert status == 2
    assert str(run) in one_error_line(err)


def test_a_full_disk_while_appending_metrics_is_one_line(tmp_path, monkeypatch, tiny_config):
    # Appends are not atomic writes: a full disk there must still be a VaelabError, and the
    # records of the last checkpoint must still be readable afterwards.
    from vaelab.runs import read_metrics
    from vaelab.training import metrics

    run = tmp_path / "run"
    train(tiny_config(epochs=1), run, progress=False)
    # what the checkpoint vouches for (the final record is written again when a resumed run ends)
    kept = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] != "final"]

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def full_when_appending(path, mode="r", **kwargs):
        handle = open(path, mode, **kwargs)
        return FullDisk(handle) if "a" in mode else handle

    monkeypatch.setattr(metrics, "open", full_when_appending, raising=False)
    with pytest.raises(VaelabError) as err:
        train(tiny_config(epochs=2), run, resume=True, progress=False)
    assert str(err.value).startswith(f"{run / 'metrics.jsonl'}: could not be appended to (the disk is full)")
    assert "the records up to the last checkpoint are intact" in str(err.value)
    monkeypatch.undo()
    assert read_metrics(run / "metrics.jsonl") == kept
    assert load_checkpoint(run)["state"]["epoch"] == 1
