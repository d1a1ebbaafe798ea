"""reconstruct_images and `vaelab reconstruct`: originals beside reconstructions, per-image error."""

from __future__ import annotations

import csv

import numpy as np
import torch

from vaelab.apps.reconstruction import reconstruct_images
from vaelab.imageio import to_uint8
from vaelab.metrics import psnr_from_mse


def test_reconstructions_and_errors_from_the_formula(vae, digits):
    recon, mse = reconstruct_images(vae, digits)
    with torch.no_grad():
        expected = to_uint8(vae.reconstruct(torch.from_numpy(digits).float() / 255))
    assert np.array_equal(recon, expected)
    for i in range(len(digits)):  # MSE per image on the [0, 1] scale, one loop per pixel
        total, count = 0.0, 0
        for value, other in zip(digits[i].ravel(), recon[i].ravel()):
            total += (int(value) / 255 - int(other) / 255) ** 2
            count += 1
        assert abs(mse[i] - total / count) < 1e-12


def test_psnr_is_ten_log10_of_one_over_mse():
    assert np.allclose(psnr_from_mse(np.array([1.0, 0.1, 0.01])), [0.0, 10.0, 20.0])


def test_autoencoders_reconstruct_too(ae, digits):
    recon, mse = reconstruct_images(ae, digits[:10])
    assert recon.shape == digits[:10].shape and (mse >= 0).all()


def test_cli_writes_figure_errors_array_and_pngs(tiny_vae_run, vae, digit_files, cli, tmp_path):
    paths, _ = digit_files
    status, out, err = cli("reconstruct", tiny_vae_run, *paths, "-o", tmp_path)
    assert status == 0
    assert "resized input from 32×32 to the model's 8×8" in err
    recon = np.load(tmp_path / "reconstructions.npy", allow_pickle=False)
    with open(tmp_path / "errors.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["name"] for r in rows] == [str(p) for p in paths]
    from vaelab.apps.common import load_inputs

    originals, _, _ = load_inputs(vae, paths)
    _, mse = reconstruct_images(vae, originals)
    assert np.allclose([float(r["mse"]) for r in rows], mse, rtol=1e-5)
    assert recon.shape == (4, 1, 8, 8)
    assert (tmp_path / "figure.png").stat().st_size > 0
    assert len(list(tmp_path.glob("00*-digit*.png"))) == 4


def test_cli_without_images_uses_the_runs_test_split(tiny_ae_run, cli, tmp_path):
    status, _, err = cli("reconstruct", tiny_ae_run, "--count", 5, "-o", tmp_path)
    assert status == 0 and "no images given" in err
    assert np.load(tmp_path / "reconstructions.npy").shape == (5, 1, 8, 8)


def test_the_figure_has_no_empty_columns_for_few_images(tiny_vae_run, cli, tmp_path):
    from PIL import Image

    widths = {}
    for count in (2, 4):
        status, _, _ = cli("reconstruct", tiny_vae_run, "--count", count, "-o", tmp_path / str(count))
        assert status == 0
        with Image.open(tmp_path / str(count) / "figure.png") as im:
            widths[count] = im.width
    assert widths[2] < widths[4]   # two pairs of columns, not four with two of them empty
