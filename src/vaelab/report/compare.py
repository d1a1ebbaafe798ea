"""Side-by-side numbers of several runs: a table and a figure (``vaelab compare``).

Each run contributes its ``metrics.json`` (the full evaluation) when it matches the current
weights, otherwise the test-set numbers that training logged at its end (``metrics.jsonl``).
The source of every row is named, so numbers of different provenance are never mixed
silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import runs
from ..runs import read_metrics


@dataclass
class RunSummary:
    name: str
    model: str
    data: str
    latent_dim: int
    epochs: int | None
    source: str                                   # "metrics.json (N images)" or "training log"
    numbers: dict[str, float | int | None] = field(default_factory=dict)
    val_curve: list[tuple[float, float]] = field(default_factory=list)   # (epoch, validation −ELBO)


def summarize(run_dir) -> RunSummary:
    """The comparable numbers of one run directory."""
    from ..evaluation.suite import read_metrics_json
    from ..evaluation.summary import compact

    run_dir = runs.run_path(run_dir)
    config = runs.read_config(run_dir / runs.CONFIG_FILE)
    records = read_metrics(run_dir / runs.METRICS_FILE)
    final = next((r for r in reversed(records) if r.get("event") == "final"), {})
    doc = read_metrics_json(run_dir)
    if doc is not None:
        numbers = compact(doc)
        source = f"metrics.json ({doc['n_images']} {doc['split']} images)"
    else:
        numbers = dict.fromkeys(compact({}))
        numbers.update({"neg_elbo": final.get("test_neg_elbo"), "kl": final.get("test_kl")})
        if numbers["neg_elbo"] is not None and config.model.name.endswith("-vae"):
            from ..evaluation.likelihood import bits_per_dim

            shape = next((r["image_shape"] for r in records if r.get("event") == "start"), None)
            numbers["bits_per_dim"] = bits_per_dim(numbers["neg_elbo"], tuple(shape)) if shape else None
        source = "training log (test −ELBO)" if final else "no evaluation yet"
    curve = [(r["epoch"], r["val_neg_elbo"]) for r in records
             if r.get("event") == "epoch" and isinstance(r.get("val_neg_elbo"), (int, float))]
    return RunSummary(run_dir.name, config.model.name, config.data.name, getattr(config.model, "latent_dim", None),
                      final.get("epoch"), source, numbers, curve)


COLUMNS = [("neg_elbo", "−ELBO", ".2f"), ("nll", "NLL bound", ".2f"), ("bits_per_dim", "bits/dim", ".4f"),
           ("kl", "KL", ".2f"), ("active_units", "AU", "d"), ("psnr_db", "PSNR", ".2f"), ("ssim", "SSIM", ".3f"),
           ("linear_probe", "probe", ".3f"), ("frechet_distance", "FD", ".1f"), ("mig", "MIG", ".3f")]


def table_rows(summaries: list[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings) of the comparison table; '–' where a number is absent."""
    header = ["run", "model", "data", "D", "epochs"] + [title for _, title, _ in COLUMNS] + ["source"]
    rows = []
    for s in summaries:
        cells = [s.name, s.model, s.data, str(s.latent_dim), "–" if s.epochs is None else str(s.epochs)]
        for key, _, fmt in COLUMNS:
            value = s.numbers.get(key)
            cells.append("–" if value is None else format(value, fmt))
        rows.append(cells + [s.source])
    return header, rows


def format_text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def comparison_figure(summaries: list[RunSummary]) -> bytes:
    from .figures import compare_runs

    return compare_runs({s.name: s.val_curve for s in summaries},
                        {s.name: {"neg_elbo": s.numbers.get("neg_elbo"), "nll": s.numbers.get("nll")}
                         for s in summaries})


__all__ = ["RunSummary", "comparison_figure", "format_text_table", "summarize", "table_rows"]
