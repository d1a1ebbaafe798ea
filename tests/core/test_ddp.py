"""DDP: two CPU processes under torchrun give the single-process result for the same global batch."""

import os
import subprocess
import sys

import torch

from vaelab.runs import read_metrics
from vaelab.training.checkpoint import load_checkpoint

ARGS = ["train", "--data", "digits", "--limit", "256", "--model", "mlp-ae", "--latent-dim", "4",
        "--epochs", "2", "--batch-size", "32", "--lr", "0.003", "--deterministic", "--threads", "1",
        "--precision", "fp32",   # bf16 CPUs (auto) round two half-batches differently from one batch
        "--no-report", "--quiet"]


def test_two_processes_match_one(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "vaelab", *ARGS, "--out", str(tmp_path / "one")],
                            capture_output=True, env=env, timeout=600)
    assert single.returncode == 0, single.stderr.decode()
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "vaelab", *ARGS, "--out", str(tmp_path / "two")],
                         capture_output=True, env=env, timeout=600)
    assert ddp.returncode == 0, ddp.stderr.decode()[-3000:]
    one, two = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert one["state"]["step"] == two["state"]["step"] == 2 * 256 // 32
    for name, value in one["model"].items():
        if name.startswith("code_"):  # running code statistics: rank 0 sees half of each batch
            continue
        torch.testing.assert_close(two["model"][name], value, atol=2e-5, rtol=1e-4, msg=name)
    records = read_metrics(tmp_path / "two" / "metrics.jsonl")
    starts = [r for r in records if r["event"] == "start"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2   # rank 0 alone writes
