"""The training benchmark's arithmetic count (benchmarks/training.py), against a count by hand."""

from types import SimpleNamespace

import torch

from vaelab.config import from_dict
from vaelab.models import config_class
from vaelab.models.registry import build_model


def test_a_dense_vae_step_costs_two_flops_per_weight_per_product(benchmark_script):
    """A dense layer in → out (Def. 1.1.2) costs 2·in·out operations per image forward, the same
    again for the weights' gradient and for the input's gradient, except the first layer, whose
    input (the image) needs none."""
    bench = benchmark_script("training")
    config = from_dict(config_class("mlp-vae"), {"name": "mlp-vae", "latent_dim": 8, "hidden": [64, 32]})
    torch.manual_seed(0)
    model = build_model(config, (1, 28, 28))
    images = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    counted = bench.flops_per_image(model, images, SimpleNamespace(batch_size=16))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    first = model.encoder.net.layers[0].linear
    by_hand = sum(2 * m.in_features * m.out_features * (2 if m is first else 3) for m in linears)
    assert counted == by_hand
    assert all(p.grad is None for p in model.parameters())     # the count leaves no gradients behind
