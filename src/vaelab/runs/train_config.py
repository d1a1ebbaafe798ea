"""The training section of a run's config (``[train]`` in ``config.toml``), read by the engine."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import option


@dataclass
class TrainConfig:
    epochs: int = option(10, "passes over the training set", min=1, max=100_000)
    batch_size: int = option(128, "images per optimisation step, summed over all processes", min=1)
    lr: float = option(1e-3, "base step size γ₀ (Thm. 1.2.4)", min=0.0, min_exclusive=True)
    optimizer: str = option("adam", "gd (full batch, Cor. 1.2.6), sgd (Thm. 1.2.7), adam or adamw", choices=("gd", "sgd", "adam", "adamw"))
    momentum: float = option(0.0, "sgd: momentum (0 = the thesis' plain SGD)", min=0.0, max=0.999)
    weight_decay: float = option(0.0, "L2 penalty (adamw: decoupled weight decay)", min=0.0)
    schedule: str = option("constant", "step-size schedule γ_t: constant, inverse (1/t), inverse-sqrt or cosine", choices=("constant", "inverse", "inverse-sqrt", "cosine"))
    warmup_steps: int = option(0, "linear step-size warm-up over this many steps", min=0)
    kl_warmup_epochs: float = option(0.0, "raise the KL weight linearly from 0 to β over this many epochs", min=0.0)
    grad_clip: float = option(0.0, "clip the gradient's global norm to this value (0 = no clipping)", min=0.0)
    early_stopping: int = option(0, "stop after this many epochs without a better validation loss (0 = never)", min=0)
    time_limit: float = option(0.0, "stop at the end of the first epoch that ends after this many seconds of training (0 = no limit)", min=0.0)
    min_epochs: int = option(0, "neither time_limit nor early_stopping stops the run before this many epochs", min=0)
    init_from: str = option("", "fine-tune: start from the weights of this run directory (every tensor it holds must fit the model; parameters it lacks keep their initialisation)")
    seed: int = option(0, "seed of initialisation, noise and batch order", min=0)
    deterministic: bool = option(False, "deterministic algorithms: a resumed run matches an uninterrupted one bit for bit")
    precision: str = option("auto", "fp32, bf16 or fp16 autocast; auto = bf16 only where the hardware computes it natively", choices=("auto", "fp32", "bf16", "fp16"))
    device: str = option("auto", "auto (a GPU when present), cpu, cuda or mps", choices=("auto", "cpu", "cuda", "mps"))
    threads: int = option(0, "CPU threads per process (0 = the cores other programs leave idle, measured at start, divided among the processes: two threads on two busy cores trained 2.3–4.4× slower than one here)", min=0)
    nan_policy: str = option("stop", "a non-finite loss: stop (keeping the last good checkpoint) or skip the step", choices=("stop", "skip"))
    log_every: int = option(50, "write a metrics line every this many steps", min=1)
    eval_batch_size: int = option(1000, "images per batch when evaluating", min=1)
    tensorboard: bool = option(False, "also log to TensorBoard (needs the tensorboard package)")
    report: bool = option(True, "write report.html at the end of training")
