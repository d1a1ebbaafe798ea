"""Anomaly (out-of-distribution) detection with a trained model: a score per image, higher =
more anomalous, and a threshold fitted on the run's own data.

Deep generative models famously give *higher* likelihood to some foreign data sets than to
their own (Nalisnick et al. 2019: a model of Fashion-MNIST finds MNIST digits more likely),
because the likelihood mostly measures how simple an image is. So besides the raw scores we
offer two corrections:

====================  ===================================================================
score                 meaning (bits per image unless said otherwise)
====================  ===================================================================
``nll``               −log₂ p(x), importance-weighted bound with K samples
``elbo``              −ELBO (Def. 3.1.1 for its KL term)
``complexity``        nll − L(x), L = lossless compressed length (Serrà et al. 2020)
``regret``            likelihood regret (Xiao et al. 2020): ELBO gain from re-fitting
                      the posterior to the one image
``reconstruction``    mean squared reconstruction error per pixel (any model, incl. AEs)
====================  ===================================================================

Likelihood scores see images the way the model was trained: binarised for runs trained on
binarised data (:func:`vaelab.apps.common.likelihood_view`), and the compressor in
``complexity`` compresses that same binarised image, so the two lengths describe one object.

The threshold is the ``quantile`` (default 0.95) of the scores of in-distribution images the
model did not train on — by default 2,000 images of the run's validation split — so about 5 %
of new in-distribution images are flagged. Scores of the training images themselves would be
optimistic (the model has fit them), giving a threshold that flags too many new images. The
fitted threshold is cached in ``RUN/anomaly.json`` keyed by the score's settings and a hash of
the weights, so the CLI and the web app fit once.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config import option
from ..errors import VaelabError
from ..fileio import atomic_write_json, read_json
from ..runs import Run
from .common import BATCH_SIZE, check_images, likelihood_view, require_refittable, require_variational, run_images
from .complexity import COMPRESSORS, compressed_bits
from .likelihood import likelihood_bits, likelihood_regret_bits
from .reconstruction import reconstruct_images

SCORES = {
    "nll": "negative log-likelihood (importance-weighted bound), bits",
    "elbo": "negative evidence lower bound, bits",
    "complexity": "NLL minus the compressed length of the image (Serrà et al. 2020), bits",
    "regret": "likelihood regret: ELBO gain from re-fitting the posterior to the image (Xiao et al. 2020), bits",
    "reconstruction": "mean squared reconstruction error per pixel ([0, 1] scale)",
}
LIKELIHOOD_SCORES = ("nll", "elbo", "complexity", "regret")
CACHE_FILE = "anomaly.json"
CACHE_FORMAT = 1


def score_names() -> list[str]:
    """The anomaly scores vaelab knows, in the order of the table above."""
    return list(SCORES)


@dataclass(frozen=True)
class ScoreSettings:
    """Everything a score depends on besides the model and the image (part of the cache key); each
    field is a flag of ``vaelab anomaly`` (cli/_options.py)."""

    samples: int = option(32, "importance samples K of the likelihood bound (nll, elbo, complexity)", min=1, max=4096)
    seed: int = option(0, "seed of binarisation and Monte Carlo noise (per image)", min=0)
    compressor: str = option("context", "complexity: the lossless compressor whose length is subtracted (context: "
                                        "JBIG-style context modelling, the strongest here)", choices=tuple(COMPRESSORS))
    regret_steps: int = option(100, "regret: Adam steps re-fitting each image's posterior", min=1, max=10_000)
    regret_lr: float = option(0.05, "regret: Adam step size", min=0.0, min_exclusive=True, max=10.0)
    regret_samples: int = option(16, "regret: noise draws of the before/after ELBOs", min=1, max=4096)
    binarizations: int = option(4, "runs trained on binarised images: average nll, elbo and complexity over this "
                                   "many binarisations", min=1, max=64)

    def __post_init__(self):
        if min(self.samples, self.regret_samples, self.regret_steps, self.binarizations) < 1:
            raise VaelabError("samples, regret steps, regret samples and binarizations must be at least 1")
        if not self.regret_lr > 0:
            raise VaelabError(f"the regret step size must be positive, got {self.regret_lr}")
        if self.compressor not in COMPRESSORS:
            raise VaelabError(f"unknown compressor '{self.compressor}'; choose {', '.join(COMPRESSORS)}")


def check_score(model, kind: str) -> None:
    """Refuse an unknown score, or a likelihood score for a plain autoencoder."""
    if kind not in SCORES:
        raise VaelabError(f"unknown anomaly score '{kind}'; choose {', '.join(SCORES)}")
    if kind in LIKELIHOOD_SCORES:
        require_variational(model, f"the '{kind}' score (a likelihood)")
    if kind == "regret":
        require_refittable(model, "the 'regret' score", " (use nll, elbo or complexity)")


def score_table(model, images: np.ndarray, kinds, settings: ScoreSettings | None = None, *,
                binarized: bool = False, batch_size: int = BATCH_SIZE, progress: bool = False) -> dict[str, np.ndarray]:
    """Several scores of uint8 (N, C, H, W) images at once: {kind: (N,) float64}; shared work is done once.

    ``binarized``: the model was trained on binarised images (``Run.binarized``), so its
    likelihood scores binarised views of the images.
    """
    settings = settings or ScoreSettings()
    kinds = list(dict.fromkeys(kinds))
    for kind in kinds:
        check_score(model, kind)
    check_images(model, images)
    out: dict[str, np.ndarray] = {}
    if "reconstruction" in kinds:
        out["reconstruction"] = reconstruct_images(model, images, batch_size=batch_size, progress=progress)[1]
    if not set(kinds) & set(LIKELIHOOD_SCORES):
        return {k: out[k] for k in kinds}
    # A binarising run's bound-based scores are averaged over several binarised views (seeds seed,
    # seed + 1, …); grey-level runs have one view, the images themselves.
    views = settings.binarizations if binarized else 1
    if set(kinds) & {"nll", "elbo", "complexity"}:
        for v in range(views):
            view = likelihood_view(images, binarized, settings.seed + v)
            bits = likelihood_bits(model, view, settings.samples, settings.seed + v, batch_size=batch_size,
                                   progress=progress)
            part = {"nll": bits["nll"], "elbo": bits["elbo"]}
            if "complexity" in kinds:
                part["complexity"] = bits["nll"] - compressed_bits(view, settings.compressor)
            for kind in set(kinds) & set(part):
                out[kind] = out.get(kind, 0.0) + part[kind] / views
    if "regret" in kinds:
        # One view only: re-fitting every posterior costs as much as ten likelihood passes.
        out["regret"] = likelihood_regret_bits(model, likelihood_view(images, binarized, settings.seed),
                                               settings.regret_steps, settings.regret_lr, settings.regret_samples,
                                               settings.seed, batch_size=batch_size, progress=progress)
    return {k: out[k] for k in kinds}


def anomaly_scores(model, images: np.ndarray, kind: str = "complexity", *, binarized: bool = False,
                   progress: bool = False, **settings) -> np.ndarray:
    """(N,) anomaly scores of uint8 (N, C, H, W) images, higher = more anomalous.

    ``settings`` are the fields of :class:`ScoreSettings` (samples, seed, compressor, regret_*).
    """
    return score_table(model, images, [kind], ScoreSettings(**settings), binarized=binarized, progress=progress)[kind]


def model_fingerprint(model) -> str:
    """SHA-256 of the model's tensors: a cached threshold is only reused for the same weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class AnomalyDetector:
    """A score plus a threshold: ``AnomalyDetector(model, "complexity").fit(images)``, then
    ``score(images)`` (higher = more anomalous) and ``is_anomaly(images)``.

    ``quantile`` is the share of in-distribution fit images that fall below the threshold
    (0.95: about 5 % false alarms on new in-distribution images). With ``run`` (a
    :class:`vaelab.runs.Run`, ``vaelab.runs.open_run(dir)``) the detector knows whether the
    model was trained on binarised images, can fit on the run's own images
    (:meth:`fit_cached`) and caches thresholds in its directory.
    """

    def __init__(self, model, score: str = "complexity", quantile: float = 0.95, *, run: Run | None = None,
                 **settings):
        check_score(model, score)
        if not 0.0 < quantile < 1.0:
            raise VaelabError(f"the threshold quantile must lie strictly between 0 and 1, got {quantile}")
        self.model = model
        self.run = run
        self.kind = score
        self.quantile = float(quantile)
        self.settings = ScoreSettings(**settings)
        self.threshold: float | None = None
        self.fit_info: dict = {}

    def __repr__(self) -> str:
        return f"AnomalyDetector(score={self.kind!r}, threshold={self.threshold}, settings={self.settings})"

    def score(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        """(N,) scores of uint8 (N, C, H, W) images, higher = more anomalous."""
        binarized = self.run is not None and self.run.binarized
        return score_table(self.model, images, [self.kind], self.settings, binarized=binarized,
                           progress=progress)[self.kind]

    def fit(self, train_images: np.ndarray, progress: bool = False, source: str | None = None) -> "AnomalyDetector":
        """Set the threshold to the ``quantile`` of the scores of in-distribution ``train_images``."""
        scores = self.score(train_images, progress)
        self.threshold = float(np.quantile(scores, self.quantile))
        self.fit_info = {"images": int(len(scores)), "mean": float(scores.mean()), "std": float(scores.std()),
                         "source": source or f"images sha256 {hashlib.sha256(train_images.tobytes()).hexdigest()[:16]}"}
        return self

    def is_anomaly(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        """(N,) bool: score above the fitted threshold."""
        if self.threshold is None:
            raise VaelabError("this anomaly detector has no threshold yet; call fit(images) or fit_cached() first")
        return self.score(images, progress) > self.threshold

    # -- the cache in the run directory ---------------------------------------------------------
    def _entry_key(self, source: str) -> dict:
        return {"score": self.kind, "quantile": self.quantile, "settings": asdict(self.settings), "source": source,
                "model_sha256": model_fingerprint(self.model)}

    def _cache_path(self, path=None) -> Path:
        if path is not None:
            return Path(path)
        if self.run is None:
            raise VaelabError("this detector has no run directory to cache the threshold in; pass a path "
                              "(or create it with run=vaelab.runs.open_run(dir))")
        return self.run.dir / CACHE_FILE

    def save(self, path=None) -> Path:
        """Store the fitted threshold in ``RUN/anomaly.json`` (or ``path``), replacing an entry with the same key."""
        if self.threshold is None:
            raise VaelabError("nothing to save: fit the anomaly detector first")
        path = self._cache_path(path)
        key = self._entry_key(self.fit_info.get("source", ""))
        entries = [e for e in _read_cache(path) if {k: e.get(k) for k in key} != key]
        entries.append({**key, "threshold": self.threshold, "fit": self.fit_info})
        atomic_write_json(path, {"format": CACHE_FORMAT, "detectors": entries})
        return path

    def load(self, source: str, path=None) -> bool:
        """Take the threshold from the cache if one was fitted with exactly these settings and weights."""
        key = self._entry_key(source)
        for entry in _read_cache(self._cache_path(path)):
            if {k: entry.get(k) for k in key} == key and isinstance(entry.get("threshold"), (int, float)):
                self.threshold = float(entry["threshold"])
                self.fit_info = dict(entry.get("fit") or {})
                return True
        return False

    def fit_cached(self, split: str = "val", limit: int = 2000, refit: bool = False,
                   progress: bool = False) -> "AnomalyDetector":
        """Fit on ``limit`` images of the run's ``split`` — or reuse the threshold cached for them."""
        source = f"run {split} split, {limit} images"
        if not refit and self.load(source):
            return self
        if self.run is None:
            raise VaelabError("fitting on the run's own images needs the run: create the detector with "
                              "run=vaelab.runs.open_run(dir)")
        self.fit(run_images(self.run, split, limit), progress=progress, source=source)
        self.save()
        return self


def _read_cache(path: Path) -> list[dict]:
    if not path.exists():
        return []
    data = read_json(path, "anomaly threshold cache")
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("detectors"), list):
        return []  # an older or foreign file: refit and overwrite
    return [e for e in data["detectors"] if isinstance(e, dict)]
