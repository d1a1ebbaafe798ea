"""The training engine: files, reproducibility, exact resume, non-finite losses, damaged checkpoints."""

import errno
import json
import math
import typing

import pytest
import torch

import vaelab
from vaelab.config import from_dict
from vaelab.errors import VaelabError
from vaelab.models import config_class, model_names
from vaelab.runs import RunConfig, read_metrics
from vaelab.training import train
from vaelab.training.checkpoint import load_checkpoint


def config(model="conv-vae", data=None, **train_kw):
    # a small latent for the models that have one (conv-rd's is its grid: M channels per position)
    small = {"latent_channels": 3} if "latent_channels" in typing.get_type_hints(config_class(model)) else \
        {"latent_dim": 3}
    return from_dict(RunConfig, {
        "model": {"name": model, **small},
        "data": data or {"name": "digits", "limit": 256},
        "train": {"epochs": 2, "batch_size": 32, "report": False, "deterministic": True, **train_kw},
    })


def weights(run_dir, file="checkpoint"):
    if file == "checkpoint":
        return load_checkpoint(run_dir)["model"]
    return vaelab.load(run_dir).state_dict()


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


BASE = ["mlp-ae", "conv-ae", "mlp-vae", "conv-vae"]


@pytest.mark.parametrize("model", BASE)
def test_every_base_model_trains_and_loads(tmp_path, model):
    result = train(config(model, epochs=3, lr=3e-3), tmp_path / "run", progress=False)
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    epochs = [r for r in records if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert math.isfinite(result.final["test_neg_elbo"])
    for name in ("config.toml", "model.safetensors", "checkpoint.safetensors", "checkpoint.json"):
        assert (tmp_path / "run" / name).exists()
    m = vaelab.load(tmp_path / "run")
    assert not m.training and m.registry_name == model


@pytest.mark.parametrize("data", [
    {"name": "mnist-5k", "limit": 128},
    {"name": "shapes", "shapes_count": 300, "image_size": 32},
    {"name": "fashion-mnist", "limit": 128, "binarize": "dynamic"},
    {"name": "digits", "binarize": "static", "limit": 128},
])
def test_every_data_set_trains(tmp_path, data, fmnist_available):
    if data["name"] == "fashion-mnist" and not fmnist_available:
        pytest.skip("needs Debian's dataset-fashion-mnist")
    result = train(config("conv-vae", data=data, epochs=1), tmp_path / "run", progress=False)
    assert math.isfinite(result.final["test_neg_elbo"])


def test_models_registered_beyond_the_base_four_train(tmp_path):
    for name in sorted(set(model_names()) - set(BASE)):
        result = train(config(name, epochs=1), tmp_path / name, progress=False)
        assert math.isfinite(result.final["test_loss"]), name


def test_same_seed_same_weights_and_another_seed_differs(tmp_path):
    train(config(), tmp_path / "a", progress=False)
    train(config(), tmp_path / "b", progress=False)
    train(config(seed=1), tmp_path / "c", progress=False)
    assert same(weights(tmp_path / "a"), weights(tmp_path / "b"))
    assert not same(weights(tmp_path / "a"), weights(tmp_path / "c"))


def test_resume_continues_exactly(tmp_path):
    cfg = config(epochs=3, kl_warmup_epochs=2, schedule="cosine", data={"name": "digits", "limit": 256, "binarize": "dynamic"})
    train(cfg, tmp_path / "straight", progress=False)
    short = config(epochs=1, kl_warmup_epochs=2, schedule="cosine", data={"name": "digits", "limit": 256, "binarize": "dynamic"})
    # the schedule's horizon is part of the config, so train 1 epoch of the 3-epoch run:
    short.train.epochs = 3
    short.train.time_limit = 1e-9   # stop after the first epoch, as a kill would
    train(short, tmp_path / "resumed", progress=False)
    assert load_checkpoint(tmp_path / "resumed")["state"]["epoch"] == 1
    short.train.time_limit = 0.0
    train(short, tmp_path / "resumed", resume=True, progress=False)
    assert same(weights(tmp_path / "straight"), weights(tmp_path / "resumed"))
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if r["event"] == "step"]
    assert steps == sorted(set(steps)), "metrics after the checkpoint must not be duplicated"


def test_init_from_starts_from_another_runs_weights(tmp_path):
    train(config(epochs=1), tmp_path / "first", progress=False)
    # a step size far below float32's resolution: the weights stay exactly what was copied
    train(config(epochs=1, optimizer="sgd", lr=1e-30, init_from=str(tmp_path / "first")), tmp_path / "tuned",
          progress=False)
    assert same(weights(tmp_path / "first", "model"), weights(tmp_path / "tuned", "model"))
    start = read_metrics(tmp_path / "tuned" / "metrics.jsonl")[0]
    assert start["init_from"] == str(tmp_path / "first") and start["not_copied"] == []
    train(config(epochs=1, seed=3), tmp_path / "fresh", progress=False)
    assert not same(weights(tmp_path / "first", "model"), weights(tmp_path / "fresh", "model"))


def test_init_from_keeps_the_new_configs_lambdas(tmp_path):
    rd = {"name": "conv-rd", "hidden": [8, 8], "latent_channels": 2, "likelihood": "gaussian"}
    first = from_dict(RunConfig, {"model": {**rd, "rd_lambdas": [0.1, 1.0]}, "data": {"name": "digits", "limit": 128},
                                  "train": {"epochs": 1, "batch_size": 32, "report": False}})
    train(first, tmp_path / "first", progress=False)
    tuned = from_dict(RunConfig, {"model": {**rd, "rd_lambdas": [0.5, 5.0]}, "data": {"name": "digits", "limit": 128},
                                  "train": {"epochs": 1, "batch_size": 32, "report": False, "optimizer": "sgd",
                                            "lr": 1e-30, "init_from": str(tmp_path / "first")}})
    train(tuned, tmp_path / "tuned", progress=False)
    before, after = vaelab.load(tmp_path / "first"), vaelab.load(tmp_path / "tuned")
    assert after.lambdas.tolist() == [0.5, 5.0]
    assert torch.equal(before.raw_log_steps, after.raw_log_steps)      # the rest is copied
    assert read_metrics(tmp_path / "tuned" / "metrics.jsonl")[0]["not_copied"] == ["lambdas"]


@pytest.mark.parametrize("change, message", [({"latent_dim": 5}, "has shape"), ({"name": "mlp-vae"}, "holds a 'conv-vae'|lacks")])
def test_init_from_a_different_model_is_a_one_line_error(tmp_path, change, message):
    train(config(epochs=1), tmp_path / "first", progress=False)
    other = config(epochs=1, init_from=str(tmp_path / "first"))
    for key, value in change.items():
        setattr(other.model, key, value)
    with pytest.raises(VaelabError, match=message) as info:
        train(other, tmp_path / "second", progress=False)
    assert "\n" not in str(info.value)


def test_init_from_a_directory_without_a_run_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaelabError) as info:
        train(config(epochs=1, init_from=str(tmp_path / "empty")), tmp_path / "second", progress=False)
    assert "\n" not in str(info.value)


def test_evaluation_builds_no_autograd_graph(monkeypatch):
    """Summing losses that carry a graph would chain every batch's graph: 18 GB on a test split."""
    from vaelab.data import load_data
    from vaelab.models import build_model
    from vaelab.training import engine

    cfg = config()
    data = load_data(cfg.data)
    model = build_model(cfg.model, data.image_shape)
    grad_enabled = []
    loss = cfg.model.loss()
    real = type(loss).__call__
    monkeypatch.setattr(type(loss), "__call__",
                        lambda self, out, x, w=1.0: (grad_enabled.append(torch.is_grad_enabled()), real(self, out, x, w))[1])
    engine.evaluate_loss(model, loss, data.val.images, 16, torch.device("cpu"))
    assert grad_enabled and not any(grad_enabled)


def test_a_second_run_into_the_same_directory_is_refused(tmp_path):
    train(config(epochs=1), tmp_path / "run", progress=False)
    with pytest.raises(VaelabError, match="--resume"):
        train(config(epochs=1), tmp_path / "run", progress=False)


def test_optimisers_and_schedules(tmp_path):
    for i, (opt, sched, lr) in enumerate([("gd", "inverse", 0.5), ("sgd", "inverse-sqrt", 0.05),
                                          ("adamw", "cosine", 3e-3)]):
        cfg = config("mlp-ae", optimizer=opt, schedule=sched, lr=lr, epochs=3)
        result = train(cfg, tmp_path / str(i), progress=False)
        epochs = [r for r in read_metrics(tmp_path / str(i) / "metrics.jsonl") if r["event"] == "epoch"]
        assert epochs[-1]["train_loss"] < epochs[0]["train_loss"], opt
        if opt == "gd":  # full batch: one step per epoch (Cor. 1.2.6)
            assert result.steps == 3


def test_kl_warmup(tmp_path):
    cfg = config(kl_warmup_epochs=2, epochs=3, log_every=1)
    train(cfg, tmp_path / "warm", progress=False)
    weights_seen = [r["kl_weight"] for r in read_metrics(tmp_path / "warm" / "metrics.jsonl") if r["event"] == "step"]
    assert weights_seen[0] < 0.2 and weights_seen[-1] == 1.0 and weights_seen == sorted(weights_seen)


def test_early_stopping_counts_epochs_without_improvement(tmp_path, monkeypatch):
    from vaelab.training import engine

    val_losses = iter([5.0, 4.0, 4.5, 4.2, 3.0, 6.0, 7.0])
    real = engine.evaluate_loss

    def scripted(model, loss, images, batch_size, device, seed=1234):
        out = real(model, loss, images[:8], batch_size, device, seed)
        return {**out, "loss": next(val_losses)}

    monkeypatch.setattr(engine, "evaluate_loss", scripted)
    result = train(config(early_stopping=2, epochs=20), tmp_path / "stop", progress=False)
    # epochs 1-2 improve, 3-4 do not: stop after epoch 4 (patience 2); best weights from epoch 2
    assert result.stopped_early and result.epochs == 4
    assert result.final["best_epoch"] == 2


def test_a_loss_may_pick_the_best_epoch_by_another_number(tmp_path, monkeypatch):
    """FactorVAE's loss holds a noisy adversarial estimate; it ranks epochs by the −ELBO instead."""
    from vaelab.models.losses import ELBO
    from vaelab.training import engine

    scores = iter([(5.0, 9.0), (3.0, 8.0), (4.0, 7.0), (0.0, 0.0)])   # (loss, −ELBO) per epoch, then the test
    real = engine.evaluate_loss

    def scripted(model, loss, images, batch_size, device, seed=1234):
        out = real(model, loss, images[:8], batch_size, device, seed)
        value, neg_elbo = next(scores)
        return {**out, "loss": value, "neg_elbo": neg_elbo}

    monkeypatch.setattr(engine, "evaluate_loss", scripted)
    monkeypatch.setattr(ELBO, "selection", "neg_elbo")
    result = train(config(epochs=3), tmp_path / "pick", progress=False)
    assert result.final["best_epoch"] == 3                  # by the loss it would have been epoch 2


def test_non_finite_loss_stops_with_a_diagnostic_and_keeps_the_checkpoint(tmp_path):
    cfg = config("mlp-vae", optimizer="sgd", lr=1e6, epochs=4)
    with pytest.raises(VaelabError) as err:
        train(cfg, tmp_path / "run", progress=False)
    message = str(err.value)
    assert "step" in message and "not finite" in message and "--nan-policy skip" in message
    events = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["event"] == "non_finite"]
    assert events and set(events[0]["term"].split(", ")) <= {"loss", "reconstruction", "kl", "gradient"}
    if (tmp_path / "run" / "checkpoint.safetensors").exists():
        state = load_checkpoint(tmp_path / "run")
        assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_skip_policy_skips_non_finite_steps(tmp_path, monkeypatch):

    from vaelab.models.losses import ELBO

    real = ELBO.__call__
    calls = {"n": 0}

    def sometimes_nan(self, output, x, kl_weight=1.0):
        terms = real(self, output, x, kl_weight)
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            terms.parts["kl"] = terms.kl * float("nan")
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(ELBO, "__call__", sometimes_nan)
    result = train(config(nan_policy="skip", epochs=1), tmp_path / "run", progress=False)
    assert result.final["skipped_steps"] >= 2
    assert all(torch.isfinite(v).all() for v in weights(tmp_path / "run").values())


def test_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = config(epochs=1)
    train(cfg, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "checkpoint.safetensors").read_bytes()
    from vaelab import fileio

    real_replace = fileio.os.replace

    def full(src, dst):
        if str(dst).endswith("checkpoint.safetensors"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", full)
    cfg.train.epochs = 2
    with pytest.raises(VaelabError, match="disk is full.*previous version is intact"):
        train(cfg, tmp_path / "run", resume=True, progress=False)
    assert (tmp_path / "run" / "checkpoint.safetensors").read_bytes() == before
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run")["state"]["epoch"] == 1


def test_damaged_checkpoints_give_one_line_errors(tmp_path):
    train(config(epochs=1), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    good = (run / "checkpoint.safetensors").read_bytes()
    good_json = (run / "checkpoint.json").read_text()
    (run / "checkpoint.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(VaelabError, match="checkpoint.safetensors: is damaged"):
        load_checkpoint(run)
    (run / "checkpoint.safetensors").write_bytes(good)
    edited = json.loads(good_json)
    edited["state"]["epoch"] = 7
    (run / "checkpoint.json").write_text(json.dumps(edited))
    with pytest.raises(VaelabError, match="checkpoint.json: was edited"):
        load_checkpoint(run)
    (run / "checkpoint.json").write_text("{not json")
    with pytest.raises(VaelabError, match="checkpoint.json: .*not valid JSON"):
        load_checkpoint(run)
    # a kill between the tensor file and its mirror: the older mirror is healed
    older = json.loads(good_json)
    older["state"]["step"] = 0
    older["sha256"] = "0" * 64
    (run / "checkpoint.json").write_text(json.dumps(older))
    assert load_checkpoint(run)["state"]["epoch"] == 1
    assert json.loads((run / "checkpoint.json").read_text())["sha256"] == json.loads(good_json)["sha256"]
