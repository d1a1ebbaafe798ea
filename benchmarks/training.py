"""Training speed of every registry model: vaelab's engine against a plain-PyTorch loop.

For each model, in the same process and on the same data, both train the *same
architecture* from the same initial weights for the same number of epochs:

- **reference**: the loop people write by hand (and pythae runs): a float32
  ``TensorDataset`` + ``DataLoader(shuffle=True)``, a fresh Bernoulli sample per batch when
  the data is binarised, the loss written out (BCE from logits + closed-form KL), default
  ``torch.optim.Adam``, ``loss.item()`` every step, fp32;
- **vaelab**: ``vaelab.training.train`` with its defaults (uint8 batches in memory, foreach
  Adam, no per-step host sync on accelerators, precision ``auto``).

It reports training images/s (the training loop only, validation excluded), the ratio, the
test −ELBO both reach, and the arithmetic rate behind them: a step's floating-point operations
(counted once per model) times steps per second, beside this machine's fp32 and bf16
matrix-product ceiling. Then the evaluation speed (the IWAE bound at K = 1000, images/s), the
peak resident memory of a short training per implementation (child processes), and DDP
scaling from 1 to 2 processes (``torchrun``). Prints tables and writes JSON.

    nice -n 10 .venv/bin/python benchmarks/training.py                       # every model, ~15 min
    .venv/bin/python benchmarks/training.py --models conv-vae --epochs 3 --images 20000

Time figures depend on the machine and on what else runs on it: compare ratios measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_MODELS = ("mlp-ae", "conv-ae", "mlp-vae", "conv-vae")


def run_config(model: str, args, **train):
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig

    return from_dict(RunConfig, {
        "model": {"name": model, "latent_dim": args.latent_dim},
        "data": {"name": args.data, "binarize": args.binarize, "limit": args.images},
        "train": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "report": False,
                  "seed": args.seed, "threads": args.threads, **train},
    })


# -- the plain-PyTorch reference -----------------------------------------------------------
def reference_loss(model, x):
    """The loss as a hand-written loop computes it: mean over the batch of −ELBO (or the AE loss)."""
    import torch
    import torch.nn.functional as F

    if model.registry_name not in BASE_MODELS or model.config.likelihood != "bernoulli":
        loss = model.config.loss()                   # other objectives: the model's own loss
        return loss(model(x, **loss.forward_options), x).loss.mean()
    B = x.shape[0]
    if model.is_variational:
        mean, logvar = model.encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).sum() / B
    else:
        z = model.encoder(x)
        kl = 0.0
    logits = model.decoder(z)
    return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B + kl


def train_reference(model, images_uint8, args) -> float:
    """Train ``model`` with the plain loop; returns the seconds spent in the training loop."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(images_uint8.float() / 255.0)
    loader = DataLoader(data, batch_size=args.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    seconds = 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        for (x,) in loader:
            if args.binarize == "dynamic":
                x = torch.bernoulli(x)
            loss = reference_loss(model, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # what a progress print does every step
        seconds += time.perf_counter() - start
    return seconds


def flops_per_image(model, images_uint8, args) -> float:
    """Floating-point operations of one training step (forward and backward) per image, counted by
    torch's FlopCounterMode on one batch of the reference loss (matrix products and convolutions;
    the count does not depend on the precision they run in). The model's weights, gradients and
    the global random state are as they were: the training that follows is unchanged."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.random.fork_rng(devices=[]), counter:
        x = torch.bernoulli(images_uint8[:args.batch_size].float() / 255.0)
        reference_loss(model, x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / x.shape[0]


def gemm_peak(size: int = 1024, repeats: int = 5) -> dict:
    """GFLOP/s of a square matrix product in fp32 and bf16 on the threads in use: the machine's
    ceiling for the arithmetic a training step is made of."""
    import torch

    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        rates[str(dtype).removeprefix("torch.")] = 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9
    return rates


def compare_model(name: str, args, splits) -> dict:
    import torch

    from vaelab.models import build_model
    from vaelab.runs import read_metrics
    from vaelab.training import evaluate_loss, train

    config = run_config(name, args)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, Path(tmp) / "run", progress=False, data=splits)
        epochs = [r for r in read_metrics(Path(tmp) / "run" / "metrics.jsonl") if r["event"] == "epoch"]
        vaelab_seconds = sum(r["train_seconds"] for r in epochs)
        steps = result.steps
        vaelab_test = result.final["test_neg_elbo"]
    torch.manual_seed(args.seed)
    model = build_model(config.model, splits.image_shape)
    torch.set_num_threads(args.threads or os.cpu_count())
    flops = flops_per_image(model, splits.train.images, args)
    ref_seconds = train_reference(model, splits.train.images, args)
    ref_test = evaluate_loss(model, model.config.loss(), splits.test.images, 1000, "cpu")["neg_elbo"]
    images = steps * args.batch_size
    return {"model": name, "epochs": args.epochs, "train_images": len(splits.train),
            "vaelab_images_per_s": images / vaelab_seconds, "reference_images_per_s": images / ref_seconds,
            "speedup": ref_seconds / vaelab_seconds, "gflop_per_image": flops / 1e9,
            "vaelab_gflop_per_s": images * flops / vaelab_seconds / 1e9,
            "reference_gflop_per_s": images * flops / ref_seconds / 1e9, "vaelab_test_neg_elbo": vaelab_test,
            "reference_test_neg_elbo": ref_test}


def evaluation_speed(args, splits, k: int = 1000, n: int = 20) -> dict:
    import torch

    from vaelab.evaluation.likelihood import iwae_nll
    from vaelab.models import build_model

    config = run_config("conv-vae", args)
    torch.manual_seed(0)
    model = build_model(config.model, splits.image_shape).eval()
    images = splits.test.images[:n].numpy()
    iwae_nll(model, images[:2], k)  # warm-up
    start = time.perf_counter()
    iwae_nll(model, images, k)
    seconds = time.perf_counter() - start
    return {"model": "conv-vae", "k": k, "images": n, "images_per_s": n / seconds}


def peak_memory(args) -> list[dict]:
    """Peak resident memory added by a short training (beyond the loaded data), per model and
    implementation, each in a fresh process."""
    rows = []
    for name in args.models:
        row = {"model": name}
        for impl in ("vaelab", "reference"):
            cmd = [sys.executable, __file__, "--child-memory", impl, "--models", name, "--epochs", "1",
                   "--images", str(min(args.images, 5000)), "--data", args.data, "--binarize", args.binarize,
                   "--threads", str(args.threads), "--latent-dim", str(args.latent_dim)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row[f"{impl}_peak_mib"] = json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"]
        rows.append(row)
    return rows


def _rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_memory(impl: str, args) -> None:
    """Peak resident memory of the training alone: the data are loaded first, then the peak is reset."""
    from vaelab.data import load_data

    name = args.models[0]
    splits = load_data(run_config(name, args).data)
    before = _rss_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:  # Linux: restart the VmHWM peak from here
        handle.write("5")
    if impl == "vaelab":
        from vaelab.training import train

        with tempfile.TemporaryDirectory() as tmp:
            train(run_config(name, args), Path(tmp) / "run", progress=False, data=splits)
    else:
        import torch

        from vaelab.models import build_model

        torch.manual_seed(args.seed)
        train_reference(build_model(run_config(name, args).model, splits.image_shape), splits.train.images, args)
    print(json.dumps({"peak_mib": _rss_mib("VmHWM") - before}))


def ddp_scaling(args) -> list[dict]:
    """conv-vae, one epoch, the same global batch, under torchrun with 1 and 2 processes."""
    from vaelab.runs import read_metrics

    rows = []
    cores = os.cpu_count() or 1
    for procs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
                   "-m", "vaelab", "train", "--model", "conv-vae", "--data", args.data, "--binarize", args.binarize,
                   "--limit", str(args.images), "--epochs", "1", "--batch-size", str(args.batch_size),
                   "--latent-dim", str(args.latent_dim), "--threads", str(max(1, cores // procs)),
                   "--no-report", "--quiet", "--out", f"{tmp}/run"]
            subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(max(1, cores // procs))})
            epoch = [r for r in read_metrics(Path(tmp) / "run" / "metrics.jsonl") if r["event"] == "epoch"][0]
            rows.append({"processes": procs, "threads_each": max(1, cores // procs),
                         "images_per_s": epoch["images_per_s"]})
    rows[1]["scaling"] = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    return rows


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = " | ".join(title for title, _, _ in columns)
    lines = [f"| {head} |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format(row.get(key, ""), fmt) if key in row else "" for _, key, fmt in columns) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="all", help="comma-separated registry names, or all")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--binarize", default="dynamic")
    parser.add_argument("--images", type=int, default=12800, help="training images used")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: speed,eval,memory,ddp")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training.json"))
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from vaelab.models import model_names

    args.models = model_names() if args.models == "all" else args.models.split(",")
    if args.child_memory:
        child_memory(args.child_memory, args)
        return 0
    import torch

    from vaelab.data import load_data
    from vaelab.training.precision import resolve

    skip = set(filter(None, args.skip.split(",")))
    torch.set_num_threads(args.threads or os.cpu_count())
    splits = load_data(run_config(args.models[0], args).data)
    report = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "torch": torch.__version__, "precision_auto": resolve("auto", torch.device("cpu")),
                          "load_average_start": os.getloadavg()[0]},
              "settings": {k: v for k, v in vars(args).items() if k != "child_memory"}}
    if "speed" not in skip:
        report["speed"] = []
        for name in args.models:
            row = compare_model(name, args, splits)
            report["speed"].append(row)
            print(f"{name}: vaelab {row['vaelab_images_per_s']:.0f} img/s, reference {row['reference_images_per_s']:.0f}"
                  f" img/s (×{row['speedup']:.2f}); test −ELBO {row['vaelab_test_neg_elbo']:.2f} vs "
                  f"{row['reference_test_neg_elbo']:.2f}", flush=True)
        print(table(report["speed"], [("model", "model", ""), ("vaelab img/s", "vaelab_images_per_s", ".0f"),
                                       ("plain PyTorch img/s", "reference_images_per_s", ".0f"), ("ratio", "speedup", ".2f"),
                                       ("vaelab test −ELBO", "vaelab_test_neg_elbo", ".2f"),
                                       ("plain test −ELBO", "reference_test_neg_elbo", ".2f")]))
        report["gemm_peak_gflop_per_s"] = peak = gemm_peak()
        for row in report["speed"]:   # a ratio of 2 asks for twice the plain loop's arithmetic rate
            row["vaelab_share_of_bf16_peak"] = row["vaelab_gflop_per_s"] / peak["bfloat16"]
            row["share_of_bf16_peak_for_2x"] = 2 * row["reference_gflop_per_s"] / peak["bfloat16"]
        print(f"\nmatrix-product ceiling on {args.threads or os.cpu_count()} thread(s): fp32 {peak['float32']:.0f}, "
              f"bf16 {peak['bfloat16']:.0f} GFLOP/s")
        print(table(report["speed"], [("model", "model", ""), ("GFLOP per image", "gflop_per_image", ".3f"),
                                      ("vaelab GFLOP/s", "vaelab_gflop_per_s", ".0f"),
                                      ("plain PyTorch GFLOP/s", "reference_gflop_per_s", ".0f"),
                                      ("vaelab, share of bf16 ceiling", "vaelab_share_of_bf16_peak", ".0%"),
                                      ("share a ratio of 2 needs", "share_of_bf16_peak_for_2x", ".0%")]))
    if "eval" not in skip:
        report["evaluation"] = evaluation_speed(args, splits)
        print(f"\nIWAE bound, K = 1000: {report['evaluation']['images_per_s']:.2f} images/s (conv-vae)")
    if "memory" not in skip:
        report["memory"] = peak_memory(args)
        print("\n" + table(report["memory"], [("model", "model", ""), ("vaelab peak MiB", "vaelab_peak_mib", ".0f"),
                                              ("plain PyTorch peak MiB", "reference_peak_mib", ".0f")]))
    if "ddp" not in skip:
        report["ddp"] = ddp_scaling(args)
        print("\n" + table(report["ddp"], [("processes", "processes", "d"), ("threads each", "threads_each", "d"),
                                           ("img/s", "images_per_s", ".0f"), ("scaling", "scaling", ".2f")]))
    report["machine"]["load_average_end"] = os.getloadavg()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
