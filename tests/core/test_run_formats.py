"""Runs written by an earlier vaelab (run format 1) still load, and migrate to format 2 on read.

tests/data/format1 holds tiny runs written by vaelab before the model-contract change: one flat
``[model]`` table with every field of every model. Reading them drops the fields their model
never used (it ignored them, so nothing the run did changes); the same key in a format-2
config is an error.
"""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import pytest
import torch

import vaelab
from vaelab import VaelabError
from vaelab.models import config_class
from vaelab.runs import FORMAT_VERSION, config_from_dict, read_config, write_config

RUNS = Path(__file__).resolve().parents[1] / "data" / "format1"
NAMES = sorted(p.name for p in RUNS.iterdir() if p.is_dir())


def test_there_are_old_runs_of_every_coder():
    assert {"conv-vae", "mlp-ae", "conv-rd", "conv-rd-context", "conv-rd-groups"} <= set(NAMES)
    for name in NAMES:
        assert "format = 1" in (RUNS / name / "config.toml").read_text()


@pytest.mark.parametrize("name", NAMES)
def test_an_old_run_loads_with_only_its_models_settings(name):
    config = read_config(RUNS / name / "config.toml")
    assert config.format == FORMAT_VERSION
    own = set(typing.get_type_hints(config_class(config.model.name)))
    assert set(vars(config.model)) == own
    model = vaelab.load(RUNS / name)
    assert model.registry_name == config.model.name
    with torch.no_grad():
        images = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert images.shape == (3, 1, 28, 28) and torch.isfinite(images).all()


def test_the_settings_a_model_ignored_are_dropped_and_the_ones_it_used_kept():
    config = read_config(RUNS / "conv-rd-groups" / "config.toml")
    assert not hasattr(config.model, "latent_dim") and not hasattr(config.model, "beta")
    assert (config.model.hidden, config.model.latent_channels, config.model.rd_context,
            config.model.rd_context_groups, config.model.rd_residual) == ([8, 8], 4, 8, 2, 1)
    assert config.model.rd_straight_through is True and config.model.rd_lambdas == [0.1, 1.0, 10.0]
    vae = read_config(RUNS / "conv-vae" / "config.toml")
    assert (vae.model.latent_dim, vae.model.hidden, vae.model.dense_width) == (4, [4, 8], 8)
    assert vae.model.objective == "elbo" and not hasattr(vae.model, "rd_context")


def test_a_key_format_1_ignored_is_an_error_in_format_2():
    old = {"format": 1, "model": {"name": "conv-rd", "latent_dim": 7, "beta": 5.0, "objective": ""}}
    assert not hasattr(config_from_dict(old).model, "beta")
    with pytest.raises(VaelabError, match="'model.latent_dim' is not a setting of the conv-rd model"):
        config_from_dict({**old, "format": 2})


def test_a_migrated_run_is_written_back_in_format_2(tmp_path):
    run = Path(shutil.copytree(RUNS / "conv-rd-context", tmp_path / "run"))
    config = read_config(run / "config.toml")
    write_config(run / "config.toml", config)
    text = (run / "config.toml").read_text()
    assert f"format = {FORMAT_VERSION}" in text and "latent_dim" not in text and "ar_kernel" not in text
    assert read_config(run / "config.toml") == config
    assert vaelab.load(run).registry_name == "conv-rd"


def test_the_cli_works_on_an_old_run(tmp_path, capsys):
    from vaelab.cli import main

    run = Path(shutil.copytree(RUNS / "conv-vae", tmp_path / "run"))
    assert main(["sample", str(run), "-n", "4", "--seed", "1", "-o", str(tmp_path / "grid.png")]) == 0
    assert (tmp_path / "grid.png").is_file()
