"""The full evaluation of a run: every metric of :mod:`vaelab.evaluation` in one JSON document.

``evaluate_run(run_dir)`` loads the model and its data, evaluates one split and returns a
dictionary in the versioned schema documented in ``docs/evaluation.md`` (``"schema": 1``);
``write=True`` also stores it atomically as ``RUN/metrics.json`` (``metrics-val.json`` …
for other splits), where ``vaelab report`` and ``vaelab compare`` find it.

Topics that do not apply (no labels, no known factors, a plain autoencoder, a section the
caller skipped) are ``{"skipped": "<why>"}``, so a reader can always look a topic up.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import __version__, runs
from ..config import option
from ..errors import VaelabError

SCHEMA_VERSION = 1
TOPICS = ("likelihood", "reconstruction", "latent", "representation", "samples", "disentanglement")
ProgressFactory = Callable[[int, str], Callable[[int], None]]


@dataclass
class EvaluationSettings:
    """What to evaluate and how hard to try: each field is a flag of ``vaelab evaluate`` (cli/_options.py)."""

    split: str = option("test", "which split to evaluate", choices=("test", "val", "train"))
    nll_samples: int = option(1000, "importance samples K per image for the log-likelihood bound (0 = skip it). "
                                    "Papers use 5000; time grows linearly with K", min=0, max=1_000_000)
    limit: int = option(0, "evaluate only the first N images of the split (0 = all); standard errors show the "
                           "precision", min=0)
    seed: int = option(0, "seed of every random draw: the same command gives the same numbers", min=0)
    batch_size: int = option(500, "images per pass for the one-sample metrics", min=1, max=1_000_000)
    max_decodes: int = option(0, "latent samples decoded per forward pass in the bound; memory grows with it "
                                 "(0 = 8192 on CPU, 32768 on a GPU at 28×28, fewer for larger images)", min=0)
    probe_train_images: int = option(10_000, "training images the linear/k-NN probes and DCI are fitted on",
                                     min=10)
    sample_images: int = option(10_000, "generated images for the Fréchet distance and precision/recall (at most "
                                         "the split's size)", min=10)
    skip: tuple[str, ...] = field(default_factory=tuple)   # topics left out (the CLI's --skip)


def metrics_filename(split: str, partial: bool = False) -> str:
    """``metrics.json`` (test split; ``metrics-val.json`` …), or the ``-partial`` file beside it."""
    stem = "metrics" if split == "test" else f"metrics-{split}"
    return f"{stem}-partial.json" if partial else f"{stem}.json"


def fullness(doc: dict) -> tuple[int, int, int]:
    """How much an evaluation covers: (images, K of the likelihood bound, topics not skipped)."""
    nll = (doc.get("likelihood") or {}).get("nll") or {}
    topics = sum(1 for t in TOPICS if isinstance(doc.get(t), dict) and "skipped" not in doc[t])
    return int(doc.get("n_images") or 0), int(nll.get("k") or 0), topics


def destination(run_dir: Path, result: dict, split: str, overwrite: bool = False) -> Path:
    """Where an evaluation is stored: the split's metrics file, unless a fuller evaluation of the
    current weights is there already — then the ``-partial`` file beside it (``overwrite`` says
    replace it anyway). The report and ``vaelab compare`` read the main file only."""
    main = run_dir / metrics_filename(split)
    if overwrite:
        return main
    # the stored evaluation counts only if it measured these very weights (hashed once, in result)
    existing = read_metrics_json(run_dir, split, current_only=False)
    same_weights = existing is not None and existing.get("run", {}).get("model_sha256") == result["run"]["model_sha256"]
    if same_weights and any(new < old for new, old in zip(fullness(result), fullness(existing))):
        return run_dir / metrics_filename(split, partial=True)
    return main


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mean_stderr(values: torch.Tensor | np.ndarray) -> dict[str, float]:
    """{"mean", "stderr"} of per-image values; stderr = sample std (ddof 1) / √N."""
    v = torch.as_tensor(values, dtype=torch.float64)
    n = v.numel()
    stderr = float(v.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0
    return {"mean": float(v.mean()), "stderr": stderr}


def _no_progress(total: int, desc: str) -> Callable[[int], None]:
    return lambda n: None


def tqdm_progress(total: int, desc: str) -> Callable[[int], None]:
    """A progress callback drawing a tqdm bar on stderr (closed when it reaches ``total``)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, leave=False)

    def update(n: int) -> None:
        bar.update(n)
        if bar.n >= total:
            bar.close()

    return update


def _subset(split, n: int, seed: int):
    """A seeded random subset of ``n`` images of a split (all of them when it is smaller)."""
    if len(split) <= n:
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return split.subset(idx)


def _binarized_like_eval(images: torch.Tensor, config, seed: int) -> torch.Tensor:
    """Training images as the evaluated split looks: one fixed binarisation when the run binarises."""
    from ..data import binarize_fixed

    return binarize_fixed(images, seed) if config.binarize != "none" else images


# -- topics ------------------------------------------------------------------------------------
def _likelihood(run: runs.Run, images, passed, settings: EvaluationSettings, progress: ProgressFactory) -> dict:
    from .likelihood import DISCRETIZATION_NOTES, bits_per_dim, iwae_bound, likelihood_kind

    model = run.model
    kind = likelihood_kind(model, run.binarized)
    shape = model.image_shape
    out = {"kind": kind, "note": DISCRETIZATION_NOTES[kind], "dims": int(np.prod(shape)),
           "neg_elbo": mean_stderr(passed.neg_elbo), "reconstruction": mean_stderr(passed.reconstruction),
           "kl": mean_stderr(passed.kl)}
    bpd = {"neg_elbo": bits_per_dim(out["neg_elbo"]["mean"], shape)}
    if settings.nll_samples > 0:
        start = time.perf_counter()
        result = iwae_bound(model, images, settings.nll_samples, batch_size=settings.batch_size, seed=settings.seed,
                            max_decodes=settings.max_decodes or None,
                            progress=progress(images.shape[0], f"log-likelihood (K = {settings.nll_samples})"))
        seconds = time.perf_counter() - start
        out["nll"] = {"k": settings.nll_samples, **mean_stderr(result.nll), "seconds": seconds,
                      "images_per_s": images.shape[0] / max(seconds, 1e-9),
                      "estimator": "−log (1/K) Σ_k p(x, z_k)/q(z_k|x), z_k ~ q(z|x) (Burda et al. 2015)"}
        # Per image, the K-sample bound is never below the mean of the same K log-weights.
        out["nll"]["gap_to_elbo"] = mean_stderr(-result.mean_log_weight - result.nll)
        bpd["nll"] = bits_per_dim(out["nll"]["mean"], shape)
    else:
        out["nll"] = {"skipped": "--nll-samples 0"}
    out["bits_per_dim"] = bpd
    return out


def _reconstruction(passed) -> dict:
    return {"mse": mean_stderr(passed.mse), "psnr_db": mean_stderr(passed.psnr), "ssim": mean_stderr(passed.ssim),
            "ssim_window": passed.ssim_window, "data_range": 1.0,
            "target": "the decoder mean at the posterior mean, E[x | z = μ(x)], against the evaluated image"}


def _latent(passed) -> dict:
    from .latent import ACTIVE_THRESHOLD, activity

    act = activity(passed.posterior_means) if passed.posterior_means.shape[0] > 1 else None
    return {"dim": int(passed.posterior_means.shape[1]),
            "kl_per_dim": [float(v) for v in passed.kl_per_dim.mean(dim=0)],
            "activity": None if act is None else [float(v) for v in act],
            "active_units": None if act is None else int((act > ACTIVE_THRESHOLD).sum()),
            "active_threshold": ACTIVE_THRESHOLD,
            "criterion": "Cov_x(E_q[z_d]) > 0.01 (Burda et al. 2015)"}


def _representation(model, eval_codes, eval_set, train_codes, train_set, settings) -> dict:
    from .representation import KNN_K, classifier_accuracy, probe_accuracies

    y_train, y_eval = train_set.labels.numpy(), eval_set.labels.numpy()
    pixels = lambda s: s.images.reshape(len(s), -1).float().numpy() / 255.0  # noqa: E731
    result = {"train_images": len(train_set), "knn_k": KNN_K,
              "latent": probe_accuracies(train_codes.numpy(), y_train, eval_codes.numpy(), y_eval, seed=settings.seed),
              "pixels": probe_accuracies(pixels(train_set), y_train, pixels(eval_set), y_eval, seed=settings.seed),
              "probes": "logistic regression on standardised features; k-NN (Euclidean); fitted on train, scored "
                        "on the evaluated split"}
    if hasattr(model, "classify"):   # the model's own q(y|x): what a semi-supervised cond-vae is trained for
        result["classifier"] = classifier_accuracy(model, eval_set.images, y_eval, settings.batch_size)
    return result


def _samples(model, run_dir, config, splits, eval_set, train_set, settings, progress) -> dict:
    from . import feature_net as fn
    from .samples import PR_K, frechet_distance, generate, precision_recall

    net, info = fn.load_or_train(run_dir, config.data, splits, seed=settings.seed, progress_factory=progress)
    n = min(len(eval_set), settings.sample_images)
    real = eval_set.images[:n]
    binary = config.data.binarize != "none" and getattr(config.model, "likelihood", "") == "bernoulli"
    fake = generate(model, n, binary=binary, seed=settings.seed)
    f_real, f_fake = fn.features(net, real), fn.features(net, fake)
    reference = fn.features(net, train_set.images[:n])
    precision, recall = precision_recall(f_real, f_fake, PR_K) if n > PR_K else (None, None)
    return {"n": n, "frechet_distance": frechet_distance(f_real, f_fake),
            "reference_frechet_distance": frechet_distance(f_real, reference) if len(reference) > 1 else None,
            "precision": precision, "recall": recall, "k": PR_K, "binary_samples": binary,
            "feature_net": {k: info[k] for k in ("path", "fingerprint", "test_accuracy", "cached", "train_images",
                                                "epochs")},
            "note": "features of vaelab's own classifier trained on this data set (not Inception): comparable "
                    "between models on the same data, not with published FID; reference = the same distance "
                    "between held-out real images and as many real training images"}


def _disentanglement(eval_codes, eval_set, train_codes, train_set, splits, settings) -> dict:
    from .disentanglement import MIG_BINS, dci, mig

    factors = eval_set.factors.numpy()
    score, gaps = mig(eval_codes.numpy(), factors)
    names = list(splits.factor_names) or [f"factor {i}" for i in range(factors.shape[1])]
    return {"factors": names, "factor_levels": list(splits.extra.get("factor_levels", ())), "n": len(eval_set),
            "mig": score, "mig_per_factor": dict(zip(names, gaps)), "mig_bins": MIG_BINS,
            "dci": dci(train_codes.numpy(), train_set.factors.numpy(), eval_codes.numpy(), factors,
                       seed=settings.seed)}


# -- the whole evaluation ----------------------------------------------------------------------
def evaluate_run(run_dir, settings: EvaluationSettings | None = None, device: str = "cpu",
                 progress: bool = True, write: bool = True, data=None, overwrite: bool = False,
                 announce: Callable[[str], None] | None = None) -> dict:
    """Evaluate a run directory on one split; returns the schema-1 metrics dictionary.

    ``data``: the run's :class:`~vaelab.data.DataSplits` if the caller has them loaded.
    ``write``: also store the result as ``RUN/metrics.json`` (atomically) — or, when that file
    holds a fuller evaluation of the same weights, as ``metrics-partial.json`` beside it
    (``overwrite=True`` replaces it anyway); ``result["written_to"]`` names the file.
    ``announce(line)`` is told the planned work and its estimated time before it starts.
    """
    from ..data import load_data
    from ..fileio import atomic_write_json
    from .image_pass import image_pass, latent_means

    settings = settings or EvaluationSettings()
    unknown = set(settings.skip) - set(TOPICS)
    if unknown:
        raise VaelabError(f"cannot skip {', '.join(sorted(unknown))}; topics are {', '.join(TOPICS)}")
    if settings.nll_samples < 0 or settings.limit < 0 or settings.batch_size < 1:
        raise VaelabError("--nll-samples and --limit must be ≥ 0 and --batch-size ≥ 1")
    started = time.perf_counter()
    run_dir = runs.run_path(run_dir)
    # Hash the weights before loading them: metrics.json then names the weights it measured
    # even if training replaces model.safetensors while the evaluation runs.
    model_sha256 = file_sha256(run_dir / runs.MODEL_FILE) if (run_dir / runs.MODEL_FILE).is_file() else None
    run = runs.open_run(run_dir, device=device)
    model, config = run.model, run.config
    splits = data if data is not None else load_data(config.data)
    eval_set = splits.split(settings.split)
    if settings.limit:
        eval_set = eval_set.subset(slice(0, settings.limit))
    if settings.split == "train" and config.data.binarize == "dynamic":
        # Dynamic binarisation keeps grey levels in the training split; score one fixed binary
        # sample of them, as the validation and test splits are.
        eval_set = replace(eval_set, images=_binarized_like_eval(eval_set.images, config.data,
                                                                 config.data.seed * 3 + 3))
    if len(eval_set) == 0:
        raise VaelabError(f"the {settings.split} split of {config.data.name} is empty; choose another --split")
    make_progress: ProgressFactory = tqdm_progress if progress else _no_progress
    timings: dict[str, float] = {}
    # --limit bounds every topic: the probes are fitted on at most as many training images
    probe_images = min(settings.probe_train_images, max(settings.limit, 50)) if settings.limit \
        else settings.probe_train_images
    if announce is not None:
        announce(_plan(run, eval_set, settings, probe_images))

    def timed(topic: str, fn: Callable[[], dict]) -> dict:
        if topic in settings.skip:
            return {"skipped": "skipped on request"}
        start = time.perf_counter()
        result = fn()
        timings[topic] = round(time.perf_counter() - start, 3)
        return result

    # scikit-learn's BLAS/OpenMP pools get as many threads as PyTorch (``--threads``).
    from threadpoolctl import threadpool_limits

    with torch.random.fork_rng(devices=[]), threadpool_limits(torch.get_num_threads()):
        torch.manual_seed(settings.seed)
        start = time.perf_counter()
        passed = image_pass(model, eval_set.images, settings.batch_size, settings.seed,
                            progress=make_progress(len(eval_set), "ELBO and reconstructions"))
        timings["image_pass"] = round(time.perf_counter() - start, 3)
        variational = model.is_variational
        out: dict = {}
        if variational:
            out["likelihood"] = timed("likelihood", lambda: _likelihood(run, eval_set.images, passed, settings,
                                                                        make_progress))
        else:
            out["likelihood"] = {"skipped": "a plain autoencoder has no prior or posterior, so no likelihood"}
        out["reconstruction"] = timed("reconstruction", lambda: _reconstruction(passed))
        out["latent"] = timed("latent", lambda: _latent(passed)) if variational else \
            {"skipped": "KL per dimension and active units are defined for VAEs (a posterior and a prior)"}

        # Probes and DCI are fitted on training images that look like the evaluated ones.
        needs_train = {"representation", "disentanglement"} - set(settings.skip)
        train_set = _subset(splits.train, probe_images, settings.seed) if needs_train else None
        if train_set is not None:
            train_set = replace(train_set, images=_binarized_like_eval(train_set.images, config.data,
                                                                       settings.seed * 3 + 7))
            train_codes = latent_means(model, train_set.images, settings.batch_size)
        eval_codes = passed.posterior_means
        if eval_set.labels is None or splits.train.labels is None:
            out["representation"] = {"skipped": "the data set has no labels"}
        else:
            out["representation"] = timed("representation", lambda: _representation(
                model, eval_codes, eval_set, train_codes, train_set, settings))
        if eval_set.labels is None or splits.train.labels is None:
            out["samples"] = {"skipped": "the data set has no labels to train the feature network on"}
        elif min(len(eval_set), settings.sample_images) <= 3:
            out["samples"] = {"skipped": "distances between image sets need more than 3 images; raise --limit"}
        else:
            sample_train = _subset(splits.train, settings.sample_images, settings.seed + 1)
            sample_train = replace(sample_train, images=_binarized_like_eval(sample_train.images, config.data,
                                                                             settings.seed * 3 + 8))
            out["samples"] = timed("samples", lambda: _samples(model, run_dir, config, splits, eval_set, sample_train,
                                                                settings, make_progress))
        if eval_set.factors is None or splits.train.factors is None:
            out["disentanglement"] = {"skipped": "the data set has no known generative factors (try --data shapes)"}
        elif eval_codes.shape[1] < 2:
            out["disentanglement"] = {"skipped": "MIG needs at least two latent dimensions"}
        else:
            out["disentanglement"] = timed("disentanglement", lambda: _disentanglement(
                eval_codes, eval_set, train_codes, train_set, splits, settings))

    result = {
        "schema": SCHEMA_VERSION,
        "vaelab_version": __version__,
        "run": {"dir": str(run_dir), "name": run_dir.name, "model": config.model.name, "data": config.data.name,
                "latent_dim": model.latent_dim, "likelihood": getattr(config.model, "likelihood", None),
                "binarize": config.data.binarize, "image_shape": list(model.image_shape),
                "is_variational": model.is_variational, "model_sha256": model_sha256},
        "split": settings.split,
        "n_images": len(eval_set),
        "seed": settings.seed,
        "device": str(device),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **out,
        "seconds_per_topic": timings,
        "seconds": round(time.perf_counter() - started, 3),
    }
    result = _finite_or_none(result)
    if write:
        path = destination(run_dir, result, settings.split, overwrite)
        atomic_write_json(path, result)
        result["written_to"] = path.name
    return result


def _plan(run: runs.Run, eval_set, settings: EvaluationSettings, probe_images: int) -> str:
    """One line: what the evaluation will do and, for the likelihood bound (its dominant cost), how
    long it should take, timed on the first images."""
    n = len(eval_set)
    parts = []
    wanted = [t for t in TOPICS if t not in settings.skip]
    if "likelihood" in wanted and run.model.is_variational and settings.nll_samples > 0:
        from .likelihood import iwae_bound

        probe = eval_set.images[: min(n, 4)]
        start = time.perf_counter()
        iwae_bound(run.model, probe, settings.nll_samples, batch_size=settings.batch_size, seed=settings.seed,
                   max_decodes=settings.max_decodes or None)
        per_image = (time.perf_counter() - start) / len(probe)
        parts.append(f"log-likelihood bound with K = {settings.nll_samples:,} (≈ {_duration(per_image * n)} at "
                     f"{1 / max(per_image, 1e-9):,.1f} images/s)")
    parts += [t for t in ("reconstruction", "latent") if t in wanted]
    if "representation" in wanted:
        parts.append(f"probes fitted on {probe_images:,} training images")
    if "samples" in wanted:
        parts.append(f"sample quality of {min(n, settings.sample_images):,} generated images")
    if "disentanglement" in wanted:
        parts.append("disentanglement")
    return (f"evaluating {n:,} {settings.split} images: " + ", ".join(parts)
            + ("" if settings.limit else "; --limit N and -k K trade precision for time"))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _finite_or_none(value):
    """JSON has no NaN or ∞: a number that is not finite becomes null (a degenerate case, not a crash)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def read_metrics_json(run_dir, split: str = "test", current_only: bool = True) -> dict | None:
    """The stored evaluation of a run, or None (absent, unreadable, another schema, or stale).

    ``current_only``: None when the weights changed since the evaluation (the stored
    ``model_sha256`` does not match ``model.safetensors``).
    """
    from ..fileio import read_json

    run_dir = Path(run_dir)
    path = run_dir / metrics_filename(split)
    if not path.is_file():
        return None
    try:
        data = read_json(path, "metrics file")
    except VaelabError:
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_VERSION:
        return None
    if current_only:
        model_file = run_dir / runs.MODEL_FILE
        if not model_file.is_file() or data.get("run", {}).get("model_sha256") != file_sha256(model_file):
            return None
    return data


__all__ = ["SCHEMA_VERSION", "TOPICS", "EvaluationSettings", "evaluate_run", "mean_stderr", "metrics_filename",
           "read_metrics_json", "tqdm_progress"]
