"""What the engine's fast paths buy: channels-last (bf16 on a CPU) and fused Adam, on and off.

Trains the conv VAE with vaelab's engine on the same data, alternately with both paths turned
off (NCHW tensors, the multi-tensor ``foreach`` Adam) and on (the defaults), in one process, and
prints the training images/s of each pair and their ratio. Time figures depend on what else
runs on the machine: compare the pairs, which run back to back.

    .venv/bin/python benchmarks/fast_paths.py --pairs 3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def images_per_s(config, splits) -> tuple[float, float]:
    from vaelab.runs import read_metrics
    from vaelab.training import train

    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, Path(tmp) / "run", progress=False, data=splits)
        epochs = [r for r in read_metrics(Path(tmp) / "run" / "metrics.jsonl") if r["event"] == "epoch"]
        return result.steps * config.train.batch_size / sum(r["train_seconds"] for r in epochs), \
            result.final["test_neg_elbo"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--images", type=int, default=12800, help="training images used")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    import torch

    import vaelab.theory.optim as optim
    from vaelab.config import from_dict
    from vaelab.data import load_data
    from vaelab.runs import RunConfig
    from vaelab.training import precision

    torch.set_num_threads(args.threads)
    config = from_dict(RunConfig, {
        "model": {"name": "conv-vae", "latent_dim": 32},
        "data": {"name": "fashion-mnist", "binarize": "dynamic", "limit": args.images},
        "train": {"epochs": args.epochs, "batch_size": 128, "lr": 1e-3, "report": False, "seed": 0,
                  "threads": args.threads}})
    splits = load_data(config.data)
    fast_layout, fast_adam = precision.memory_format, optim._adam_kernel
    print(f"precision auto = {precision.resolve('auto', torch.device('cpu'))}")
    for pair in range(args.pairs):
        precision.memory_format, optim._adam_kernel = (lambda *a: torch.contiguous_format), (lambda p: {"foreach": True})
        off, off_loss = images_per_s(config, splits)
        precision.memory_format, optim._adam_kernel = fast_layout, fast_adam
        on, on_loss = images_per_s(config, splits)
        print(f"pair {pair + 1}: off {off:,.0f} img/s (test −ELBO {off_loss:.2f}), on {on:,.0f} img/s "
              f"({on_loss:.2f}): ×{on / off:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
