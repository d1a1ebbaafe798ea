"""Test log-likelihood of trained runs at the papers' K = 5000, within a CPU budget.

The importance-weighted bound at K = 5000 on all 10,000 Fashion-MNIST test images costs
50 million decoder passes: hours to days on two CPU cores. This script measures it exactly
where it can and says how the rest is estimated:

1. on the whole test split, the −ELBO per image (``--full-k`` samples, default 2: cheap);
2. on the first ``--images`` test images, the K = 5000 bound −L_K *and* the K-sample
   −ELBO of the same images, so the gap g_i = −ELBO_i − (−L_K,i) ≥ 0 is known per image;
3. the whole split's NLL is then estimated as  mean_all(−ELBO) − mean_subset(g), with the
   standard errors of both parts combined (the gap varies far less between images than
   the likelihood does, which is why a subset pins it down).

It prints a table (one row per run) and writes JSON:

    .venv/bin/python benchmarks/likelihood.py runs/fmnist-pixel runs/fmnist --images 200
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(run: Path, args) -> dict:

    import vaelab
    from vaelab.data import load_data
    from vaelab.evaluation.likelihood import iwae_bound
    from vaelab.evaluation.suite import mean_stderr, tqdm_progress

    def mean_se(values) -> tuple[float, float]:
        m = mean_stderr(values)
        return m["mean"], m["stderr"]

    opened = vaelab.open_run(run)
    model = opened.model
    test = load_data(opened.config.data).split("test").images   # binarised once, seeded, as `evaluate` sees it
    start = time.perf_counter()
    full = iwae_bound(model, test, args.full_k, seed=args.seed,
                      progress=tqdm_progress(len(test), f"{run.name}: ELBO, all test images"))
    full_seconds = time.perf_counter() - start
    subset = test[: args.images]
    start = time.perf_counter()
    sub = iwae_bound(model, subset, args.k, seed=args.seed, batch_size=args.batch_size,
                     progress=tqdm_progress(len(subset), f"{run.name}: K = {args.k} bound"))
    sub_seconds = time.perf_counter() - start
    neg_elbo_all, neg_elbo_all_se = mean_se(-full.mean_log_weight)
    gap = -sub.mean_log_weight - sub.nll
    gap_mean, gap_se = mean_se(gap)
    nll_sub, nll_sub_se = mean_se(sub.nll)
    return {
        "run": str(run), "model": model.registry_name, "test_images": len(test), "subset_images": len(subset),
        "k": args.k, "full_k": args.full_k,
        "neg_elbo_all": neg_elbo_all, "neg_elbo_all_se": neg_elbo_all_se,
        "neg_elbo_subset": mean_se(-sub.mean_log_weight)[0],
        "nll_subset": nll_sub, "nll_subset_se": nll_sub_se,
        "gap_subset": gap_mean, "gap_subset_se": gap_se,
        "nll_all_estimate": neg_elbo_all - gap_mean,
        "nll_all_estimate_se": math.hypot(neg_elbo_all_se, gap_se),
        "seconds_all": full_seconds, "seconds_subset": sub_seconds,
        "subset_images_per_s": len(subset) / sub_seconds,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (binarised test sets)")
    parser.add_argument("-k", type=int, default=5000, help="importance samples on the subset (default 5000)")
    parser.add_argument("--images", type=int, default=200, help="first N test images get the K-sample bound")
    parser.add_argument("--full-k", type=int, default=2, help="samples per image for the whole split's −ELBO")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "likelihood.json")
    args = parser.parse_args(argv)
    import os

    import torch

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    rows = [measure(run, args) for run in args.runs]
    print(f"\nK = {args.k} on the first {args.images} test images; whole split −ELBO with {args.full_k} samples per image")
    print("| run | model | test −ELBO (all) | −log p(x) ≤ (subset) | gap −ELBO − bound (subset) | test NLL estimate (all) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {Path(r['run']).name} | {r['model']} | {r['neg_elbo_all']:.2f} ± {r['neg_elbo_all_se']:.2f} | "
              f"{r['nll_subset']:.2f} ± {r['nll_subset_se']:.2f} | {r['gap_subset']:.2f} ± {r['gap_subset_se']:.2f} | "
              f"**{r['nll_all_estimate']:.2f} ± {r['nll_all_estimate_se']:.2f}** |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "runs": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
