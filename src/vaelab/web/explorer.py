"""One served run: its model, a slice of its test set, and everything the panels need.

Start-up does the slow work once — loading the model and the data, embedding the test
images, projecting them to 2-D, ordering the latent dimensions by KL, fitting the anomaly
thresholds — so that a request costs a few milliseconds of model time and nothing else
(no data loading, no file access). The web layer (:mod:`vaelab.web.app`) only validates
requests and turns these results into JSON.

Theory: a VAE's encoder gives q(z|x) = N(μ(x), diag σ²(x)) and its decoder p(x|z)
(thesis §3.1); the latent map shows the means μ(x), the sliders move one coordinate of z
and decode E[x|z]; the per-dimension KL(q(z_d|x) ‖ N(0, 1)) (Def. 3.1.1) says which
dimensions carry information.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import VaelabError

log = logging.getLogger("vaelab.web")

MAX_MAP_POINTS = 2000   # test images kept for the map, hover thumbnails and the galleries
MAP_POINTS = 500        # points the map shows unless the client asks for another number
FIT_IMAGES = 2000       # validation images the anomaly threshold is fitted on (as `vaelab anomaly` does)
MAX_SAMPLES = 64
MAX_STEPS = 32
SLIDER_SPAN = 3.0       # VAE sliders cover ±3 prior standard deviations; AE sliders ±3 data std
# Scores shown for an upload. No single one is right everywhere: the likelihood (nll) flags
# Fashion-MNIST for the MNIST demo model but famously fails the other way round (Nalisnick et
# al. 2019), which the complexity correction fixes; showing both (and the AE-style
# reconstruction error) lets people see where they disagree.
ANOMALY_SCORES = ("nll", "complexity", "reconstruction")

PREPARE_STEPS = ("model", "data", "map", "sliders", "anomaly")


class NotFound(VaelabError):
    """Something the client asked for by index does not exist (the app answers 404)."""


_thread = threading.local()


@contextlib.contextmanager
def inference():
    """``torch.inference_mode`` with this thread's OpenMP team sized as torch is told.

    ``torch.set_num_threads`` sets OpenMP's thread count for the calling thread only; the
    server runs requests on worker threads, which would use one OpenMP thread per core.
    Measured on the shared 2-core machine (benchmarks/serve_latency.py): the demo decode took
    ~100–190 ms on such a thread against ~5 ms on the main thread, oneDNN's transposed
    convolutions waiting at OpenMP barriers.
    """
    threads = torch.get_num_threads()
    if getattr(_thread, "threads", None) != threads:
        torch.set_num_threads(threads)
        _thread.threads = threads
    with torch.inference_mode():
        yield


@dataclass(frozen=True)
class LatentMap:
    """The map's 2-D coordinates of the kept test images, computed once."""

    xy: np.ndarray                   # (P, 2) float32
    projection: str                  # "latent" (D ≤ 2, drawn as is) or "pca"
    explained: tuple[float, float]   # fraction of the codes' variance along each axis


def _finite(value: Any) -> Any:
    """JSON has no NaN/∞: non-finite floats become None (metrics may hold them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def project_2d(codes: np.ndarray) -> LatentMap:
    """(N, D) latent means -> 2-D map coordinates: the latent itself for D ≤ 2, else PCA.

    PCA is the top two right-singular vectors of the centred codes; axis signs are fixed so
    that each axis' largest-magnitude loading is positive (stable across runs).
    """
    codes = np.asarray(codes, dtype=np.float64)
    N, D = codes.shape
    total = float(codes.var(axis=0).sum()) or 1.0
    if D <= 2:
        xy = codes if D == 2 else np.concatenate([codes, np.zeros((N, 1))], axis=1)
        var = xy.var(axis=0)
        return LatentMap(xy.astype(np.float32), "latent", (float(var[0] / total), float(var[1] / total)))
    from ..evaluation.latent import principal_axes

    xy, explained = principal_axes(codes, 2)                        # (N, 2), (2,)
    return LatentMap(xy.astype(np.float32), "pca", (float(explained[0]), float(explained[1])))


def _config_table(config) -> list[dict[str, Any]]:
    """A RunConfig -> [{section, key, value, help}] rows (the Run panel's config listing)."""
    import dataclasses

    from ..config import fields

    rows = []
    for top in fields(type(config)):
        value = getattr(config, top.name)
        if dataclasses.is_dataclass(value):
            for sub in fields(type(value)):
                rows.append({"section": top.name, "key": sub.name, "value": getattr(value, sub.name),
                             "help": sub.metadata.get("help", "")})
        else:
            rows.append({"section": "", "key": top.name, "value": value, "help": top.metadata.get("help", "")})
    return rows


class ExplorerRun:
    """A run prepared for the explorer. Build with :meth:`prepare`; then every method is fast.

    ``images`` (P, C, H, W) uint8 are up to ``max_points`` test images in a fixed random
    order (seed 0), so the first n of them are a fair sample for a map of n points; an image
    is addressed by its position in that order ("index"), never by a path.
    """

    def __init__(self, run_dir: str | Path, name: str, *, max_points: int = MAX_MAP_POINTS,
                 fit_images: int = FIT_IMAGES):
        self.run_dir = Path(run_dir)
        self.name = name
        self.max_points = max_points
        self.fit_images = fit_images
        self.timings: dict[str, float] = {}

    # -- start-up ---------------------------------------------------------------------------
    def prepare(self, tick=None) -> "ExplorerRun":
        """Load and precompute everything; ``tick(step)`` is called after each step (progress bars)."""
        for step in PREPARE_STEPS:
            start = time.perf_counter()
            with inference():
                getattr(self, f"_prepare_{step}")()
            self.timings[step] = time.perf_counter() - start
            if tick is not None:
                tick(step)
        log.info("%s: ready (%s)", self.name,
                 ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items()))
        return self

    def _prepare_model(self) -> None:
        from ..runs import METRICS_FILE, open_run, read_metrics

        self.run = open_run(self.run_dir)
        self.model, self.config = self.run.model, self.run.config
        # the sliders' Gaussian, taken first: a model without one (conv-rd) refuses before any other work
        self.latent_gaussian = self.model.latent_gaussian()
        self.records = read_metrics(self.run_dir / METRICS_FILE)

    def _prepare_data(self) -> None:
        import dataclasses

        from ..data import load_data

        # Grey levels even for runs trained on binarised data (as vaelab.apps.run_images does):
        # they are what a person wants to see; the apps binarise where a likelihood needs it.
        try:
            splits = load_data(dataclasses.replace(self.config.data, binarize="none"))
        except VaelabError as exc:
            raise VaelabError(f"the run's data set could not be loaded ({exc}); the explorer needs its test "
                              "images for the map, sliders and anomaly scores", self.run_dir) from None
        if tuple(splits.image_shape) != tuple(self.model.image_shape):
            raise VaelabError(f"its data set now gives {splits.image_shape} images but the model takes "
                              f"{self.model.image_shape}", self.run_dir)
        test = splits.test if len(splits.test) else splits.val
        if len(test) == 0:
            raise VaelabError("its data set has no test or validation images to explore", self.run_dir)
        order = np.random.default_rng(0).permutation(len(test))[: self.max_points]
        index = torch.from_numpy(order)
        self.images = np.ascontiguousarray(test.images[index].numpy())            # (P, C, H, W) uint8
        self.labels = None if test.labels is None else test.labels[index].numpy().astype(np.int64)
        self.class_names = tuple(splits.class_names)
        self.data_description = splits.description

    def _prepare_map(self) -> None:
        from ..apps.embedding import embed

        means, _ = embed(self.model, self.images)
        self.codes = np.asarray(means, dtype=np.float32)                            # (P, D)
        self.map = project_2d(self.codes)

    def _prepare_sliders(self) -> None:
        from ..apps.traversal import dims_by_score, kl_per_dim

        # per dimension: mean KL(q(z_d|x) ‖ N(0, 1)) in nats for a VAE, the code variance for an AE
        self.dim_score = np.asarray(kl_per_dim(self.model, self.images), dtype=np.float64)
        self.dim_order = [int(d) for d in dims_by_score(self.model, self.dim_score)]
        # sliders span ±3 standard deviations of the Gaussian the model samples from
        # (the prior N(0, I) for a VAE; the training codes' Gaussian for an AE)
        mean, cov = self.latent_gaussian
        mean = mean.double().cpu().numpy()
        std = cov.double().diagonal().clamp_min(0).sqrt().cpu().numpy()
        self.origin = mean
        self.low, self.high = mean - SLIDER_SPAN * std, mean + SLIDER_SPAN * std
        self.decode(self.origin.tolist())  # the first call pays torch's warm-up; let start-up pay it

    def _prepare_anomaly(self) -> None:
        from ..apps.anomaly import AnomalyDetector

        # fit_cached keeps each threshold in RUN/anomaly.json: the next start (and the CLI) reuse it
        self.detectors = [AnomalyDetector(self.model, score=kind, run=self.run).fit_cached(split="val",
                                                                                             limit=self.fit_images)
                          for kind in (ANOMALY_SCORES if self.model.is_variational else ("reconstruction",))]

    # -- what the panels ask for -------------------------------------------------------------
    def summary(self, index: int) -> dict[str, Any]:
        cfg = self.config
        final = self.final_metrics()
        return {"id": index, "name": self.name, "model": cfg.model.name, "data": cfg.data.name,
                "latent_dim": self.model.latent_dim, "image_shape": list(self.model.image_shape),
                "is_variational": bool(self.model.is_variational), "test_images": len(self.images),
                "test_neg_elbo": final.get("test_neg_elbo"), "label_conditioned": self.label_conditioned}

    @property
    def label_conditioned(self) -> bool:
        return bool(self.model.needs_labels)

    def final_metrics(self) -> dict[str, Any]:
        final = next((r for r in reversed(self.records) if r.get("event") == "final"), {})
        return {k: _finite(v) for k, v in final.items() if k != "event" and isinstance(v, (bool, int, float))}

    def details(self, index: int) -> dict[str, Any]:
        """The Run panel: summary, final metrics, the loss curve per epoch, config and start-up timings."""
        curve = [{"epoch": r.get("epoch"), "train_loss": _finite(r.get("train_loss")),
                  "val_loss": _finite(r.get("val_loss"))} for r in self.records if r.get("event") == "epoch"]
        return {**self.summary(index), "data_description": self.data_description,
                "class_names": list(self.class_names), "metrics": self.final_metrics(), "curve": curve,
                "config": _config_table(self.config),
                "startup_seconds": {k: round(v, 3) for k, v in self.timings.items()}}

    def check_index(self, index: int) -> int:
        if not 0 <= index < len(self.images):
            raise NotFound(f"image index {index} is out of range; this run serves test images 0–{len(self.images) - 1}")
        return index

    def label_name(self, index: int) -> str | None:
        if self.labels is None:
            return None
        label = int(self.labels[index])
        return self.class_names[label] if 0 <= label < len(self.class_names) else str(label)

    def sample(self, n: int, temperature: float, seed: int, label: int | None = None) -> np.ndarray:
        """(n, C, H, W) uint8 new images from the prior at ``temperature``; a label-conditioned model's
        of class ``label`` (the same seed gives the same z under every label: the Classes panel)."""
        from ..apps.sampling import sample_images

        with inference():
            return np.asarray(sample_images(self.model, n, temperature=temperature, seed=seed, mean=True,
                                            label=label))

    def decode(self, z: list[float]) -> np.ndarray:
        """One latent code (D numbers) -> (C, H, W) uint8 image E[x|z]: the sliders' hot path."""
        from ..imageio import to_uint8

        D = self.model.latent_dim
        if len(z) != D:
            raise VaelabError(f"z has {len(z)} numbers but this model's latent space has {D} dimensions")
        with inference():
            x = self.model.decode_mean(torch.tensor([z], dtype=torch.float32))
        return to_uint8(x[0])

    def latent_map(self, n: int) -> dict[str, Any]:
        n = min(n, len(self.images))
        xy = self.map.xy[:n]
        return {"n": n, "available": len(self.images), "projection": self.map.projection,
                "explained": list(self.map.explained), "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
                "labels": None if self.labels is None else self.labels[:n].tolist(),
                "class_names": list(self.class_names)}

    def reconstruct(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, C, H, W) uint8 -> (reconstructions uint8, per-image MSE on [0, 1] pixels)."""
        from ..apps.reconstruction import reconstruct_images

        with inference():
            recon, mse = reconstruct_images(self.model, images)
        return np.asarray(recon), np.asarray(mse, dtype=np.float64)

    def interpolate(self, a: int, b: int, steps: int, slerp: bool) -> np.ndarray:
        """(steps, C, H, W) uint8: the decoded path between test images ``a`` and ``b``."""
        from ..apps.interpolation import interpolate

        self.check_index(a)
        self.check_index(b)
        with inference():
            return np.asarray(interpolate(self.model, self.images[a], self.images[b], steps=steps, slerp=slerp))

    def compare_sizes(self, image: np.ndarray) -> tuple[dict[str, Any], np.ndarray | None]:
        """Bytes of one (C, H, W) uint8 image: the codec against PNG and WebP (see :mod:`.sizes`)."""
        from .sizes import size_comparison

        with inference():
            return size_comparison(self.model, image)

    def anomaly(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Every score of one (C, H, W) uint8 image against its threshold from the run's validation images."""
        from ..apps.anomaly import SCORES, score_table

        kinds = [d.kind for d in self.detectors]
        with inference():  # one call: the likelihood scores share their importance samples
            scores = score_table(self.model, image[None], kinds, self.detectors[0].settings)
        rows = []
        for detector in self.detectors:
            score = float(scores[detector.kind][0])
            # the detector's is_anomaly is this comparison; scoring once for all kinds is cheaper
            rows.append({"score_name": detector.kind, "meaning": SCORES[detector.kind], "score": _finite(score),
                         "threshold": _finite(detector.threshold), "quantile": detector.quantile,
                         "fit_images": detector.fit_info.get("images"), "is_anomaly": bool(score > detector.threshold)})
        return rows


def run_names(run_dirs: list[Path]) -> list[str]:
    """Unique display names: each directory's name, suffixed -2, -3, … on collisions."""
    names: list[str] = []
    for run_dir in run_dirs:
        base = Path(run_dir).resolve().name or "run"
        name, k = base, 2
        while name in names or name.isdigit():  # digits are reserved for ids
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def prepare_runs(run_dirs: list[str | Path], *, max_points: int = MAX_MAP_POINTS,
                 progress: bool = True) -> list[ExplorerRun]:
    """Load and precompute every run (the slow part of start-up), with a progress bar."""
    from tqdm import tqdm

    from ..runs import run_path

    dirs = [run_path(d) for d in run_dirs]  # refuse a bad directory before any slow work
    runs = [ExplorerRun(d, name, max_points=max_points) for d, name in zip(dirs, run_names(dirs))]
    with tqdm(total=len(runs) * len(PREPARE_STEPS), desc="preparing", unit="step", disable=not progress,
              leave=False) as bar:
        for run in runs:
            bar.set_description(f"preparing {run.name}")
            run.prepare(tick=lambda step: (bar.set_postfix_str(step), bar.update()))
    return runs
