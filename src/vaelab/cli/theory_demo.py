"""`vaelab theory-demo`: the thesis' chapters 1–2 on real data in seconds.

Trains a 64-32-8-32-64 autoencoder on scikit-learn's 8×8 digits with full-batch gradient
descent, SGD on one example per step, SGD on minibatches and Adam (see
:mod:`vaelab.theory.demo`), prints the empirical risk and saves ``risk.png``.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("theory-demo")
@click.option("--steps", type=click.IntRange(min=1), default=300, show_default=True, help="Optimisation steps per optimiser.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/theory-demo"),
    show_default=True,
    help="Directory for risk.png and risk.csv.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial weights and the SGD draws.")
def command(steps: int, out_dir: Path, seed: int) -> None:
    """Train a small autoencoder with GD, SGD and Adam and plot the empirical risk per step.

    Data: scikit-learn's 1,797 8×8 digits (shipped with scikit-learn, no download). Risk: the
    MSE loss of Ex. 2.1.2 averaged over the data set (Def. 1.2.3). Takes a few seconds.
    """
    # torch and matplotlib load here, not at import, so `vaelab --help` stays fast
    from ..theory.demo import run_demo

    run_demo(steps=steps, out_dir=out_dir, seed=seed, echo=click.echo)
