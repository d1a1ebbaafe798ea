"""interpolate and `vaelab interpolate`: endpoints, straight lines and great circles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vaelab.apps.interpolation import interpolate, interpolate_latents, linear_path, spherical_path
from vaelab.apps.reconstruction import reconstruct_images
from vaelab.errors import VaelabError


@pytest.mark.parametrize("which", ["vae", "ae"])
@pytest.mark.parametrize("slerp", [False, True])
def test_endpoints_decode_to_the_reconstructions(which, slerp, request, digits):
    model = request.getfixturevalue(which)
    path = interpolate(model, digits[0], digits[1], steps=7, slerp=slerp)
    recon, _ = reconstruct_images(model, digits[:2])
    assert path.shape == (7, *model.image_shape) and path.dtype == np.uint8
    tolerance = 0 if not slerp else 1   # slerp's endpoint equals μ only up to rounding
    assert np.abs(path[0].astype(int) - recon[0]).max() <= tolerance
    assert np.abs(path[-1].astype(int) - recon[1]).max() <= tolerance


def test_linear_path_is_the_affine_combination(vae, digits):
    z = interpolate_latents(vae, digits[2], digits[3], steps=5)
    with torch.no_grad():
        mu = vae.encode_mean(torch.from_numpy(digits[2:4]).float() / 255)
    for i, t in enumerate(np.linspace(0, 1, 5)):
        assert torch.allclose(z[i], (1 - t) * mu[0] + t * mu[1], atol=1e-6)


vectors = st.lists(st.floats(-5, 5, allow_nan=False), min_size=3, max_size=3)


@settings(max_examples=200, deadline=None)
@given(vectors, vectors)
@example([0.0, 0.0, 5.960464477539063e-08], [0.0, 5.960464477539063e-08, 0.0])   # tiny, orthogonal: found by a run
@example([0.0, 0.0, 0.0], [0.0, 3.0, 0.0])
def test_slerp_norms_stay_between_the_endpoint_norms(a, b):
    za, zb = torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    norms = spherical_path(za, zb, t).norm(dim=1)
    lo, hi = sorted([za.norm().item(), zb.norm().item()])
    assert (norms >= lo - 1e-9).all() and (norms <= hi + 1e-9).all()


@pytest.mark.parametrize("b", [[0.0, -2.0, 0.0], [0.0, 3.0, 0.0]])
def test_slerp_of_opposite_or_parallel_codes_keeps_the_norms(b):
    t = torch.linspace(0, 1, 9, dtype=torch.float64)
    path = spherical_path(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), torch.tensor(b, dtype=torch.float64), t)
    assert torch.allclose(path.norm(dim=1), (1 - t) * 1.0 + t * abs(b[1]))
    assert torch.allclose(path[-1], torch.tensor(b, dtype=torch.float64), atol=1e-12)


def test_slerp_follows_the_great_circle_between_orthogonal_unit_vectors():
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    path = spherical_path(torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64), t)
    angles = t * np.pi / 2
    assert torch.allclose(path, torch.stack([torch.cos(angles), torch.sin(angles)], dim=1), atol=1e-12)
    # lerp, by contrast, cuts through the inside of the circle
    assert linear_path(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.tensor([0.5])).norm() < 0.75


def test_bad_steps_and_shapes_are_refused(vae, digits):
    with pytest.raises(VaelabError):
        interpolate(vae, digits[0], digits[1], steps=1)
    with pytest.raises(VaelabError):
        interpolate(vae, digits[:2], digits[1])


def test_cli_writes_the_strip(tiny_vae_run, digit_files, cli, tmp_path):
    paths, _ = digit_files
    status, out, _ = cli("interpolate", tiny_vae_run, paths[0], paths[1], "--steps", 6, "--slerp",
                         "-o", tmp_path / "strip.png", "--npy", tmp_path / "path.npy")
    assert status == 0 and "slerp" in out
    assert np.load(tmp_path / "path.npy").shape == (6, 1, 8, 8)
    assert (tmp_path / "strip.png").exists()


def test_cli_refuses_an_array_of_many_images_as_an_endpoint(tiny_vae_run, digit_files, cli, tmp_path):
    paths, npy = digit_files
    status, _, err = cli("interpolate", tiny_vae_run, npy, paths[0], "-o", tmp_path / "x.png")
    assert status == 2 and "exactly one image" in err and err.count("\n") == 1
