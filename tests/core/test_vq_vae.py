"""The VQ-VAE (models/vq_vae.py) against independent truth: loops written from the formulas of
van den Oord et al. (2017) — nearest-code quantisation, the EMA codebook of Appendix A.1, the
straight-through gradient, the PixelCNN prior's masking and log-probability — the bound's
invariants for a deterministic posterior, and the codec's exact round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vaelab import VaelabError
from vaelab.config import from_dict
from vaelab.models import ModelConfig, build_model
from vaelab.models.losses import VQELBO
from vaelab.models.vq_vae import LAPLACE_EPSILON, ema_update, usage_table

SHAPE = (1, 8, 8)          # two stride-2 stages: a 2×2 grid
GRID_SHAPE = (1, 16, 12)   # a 4×3 grid: rows and columns differ, so raster order is tested


def make(shape=SHAPE, **settings):
    torch.manual_seed(0)
    config = from_dict(ModelConfig, {"name": "vq-vae", "latent_dim": 3, "codebook_size": 8, "prior_features": 8,
                                     "prior_layers": 2, "hidden": [8, 8], **settings})
    return build_model(config, shape)


def images(n=6, shape=SHAPE, seed=1):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_quantisation_is_the_nearest_code_found_by_a_loop():
    model = make().eval()
    z_e = torch.randn(5, 3, 2, 2, generator=torch.Generator().manual_seed(2)) * 2
    got = model.quantizer.quantize(z_e)
    codebook = model.quantizer.codebook.double()
    for b in range(5):
        for i in range(2):
            for j in range(2):
                v = z_e[b, :, i, j].double()
                distances = [float(((v - codebook[k]) ** 2).sum()) for k in range(codebook.shape[0])]
                assert got[b, i, j] == min(range(len(distances)), key=distances.__getitem__)
    # the latent the apps see is the looked-up grid, and it snaps back to the same codes
    z = model.indices_to_latent(got)
    assert z.shape == (5, model.latent_dim) and torch.equal(model.latent_to_indices(z), got)


def _ema_by_loop(cluster_size, embed_sum, z, indices, decay):
    K, D = embed_sum.shape
    sizes, sums = cluster_size.double().tolist(), embed_sum.double().tolist()
    for k in range(K):
        members = [z[j].double() for j in range(z.shape[0]) if indices[j] == k]
        sizes[k] = decay * sizes[k] + (1 - decay) * len(members)
        for d in range(D):
            sums[k][d] = decay * sums[k][d] + (1 - decay) * sum(float(m[d]) for m in members)
    n = sum(sizes)
    smoothed = [(s + LAPLACE_EPSILON) / (n + K * LAPLACE_EPSILON) * n for s in sizes]
    return (torch.tensor(sizes, dtype=torch.float64), torch.tensor(sums, dtype=torch.float64),
            torch.tensor([[s / smoothed[k] for s in sums[k]] for k in range(K)], dtype=torch.float64))


def test_the_ema_update_is_appendix_a1_written_as_a_loop():
    g = torch.Generator().manual_seed(3)
    cluster_size, embed_sum = torch.rand(5, generator=g) * 4, torch.randn(5, 2, generator=g)
    z, indices = torch.randn(11, 2, generator=g), torch.tensor([0, 0, 2, 4, 4, 4, 1, 0, 2, 2, 4])
    want_sizes, want_sums, want_codebook = _ema_by_loop(cluster_size, embed_sum, z, indices, 0.9)
    codebook = ema_update(cluster_size, embed_sum, z, indices, 0.9)
    assert torch.allclose(cluster_size.double(), want_sizes, atol=1e-6)
    assert torch.allclose(embed_sum.double(), want_sums, atol=1e-6)
    assert torch.allclose(codebook.double(), want_codebook, atol=1e-5)


def test_a_training_forward_updates_the_codebook_by_the_ema_and_an_eval_forward_does_not():
    model = make(restart_after=0, ema_decay=0.8).train()
    q = model.quantizer
    q.initialised.fill_(1)             # past the first step's placement of the codes (tested below)
    x = images()
    z_e = model.encoder(x).detach()
    indices = q.quantize(z_e).flatten()
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, 3)
    _, _, want = _ema_by_loop(q.cluster_size, q.embed_sum, flat, indices, 0.8)
    model(x)
    assert torch.allclose(q.codebook.double(), want, atol=1e-5)
    assert torch.equal(q.usage, usage_table(q.cluster_size)) and int(q.usage.min()) >= 1
    before = {k: v.clone() for k, v in q.state_dict().items()}
    model.eval()(x)
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())


def test_a_code_unused_for_the_threshold_is_restarted_at_an_encoder_output():
    model = make(restart_after=2).train()
    q = model.quantizer
    q.initialised.fill_(1)
    with torch.no_grad():
        q.codebook[5] = 1e4            # so far from every encoder output that nothing picks it,
        q.embed_sum[5] = 1e4 * q.cluster_size[5]       # and the EMA keeps it there
    x = images()
    model(x)
    assert q.idle_steps[5] == 1 and q.codebook[5, 0] > 1e3     # one idle step: not yet
    z_e = model.encoder(x).detach().permute(0, 2, 3, 1).reshape(-1, 3)
    model(x)
    assert q.idle_steps[5] == 0 and q.cluster_size[5] == 1.0
    assert torch.cdist(q.codebook[5:6], z_e).min() < 1e-6         # it is one of the batch's encoder outputs


def test_the_first_training_step_places_every_code_at_an_encoder_output():
    model = make(ema_decay=0.99999).train()
    x = images()
    z_e = model.encoder(x).detach().permute(0, 2, 3, 1).reshape(-1, 3)
    assert torch.cdist(model.quantizer.codebook, z_e).min(1).values.max() > 0.1      # random codes, before
    model(x)
    assert torch.cdist(model.quantizer.codebook, z_e).min(1).values.max() < 1e-3
    assert model.quantizer.initialised.item() == 1


def test_the_straight_through_gradient_reaches_the_encoder_and_the_prior_gradient_does_not():
    model = make().eval()
    x = images()
    captured = {}

    def keep(module, inputs, out):
        out.retain_grad()
        captured["z_e"] = out

    model.encoder.register_forward_hook(keep)
    output = model(x)
    (-output.likelihood.log_prob(x).sum()).backward()
    # the decoder's gradient at z_q, computed on its own, is what the encoder output received
    z_q = model.quantizer.lookup(output.indices).detach().requires_grad_(True)
    (-model.likelihood(model.decoder(z_q)).log_prob(x).sum()).backward()
    assert z_q.grad.abs().sum() > 0 and torch.allclose(captured["z_e"].grad, z_q.grad, atol=1e-6)

    model.zero_grad(set_to_none=True)
    model(x).prior_nll.sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior_net.parameters())


def test_the_prior_is_autoregressive_in_raster_order():
    model = make(GRID_SHAPE).eval()
    h, w = model.grid
    assert (h, w) == (4, 3)
    g = torch.Generator().manual_seed(4)
    base = torch.randint(0, 8, (2, h, w), generator=g)
    logits = model.prior_net(base)
    changed_later = False
    for p in range(h * w):
        i, j = divmod(p, w)
        other = base.clone()
        other[:, i, j] = (other[:, i, j] + 1 + torch.randint(0, 7, (2,), generator=g)) % 8
        new = model.prior_net(other)
        for q in range(h * w):
            a, b = divmod(q, w)
            same = torch.allclose(new[:, :, a, b], logits[:, :, a, b], atol=0, rtol=0)
            if q <= p:
                assert same, f"changing position {p} changed the logits of position {q}"
            changed_later |= not same
    assert changed_later         # the prior does look back (the test above could fail)


def test_log_p_of_a_grid_is_the_sum_of_per_position_log_softmax():
    model = make(GRID_SHAPE).eval()
    indices = torch.randint(0, 8, (3, 4, 3), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        logits = model.prior_net(indices).double()
    for b in range(3):
        total = 0.0
        for i in range(4):
            for j in range(3):
                row = logits[b, :, i, j]
                total += float(row[indices[b, i, j]] - math.log(sum(math.exp(float(v)) for v in row)))
        assert model.prior_net.log_prob(indices)[b].item() == pytest.approx(total, abs=1e-4)
    # the prior the ELBO uses scores the flattened latent by the same numbers
    z = model.indices_to_latent(indices)
    assert torch.allclose(model.prior(3).log_prob(z), model.prior_net.log_prob(indices))


def test_the_k_sample_bound_equals_the_elbo_for_every_k():
    from vaelab.evaluation.likelihood import iwae_bound
    from vaelab.models.losses import log_weights

    model = make().eval()
    x = (images(5) > 0.5).float()
    with torch.no_grad():
        output = model(x)
        terms = VQELBO()(output, x)
        neg_elbo = terms.parts["reconstruction"] + terms.parts["kl"]
        assert torch.allclose(output.posterior.log_prob(output.z), torch.zeros(5))
        for k in (1, 4):
            log_w = log_weights(model(x, generator=torch.Generator().manual_seed(0), samples=k), x, discrete=True)
            assert log_w.shape == (k, 5)
            bound = torch.logsumexp(log_w, 0) - math.log(k)
            assert torch.allclose(-bound, neg_elbo, atol=1e-4)
    uint8 = (x * 255).to(torch.uint8)
    for k in (1, 3):
        assert torch.allclose(iwae_bound(model, uint8, k).nll.float(), neg_elbo, atol=1e-3)


def test_the_codec_round_trip_is_exact_and_its_size_is_the_table_entropy():
    from vaelab.apps.codec import compress, decompress

    model = make(restart_after=0).train()
    for _ in range(5):                         # a few EMA steps: a skewed, learned usage table
        model(images(32, seed=7))
    model.eval()
    x = (images(40, seed=8) * 255).to(torch.uint8)
    data = compress(model, x.numpy())
    decoded = decompress(data, model)
    with torch.no_grad():
        indices = model.encode_indices(x.float() / 255)
        want = model.decode_mean(model.indices_to_latent(indices))
    assert np.array_equal(decoded, np.clip(np.rint(want.numpy() * 255), 0, 255).astype(np.uint8))
    usage = model.quantizer.usage.double()
    entropy_bytes = float(-(usage[indices] / usage.sum()).log2().sum()) / 8
    coder = model.entropy_model()
    payload = sum(len(p) for p in coder.compress_latents(coder.analysis(x.numpy()), 1.0))
    assert entropy_bytes - 1 <= payload <= entropy_bytes + 2 * len(x)      # the trim leaves < 2 bytes/image
    assert len(data) - payload < 30 + 2 * len(x)                            # header and lengths only


def test_the_usage_table_is_the_integer_rounding_of_the_cluster_shares():
    sizes = torch.tensor([0.0, 1e-9, 3.0, 1.0])
    table = usage_table(sizes)
    assert table.dtype == torch.int64 and table.tolist()[0] == 1 and table.tolist()[1] == 1
    assert table[2] == round(0.75 * (1 << 16)) and table[3] == round(0.25 * (1 << 16))


def test_bad_settings_are_refused_in_one_line():
    with pytest.raises(VaelabError) as err:
        from_dict(ModelConfig, {"name": "vq-vae", "codebook_size": 1})
    assert "\n" not in str(err.value)


def test_the_latent_gaussian_has_the_moments_of_codes_drawn_by_the_usage_table():
    model = make()
    with torch.no_grad():
        model.quantizer.usage.copy_(torch.tensor([5, 1, 1, 30, 2, 8, 1, 12]))
    mean, cov = model.latent_gaussian()
    g = torch.Generator().manual_seed(0)
    usage = model.quantizer.usage.double()
    h, w = model.grid
    picks = torch.multinomial(usage / usage.sum(), 200_000 * h * w, replacement=True, generator=g).view(-1, h, w)
    draws = model.indices_to_latent(picks).double()                               # every position independent
    assert torch.allclose(draws.mean(0), mean.double(), atol=0.01)
    assert torch.allclose(torch.cov(draws.T), cov.double(), atol=0.02)


def test_it_trains_samples_and_evaluates(tmp_path):
    from vaelab.runs import METRICS_FILE, RunConfig, load_model, read_metrics
    from vaelab.training import train

    config = from_dict(RunConfig, {"model": {"name": "vq-vae", "latent_dim": 4, "codebook_size": 16,
                                             "prior_features": 8, "prior_layers": 2, "restart_after": 5},
                                   "data": {"name": "digits", "limit": 256},
                                   "train": {"epochs": 2, "batch_size": 32, "report": False, "threads": 1}})
    train(config, tmp_path / "run", progress=False)
    final = [m for m in read_metrics(tmp_path / "run" / METRICS_FILE) if m.get("event") == "final"][-1]
    assert final["test_neg_elbo"] == pytest.approx(final["test_reconstruction"] + final["test_kl"], rel=1e-5)
    assert final["test_kl"] > 0 and final["test_commitment"] >= 0
    model = load_model(tmp_path / "run")
    samples = model.sample(3, torch.Generator().manual_seed(0), temperature=0.8)
    assert samples.shape == (3, 1, 8, 8) and 0 <= float(samples.min()) and float(samples.max()) <= 1
    again = model.sample(3, torch.Generator().manual_seed(0), temperature=0.8)
    assert torch.equal(samples, again)

    from vaelab.cli import main

    assert main(["evaluate", str(tmp_path / "run"), "--limit", "20", "-k", "3", "--skip",
                 "samples,representation", "--no-save"]) == 0


def test_a_resumed_run_ends_with_the_codebook_of_an_uninterrupted_one(tmp_path):
    """The EMA buffers, idle counters and restarts (drawn from the global RNG) resume exactly."""
    from vaelab.runs import RunConfig, load_model
    from vaelab.training import train
    from vaelab.training.checkpoint import load_checkpoint

    def config(epochs):
        return from_dict(RunConfig, {"model": {"name": "vq-vae", "latent_dim": 3, "codebook_size": 32,
                                               "prior_features": 8, "prior_layers": 2, "restart_after": 1},
                                     "data": {"name": "digits", "limit": 256},
                                     "train": {"epochs": epochs, "batch_size": 32, "report": False, "threads": 1,
                                               "deterministic": True}})

    train(config(2), tmp_path / "whole", progress=False)
    train(config(1), tmp_path / "parts", progress=False)
    train(config(2), tmp_path / "parts", resume=True, progress=False)
    # the last epoch's state (the checkpoint), not the best epoch's weights, which could be epoch 1 in both
    whole, parts = load_checkpoint(tmp_path / "whole")["model"], load_checkpoint(tmp_path / "parts")["model"]
    assert whole.keys() == parts.keys()
    assert all(torch.equal(whole[k], parts[k]) for k in whole), [k for k in whole if not torch.equal(whole[k], parts[k])]
    assert int(load_model(tmp_path / "whole").quantizer.idle_steps.max()) == 0   # each code used or restarted
