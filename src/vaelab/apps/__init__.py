"""Putting trained models to work: sampling, reconstruction, interpolation, traversals, the
learned manifold, inpainting and denoising, embeddings and anomaly detection.

Every function takes a loaded model (``vaelab.load(run_dir)``) and images as ``uint8`` numpy
arrays shaped (N, C, H, W) in the model's size and channels (:func:`load_inputs` converts
files, folders and ``.npy`` arrays), and returns images in the same form.

    >>> import vaelab
    >>> from vaelab.apps import sample_images, interpolate, AnomalyDetector
    >>> model = vaelab.load("runs/fmnist")
    >>> grid = sample_images(model, 64, temperature=0.8, seed=0)        # (64, 1, 28, 28) uint8

The codec (``vaelab.apps.codec``) is a separate package and is not imported here.
"""

from .anomaly import AnomalyDetector, anomaly_scores, score_names
from .common import load_inputs, run_images
from .embedding import embed
from .inpainting import denoise, inpaint
from .interpolation import interpolate
from .manifold import manifold
from .reconstruction import reconstruct_images
from .sampling import sample_images
from .traversal import dims_by_kl, traverse

__all__ = ["AnomalyDetector", "anomaly_scores", "denoise", "dims_by_kl", "embed", "inpaint", "interpolate",
           "load_inputs", "manifold", "reconstruct_images", "run_images", "sample_images", "score_names", "traverse"]
