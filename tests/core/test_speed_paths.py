"""The fast paths of training keep its results: channels-last only where it pays, the fused Adam
kernel equal to the multi-tensor one, and resumed optimiser state in its parameter's layout."""

from __future__ import annotations

import torch

from vaelab.config import from_dict
from vaelab.models import ModelConfig, build_model
from vaelab.theory import make_optimizer
from vaelab.training.checkpoint import match_state_layouts
from vaelab.training.precision import memory_format


def test_channels_last_only_for_convolutions_in_bf16_on_a_cpu():
    conv = build_model(from_dict(ModelConfig, {"name": "conv-vae", "latent_dim": 2}), (1, 8, 8))
    dense = build_model(from_dict(ModelConfig, {"name": "mlp-vae", "latent_dim": 2}), (1, 8, 8))
    cpu = torch.device("cpu")
    assert memory_format("bf16", cpu, conv) == torch.channels_last
    assert memory_format("fp32", cpu, conv) == torch.contiguous_format
    assert memory_format("bf16", cpu, dense) == torch.contiguous_format


def _adam_after_two_steps(kind: str, reload_contiguous: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(8, 4, 3, 3, generator=generator)
    grads = [torch.randn(8, 4, 3, 3, generator=generator) for _ in range(2)]
    param = torch.nn.Parameter(start.clone().to(memory_format=torch.channels_last))
    optimizer = torch.optim.Adam([param], lr=0.1, **{kind: True})
    for i, grad in enumerate(grads):
        param.grad = grad.clone().to(memory_format=torch.channels_last)
        optimizer.step()
        if i == 0 and reload_contiguous:      # what a checkpoint gives back: contiguous moments
            state = {k: v.contiguous() if v.dim() else v for k, v in optimizer.state[param].items()}
            optimizer.state[param].update(state)
            match_state_layouts(optimizer)
    return param.detach()


def test_resumed_moments_take_their_parameters_layout_so_fused_adam_stays_right():
    reference = _adam_after_two_steps("foreach", reload_contiguous=False)
    assert torch.allclose(_adam_after_two_steps("fused", reload_contiguous=False), reference, atol=1e-6)
    assert torch.allclose(_adam_after_two_steps("fused", reload_contiguous=True), reference, atol=1e-6)


def test_adam_uses_the_fused_kernel_on_a_cpu_and_takes_parameter_groups():
    weights = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2))]
    assert make_optimizer("adam", weights, 1e-3).defaults["fused"] is True
    grouped = make_optimizer("adamw", [{"params": iter(weights)}], 1e-3)   # a generator inside a group
    assert len(grouped.param_groups[0]["params"]) == 2


def test_a_channels_last_run_resumes_exactly(tmp_path, monkeypatch):
    """Channels-last parameters with moments loaded contiguous from the checkpoint: the engine gives the
    moments their parameters' layout (else fused Adam updates the wrong elements after a resume)."""
    from vaelab.runs import RunConfig
    from vaelab.training import precision, train
    from vaelab.training.checkpoint import load_checkpoint

    monkeypatch.setattr(precision, "memory_format", lambda *args: torch.channels_last)   # any precision, any CPU

    def config(epochs):
        return from_dict(RunConfig, {"model": {"name": "conv-vae", "latent_dim": 3},
                                     "data": {"name": "digits", "limit": 256},
                                     "train": {"epochs": epochs, "batch_size": 64, "report": False, "threads": 1,
                                               "precision": "fp32", "deterministic": True}})

    train(config(2), tmp_path / "whole", progress=False)
    train(config(1), tmp_path / "parts", progress=False)
    train(config(2), tmp_path / "parts", resume=True, progress=False)
    whole, parts = load_checkpoint(tmp_path / "whole")["model"], load_checkpoint(tmp_path / "parts")["model"]
    assert all(torch.equal(whole[name], parts[name]) for name in whole)
