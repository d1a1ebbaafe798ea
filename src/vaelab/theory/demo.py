"""The theory demo: chapters 1–2 of the thesis on real data, in seconds.

An autoencoder 64-32-8-32-64 (Def. 2.1.7: an `Encoder` 64-32-8 and a `Decoder` 8-32-64,
ReLU hidden layers, affine code, sigmoid output) learns to reconstruct scikit-learn's 1,797
8×8 digit images (grey values 0…16 scaled to [0, 1]). The objective is the empirical risk
(Def. 1.2.3, unsupervised as in Def. 2.1.1) of the MSE loss of Ex. 2.1.2 — per image the sum
over its 64 pixels of squared differences. Four optimisers start from the same θ^{(0)}:

* ``GD``      — full-batch gradient descent (Cor. 1.2.6, gradient by Lemma 1.2.5) with
  decaying steps γ_t = γ_0/(1 + t/τ) (Thm. 1.2.4 asks for γ_t → 0);
* ``SGD-1``   — stochastic gradient descent on one uniformly drawn example per step
  (Thm. 1.2.7, eq. 1.6), same kind of decaying steps;
* ``SGD-32``  — the same with minibatches of 32 examples;
* ``Adam``    — Adam (Kingma & Ba 2015; see `vaelab.theory.optim`) with a constant step.

After every step the empirical risk on the whole data set is recorded; `run_demo` returns
the curves, prints a table and saves ``risk.png`` (and the numbers as ``risk.csv``).
"""

from __future__ import annotations

import copy
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..errors import VaelabError
from ..fileio import atomic_open, atomic_write_text
from .losses import empirical_risk, mse_loss
from .networks import Autoencoder, Decoder, Encoder
from .optim import make_optimizer, make_scheduler


@dataclass(frozen=True)
class _Setting:
    label: str  # column name in the table and legend
    optimizer: str
    lr: float
    batch_size: int | None  # None: the full data set (GD)
    schedule: str
    time_scale: float  # τ of the decaying schedules, as a fraction of the run's steps


# Step sizes chosen for this problem so that each method makes visible progress within a
# few hundred steps; the MSE here sums over 64 pixels, so gradients are large-ish.
_SETTINGS = (
    _Setting("GD", "gd", 0.4, None, "inverse", 1.0),
    _Setting("SGD-1", "sgd", 0.2, 1, "inverse", 0.5),
    _Setting("SGD-32", "sgd", 0.5, 32, "inverse", 0.5),
    _Setting("Adam", "adam", 0.01, 32, "constant", 1.0),
)


@dataclass
class DemoResult:
    """``risks[label]`` is the empirical risk after 0, 1, …, ``steps`` steps (``steps + 1`` values)."""

    steps: int
    seed: int
    risks: dict[str, list[float]]
    out_dir: Path


def load_digits_images() -> torch.Tensor:
    """scikit-learn's 8×8 digits as float images (1797, 1, 8, 8) in [0, 1] (shipped, no network)."""
    from sklearn.datasets import load_digits

    images = load_digits().images  # (1797, 8, 8), integer grey values 0…16 stored as float64
    return torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0


def build_autoencoder() -> Autoencoder:
    """The demo's 64-32-8-32-64 autoencoder (uses the global RNG for the initial θ)."""
    encoder = Encoder("64-32-8", activation="relu", output_activation=None)
    decoder = Decoder("8-32-64", activation="relu", output_activation="sigmoid")
    return Autoencoder(encoder, decoder)


def _risk(model: Autoencoder, xs: torch.Tensor) -> float:
    with torch.no_grad():
        return float(empirical_risk(mse_loss, model, xs))


def _train(
    model: Autoencoder,
    setting: _Setting,
    xs: torch.Tensor,
    steps: int,
    generator: torch.Generator,
    tick: Callable[[], None],
) -> list[float]:
    optimizer = make_optimizer(setting.optimizer, model.parameters(), lr=setting.lr)
    scheduler = make_scheduler(
        optimizer, setting.schedule, total_steps=steps, time_scale=max(1.0, setting.time_scale * steps)
    )
    k = xs.shape[0]
    risks = [_risk(model, xs)]
    for _ in range(steps):
        if setting.batch_size is None:
            batch = xs  # full batch: the gradient of Lemma 1.2.5
        else:
            # i.i.d. uniform indices, as eq. (1.6) draws i ∈ {1, …, k}
            batch = xs[torch.randint(0, k, (setting.batch_size,), generator=generator)]
        loss = empirical_risk(mse_loss, model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        risk = _risk(model, xs)
        if not torch.isfinite(torch.tensor(risk)):
            raise VaelabError(f"{setting.label} diverged; the demo's step sizes do not suit this machine's numbers")
        risks.append(risk)
        tick()
    return risks


def _table(risks: dict[str, list[float]], steps: int) -> list[str]:
    labels = list(risks)
    every = max(1, steps // 10)
    rows = sorted(set(range(0, steps + 1, every)) | {steps})
    lines = ["  step " + "".join(f"{label:>10}" for label in labels)]
    for t in rows:
        lines.append(f"{t:>6} " + "".join(f"{risks[label][t]:>10.4f}" for label in labels))
    return lines


def _plot(risks: dict[str, list[float]], path: Path, seed: int) -> None:
    # A bare Figure (no pyplot) renders with Agg and leaves matplotlib's global backend alone.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for label, values in risks.items():
        ax.plot(range(len(values)), values, label=label, linewidth=1.4)
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("empirical risk (MSE, Ex. 2.1.2)")
    ax.set_title(f"autoencoder 64-32-8-32-64 on 8×8 digits (seed {seed})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def run_demo(
    steps: int = 300,
    out_dir: str | os.PathLike = "runs/theory-demo",
    seed: int = 0,
    echo: Callable[[str], None] = print,
    progress: bool | None = None,
) -> DemoResult:
    """Train the demo autoencoder with GD, SGD-1, SGD-32 and Adam; print, plot and save the risks.

    Deterministic for a given ``seed`` (the initial θ and the SGD draws come from it; the
    caller's global RNG state is restored afterwards). ``progress``: show a tqdm bar (None:
    only on a terminal). Writes ``risk.png`` and ``risk.csv`` into ``out_dir`` atomically.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise VaelabError(f"--steps must be a positive integer, got {steps!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise VaelabError("the output path exists and is not a directory", out)

    from tqdm.auto import tqdm

    xs = load_digits_images()
    echo(
        f"theory demo: autoencoder 64-32-8-32-64 on {xs.shape[0]} 8×8 digits, "
        f"empirical MSE risk (Ex. 2.1.2), {steps} steps, seed {seed}"
    )
    risks: dict[str, list[float]] = {}
    # The tensors are tiny (1797 × 64): one thread is fastest, and it keeps OpenMP workers from
    # spinning against other busy processes on a small machine. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            initial = build_autoencoder()
            bar = tqdm(
                total=steps * len(_SETTINGS), disable=None if progress is None else not progress, leave=False, unit="step"
            )
            try:
                for number, setting in enumerate(_SETTINGS):
                    bar.set_description(setting.label)
                    generator = torch.Generator().manual_seed(seed * 1000 + number)
                    model = copy.deepcopy(initial)  # every optimiser starts from the same θ^(0)
                    risks[setting.label] = _train(model, setting, xs, steps, generator, lambda: bar.update(1))
            finally:
                bar.close()
    finally:
        torch.set_num_threads(threads)

    for line in _table(risks, steps):
        echo(line)
    best = min(risks, key=lambda label: risks[label][-1])
    echo("final risk: " + ", ".join(f"{label} {values[-1]:.4f}" for label, values in risks.items()) + f" (lowest: {best})")

    _plot(risks, out / "risk.png", seed)
    header = "step," + ",".join(risks) + "\n"
    rows = "".join(f"{t}," + ",".join(repr(risks[label][t]) for label in risks) + "\n" for t in range(steps + 1))
    atomic_write_text(out / "risk.csv", header + rows)
    echo(f"wrote {out / 'risk.png'} and {out / 'risk.csv'}")
    return DemoResult(steps=steps, seed=seed, risks=risks, out_dir=out)
