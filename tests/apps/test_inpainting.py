"""inpaint, denoise and `vaelab inpaint`."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.apps.inpainting import add_noise, denoise, inpaint, masked_input, region_mask
from vaelab.errors import VaelabError


def _mse(a, b, where):
    return float((((a.astype(float) - b.astype(float)) / 255) ** 2)[where].mean())


@pytest.mark.parametrize("region", ["bottom", "right", "centre", "random"])
def test_known_pixels_stay_and_unknown_ones_get_closer(vae, digits, region):
    mask = np.broadcast_to(region_mask(region, (8, 8), 0.5, seed=1), digits.shape)
    result = inpaint(vae, digits, mask, iterations=20)
    assert np.array_equal(result[~mask], digits[~mask])
    # The start fills unknown pixels with the mean of the known ones; the model must beat that.
    assert _mse(result, digits, mask) < _mse(masked_input(digits, mask), digits, mask)


def test_single_image_in_single_image_out(ae, digits):
    mask = region_mask("top", (8, 8), 0.25)
    out = inpaint(ae, digits[0], mask, iterations=3)
    assert out.shape == digits[0].shape
    assert np.array_equal(out[:, 2:], digits[0][:, 2:])   # 25 % of 8 rows = the top 2


def test_region_masks_hide_the_requested_share():
    assert region_mask("left", (10, 10), 0.3).sum() == 30
    assert region_mask("bottom", (10, 10), 0.5)[5:].all()
    assert abs(region_mask("random", (100, 100), 0.2, seed=0).mean() - 0.2) < 0.02
    with pytest.raises(VaelabError):
        region_mask("diagonal", (8, 8))


def test_bad_masks_are_refused(vae, digits):
    with pytest.raises(VaelabError, match="boolean"):
        inpaint(vae, digits[:2], np.zeros((8, 8), dtype=np.uint8))
    with pytest.raises(VaelabError, match="does not fit"):
        inpaint(vae, digits[:2], np.zeros((7, 8), dtype=bool))


def test_denoising_removes_most_of_the_noise(ae, digits):
    noisy = add_noise(digits, 0.4, seed=0)
    everywhere = np.ones(digits.shape, dtype=bool)
    assert _mse(denoise(ae, noisy), digits, everywhere) < _mse(noisy, digits, everywhere)


def test_cli_inpaints_files_with_a_mask_image(tiny_vae_run, digit_files, cli, tmp_path):
    from PIL import Image

    paths, _ = digit_files
    mask = np.zeros((32, 32), np.uint8)
    mask[16:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    status, out, _ = cli("inpaint", tiny_vae_run, *paths[:2], "--mask", tmp_path / "mask.png", "-o", tmp_path / "o")
    assert status == 0 and "before" in out
    results = np.load(tmp_path / "o" / "results.npy")
    import vaelab
    from vaelab.apps.common import load_inputs

    originals, _, _ = load_inputs(vaelab.load(tiny_vae_run), paths[:2])
    assert np.array_equal(results[:, :, :4], originals[:, :, :4])   # the top half was known
    assert (tmp_path / "o" / "figure.png").exists()


def test_cli_denoises_noisy_test_images(tiny_ae_run, cli, tmp_path):
    status, out, _ = cli("inpaint", tiny_ae_run, "--denoise", "--add-noise", 0.3, "--count", 4, "-o", tmp_path)
    assert status == 0 and np.load(tmp_path / "results.npy").shape == (4, 1, 8, 8)


def test_cli_needs_exactly_one_of_mask_and_denoise(tiny_vae_run, cli):
    status, _, err = cli("inpaint", tiny_vae_run)
    assert status == 2 and "--mask" in err and err.count("\n") == 1
