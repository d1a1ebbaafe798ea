"""manifold and `vaelab manifold`: the prior's quantile grid (2-D) or the codes' principal plane."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from vaelab.apps.manifold import manifold, manifold_latents, principal_plane, quantile_grid
from vaelab.errors import VaelabError


@pytest.fixture(scope="module")
def vae_2d():
    """An untrained conv VAE with a 2-D latent: the z grid does not depend on training."""
    from vaelab.models import build_model
    from vaelab.models.vae import ConvVAEConfig

    torch.manual_seed(0)
    return build_model(ConvVAEConfig(latent_dim=2), (1, 8, 8)).eval()


def test_quantile_grid_is_the_normal_inverse_cdf_at_bin_midpoints():
    assert np.allclose(quantile_grid(7), norm.ppf((np.arange(7) + 0.5) / 7), atol=1e-12)


def test_2d_grid_uses_the_priors_quantiles(vae_2d):
    steps = 6
    z, _ = manifold_latents(vae_2d, steps)
    q = norm.ppf((np.arange(steps) + 0.5) / steps)
    for i in range(steps):
        for j in range(steps):   # across: z₀ rising; down: z₁ falling
            assert np.allclose(z[i, j], [q[j], q[steps - 1 - i]], atol=1e-12)
    grid = manifold(vae_2d, steps)
    with torch.no_grad():
        corner = vae_2d.decode_mean(torch.tensor([[q[0], q[-1]]], dtype=torch.float32))
    assert grid.shape == (steps, steps, 1, 8, 8)
    assert np.abs(grid[0, 0].astype(int) - np.round(corner[0].numpy() * 255)).max() <= 1


def test_principal_plane_matches_an_svd_of_the_codes(vae, digits):
    centre, axes, scales = principal_plane(vae, digits)
    with torch.no_grad():
        codes = vae.encode_mean(torch.from_numpy(digits).float() / 255).double().numpy()
    centred = codes - codes.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    assert np.allclose(centre, codes.mean(axis=0), atol=1e-6)
    assert np.allclose(scales, singular[:2] / np.sqrt(len(codes) - 1), rtol=1e-4)
    for k in range(2):   # eigenvectors are defined up to sign
        assert abs(abs(axes[k] @ vt[k]) - 1) < 1e-6


def test_higher_dimensional_grid_lies_in_the_principal_plane(vae, digits):
    z, _ = manifold_latents(vae, 5, digits)
    centre, axes, scales = principal_plane(vae, digits)
    q = quantile_grid(5)
    assert np.allclose(z[2, 2], centre)   # the middle tile is the codes' mean
    assert np.allclose(z[2, 4], centre + q[4] * scales[0] * axes[0])
    assert np.allclose(z[0, 2], centre + q[4] * scales[1] * axes[1])


def test_a_vae_without_images_needs_them_for_more_than_two_dims(vae):
    with pytest.raises(VaelabError, match="give images"):
        manifold(vae, 4)


def test_an_autoencoder_uses_its_code_gaussian(ae):
    assert manifold(ae, 4).shape == (4, 4, 1, 8, 8)


@pytest.mark.parametrize("which", ["tiny_vae_run", "tiny_ae_run"])
def test_cli_writes_the_grid(which, request, cli, tmp_path):
    status, out, _ = cli("manifold", request.getfixturevalue(which), "--steps", 4, "--count", 50,
                         "-o", tmp_path / "m.png")
    assert status == 0 and "4×4 grid" in out and (tmp_path / "m.png").exists()
