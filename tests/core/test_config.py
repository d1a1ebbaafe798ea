"""Configs: typed, validated, round-tripping through TOML; bad input named precisely."""

from pathlib import Path

import pytest
import torch

from vaelab.config import from_dict, parse_toml, to_toml
from vaelab.errors import VaelabError
from vaelab.runs import RunConfig, config_from_dict, read_config, write_config


def test_defaults_round_trip_through_toml(tmp_path):
    config = from_dict(RunConfig, {"model": {"name": "mlp-vae", "hidden": [300, 100], "beta": 4},
                                   "data": {"name": "digits"}, "train": {"lr": 0.01, "epochs": 3}})
    write_config(tmp_path / "config.toml", config)
    again = read_config(tmp_path / "config.toml")
    assert again == config
    assert again.model.beta == 4.0 and isinstance(again.model.beta, float)
    # every field carries its reason as a comment
    text = (tmp_path / "config.toml").read_text()
    assert "weight β of the KL term" in text


@pytest.mark.parametrize("data, fragment", [
    ({"model": {"latnt_dim": 3}}, "'model.latnt_dim' is not a setting of the conv-vae model (did you mean 'latent_dim'?"),
    ({"model": {"name": "conv-rd", "latent_dim": 7}}, "'model.latent_dim' is not a setting of the conv-rd model"),
    ({"model": {"name": "conv-vae", "rd_context": 8}}, "'model.rd_context' is not a setting of the conv-vae model"),
    ({"model": {"name": "conv-rd", "beta": 5}}, "'model.beta' is not a setting of the conv-rd model"),
    ({"model": {"latent_dim": "16"}}, "model.latent_dim must be an integer, got '16'"),
    ({"train": {"deterministic": "yes"}}, "train.deterministic must be true or false"),
    ({"model": {"name": "no-such-model"}}, "unknown model 'no-such-model'"),
    ({"trian": {}}, "unknown setting 'trian'"),
    ({"model": {"latent_dim": 0}}, "model.latent_dim must be ≥ 1"),
    ({"model": {"latent_dim": "many"}}, "model.latent_dim must be an integer"),
    ({"train": {"optimizer": "rmsprop"}}, "train.optimizer must be one of gd, sgd, adam, adamw"),
    ({"train": {"lr": 0}}, "train.lr must be > 0"),
    ({"train": {"lr": float("nan")}}, "must be a finite number"),
    ({"data": {"val_fraction": 0.9}}, "data.val_fraction must be ≤ 0.5"),
    ({"model": {"hidden": [64, -3]}}, "model.hidden[1] must be ≥ 1"),
    ({"model": "conv-vae"}, "model must be a table"),
])
def test_bad_settings_are_named(data, fragment):
    with pytest.raises(VaelabError) as err:
        config_from_dict(data)
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_width_strings_parse_like_the_thesis():
    config = from_dict(RunConfig, {"model": {"hidden": "400-200"}})
    assert config.model.hidden == [400, 200]


def test_newer_format_is_refused(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("format = 99\n")
    with pytest.raises(VaelabError, match="format 99"):
        read_config(path)


def test_broken_toml_names_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[model\nname = 3")
    with pytest.raises(VaelabError, match="config.toml: not valid TOML"):
        read_config(path)


def test_toml_writer_output_is_valid_toml():
    text = to_toml(RunConfig())
    assert parse_toml(text)["model"]["name"] == "conv-vae"


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_recipe_builds_its_model(path):
    """The configs/ recipes the README and docs point to parse and build (on a meta device: no memory)."""
    from vaelab.cli._options import build_config
    from vaelab.models import build_model

    config = build_config(path, {})
    shape = (1, 28, 28)   # every recipe here is for 28×28 grey images
    with torch.device("meta"):
        model = build_model(config.model, shape)
    assert sum(p.numel() for p in model.parameters()) > 0
