"""dims_by_kl, traverse and `vaelab traverse`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.apps.traversal import dims_by_kl, kl_per_dim, traversal_latents, traverse
from vaelab.errors import VaelabError


def test_kl_per_dim_is_the_closed_form_averaged_over_images(vae, digits):
    with torch.no_grad():
        posterior = vae.encode(torch.from_numpy(digits).float() / 255)
    mu, logvar = posterior.mean.double().numpy(), posterior.logvar.double().numpy()
    expected = np.zeros(vae.latent_dim)
    for i in range(len(digits)):   # KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²), per dimension
        expected += 0.5 * (mu[i] ** 2 + np.exp(logvar[i]) - 1 - logvar[i])
    assert np.allclose(kl_per_dim(vae, digits), expected / len(digits), rtol=1e-4, atol=1e-7)
    order = dims_by_kl(vae, digits)
    assert sorted(order) == list(range(vae.latent_dim))
    assert np.all(np.diff(expected[order]) <= 1e-9)


def test_autoencoders_rank_dimensions_by_code_variance(ae, digits):
    with torch.no_grad():
        codes = ae.encode(torch.from_numpy(digits).float() / 255).numpy()
    assert np.array_equal(dims_by_kl(ae, digits), np.argsort(-codes.var(axis=0), kind="stable"))


def test_each_row_varies_only_its_dimension_over_the_range(vae, digits):
    z = traversal_latents(vae, digits[0], dims=[2, 0], value_range=2.0, steps=5)
    with torch.no_grad():
        base = vae.encode_mean(torch.from_numpy(digits[:1]).float() / 255)[0]
    assert z.shape == (2, 5, vae.latent_dim)
    for row, d in enumerate([2, 0]):
        others = [k for k in range(vae.latent_dim) if k != d]
        assert torch.allclose(z[row][:, others], base[others].expand(5, -1))
        assert torch.allclose(z[row][:, d], torch.linspace(-2.0, 2.0, 5))   # prior N(0, 1): v standard deviations


def test_ae_traversal_is_in_units_of_the_code_spread(ae):
    z = traversal_latents(ae, None, dims=[1], value_range=1.0, steps=3)[0]
    mean, std = ae.code_mean[1], ae.code_cov[1, 1].sqrt()
    assert torch.allclose(z[:, 1], torch.stack([mean - std, mean, mean + std]), atol=1e-6)


def test_traverse_decodes_the_grid(vae, digits):
    grid = traverse(vae, digits[0], dims=[0, 1, 3], steps=4)
    assert grid.shape == (3, 4, 1, 8, 8) and grid.dtype == np.uint8


def test_missing_dimensions_are_refused(vae):
    with pytest.raises(VaelabError, match="dimension 9 does not exist"):
        traverse(vae, dims=[0, 9])


def test_cli_ranks_by_kl_and_writes_the_grid(tiny_vae_run, digit_files, cli, tmp_path):
    paths, _ = digit_files
    status, out, _ = cli("traverse", tiny_vae_run, "-o", tmp_path / "t.png", "--top", 3)
    assert status == 0 and "3 dimensions × 9 steps" in out and (tmp_path / "t.png").exists()
    status, out, _ = cli("traverse", tiny_vae_run, paths[0], "--dims", "1,3", "--range", 2, "--steps", 5,
                         "-o", tmp_path / "u.png")
    assert status == 0 and "2 dimensions × 5 steps" in out


def test_cli_rejects_a_bad_dims_list(tiny_vae_run, cli, tmp_path):
    status, _, err = cli("traverse", tiny_vae_run, "--dims", "one,two", "-o", tmp_path / "t.png")
    assert status == 2 and err.startswith("vaelab: error: --dims") and err.count("\n") == 1
