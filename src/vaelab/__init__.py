"""vaelab: autoencoders and variational autoencoders, from the thesis to tools.

The theory of "On variational autoencoders: theory and applications" (Sevkovych, 2023)
lives in :mod:`vaelab.theory`; models, data, training, evaluation and applications build
on it. ``vaelab.load(run_dir)`` returns a trained model ready to use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import VaelabError

__all__ = ["VaelabError", "__version__", "load"]


def load(run_dir, device: str = "cpu"):
    """Load the model of a finished (or interrupted) run directory, in eval mode.

    ``run_dir`` holds ``config.toml`` and ``model.safetensors`` as written by
    ``vaelab train``. Nothing is unpickled: weights come from safetensors.
    """
    from .runs import load_model

    return load_model(run_dir, device=device)
