"""Measuring models honestly: likelihood, reconstruction, latent space, representation,
sample quality and disentanglement (DESIGN.md §1, ``evaluation/``).

- :mod:`.likelihood`: the ELBO's parts and the importance-sampled bound on log p(x)
  (``iwae_nll``), bits/dim, and which discrete probability the numbers are.
- :mod:`.reconstruction`: MSE, PSNR, SSIM (Wang et al. 2004).
- :mod:`.latent`: KL per dimension and active units (Burda et al. 2015).
- :mod:`.representation`: linear-probe and k-NN accuracy of codes and of pixels.
- :mod:`.feature_net`, :mod:`.samples`: vaelab's own feature network; Fréchet distance and
  precision/recall (Kynkäänniemi et al. 2019).
- :mod:`.disentanglement`: MIG (Chen et al. 2018) and DCI (Eastwood & Williams 2018).
- :mod:`.suite`: ``evaluate_run(run_dir)`` — all of it as one versioned JSON document.
"""

from ..metrics import mse, psnr, ssim
from .likelihood import bits_per_dim, iwae_bound, iwae_nll
from .suite import SCHEMA_VERSION, EvaluationSettings, evaluate_run, read_metrics_json

__all__ = ["SCHEMA_VERSION", "EvaluationSettings", "bits_per_dim", "evaluate_run", "iwae_bound", "iwae_nll", "mse",
           "psnr", "read_metrics_json", "ssim"]
