"""embed and `vaelab embed`: posterior means and log-variances, saved for downstream use."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from vaelab.apps.embedding import embed, logvar_path, save_embeddings
from vaelab.errors import VaelabError


def test_means_equal_encode_mean_and_logvars_the_posterior(vae, digits):
    means, logvars = embed(vae, digits, batch_size=7)   # odd batch size: batching must not matter
    with torch.no_grad():
        x = torch.from_numpy(digits).float() / 255
        assert np.allclose(means, vae.encode_mean(x).numpy(), atol=1e-6)
        assert np.allclose(logvars, vae.encode(x).logvar.numpy(), atol=1e-6)


def test_autoencoders_give_codes_and_no_variance(ae, digits):
    means, logvars = embed(ae, digits[:5])
    with torch.no_grad():
        assert np.allclose(means, ae.encode_mean(torch.from_numpy(digits[:5]).float() / 255).numpy(), atol=1e-6)
    assert logvars is None


def test_files_round_trip(tmp_path):
    means, logvars = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    names = ["a.png", "b,with comma.png"]
    save_embeddings(tmp_path / "l.npy", means, logvars, names)
    assert np.array_equal(np.load(tmp_path / "l.npy", allow_pickle=False), means)
    assert np.array_equal(np.load(logvar_path(tmp_path / "l.npy"), allow_pickle=False), logvars)
    save_embeddings(tmp_path / "l.npz", means, logvars, names)
    with np.load(tmp_path / "l.npz", allow_pickle=False) as data:
        assert np.array_equal(data["means"], means) and list(data["names"]) == names
    save_embeddings(tmp_path / "l.csv", means, None, names)
    with open(tmp_path / "l.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["name", "mu_0", "mu_1", "mu_2", "mu_3"] and rows[2][0] == names[1]
    assert np.array_equal(np.array(rows[1][1:], dtype=np.float32), means[0])
    with pytest.raises(VaelabError, match="suffix"):
        save_embeddings(tmp_path / "l.txt", means, None, names)


def test_cli_embeds_files_and_arrays(tiny_vae_run, vae, digit_files, cli, tmp_path):
    paths, npy = digit_files
    status, out, _ = cli("embed", tiny_vae_run, paths[0], npy, "-o", tmp_path / "lat.npy")
    assert status == 0
    means = np.load(tmp_path / "lat.npy")
    assert means.shape == (101, vae.latent_dim) and (tmp_path / "lat.logvar.npy").exists()
    digits = np.load(npy)
    assert np.allclose(means[1:], embed(vae, digits)[0], atol=1e-6)


def test_cli_refuses_an_unknown_format_before_working(tiny_vae_run, cli, tmp_path):
    status, _, err = cli("embed", tiny_vae_run, "-o", tmp_path / "lat.json")
    assert status == 2 and "suffix" in err
