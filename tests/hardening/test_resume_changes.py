"""A resumed run whose config was edited: each change is applied and recorded, or refused by name.

The run below stops after its first of three epochs (``--time-limit``, as a kill would leave
it), then is resumed after an edit of its ``config.toml`` or with a flag. Nothing may be
silently ignored: an applicable change shows in the steps that follow, in ``config.toml``
and in a ``resume`` record; any other is one ``vaelab: error:`` line naming the field, with
the checkpoint left as it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vaelab.runs import read_config, read_metrics

BASE = ["train", "--data", "digits", "--limit", "256", "--model", "mlp-vae", "--latent-dim", "3", "--hidden", "32",
        "--epochs", "3", "--batch-size", "32", "--log-every", "2", "--threads", "1", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A run stopped after epoch 1 of 3, with its checkpoint (copied afresh for every test)."""
    from vaelab.cli import main

    run = tmp_path_factory.mktemp("resume") / "run"
    assert main([*BASE, "--time-limit", "1e-9", "--out", str(run)]) == 0
    return run


@pytest.fixture
def run(stopped, tmp_path):
    return Path(shutil.copytree(stopped, tmp_path / "run"))


def edit(run: Path, old: str, new: str) -> None:
    path = run / "config.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def resume(cli, run: Path, *flags: str):
    return cli("train", "--resume", "--out", run, "--quiet", *flags)


def test_an_edited_learning_rate_is_applied_and_recorded(run, cli):
    edit(run, "lr = 0.001", "lr = 0.0002")
    status, _, err = resume(cli, run, "--time-limit", "0")
    assert status == 0, err
    records = read_metrics(run / "metrics.jsonl")
    event = next(r for r in records if r["event"] == "resume")
    assert event["changed"]["train.lr"] == [0.001, 0.0002] and event["changed"]["train.time_limit"] == [1e-9, 0.0]
    later = [r for r in records if r["event"] == "step" and r["step"] > event["step"]]
    assert later and all(r["lr"] == pytest.approx(0.0002) for r in later)   # constant schedule: γ = γ₀
    assert read_config(run / "config.toml").train.lr == 0.0002
    assert records[-1]["event"] == "final" and records[-1]["epoch"] == 3


def test_an_edited_batch_size_is_applied_and_recorded(run, cli):
    edit(run, "batch_size = 32", "batch_size = 64")
    status, _, err = resume(cli, run, "--time-limit", "0")
    assert status == 0, err
    records = read_metrics(run / "metrics.jsonl")
    assert next(r for r in records if r["event"] == "resume")["changed"]["train.batch_size"] == [32, 64]
    epochs = [r for r in records if r["event"] == "epoch"]
    images = records[0]["train_images"]
    assert epochs[0]["step"] == -(-images // 32)                 # epoch 1 in batches of 32, then of 64
    assert [b["step"] - a["step"] for a, b in zip(epochs, epochs[1:])] == [-(-images // 64)] * 2


@pytest.mark.parametrize("old, new, field", [
    ('optimizer = "adam"', 'optimizer = "sgd"', "train.optimizer"),
    ("latent_dim = 3", "latent_dim = 5", "model.latent_dim"),
    ('binarize = "none"', 'binarize = "dynamic"', "data.binarize"),
    ('schedule = "constant"', 'schedule = "cosine"', "train.schedule"),
    ("seed = 0  # seed of initialisation", "seed = 7  # seed of initialisation", "train.seed"),
])
def test_a_change_that_cannot_apply_is_refused_naming_the_field(run, cli, one_error_line, old, new, field):
    before = (run / "checkpoint.safetensors").read_bytes()
    edit(run, old, new)
    status, _, err = resume(cli, run)
    assert status == 2
    line = one_error_line(err)
    assert field in line and "since the checkpoint was written" in line
    assert (run / "checkpoint.safetensors").read_bytes() == before


def test_a_flag_that_cannot_apply_is_refused_too(run, cli, one_error_line):
    status, _, err = resume(cli, run, "--data-seed", "4")
    assert status == 2 and "data.seed changed from 0 to 4" in one_error_line(err)


def test_an_old_checkpoint_without_its_config_still_refuses_another_optimiser(run, cli, one_error_line):
    """Checkpoints written before configs were recorded: another optimiser's state is one line, not a KeyError."""
    mirror = run / "checkpoint.json"
    record = json.loads(mirror.read_text())
    record.pop("config")
    # rewrite both copies of the record without the config, as an older vaelab wrote them
    from safetensors.torch import load_file, save_file

    from vaelab.weights import sha256

    tensors = load_file(run / "checkpoint.safetensors")
    body = {k: v for k, v in record.items() if k not in ("sha256", "tensors")}
    save_file(tensors, run / "checkpoint.safetensors", metadata={"vaelab_checkpoint": json.dumps(body, sort_keys=True)})
    mirror.write_text(json.dumps({**body, "sha256": sha256((run / "checkpoint.safetensors").read_bytes()),
                                  "tensors": "checkpoint.safetensors"}))
    edit(run, 'optimizer = "adam"', 'optimizer = "sgd"')
    status, _, err = resume(cli, run)
    assert status == 2 and "another optimiser" in one_error_line(err)


def test_a_missing_checkpoint_beside_a_model_is_refused_unless_restart(run, cli, one_error_line):
    (run / "checkpoint.safetensors").unlink()
    model = (run / "model.safetensors").read_bytes()
    status, _, err = resume(cli, run)
    assert status == 2 and "--restart" in one_error_line(err)
    assert (run / "model.safetensors").read_bytes() == model          # not overwritten
    status, _, err = cli("train", "--restart", "--out", run, "--quiet", "--time-limit", "0")
    assert status == 0, err
    records = read_metrics(run / "metrics.jsonl")
    assert records[0]["event"] == "start" and records[-1]["event"] == "final" and records[-1]["epoch"] == 3


def test_training_into_a_directory_with_a_model_is_refused(run, cli, one_error_line):
    (run / "checkpoint.safetensors").unlink()
    (run / "checkpoint.json").unlink()
    status, _, err = cli(*BASE, "--out", run)
    assert status == 2 and "already holds a run" in one_error_line(err) and "--restart" in err


def test_a_giant_model_is_refused_before_anything_is_allocated(tmp_path, cli, one_error_line):
    import time

    start = time.perf_counter()
    status, _, err = cli("train", "--data", "digits", "--model", "conv-vae", "--hidden", "60000-60000",
                         "--out", tmp_path / "giant")
    assert status == 2 and "parameters" in one_error_line(err) and "GB" in err
    assert time.perf_counter() - start < 20 and not (tmp_path / "giant" / "model.safetensors").exists()
