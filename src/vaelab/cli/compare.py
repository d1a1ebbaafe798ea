"""``vaelab compare``: several runs side by side, as a table and a figure."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=Path("compare.png"), show_default=True,
              help="where to write the figure (validation −ELBO per epoch; test −ELBO and NLL bound per run).")
@click.option("--json", "as_json", is_flag=True, help="print the table as JSON instead of text.")
def command(runs: tuple[Path, ...], out: Path, as_json: bool):
    """Compare trained runs: one table row per run and one figure.

    Numbers come from RUN/metrics.json (written by `vaelab evaluate`) when it matches the
    run's current weights, otherwise from the test −ELBO training logged; the last column
    says which.

    \b
    Examples:
      vaelab compare runs/fmnist-d8 runs/fmnist-d32 -o runs/latent-size.png
      vaelab compare runs/* --json
    """
    import json

    from ..errors import VaelabError
    from ..fileio import atomic_write_bytes
    from ..report.compare import comparison_figure, format_text_table, summarize, table_rows

    if len(set(runs)) != len(runs):
        raise VaelabError("a run is named twice; list each run directory once")
    summaries = [summarize(r) for r in runs]
    header, rows = table_rows(summaries)
    if as_json:
        click.echo(json.dumps([{"run": s.name, "model": s.model, "data": s.data, "latent_dim": s.latent_dim,
                                "epochs": s.epochs, "source": s.source, **s.numbers} for s in summaries], indent=2,
                              ensure_ascii=False))
    else:
        click.echo(format_text_table(header, rows))
    atomic_write_bytes(out, comparison_figure(summaries))
    click.echo(f"figure: {out}", err=as_json)
