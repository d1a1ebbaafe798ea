"""SIGKILL at several random moments of one run, ``--resume`` after each: nothing is lost.

One run directory is killed six times — inside the first epoch (before any checkpoint), right
after the new ``checkpoint.safetensors`` lands but before its ``checkpoint.json`` mirror,
between a checkpoint's temporary file and its rename, inside a later epoch, inside the final
evaluation and right after the final record (where the report is written) — and resumed
after each kill. The moments are drawn at random (the seed is in every failure message;
set ``VAELAB_KILL_SEED`` to replay one). The finished run must equal an uninterrupted run
bit for bit (deterministic mode): weights, best weights, and every ``metrics.jsonl`` record
exactly once; and no temporary file may be left behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import torch

from vaelab.cli import main
from vaelab.runs import load_model, read_metrics
from vaelab.training.checkpoint import load_checkpoint

KILLPOINT = Path(__file__).with_name("killpoint.py")
EPOCHS, STEPS_PER_EPOCH = 4, 8  # 256 digits in batches of 32
ARGS = ["train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3", "--hidden", "32",
        "--binarize", "dynamic", "--epochs", str(EPOCHS), "--batch-size", "32", "--log-every", "3",
        "--deterministic", "--threads", "1", "--no-report", "--quiet"]
RESUME = ["train", "--resume", "--quiet", "--threads", "1"]
TIMING = {"seconds", "train_seconds", "images_per_s"}  # wall-clock fields: the only ones allowed to differ


def run_until(spec: str, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(KILLPOINT), spec, *args], capture_output=True, text=True,
                          env=env, timeout=600)


def records(run_dir: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(run_dir / "metrics.jsonl")]


def up_to_epoch(recs: list[dict], epoch: int) -> list[dict]:
    """The records a checkpoint at the end of ``epoch`` vouches for: all up to that epoch's record."""
    ends = [i for i, r in enumerate(recs) if r["event"] == "epoch" and r["epoch"] == epoch]
    return recs[:ends[0] + 1] if ends else []


def checkpoint_epoch(run_dir: Path) -> int:
    return load_checkpoint(run_dir)["state"]["epoch"] if (run_dir / "checkpoint.safetensors").exists() else 0


def temporaries(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.name.endswith(".tmp"))


def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path):
    seed = int(os.environ.get("VAELAB_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    straight, run = tmp_path / "straight", tmp_path / "killed"
    assert main([*ARGS, "--out", str(straight)]) == 0
    truth = records(straight)

    after_ckpt = rng.randint(1, 2)  # the checkpoint whose mirror the kill leaves stale
    plan = [  # (kill point, the checkpoint epoch the run must hold after the kill)
        (f"forward:{rng.randint(1, STEPS_PER_EPOCH)}", 0),
        (f"after-replace:checkpoint.safetensors:{after_ckpt}", after_ckpt),
        ("before-replace:checkpoint.safetensors:1", after_ckpt),
    ]
    later_step = rng.randint(2, STEPS_PER_EPOCH * (EPOCHS - after_ckpt))
    plan.append((f"forward:{later_step}", after_ckpt + (later_step - 1) // STEPS_PER_EPOCH))
    final_eval = EPOCHS - plan[-1][1] + 1  # validation once per remaining epoch, then the test set
    plan += [(f"evaluate:{final_eval}", EPOCHS), ("after-record:final", EPOCHS)]

    for i, (spec, expected_epoch) in enumerate(plan):
        where = f"kill {i + 1} at {spec} (VAELAB_KILL_SEED={seed})"
        args = [*ARGS, "--out", str(run)] if i == 0 else [*RESUME, "--out", str(run)]
        proc = run_until(spec, args)
        assert proc.returncode == -signal.SIGKILL, f"{where}: {proc.stderr[-2000:]}"
        assert checkpoint_epoch(run) == expected_epoch, where
        if spec.startswith("before-replace"):
            assert temporaries(run), f"{where}: the kill should have left the temporary file behind"
        # everything the last checkpoint vouches for is on disk, parseable, once and unchanged
        assert up_to_epoch(records(run), expected_epoch) == up_to_epoch(truth, expected_epoch), where

    proc = run_until("none", [*RESUME, "--out", str(run)])
    assert proc.returncode == 0, f"(VAELAB_KILL_SEED={seed}) {proc.stderr[-2000:]}"

    assert records(run) == truth, f"metrics.jsonl differs from the uninterrupted run's (VAELAB_KILL_SEED={seed})"
    assert temporaries(run) == [], f"temporary files left behind (VAELAB_KILL_SEED={seed})"
    a, b = load_checkpoint(straight), load_checkpoint(run)
    assert a["state"]["epoch"] == b["state"]["epoch"] == EPOCHS
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), f"{name} (VAELAB_KILL_SEED={seed})"
    best_a, best_b = load_model(straight).state_dict(), load_model(run).state_dict()
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a), f"best weights differ (VAELAB_KILL_SEED={seed})"
