"""``vaelab anomaly``: score images as in- or out-of-distribution; evaluate scores with AUROC/AUPRC."""

from __future__ import annotations

from pathlib import Path

import click

from ..apps.anomaly import ScoreSettings
from ._options import settings_from, settings_options

SCORE_CHOICES = ["nll", "elbo", "complexity", "regret", "reconstruction", "all"]


@click.command("anomaly")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, type=click.Path(path_type=Path))
@click.option("--score", "scores", multiple=True, type=click.Choice(SCORE_CHOICES),
              help="score(s) to compute, repeatable; all = every score the model supports "
                   "[default: complexity for scoring, all for --evaluate].")
@click.option("--evaluate", nargs=2, type=click.Path(path_type=Path), default=None, metavar="IN OUT",
              help="instead of scoring IMAGES: AUROC and AUPRC of each score separating in-distribution "
                   "images IN from out-of-distribution images OUT (files, folders or .npy).")
@settings_options(ScoreSettings)
@click.option("--quantile", type=float, default=0.95, show_default=True,
              help="threshold = this quantile of the scores of in-distribution images (0.95: ~5 % false alarms).")
@click.option("--fit-split", type=click.Choice(["train", "val", "test"]), default="val", show_default=True,
              help="which split of the run's data set the threshold is fitted on.")
@click.option("--fit-images", type=click.IntRange(10, 1_000_000), default=2000, show_default=True,
              help="how many images of --fit-split to fit the threshold on.")
@click.option("--refit", is_flag=True, help="fit the threshold again even if RUN/anomaly.json has one.")
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="scores CSV (scoring) or results JSON (--evaluate) [default: RUN/apps/anomaly.csv or .json].")
def command(run: Path, images: tuple[Path, ...], scores: tuple[str, ...], evaluate, quantile: float, fit_split: str,
            fit_images: int, refit: bool, out: Path | None, **score_settings):
    """Anomaly scores of IMAGES under RUN's model (higher = more anomalous), with a threshold.

    \b
    Scores (bits per image):
      nll             −log2 p(x), importance-weighted bound
      elbo            −ELBO
      complexity      nll − compressed length of the image (Serrà et al. 2020)
      regret          ELBO gain when the posterior is re-fitted to the one image (Xiao et al. 2020)
      reconstruction  mean squared reconstruction error per pixel (also for plain autoencoders)
    The raw likelihood famously rates some foreign images as *more* likely (a Fashion-MNIST
    model prefers MNIST digits); complexity and regret correct for that.

    The threshold is the --quantile of the scores of --fit-images held-out images of the run's
    data set, cached in RUN/anomaly.json. With --evaluate IN OUT, prints AUROC and AUPRC of
    every score instead.

    \b
    Examples:
      vaelab anomaly runs/fmnist photo.png digits/ --score regret
      vaelab anomaly runs/fmnist --evaluate fmnist-test.npy mnist.npy -o results.json
    """
    from ..runs import open_run

    opened = open_run(run)
    model = opened.model
    settings = settings_from(ScoreSettings, score_settings)
    if evaluate is not None:
        if images:
            from ..errors import VaelabError

            raise VaelabError("--evaluate IN OUT takes its images from IN and OUT; drop the other IMAGES")
        _evaluate(opened, evaluate, _kinds(model, scores or ("all",)), settings, out)
    else:
        default = ("complexity",) if model.is_variational else ("reconstruction",)
        _score(opened, images, _kinds(model, scores or default), settings, quantile, fit_split, fit_images, refit, out)


def _kinds(model, requested) -> list[str]:
    """The scores to compute, checked against the model before any image is read."""
    from ..apps.anomaly import LIKELIHOOD_SCORES, check_score, score_names

    if "all" in requested:
        return [k for k in score_names() if (model.is_variational or k not in LIKELIHOOD_SCORES)
                and (k != "regret" or model.refits_posterior)]
    kinds = list(dict.fromkeys(requested))
    for kind in kinds:
        check_score(model, kind)
    return kinds


def _load(model, sources):
    from ..apps.common import load_inputs

    images, names, notices = load_inputs(model, sources)
    for notice in notices:
        click.echo(f"note: {notice}", err=True)
    return images, names


def _evaluate(opened, sources, kinds, settings, out):
    from dataclasses import asdict

    from ..apps.anomaly import score_table
    from ..apps.common import output_path
    from ..apps.roc import auprc, auroc
    from ..fileio import atomic_write_json

    model = opened.model
    inside, _ = _load(model, [sources[0]])
    outside, _ = _load(model, [sources[1]])
    click.echo(f"in-distribution: {len(inside)} images from {sources[0]}; "
               f"out-of-distribution: {len(outside)} images from {sources[1]}")
    scores_in = score_table(model, inside, kinds, settings, binarized=opened.binarized, progress=True)
    scores_out = score_table(model, outside, kinds, settings, binarized=opened.binarized, progress=True)
    results = {}
    click.echo(f"{'score':<15} {'AUROC':>7} {'AUPRC':>7} {'mean in':>10} {'mean out':>10}")
    for kind in kinds:
        a, b = scores_in[kind], scores_out[kind]
        row = {"auroc": auroc(a, b), "auprc": auprc(a, b), "mean_in": float(a.mean()), "mean_out": float(b.mean())}
        results[kind] = row
        click.echo(f"{kind:<15} {row['auroc']:>7.4f} {row['auprc']:>7.4f} {row['mean_in']:>10.4g} {row['mean_out']:>10.4g}")
    out = output_path(opened, out, "anomaly.json")
    atomic_write_json(out, {"in": str(sources[0]), "out": str(sources[1]), "n_in": len(inside),
                            "n_out": len(outside), "settings": asdict(settings),
                            "scores": results})
    click.echo(f"results: {out}")


def _score(opened, sources, kinds, settings, quantile, fit_split, fit_images, refit, out):
    import csv
    import io
    from dataclasses import asdict

    from ..apps.anomaly import AnomalyDetector
    from ..apps.common import output_path
    from ..apps.figures import short_name
    from ..errors import VaelabError
    from ..fileio import atomic_write_text

    if not sources:
        raise VaelabError("give IMAGES to score (files, folders or .npy), or --evaluate IN OUT")
    model = opened.model
    images, names = _load(model, sources)
    columns = {}
    for kind in kinds:
        detector = AnomalyDetector(model, kind, quantile, run=opened, **asdict(settings))
        detector.fit_cached(fit_split, fit_images, refit=refit, progress=True)
        values = detector.score(images, progress=True)
        columns[kind] = (values, detector.threshold)
        click.echo(f"{kind}: threshold {detector.threshold:.4g} ({quantile:.0%} of {detector.fit_info.get('images')} "
                   f"{fit_split} images score below it)")
    header = f"{'image':<24}" + "".join(f" {kind:>14} {'':>3}" for kind in kinds)
    click.echo(header)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name"] + [c for kind in kinds for c in (kind, f"{kind}_threshold", f"{kind}_anomaly")])
    for i, name in enumerate(names):
        cells, row = [], [name]
        for kind in kinds:
            values, threshold = columns[kind]
            flag = bool(values[i] > threshold)
            cells.append(f" {values[i]:>14.4g} {'OOD' if flag else '':>3}")
            row += [f"{values[i]:.6g}", f"{threshold:.6g}", str(flag).lower()]
        click.echo(f"{short_name(name, 24):<24}" + "".join(cells))
        writer.writerow(row)
    out = output_path(opened, out, "anomaly.csv")
    atomic_write_text(out, buf.getvalue())
    flagged = {kind: int((columns[kind][0] > columns[kind][1]).sum()) for kind in kinds}
    click.echo("flagged as anomalous: " + ", ".join(f"{k} {v}/{len(names)}" for k, v in flagged.items()))
    click.echo(f"scores: {out}")
