"""The training loop: model-agnostic, resumable, distributed.

The engine knows two things about a model: ``model(x, **loss.forward_options)`` returns an
Output, and the loss its config names (``config.model.loss()``, models/losses.py) turns that
Output into per-image terms. Everything else — optimiser (thesis §1.2: GD, SGD, Adam),
step-size schedule, KL warm-up, clipping, early stopping, precision, checkpoints, DDP — lives
here, in three phases over a typed :class:`TrainState`: ``setup`` (data, model, optimiser,
resume), ``train_epoch`` (the optimisation steps of one epoch) and ``end_epoch`` (validate,
keep the best weights, checkpoint, decide whether to stop), then ``finish`` (the test split).

Reproducibility: initialisation is seeded by ``seed``; each epoch's batch order and noise
come from generators seeded by (seed, epoch, rank). A checkpoint at the end of every epoch
therefore holds all the state needed to continue exactly: a run killed at any moment and
resumed ends with the weights of an uninterrupted run (in deterministic mode).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from .. import runs
from ..config import to_dict
from ..cpu import default_threads
from ..data import BatchLoader, DataSplits, eval_batches, load_data
from ..errors import VaelabError
from ..fileio import remove_stale_temporaries
from ..models import build_model, kl_warmup_weight
from ..models.losses import Loss
from ..theory import make_optimizer, make_scheduler
from ..weights import load_state, save_tensors
from . import distributed, precision
from .auxiliary import auxiliary_optimizer, auxiliary_step, load_auxiliary, main_parameters
from .checkpoint import load_checkpoint, load_optimizer_state, save_checkpoint
from .labels import check_labels, forward_options, split_labels, training_labels
from .metrics import MetricsLog, trim_after
from .resume import check_resumable, config_changes

# What a run directory holds once training has begun: what --restart removes.
RUN_FILES = (runs.CHECKPOINT_FILE, runs.CHECKPOINT_JSON, runs.MODEL_FILE, runs.METRICS_FILE)


@dataclass
class TrainState:
    """The counters a checkpoint carries (``checkpoint.json``'s ``state``)."""

    epoch: int = 0                  # epochs finished
    step: int = 0                   # optimisation steps taken
    best_val: float = math.inf      # best validation loss so far (the training loss without a validation split)
    best_epoch: int = 0             # the epoch that reached it: model.safetensors holds its weights
    bad_epochs: int = 0             # epochs since the last improvement (early stopping)
    elapsed: float = 0.0            # seconds of training, over every session of the run
    skipped_steps: int = 0          # steps skipped for a non-finite loss (nan_policy = skip)

    @classmethod
    def from_checkpoint(cls, state: dict) -> TrainState:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in state.items() if k in known}
        values["best_val"] = float(values.get("best_val", math.inf))
        return cls(**values)


class LossModule(nn.Module):
    """model + loss as one module, so DDP sees every parameter the loss touches."""

    def __init__(self, model: nn.Module, loss: Loss):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, x: torch.Tensor, kl_weight: float, labels: torch.Tensor | None = None):
        terms = self.loss(self.model(x, **forward_options(self.loss, labels)), x, kl_weight)
        means = terms.means()
        return means["loss"], torch.stack(list(means.values()))


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
    weights = {name: value for name, value in source.items() if name not in model.config_tensors}
    model.load_state_dict(weights, strict=False)   # names and shapes checked above
    return sorted(set(target) - set(weights))


@torch.no_grad()
def evaluate_loss(model: nn.Module, loss: Loss, images: torch.Tensor, batch_size: int, device,
                  seed: int = 1234, labels: torch.Tensor | None = None) -> dict[str, float]:
    """Means over a split, with fixed noise: the loss (weights as in training, no warm-up) and what it reports.

    For an ELBO: ``loss``, ``neg_elbo``, ``reconstruction``, ``kl`` (nats/image); for the
    rate–distortion loss: ``loss``, ``rate`` (bits/image), ``distortion`` ([0, 255]² MSE) and
    ``psnr_db`` (the mean of each image's PSNR).
    """
    was_training = model.training
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    n = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, x in enumerate(eval_batches(images, batch_size, device)):
            # a label-conditioned model scores each image under its own label
            batch_labels = None if labels is None else labels[i * batch_size:i * batch_size + x.shape[0]].to(device)
            terms = loss(model(x, **forward_options(loss, batch_labels)), x, 1.0)
            for name, value in {"loss": terms.loss, **loss.report(terms)}.items():
                totals[name] = totals.get(name, 0) + value.double().sum().cpu()
            n += x.shape[0]
    model.train(was_training)
    return {name: float(total) / max(n, 1) for name, total in totals.items()}


def evaluate_split(model: nn.Module, loss: Loss, split, batch_size: int, device) -> dict[str, float]:
    """:func:`evaluate_loss` on a split, under its labels for a model that trains on them."""
    labels = split_labels(model, split)
    extra = {} if labels is None else {"labels": labels}   # the plain call for every other model
    return evaluate_loss(model, loss, split.images, batch_size, device, **extra)


@dataclass
class Setup:
    """What ``setup`` builds and the epochs use."""

    ctx: distributed.Context
    data: DataSplits
    model: nn.Module
    loss: Loss
    net: nn.Module                  # LossModule, wrapped in DDP when distributed
    optimizer: torch.optim.Optimizer
    scheduler: object
    scaler: object
    loader: BatchLoader
    batch: int                      # images per step over all processes
    precision: str
    log: MetricsLog
    not_copied: list[str]
    auxiliary: torch.optim.Optimizer | None = None   # the loss' optimiser of model.auxiliary_parameters()

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)


class Trainer:
    def __init__(self, config: runs.RunConfig, run_dir: Path, progress: bool = True, data: DataSplits | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self._data = data

    def run(self, resume: bool = False, restart: bool = False) -> TrainResult:
        ctx = distributed.setup(self.config.train.device)
        try:
            s, state, resume = self.setup(ctx, resume, restart)
            return self.train(s, state, resume)
        finally:
            distributed.teardown(ctx)

    # -- set-up ------------------------------------------------------------------------------
    def _threads(self, ctx: distributed.Context) -> None:
        t = self.config.train.threads or default_threads(int(os.environ.get("LOCAL_WORLD_SIZE", ctx.world_size)))
        torch.set_num_threads(t)

    def _check_run_dir(self, ctx: distributed.Context, resume: bool, restart: bool) -> bool:
        """Whether there is a checkpoint to resume; refuses to overwrite a trained model unasked."""
        run_dir = self.run_dir
        has_checkpoint = (run_dir / runs.CHECKPOINT_FILE).exists()
        has_model = (run_dir / runs.MODEL_FILE).exists()
        if restart:
            if resume:
                raise VaelabError("--restart trains the run again from the beginning; it cannot go with --resume")
            if ctx.is_main:
                for name in RUN_FILES:
                    (run_dir / name).unlink(missing_ok=True)
            distributed.barrier(ctx)
            return False
        if not resume and (has_checkpoint or has_model):
            raise VaelabError("already holds a run; pass --resume to continue it, --restart to train it again from "
                              "the beginning (replacing its model), or choose another --out", run_dir)
        if resume and not has_checkpoint:
            if has_model:
                raise VaelabError(f"holds {runs.MODEL_FILE} but no {runs.CHECKPOINT_FILE} to resume from; pass "
                                  "--restart to train it again from the beginning (replacing the model), or choose "
                                  "another --out", run_dir)
            return False  # stopped before its first checkpoint: nothing to continue, so start from the beginning
        return resume

    def setup(self, ctx: distributed.Context, resume: bool, restart: bool = False) -> tuple[Setup, TrainState, bool]:
        """Data, model, loss, optimiser and schedule; the saved state when resuming."""
        cfg, tc = self.config, self.config.train
        run_dir = self.run_dir
        self._threads(ctx)
        if tc.deterministic:
            torch.use_deterministic_algorithms(True)
        resume = self._check_run_dir(ctx, resume, restart)

        data = self._data or load_data(cfg.data)
        torch.manual_seed(tc.seed)  # identical initial weights on every rank
        model = build_model(cfg.model, data.image_shape).to(ctx.device)
        loss = cfg.model.loss()
        loss.prepare(len(data.train))
        not_copied = initialise_from(model, tc.init_from) if tc.init_from and not resume else []
        prec = precision.resolve(tc.precision, ctx.device)

        batch = len(data.train) if tc.optimizer == "gd" else tc.batch_size
        batch -= batch % ctx.world_size
        if batch < ctx.world_size or batch > len(data.train):
            raise VaelabError(f"batch size {tc.batch_size} does not fit {len(data.train)} training images "
                              f"over {ctx.world_size} process(es)")
        check_labels(model, data, cfg.data.name)
        loader = BatchLoader(data.train.images, batch, shuffle=tc.optimizer != "gd", seed=tc.seed,
                             binarize=cfg.data.binarize == "dynamic", rank=ctx.rank, world_size=ctx.world_size,
                             device=ctx.device, labels=training_labels(model, data.train, tc.seed))
        total_steps = tc.epochs * len(loader)
        extra = {"momentum": tc.momentum} if tc.optimizer == "sgd" else {}
        optimizer = make_optimizer(tc.optimizer, main_parameters(model), tc.lr, weight_decay=tc.weight_decay, **extra)
        auxiliary = auxiliary_optimizer(model, loss)
        if ctx.distributed and not model.distributed_training:
            raise VaelabError(f"the {model.registry_name} model updates state outside the gradient step (a second "
                              "optimiser's parameters, a codebook), which the processes of distributed training "
                              "would each move apart; train it on one process")
        scheduler = make_scheduler(optimizer, tc.schedule, total_steps, tc.warmup_steps)
        scaler = precision.grad_scaler(prec, ctx.device)

        state = TrainState()
        changes: list = []
        if resume:
            ck = load_checkpoint(run_dir)
            if ck["config"] is not None:   # checkpoints since the model contract record their config
                changes = check_resumable(config_changes(ck["config"], to_dict(cfg)))
            load_state(model, ck["model"], run_dir / runs.CHECKPOINT_FILE)
            self._load_optimiser(optimizer, scheduler, ck)
            load_auxiliary(auxiliary, ck, run_dir / runs.CHECKPOINT_FILE)
            state = TrainState.from_checkpoint(ck["state"])
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
                trim_after(run_dir / runs.METRICS_FILE, state.step, epoch=state.epoch)
                if changes:   # applied from here on, and said so
                    log.write({"event": "resume", "step": state.step, "epoch": state.epoch,
                               "changed": {name: [old, new] for name, old, new in changes}})
            elif (run_dir / runs.METRICS_FILE).exists():
                (run_dir / runs.METRICS_FILE).unlink()
        distributed.barrier(ctx)

        net: nn.Module = LossModule(model, loss)
        if ctx.distributed:
            net = nn.parallel.DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        return Setup(ctx, data, model, loss, net, optimizer, scheduler, scaler, loader, batch, prec, log,
                     not_copied, auxiliary), state, resume

    def _load_optimiser(self, optimizer, scheduler, ck: dict) -> None:
        """The optimiser's and schedule's saved state, then this config's learning rate (a resume may change it)."""
        source = self.run_dir / runs.CHECKPOINT_FILE
        does_not_fit = "optimiser state does not fit this run's config"
        load_optimizer_state(optimizer, ck["optimizer"], source, "holds the state of another optimiser than this "
                             "run's config asks for; undo the change of optimiser, or train a new run", does_not_fit)
        try:
            scheduler.load_state_dict(ck["scheduler"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise VaelabError(f"{does_not_fit} ({exc})", source) from None
        lr = self.config.train.lr
        if scheduler.base_lrs != [lr] * len(scheduler.base_lrs):
            # the schedule goes on from where it was, scaled to the new base step size γ₀
            scheduler.base_lrs = [lr] * len(scheduler.base_lrs)
            for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas):
                group["initial_lr"] = lr
                group["lr"] = lr * factor(scheduler.last_epoch)

    # -- the run -----------------------------------------------------------------------------
    def train(self, s: Setup, state: TrainState, resume: bool) -> TrainResult:
        from tqdm.auto import tqdm

        cfg, tc, ctx = self.config, self.config.train, s.ctx
        bar = tqdm(total=tc.epochs * s.steps_per_epoch, initial=state.step,
                   disable=not (self.progress and ctx.is_main), unit="step", dynamic_ncols=True,
                   desc=f"{cfg.model.name} on {cfg.data.name}")
        if ctx.is_main and not resume:
            params = sum(p.numel() for p in s.model.parameters() if p.requires_grad)
            s.log.write({"event": "start", "step": 0, "epoch": 0, "world_size": ctx.world_size,
                         "device": str(ctx.device), "precision": s.precision, "parameters": params,
                         "objective": repr(s.loss), "train_images": len(s.data.train), "val_images": len(s.data.val),
                         "test_images": len(s.data.test), "image_shape": list(s.data.image_shape),
                         **({"init_from": tc.init_from, "not_copied": s.not_copied} if tc.init_from else {})})
        start_time = time.perf_counter() - state.elapsed
        stopped_early = False
        for epoch in range(state.epoch, tc.epochs):
            epoch_start = time.perf_counter()
            epoch_means, epoch_steps = self.train_epoch(s, state, epoch, bar)
            if self.end_epoch(s, state, epoch, epoch_means, epoch_steps, time.perf_counter() - epoch_start,
                              start_time, bar):
                stopped_early = True
                break
        bar.close()
        final = self.finish(s, state, stopped_early)
        return TrainResult(self.run_dir, state.epoch, state.step, state.elapsed, stopped_early, final)

    def train_epoch(self, s: Setup, state: TrainState, epoch: int, bar) -> tuple[list[float], int]:
        """One pass over the training set: the optimisation steps, logged every ``log_every``."""
        tc, ctx = self.config.train, s.ctx
        names = ("loss", *s.loss.parts)
        s.loader.set_epoch(epoch)
        torch.manual_seed(_mix(tc.seed, epoch, ctx.rank))
        s.model.train()
        kl_warmup_steps = int(tc.kl_warmup_epochs * s.steps_per_epoch)
        check_every_step = ctx.device.type == "cpu" or tc.nan_policy == "skip"
        params = [p for p in main_parameters(s.model) if p.requires_grad]
        window = torch.zeros(len(names), device=ctx.device)
        epoch_sum = torch.zeros(len(names), device=ctx.device)
        window_steps, epoch_steps = 0, 0
        window_start = time.perf_counter()
        for x in s.loader:
            x, labels = x if isinstance(x, tuple) else (x, None)   # (images, labels) for a cond-vae
            step = state.step
            kl_weight = kl_warmup_weight(step, kl_warmup_steps)
            with precision.autocast(s.precision, ctx.device):
                loss, terms = s.net(x, kl_weight, labels)
            if check_every_step or (step + 1) % tc.log_every == 0:
                if not self._finite(ctx, loss):
                    if self._non_finite(s, state, epoch, terms, "loss"):
                        s.optimizer.zero_grad(set_to_none=True)
                        continue
            s.optimizer.zero_grad(set_to_none=True)
            s.scaler.scale(loss).backward()
            if tc.grad_clip:
                s.scaler.unscale_(s.optimizer)
                norm = torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
                if check_every_step and not self._finite(ctx, norm):
                    if self._non_finite(s, state, epoch, terms, "gradient"):
                        s.optimizer.zero_grad(set_to_none=True)
                        continue
            s.scaler.step(s.optimizer)
            s.scaler.update()
            s.scheduler.step()
            if s.auxiliary is not None:
                auxiliary_step(s.model, s.loss, s.auxiliary, x)
            state.step = step + 1
            detached = terms.detach().float()
            window += detached
            epoch_sum += detached
            window_steps += 1
            epoch_steps += 1
            bar.update(1)
            if state.step % tc.log_every == 0:
                means = (distributed.all_mean(ctx, window) / window_steps).tolist()
                elapsed = time.perf_counter() - window_start
                record = {"event": "step", "epoch": epoch, "step": state.step, **dict(zip(names, means)),
                          "kl_weight": kl_weight, "lr": s.optimizer.param_groups[0]["lr"],
                          "images_per_s": window_steps * s.batch / max(elapsed, 1e-9)}
                s.log.write(record)
                bar.set_postfix({n: f"{v:.2f}" for n, v in zip(names, means)})
                window.zero_()
                window_steps = 0
                window_start = time.perf_counter()
        return (distributed.all_mean(ctx, epoch_sum) / max(epoch_steps, 1)).tolist(), epoch_steps

    def end_epoch(self, s: Setup, state: TrainState, epoch: int, train_means: list[float], epoch_steps: int,
                  train_seconds: float, start_time: float, bar) -> bool:
        """Validate, keep the best weights, checkpoint; True when training should stop now."""
        tc, ctx, run_dir = self.config.train, s.ctx, self.run_dir
        names = ("loss", *s.loss.parts)
        val = evaluate_split(s.model, s.loss, s.data.val, tc.eval_batch_size, ctx.device) if len(s.data.val) else {}
        score = val.get(s.loss.selection, val.get("loss")) if val else train_means[0]
        improved = score < state.best_val
        if improved:
            state.best_val, state.best_epoch, state.bad_epochs = score, epoch + 1, 0
        else:
            state.bad_epochs += 1
        state.epoch = epoch + 1
        state.elapsed = time.perf_counter() - start_time
        if ctx.is_main:
            record = {"event": "epoch", "epoch": epoch + 1, "step": state.step,
                      **{f"train_{n}": v for n, v in zip(names, train_means)},
                      "seconds": state.elapsed, "train_seconds": train_seconds,
                      "images_per_s": epoch_steps * s.batch / max(train_seconds, 1e-9),
                      **{f"val_{k}": v for k, v in val.items()}}
            s.log.write(record)
            s.log.sync()
            if improved:
                save_tensors(run_dir / runs.MODEL_FILE, s.model.state_dict(), runs.model_metadata(s.model))
            save_checkpoint(run_dir, s.model, s.optimizer, s.scheduler, dataclasses.asdict(state), {},
                            config=to_dict(self.config), auxiliary=s.auxiliary)
            bar.set_postfix(loss=f"{train_means[0]:.2f}", val=f"{score:.2f}")
        distributed.barrier(ctx)
        if state.epoch < tc.min_epochs:
            return False
        if tc.early_stopping and distributed.broadcast_flag(ctx, state.bad_epochs >= tc.early_stopping):
            return True
        if tc.time_limit:
            if distributed.broadcast_flag(ctx, state.elapsed >= tc.time_limit):
                return True
            self._expect_epochs(s, state, bar)
        return False

    def _expect_epochs(self, s: Setup, state: TrainState, bar) -> None:
        """With a time limit, the progress bar's total is the epochs the budget will really allow."""
        tc = self.config.train
        per_epoch = state.elapsed / max(state.epoch, 1)
        remaining = max(0.0, tc.time_limit - state.elapsed)
        expected = state.epoch + max(1, math.ceil(remaining / max(per_epoch, 1e-9)))
        expected = min(tc.epochs, max(tc.min_epochs, expected))
        if bar.total != expected * s.steps_per_epoch:
            bar.total = expected * s.steps_per_epoch
            bar.refresh()

    def finish(self, s: Setup, state: TrainState, stopped_early: bool) -> dict:
        """The best weights on the test split, and the run's last metrics record."""
        final = {}
        if s.ctx.is_main:
            run_dir, tc = self.run_dir, self.config.train
            best = runs.load_model(run_dir, device=str(s.ctx.device)) if (run_dir / runs.MODEL_FILE).exists() \
                else s.model
            if len(s.data.test):
                test = evaluate_split(best, s.loss, s.data.test, tc.eval_batch_size, s.ctx.device)
                final = {f"test_{k}": v for k, v in test.items()}
            final.update({"event": "final", "epoch": state.epoch, "step": state.step,
                          "best_epoch": state.best_epoch, "seconds": state.elapsed,
                          "stopped_early": stopped_early, "skipped_steps": state.skipped_steps})
            s.log.write(final)
            s.log.sync()
        s.log.close()
        return final

    # -- non-finite values ---------------------------------------------------------------------
    @staticmethod
    def _finite(ctx: distributed.Context, value: torch.Tensor) -> bool:
        ok = torch.isfinite(value.detach().float()).all().float().reshape(1)
        if ctx.distributed:
            ok = distributed.all_mean(ctx, ok.cpu())
        return bool(ok.item() == 1.0)

    def _non_finite(self, s: Setup, state: TrainState, epoch: int, terms: torch.Tensor, where: str) -> bool:
        """Handle a NaN/Inf: True to skip the step, else raise with a diagnostic."""
        names = ("loss", *s.loss.parts)
        values = terms.detach().float().tolist()
        bad = [n for n, v in zip(names, values) if not math.isfinite(v)]
        culprit = ", ".join(n for n in bad if n != "loss") or ("gradient" if where == "gradient" else "loss")
        step = state.step + 1
        s.log.write({"event": "non_finite", "step": state.step, "epoch": epoch, "term": culprit,
                     "values": dict(zip(names, values))})
        if self.config.train.nan_policy == "skip":
            state.skipped_steps += 1
            return True
        s.log.sync()
        kept = f"the last good checkpoint (epoch {state.epoch}) is kept" if state.epoch else \
            "no checkpoint had been written yet"
        raise NonFiniteLoss(
            f"training stopped at step {step} (epoch {epoch + 1}): the {culprit} term is not finite; {kept}. "
            "Lower --lr, set --grad-clip, or pass --nan-policy skip to skip such steps")


def train(config: runs.RunConfig, run_dir, resume: bool = False, progress: bool = True,
          data: DataSplits | None = None, restart: bool = False) -> TrainResult:
    """Train ``config`` into ``run_dir``; ``resume=True`` continues it, ``restart=True`` trains an
    existing run directory again from the beginning (its model, checkpoint and log are replaced)."""
    return Trainer(config, Path(run_dir), progress=progress, data=data).run(resume, restart)
