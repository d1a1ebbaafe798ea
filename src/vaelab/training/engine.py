"""The training loop: model-agnostic, resumable, distributed.

The engine knows one thing about a model: ``training_loss(model, x, kl_weight)`` returns
per-image loss terms (models/objectives.py). Everything else — optimiser (thesis §1.2:
GD, SGD, Adam), step-size schedule, KL warm-up, clipping, early stopping, precision,
checkpoints, DDP — lives here.

Reproducibility: initialisation is seeded by ``seed``; each epoch's batch order and noise
come from generators seeded by (seed, epoch, rank). A checkpoint at the end of every epoch
therefore holds all the state needed to continue exactly: a run killed at any moment and
resumed ends with the weights of an uninterrupted run (in deterministic mode).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from .. import runs
from ..data import BatchLoader, DataSplits, eval_batches, load_data
from ..errors import VaelabError
from ..fileio import remove_stale_temporaries
from ..models import build_model, training_loss
from ..theory import make_optimizer, make_scheduler
from . import distributed, precision
from .checkpoint import load_checkpoint, save_checkpoint, save_tensors
from .metrics import MetricsLog, trim_after


class LossModule(nn.Module):
    """model + objective as one module, so DDP sees every parameter the loss touches."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, kl_weight: float):
        terms = training_loss(self.model, x, kl_weight)
        return terms.loss.mean(), torch.stack([terms.loss.mean(), terms.reconstruction.mean(), terms.kl.mean()])


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    steps: int
    seconds: float
    stopped_early: bool = False
    final: dict = field(default_factory=dict)


class NonFiniteLoss(VaelabError):
    pass


def _mix(*numbers: int) -> int:
    """A seed from several integers (stable across runs and platforms)."""
    h = 1469598103934665603
    for n in numbers:
        h = ((h ^ (n & 0xFFFFFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def initialise_from(model: nn.Module, run_dir: str) -> list[str]:
    """Copy the weights of the run in ``run_dir`` into ``model``; returns the names not copied.

    Every tensor of that run must exist in ``model`` with the same shape (a different
    architecture is an error, not a silent partial copy); tensors the model adds (say, a
    context model's channel groups) keep their initialisation, and so do the tensors the model
    names in ``config_tensors``: values its config sets (a conv-rd's λ), which a fine-tune
    may change.
    """
    source = runs.load_model(run_dir).state_dict()
    target = model.state_dict()
    for name, value in source.items():
        if name not in target:
            raise VaelabError(f"holds tensor {name}, which this model lacks; init_from needs a run of the same "
                              "model family", Path(run_dir))
        if tuple(value.shape) != tuple(target[name].shape):
            raise VaelabError(f"tensor {name} has shape {tuple(value.shape)}, this model expects "
                              f"{tuple(target[name].shape)}", Path(run_dir))
    weights = {name: value for name, value in source.items() if name not in getattr(model, "config_tensors", ())}
    model.load_state_dict(weights, strict=False)   # names and shapes checked above
    return sorted(set(target) - set(weights))


@torch.no_grad()
def evaluate_loss(model: nn.Module, images: torch.Tensor, batch_size: int, device, seed: int = 1234) -> dict[str, float]:
    """Mean loss terms (β-weighted loss, −ELBO, reconstruction, KL) over a split, fixed noise."""
    was_training = model.training
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64)
    n = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for x in eval_batches(images, batch_size, device):
            terms = training_loss(model, x, 1.0)
            totals += torch.stack([terms.loss.sum(), (terms.reconstruction + terms.kl).sum(),
                                   terms.reconstruction.sum(), terms.kl.sum()]).double().cpu()
            n += x.shape[0]
    model.train(was_training)
    totals /= max(n, 1)
    return dict(zip(("loss", "neg_elbo", "reconstruction", "kl"), totals.tolist()))


class Trainer:
    def __init__(self, config: runs.RunConfig, run_dir: Path, progress: bool = True, data: DataSplits | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self._data = data

    # -- set-up ------------------------------------------------------------------------------
    def _threads(self, ctx: distributed.Context) -> None:
        t = self.config.train.threads
        if not t:
            t = max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size)))
        torch.set_num_threads(t)

    def run(self, resume: bool = False) -> TrainResult:
        ctx = distributed.setup(self.config.train.device)
        try:
            return self._run(ctx, resume)
        finally:
            distributed.teardown(ctx)

    def _run(self, ctx: distributed.Context, resume: bool) -> TrainResult:
        cfg, tc = self.config, self.config.train
        run_dir = self.run_dir
        self._threads(ctx)
        if tc.deterministic:
            torch.use_deterministic_algorithms(True)
        if not resume and (run_dir / runs.CHECKPOINT_FILE).exists():
            raise VaelabError("already holds a run; pass --resume to continue it, or choose another --out", run_dir)
        if resume and not (run_dir / runs.CHECKPOINT_FILE).exists():
            resume = False  # stopped before its first checkpoint: nothing to continue, so start from the beginning

        data = self._data or load_data(cfg.data)
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        model = build_model(cfg.model, data.image_shape).to(ctx.device)
        not_copied = initialise_from(model, tc.init_from) if tc.init_from and not resume else []
        prec = precision.resolve(tc.precision, ctx.device)

        batch = len(data.train) if tc.optimizer == "gd" else tc.batch_size
        batch -= batch % ctx.world_size
        if batch < ctx.world_size or batch > len(data.train):
            raise VaelabError(f"batch size {tc.batch_size} does not fit {len(data.train)} training images "
                              f"over {ctx.world_size} process(es)")
        loader = BatchLoader(data.train.images, batch, shuffle=tc.optimizer != "gd", seed=tc.seed,
                             binarize=cfg.data.binarize == "dynamic", rank=ctx.rank, world_size=ctx.world_size,
                             device=ctx.device)
        steps_per_epoch = len(loader)
        total_steps = tc.epochs * steps_per_epoch
        extra = {"momentum": tc.momentum} if tc.optimizer == "sgd" else {}
        optimizer = make_optimizer(tc.optimizer, model.parameters(), tc.lr, weight_decay=tc.weight_decay, **extra)
        scheduler = make_scheduler(optimizer, tc.schedule, total_steps, tc.warmup_steps)
        scaler = precision.grad_scaler(prec, ctx.device)

        state = {"epoch": 0, "step": 0, "best_val": math.inf, "best_epoch": 0, "bad_epochs": 0, "elapsed": 0.0,
                 "skipped_steps": 0}
        if resume:
            ck = load_checkpoint(run_dir)
            runs._load_state(model, ck["model"], run_dir / runs.CHECKPOINT_FILE)
            try:
                optimizer.load_state_dict(ck["optimizer"])
                scheduler.load_state_dict(ck["scheduler"])
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                raise VaelabError(f"optimiser state does not fit this run's config ({exc})",
                                  run_dir / runs.CHECKPOINT_FILE) from None
            state.update(ck["state"])
            state["best_val"] = float(state["best_val"])
        log = MetricsLog(run_dir / runs.METRICS_FILE, enabled=ctx.is_main)
        if ctx.is_main:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise VaelabError(f"cannot create the run directory ({exc.strerror or exc}); choose another --out",
                                  run_dir) from None
            runs.write_config(run_dir / runs.CONFIG_FILE, cfg)
            if resume:
                remove_stale_temporaries(run_dir)  # left by a kill in the middle of an atomic write
                trim_after(run_dir / runs.METRICS_FILE, state["step"], epoch=state["epoch"])
            elif (run_dir / runs.METRICS_FILE).exists():
                (run_dir / runs.METRICS_FILE).unlink()
        distributed.barrier(ctx)

        net: nn.Module = LossModule(model)
        if ctx.distributed:
            net = nn.parallel.DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=state["step"], disable=not (self.progress and ctx.is_main),
                   unit="step", dynamic_ncols=True, desc=f"{cfg.model.name} on {cfg.data.name}")
        kl_warmup_steps = int(tc.kl_warmup_epochs * steps_per_epoch)
        check_every_step = ctx.device.type == "cpu" or tc.nan_policy == "skip"
        params = [p for p in model.parameters() if p.requires_grad]
        stopped_early = False
        start_time = time.perf_counter() - state["elapsed"]
        if ctx.is_main and not resume:
            log.write({"event": "start", "step": 0, "epoch": 0, "world_size": ctx.world_size, "device": str(ctx.device),
                       "precision": prec, "parameters": sum(p.numel() for p in params),
                       "train_images": len(data.train), "val_images": len(data.val), "test_images": len(data.test),
                       "image_shape": list(data.image_shape),
                       **({"init_from": tc.init_from, "not_copied": not_copied} if tc.init_from else {})})

        for epoch in range(state["epoch"], tc.epochs):
            loader.set_epoch(epoch)
            torch.manual_seed(_mix(tc.seed, epoch, ctx.rank))
            model.train()
            window = torch.zeros(3, device=ctx.device)
            epoch_sum = torch.zeros(3, device=ctx.device)
            window_steps, epoch_steps = 0, 0
            window_start = epoch_start = time.perf_counter()
            for x in loader:
                step = state["step"]
                kl_weight = min(1.0, (step + 1) / kl_warmup_steps) if kl_warmup_steps else 1.0
                with precision.autocast(prec, ctx.device):
                    loss, terms = net(x, kl_weight)
                if check_every_step or (step + 1) % tc.log_every == 0:
                    if not self._finite(ctx, loss):
                        if self._non_finite(ctx, log, state, epoch, terms, "loss"):
                            optimizer.zero_grad(set_to_none=True)
                            continue
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if tc.grad_clip:
                    scaler.unscale_(optimizer)
                    norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
                    if check_every_step and not self._finite(ctx, norm):
                        if self._non_finite(ctx, log, state, epoch, terms, "gradient"):
                            optimizer.zero_grad(set_to_none=True)
                            continue
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                state["step"] = step + 1
                detached = terms.detach().float()
                window += detached
                epoch_sum += detached
                window_steps += 1
                epoch_steps += 1
                bar.update(1)
                if state["step"] % tc.log_every == 0:
                    means = (distributed.all_mean(ctx, window) / window_steps).tolist()
                    elapsed = time.perf_counter() - window_start
                    record = {"event": "step", "epoch": epoch, "step": state["step"], "loss": means[0],
                              "reconstruction": means[1], "kl": means[2], "kl_weight": kl_weight,
                              "lr": optimizer.param_groups[0]["lr"],
                              "images_per_s": window_steps * batch / max(elapsed, 1e-9)}
                    log.write(record)
                    bar.set_postfix(loss=f"{means[0]:.2f}", kl=f"{means[2]:.2f}")
                    window.zero_()
                    window_steps = 0
                    window_start = time.perf_counter()

            # -- end of epoch: validate, keep the best weights, checkpoint ------------------------
            train_seconds = time.perf_counter() - epoch_start
            train_means = (distributed.all_mean(ctx, epoch_sum) / max(epoch_steps, 1)).tolist()
            val = evaluate_loss(model, data.val.images, tc.eval_batch_size, ctx.device) if len(data.val) else {}
            score = val.get("loss", train_means[0])
            improved = score < state["best_val"]
            if improved:
                state["best_val"], state["best_epoch"], state["bad_epochs"] = score, epoch + 1, 0
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            state["elapsed"] = time.perf_counter() - start_time
            if ctx.is_main:
                record = {"event": "epoch", "epoch": epoch + 1, "step": state["step"], "train_loss": train_means[0],
                          "train_reconstruction": train_means[1], "train_kl": train_means[2],
                          "seconds": state["elapsed"], "train_seconds": train_seconds,
                          "images_per_s": epoch_steps * batch / max(train_seconds, 1e-9),
                          **{f"val_{k}": v for k, v in val.items()}}
                log.write(record)
                log.sync()
                if improved:
                    save_tensors(run_dir / runs.MODEL_FILE, model.state_dict(), runs.model_metadata(model))
                save_checkpoint(run_dir, model, optimizer, scheduler, dict(state), {})
                bar.set_postfix(loss=f"{train_means[0]:.2f}", val=f"{score:.2f}")
            distributed.barrier(ctx)
            if tc.early_stopping and distributed.broadcast_flag(ctx, state["bad_epochs"] >= tc.early_stopping):
                stopped_early = True
                break
            if tc.time_limit and distributed.broadcast_flag(ctx, state["elapsed"] >= tc.time_limit):
                stopped_early = True
                break
        bar.close()

        final = {}
        if ctx.is_main:
            best = runs.load_model(run_dir, device=str(ctx.device)) if (run_dir / runs.MODEL_FILE).exists() else model
            if len(data.test):
                test = evaluate_loss(best, data.test.images, tc.eval_batch_size, ctx.device)
                final = {f"test_{k}": v for k, v in test.items()}
            final.update({"event": "final", "epoch": state["epoch"], "step": state["step"],
                          "best_epoch": state["best_epoch"], "seconds": state["elapsed"],
                          "stopped_early": stopped_early, "skipped_steps": state["skipped_steps"]})
            log.write(final)
            log.sync()
        log.close()
        return TrainResult(run_dir, state["epoch"], state["step"], state["elapsed"], stopped_early, final)

    # -- non-finite values ---------------------------------------------------------------------
    @staticmethod
    def _finite(ctx: distributed.Context, value: torch.Tensor) -> bool:
        ok = torch.isfinite(value.detach().float()).all().float().reshape(1)
        if ctx.distributed:
            ok = distributed.all_mean(ctx, ok.cpu())
        return bool(ok.item() == 1.0)

    def _non_finite(self, ctx, log: MetricsLog, state: dict, epoch: int, terms: torch.Tensor, where: str) -> bool:
        """Handle a NaN/Inf: True to skip the step, else raise with a diagnostic."""
        names = ("loss", "reconstruction", "kl")
        bad = [n for n, v in zip(names, terms.detach().float().tolist()) if not math.isfinite(v)]
        culprit = ", ".join(n for n in bad if n != "loss") or ("gradient" if where == "gradient" else "loss")
        step = state["step"] + 1
        log.write({"event": "non_finite", "step": state["step"], "epoch": epoch, "term": culprit,
                   "values": dict(zip(names, terms.detach().float().tolist()))})
        if self.config.train.nan_policy == "skip":
            state["skipped_steps"] += 1
            return True
        log.sync()
        kept = f"the last good checkpoint (epoch {state['epoch']}) is kept" if state["epoch"] else \
            "no checkpoint had been written yet"
        raise NonFiniteLoss(
            f"training stopped at step {step} (epoch {epoch + 1}): the {culprit} term is not finite; {kept}. "
            "Lower --lr, set --grad-clip, or pass --nan-policy skip to skip such steps")


def train(config: runs.RunConfig, run_dir, resume: bool = False, progress: bool = True,
          data: DataSplits | None = None) -> TrainResult:
    """Train ``config`` into ``run_dir`` (or continue it with ``resume=True``)."""
    return Trainer(config, Path(run_dir), progress=progress, data=data).run(resume)
