"""``vaelab evaluate``: every metric of a trained run on one split, as a table or JSON."""

from __future__ import annotations

from pathlib import Path

import click

from ..evaluation.suite import EvaluationSettings
from ._options import settings_from, settings_options


def _topics(ctx, param, value: tuple[str, ...]) -> tuple[str, ...]:
    from ..evaluation.suite import TOPICS

    names = tuple(t.strip() for v in value for t in v.split(",") if t.strip())
    bad = [t for t in names if t not in TOPICS]
    if bad:
        raise click.BadParameter(f"unknown topic {', '.join(bad)}; choose from {', '.join(TOPICS)}")
    return names


@click.command("evaluate", context_settings={"max_content_width": 100})
@click.argument("run", type=click.Path(path_type=Path))
@settings_options(EvaluationSettings, names={"probe_train_images": "probe-images"},
                  short={"nll_samples": "-k", "limit": "-n"}, omit=("skip",))
@click.option("--skip", multiple=True, callback=_topics, metavar="TOPIC[,TOPIC]",
              help="leave out topics: likelihood, reconstruction, latent, representation, samples, disentanglement.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default="auto", show_default=True,
              help="where to compute (auto = a GPU when present).")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="CPU threads (0 = the cores other programs leave idle, measured at start).")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON on stdout (schema 1, see docs/evaluation.md).")
@click.option("--no-save", is_flag=True, help="do not write RUN/metrics.json.")
@click.option("--overwrite", is_flag=True, help="write RUN/metrics.json even when it holds a fuller evaluation (more "
              "images, a larger K or more topics); without it a partial evaluation goes to metrics-partial.json.")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars.")
def command(run, skip, device, threads, as_json, no_save, overwrite, quiet, **settings):
    """Measure a trained run: likelihood, reconstruction, latent space, representation,
    sample quality and (on shapes) disentanglement.

    Writes RUN/metrics.json (what `vaelab report` and `vaelab compare` read) and prints a
    table, or the JSON itself with --json. Progress bars go to stderr.

    \b
    Examples:
      vaelab evaluate runs/fmnist                           # everything, K = 1000
      vaelab evaluate runs/fmnist --nll-samples 5000 --limit 1000
      vaelab evaluate runs/fmnist --json --skip samples > metrics.json
      vaelab evaluate runs/shapes --skip likelihood         # MIG and DCI in seconds

    On two CPU cores a 28×28 conv VAE bounds about 1–3 images per second at K = 1000;
    a GPU does hundreds. Use --limit to trade precision for time.
    """
    import json

    import torch

    from ..cpu import default_threads
    from ..evaluation.suite import evaluate_run, metrics_filename
    from ..evaluation.summary import format_table

    torch.set_num_threads(threads or default_threads())
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    settings = settings_from(EvaluationSettings, settings, skip=skip)
    result = evaluate_run(run, settings, device=device, progress=not quiet, write=not no_save, overwrite=overwrite,
                          announce=None if quiet else lambda line: click.echo(line, err=True))
    written = result.pop("written_to", metrics_filename(settings.split))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        click.echo(format_table(result))
    if not no_save:
        note = "" if written == metrics_filename(settings.split) else \
            f" (beside {metrics_filename(settings.split)}, which holds a fuller evaluation; --overwrite replaces it)"
        click.echo(f"metrics: {Path(run) / written}{note}", err=as_json)
