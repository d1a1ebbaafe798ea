"""``vaelab models``: the model registry, one line per model."""

from __future__ import annotations

import click


@click.command("models")
def command():
    """List the models `vaelab train --model NAME` accepts.

    \b
    Example:
      vaelab models
      vaelab train --model mlp-vae --hidden 512-256 --latent-dim 20
    """
    from ..models import model_class, model_names

    for name in model_names():
        cls = model_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        kind = "VAE" if cls.is_variational else "AE"
        click.echo(f"{name:<14} {kind:<4} {doc}")
