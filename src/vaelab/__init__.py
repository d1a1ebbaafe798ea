"""vaelab: autoencoders and variational autoencoders, from the thesis to tools.

The theory of "On variational autoencoders: theory and applications" (Sevkovych, 2023)
lives in :mod:`vaelab.theory`; models, data, training, evaluation and applications build
on it. ``vaelab.load(run_dir)`` returns a trained model ready to use; ``vaelab.open_run(run_dir)``
returns it with its config and directory.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import VaelabError

__all__ = ["VaelabError", "__version__", "load", "open_run"]


def load(run_dir, device: str = "cpu"):
    """Load the model of a finished (or interrupted) run directory, in eval mode.

    ``run_dir`` holds ``config.toml`` and ``model.safetensors`` as written by
    ``vaelab train``. Nothing is unpickled: weights come from safetensors.
    """
    from .runs import load_model

    return load_model(run_dir, device=device)


def open_run(run_dir, device: str = "cpu"):
    """A run directory as a :class:`vaelab.runs.Run`: its ``model`` (eval mode), ``config`` and ``dir``.

    What code needs that must know where a model came from: its data set
    (``vaelab.apps.run_images(run)``), whether it was trained on binarised images
    (``run.binarized``), where to write beside it.
    """
    from .runs import open_run as _open_run

    return _open_run(run_dir, device=device)
