"""sample_images and `vaelab sample`: seeded draws from the prior (VAE) or the fitted code Gaussian (AE)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab.apps.sampling import sample_images, sample_latents
from vaelab.errors import VaelabError
from vaelab.imageio import to_uint8


@pytest.mark.parametrize("which", ["vae", "ae"])
def test_sample_images_match_the_models_own_sampler(which, request):
    # model.sample(n, generator) is the models' own, separately written sampler.
    model = request.getfixturevalue(which)
    ours = sample_images(model, 12, temperature=0.7, seed=5)
    theirs = to_uint8(model.sample(12, generator=torch.Generator().manual_seed(5), temperature=0.7))
    assert ours.dtype == np.uint8 and ours.shape == (12, *model.image_shape)
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_vae_latents_follow_the_tempered_prior(vae):
    z = sample_latents(vae, 20_000, temperature=0.5, seed=0).numpy()
    assert np.allclose(z.mean(axis=0), 0.0, atol=0.02)
    assert np.allclose(z.std(axis=0), 0.5, atol=0.02)


def test_ae_latents_follow_the_fitted_code_gaussian(ae):
    z = sample_latents(ae, 50_000, seed=1).double().numpy()
    assert np.allclose(z.mean(axis=0), ae.code_mean.double().numpy(), atol=0.05 * z.std(axis=0).max())
    assert np.allclose(np.cov(z, rowvar=False), ae.code_cov.double().numpy(), atol=0.05 * np.abs(ae.code_cov.numpy()).max())


def test_seed_reproduces_and_pixel_samples_are_binary_for_bernoulli(vae):
    a = sample_images(vae, 6, seed=3)
    assert np.array_equal(a, sample_images(vae, 6, seed=3))
    assert not np.array_equal(a, sample_images(vae, 6, seed=4))
    pixels = sample_images(vae, 6, seed=3, mean=False)
    assert set(np.unique(pixels)) <= {0, 255}


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 2, "temperature": 0.0}])
def test_bad_arguments_are_refused(vae, kwargs):
    with pytest.raises(VaelabError):
        sample_images(vae, **kwargs)


def test_cli_writes_the_grid_and_the_array(tiny_vae_run, vae, cli, tmp_path):
    from PIL import Image

    status, out, _ = cli("sample", tiny_vae_run, "-n", 9, "--seed", 2, "-o", tmp_path / "grid.png",
                         "--npy", tmp_path / "s.npy", "--scale", 1)
    assert status == 0
    saved = np.load(tmp_path / "s.npy", allow_pickle=False)
    assert np.array_equal(saved, sample_images(vae, 9, seed=2))
    # 3×3 tiles of 8 px with 2 px padding: 3·(8 + 2) + 2 = 32
    assert Image.open(tmp_path / "grid.png").size == (32, 32)
    assert str(tmp_path / "grid.png") in out


def test_cli_without_seed_prints_the_one_it_used(tiny_ae_run, cli, tmp_path):
    status, out, _ = cli("sample", tiny_ae_run, "-n", 4, "-o", tmp_path / "g.png", "--pixels", "sample")
    assert status == 0 and "pass --seed" in out and (tmp_path / "g.png").exists()
