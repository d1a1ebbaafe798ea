"""The headline numbers of a metrics document, as rows a person reads (CLI, report, compare)."""

from __future__ import annotations

from typing import Any


def _get(doc: dict, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _pm(stat: Any, digits: int = 2) -> str | None:
    if not isinstance(stat, dict) or "mean" not in stat:
        return None
    return f"{stat['mean']:.{digits}f} ± {stat['stderr']:.{digits}f}"


def _num(value: Any, fmt: str = ".3f") -> str | None:
    return None if value is None else format(value, fmt)


def headline_rows(doc: dict) -> list[tuple[str, str, str]]:
    """(topic, metric, value) rows of a schema-1 metrics document; skipped topics as one row."""
    rows: list[tuple[str, str, str]] = []
    lik = doc.get("likelihood", {})
    if "skipped" in lik:
        rows.append(("likelihood", "skipped", lik["skipped"]))
    else:
        rows += [("likelihood", "−ELBO (nats/image)", _pm(lik.get("neg_elbo"))),
                 ("likelihood", "  reconstruction term", _pm(lik.get("reconstruction"))),
                 ("likelihood", "  KL(q‖p)", _pm(lik.get("kl")))]
        nll = lik.get("nll", {})
        if "skipped" in nll:
            rows.append(("likelihood", "−log p(x) bound", f"skipped ({nll['skipped']})"))
        else:
            rows.append(("likelihood", f"−log p(x) ≤ (IWAE, K = {nll['k']})", _pm(nll)))
        bpd = lik.get("bits_per_dim", {})
        rows.append(("likelihood", "bits/dim (−ELBO / bound)",
                     " / ".join(_num(bpd.get(k), ".4f") for k in ("neg_elbo", "nll") if bpd.get(k) is not None)))
        rows.append(("likelihood", "probability", lik.get("kind", "")))
    rec = doc.get("reconstruction", {})
    if "skipped" in rec:
        rows.append(("reconstruction", "skipped", rec["skipped"]))
    else:
        rows += [("reconstruction", "MSE", _pm(rec.get("mse"), 5)), ("reconstruction", "PSNR (dB)", _pm(rec.get("psnr_db"))),
                 ("reconstruction", f"SSIM ({rec.get('ssim_window')}×{rec.get('ssim_window')} window)",
                  _pm(rec.get("ssim"), 4))]
    lat = doc.get("latent", {})
    if "skipped" in lat:
        rows.append(("latent", "skipped", lat["skipped"]))
    else:
        rows.append(("latent", "active units (A_d > 0.01)", f"{lat.get('active_units')} of {lat.get('dim')}"))
    rep = doc.get("representation", {})
    if "skipped" in rep:
        rows.append(("representation", "skipped", rep["skipped"]))
    else:
        for probe, name in (("linear_probe", "linear probe"), ("knn", f"{rep.get('knn_k')}-NN")):
            rows.append(("representation", f"{name} accuracy: latent / pixels",
                         f"{_num(_get(rep, 'latent', probe))} / {_num(_get(rep, 'pixels', probe))}"))
        if "classifier" in rep:
            rows.append(("representation", "the model's classifier q(y|x): accuracy", _num(rep["classifier"])))
    smp = doc.get("samples", {})
    if "skipped" in smp:
        rows.append(("samples", "skipped", smp["skipped"]))
    else:
        rows += [("samples", f"Fréchet distance (n = {smp.get('n')}; real-vs-real {_num(smp.get('reference_frechet_distance'), '.2f')})",
                  _num(smp.get("frechet_distance"), ".2f")),
                 ("samples", "precision / recall (k = 3)", f"{_num(smp.get('precision'))} / {_num(smp.get('recall'))}"),
                 ("samples", "feature network test accuracy", _num(_get(smp, "feature_net", "test_accuracy")))]
    dis = doc.get("disentanglement", {})
    if "skipped" in dis:
        rows.append(("disentanglement", "skipped", dis["skipped"]))
    else:
        dci = dis.get("dci", {})
        rows += [("disentanglement", "MIG", _num(dis.get("mig"))),
                 ("disentanglement", "DCI disentanglement / completeness / informativeness",
                  " / ".join(_num(dci.get(k)) or "–" for k in ("disentanglement", "completeness", "informativeness")))]
    return [(t, m, v if v is not None else "–") for t, m, v in rows]


def format_table(doc: dict) -> str:
    """A plain-text table of :func:`headline_rows` with a title line."""
    run = doc.get("run", {})
    title = (f"{run.get('name')} — {run.get('model')} on {run.get('data')}, {doc.get('split')} split, "
             f"{doc.get('n_images')} images, {doc.get('seconds', 0):.0f} s")
    rows = headline_rows(doc)
    width = max(len(m) for _, m, _ in rows)
    lines, last = [title], None
    for topic, metric, value in rows:
        if topic != last:
            lines.append(f"{topic}")
            last = topic
        lines.append(f"  {metric:<{width}}  {value}")
    return "\n".join(lines)


def compact(doc: dict) -> dict[str, float | int | None]:
    """One flat record per run for comparisons: the headline numbers (None when absent)."""
    return {
        "neg_elbo": _get(doc, "likelihood", "neg_elbo", "mean"),
        "nll": _get(doc, "likelihood", "nll", "mean"),
        "nll_k": _get(doc, "likelihood", "nll", "k"),
        "bits_per_dim": _get(doc, "likelihood", "bits_per_dim", "nll") or _get(doc, "likelihood", "bits_per_dim", "neg_elbo"),
        "kl": _get(doc, "likelihood", "kl", "mean"),
        "active_units": _get(doc, "latent", "active_units"),
        "psnr_db": _get(doc, "reconstruction", "psnr_db", "mean"),
        "ssim": _get(doc, "reconstruction", "ssim", "mean"),
        "linear_probe": _get(doc, "representation", "latent", "linear_probe"),
        "knn": _get(doc, "representation", "latent", "knn"),
        "frechet_distance": _get(doc, "samples", "frechet_distance"),
        "precision": _get(doc, "samples", "precision"),
        "recall": _get(doc, "samples", "recall"),
        "mig": _get(doc, "disentanglement", "mig"),
    }


__all__ = ["compact", "format_table", "headline_rows"]
