"""Adding a model is one file and one registry line (docs/DEVELOPING.md, "Add a model").

The model below is defined here, in this one file, exactly as docs/DEVELOPING.md shows it
(a test checks the two agree). Registering it is its one registry line; nothing else in
vaelab is touched, and yet it trains, resumes, loads, evaluates, samples, compresses and
refuses settings it does not take, through the CLI as through Python.
"""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

# --- the worked example: BEGIN (docs/DEVELOPING.md shows these lines) ---
from dataclasses import dataclass

import torch.nn as nn

from vaelab.config import option
from vaelab.models.config import DecoderLikelihood, latent_dim_option, model_name
from vaelab.models.likelihoods import head_for
from vaelab.models.losses import ELBO
from vaelab.models.registry import register_model
from vaelab.models.vae import VAE


@dataclass
class LinearVAEConfig(DecoderLikelihood):
    """``linear-vae``: its settings, and nothing it does not use."""

    name: str = model_name("linear-vae")
    latent_dim: int = latent_dim_option(8)
    beta: float = option(1.0, "weight β of the KL term: 1 is the VAE, other values the β-VAE", min=0.0)

    def loss(self) -> ELBO:
        return ELBO(self.beta)


@register_model("linear-vae", LinearVAEConfig)
class LinearVAE(VAE):
    """A VAE whose encoder and decoder are single linear maps (probabilistic PCA with a pixel likelihood)."""

    @classmethod
    def from_config(cls, config: LinearVAEConfig, image_shape):
        C, H, W = image_shape
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(C * H * W, 2 * config.latent_dim))   # μ and log σ²
        decoder = nn.Sequential(nn.Linear(config.latent_dim, C * H * W), nn.Unflatten(1, image_shape))
        return cls(config, image_shape, encoder, decoder, head_for(config, C))
# --- the worked example: END ---


DOC = Path(__file__).resolve().parents[2] / "docs" / "DEVELOPING.md"


# The decorator registered the model when pytest imported this file; other test files must not
# see it (they parametrise over the registry), so it is registered only while these tests run.
from vaelab.models import unregister_model  # noqa: E402

unregister_model("linear-vae")


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_model("linear-vae", LinearVAEConfig)(LinearVAE)
    yield
    unregister_model("linear-vae")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from vaelab.cli import main

    out = tmp_path_factory.mktemp("linear") / "run"
    status = main(["train", "--model", "linear-vae", "--data", "digits", "--latent-dim", "4", "--beta", "2",
                   "--epochs", "2", "--batch-size", "64", "--threads", "1", "--quiet", "--no-report",
                   "--out", str(out)])
    assert status == 0
    return out


def test_the_documented_example_is_this_file():
    """docs/DEVELOPING.md's code block is the example above, line for line."""
    source = inspect.getsource(inspect.getmodule(test_the_documented_example_is_this_file))
    example = source.split("# --- the worked example: BEGIN (docs/DEVELOPING.md shows these lines) ---\n")[1]
    example = example.split("# --- the worked example: END ---")[0].strip()
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert any(example in block for block in blocks), "docs/DEVELOPING.md's 'Add a model' block differs from the test"


def test_the_registry_and_the_cli_know_it(capsys):
    from vaelab.cli import main

    assert main(["models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("linear-vae"))
    assert "single linear maps" in line


def test_it_trains_with_its_own_config_and_loss(run):
    import vaelab
    from vaelab.runs import read_config, read_metrics

    config = read_config(run / "config.toml")
    assert type(config.model) is LinearVAEConfig and config.model.latent_dim == 4 and config.model.beta == 2.0
    model = vaelab.load(run)
    assert type(model) is LinearVAE and model.registry_name == "linear-vae"
    steps = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] == "step"]
    final = read_metrics(run / "metrics.jsonl")[-1]
    assert final["event"] == "final" and math.isfinite(final["test_neg_elbo"])
    # the loss it trained on is its config's: reconstruction + β·KL with β = 2
    for r in steps:
        assert r["loss"] == pytest.approx(r["reconstruction"] + 2.0 * r["kl"], rel=1e-5)


def test_a_setting_it_does_not_take_is_refused_by_name(tmp_path, capsys):
    from vaelab.cli import main

    status = main(["train", "--model", "linear-vae", "--data", "digits", "--hidden", "64", "--out",
                   str(tmp_path / "no")])
    err = capsys.readouterr().err
    assert status == 2 and "'model.hidden' (--hidden) is not a setting of the linear-vae model" in err
    assert err.count("\n") == 1 and not (tmp_path / "no").exists()


def test_every_application_works_with_it(run, tmp_path, capsys):
    from vaelab.apps import codec
    from vaelab.cli import main
    from vaelab.runs import open_run

    opened = open_run(run)
    assert main(["sample", str(run), "-n", "4", "--seed", "0", "-o", str(tmp_path / "s.png")]) == 0
    assert main(["reconstruct", str(run), "--count", "3", "-o", str(tmp_path / "rec")]) == 0
    assert main(["evaluate", str(run), "--limit", "40", "-k", "8", "--skip", "samples,representation",
                 "--no-save"]) == 0
    assert "−ELBO" in capsys.readouterr().out
    from vaelab.apps.common import run_images

    images = run_images(opened, "test", 5)
    data = codec.compress(opened.model, images, quality=12)
    assert codec.decompress(data, opened.model).shape == images.shape     # the VAE's entropy model, inherited


def test_it_resumes_exactly(run, tmp_path):
    """Killed after its first epoch and resumed, it ends with the weights of an uninterrupted run."""
    from vaelab.config import from_dict
    from vaelab.runs import RunConfig
    from vaelab.training import train
    from vaelab.training.checkpoint import load_checkpoint

    def config(**train_kw):
        return from_dict(RunConfig, {"model": {"name": "linear-vae", "latent_dim": 3},
                                     "data": {"name": "digits", "limit": 256},
                                     "train": {"epochs": 2, "batch_size": 32, "report": False, "deterministic": True,
                                               **train_kw}})

    train(config(), tmp_path / "straight", progress=False)
    train(config(time_limit=1e-9), tmp_path / "resumed", progress=False)       # stops after epoch 1
    train(config(), tmp_path / "resumed", resume=True, progress=False)
    a, b = load_checkpoint(tmp_path / "straight")["model"], load_checkpoint(tmp_path / "resumed")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_wrong_shapes_are_refused_by_the_verbs_it_inherits(run):
    import vaelab
    from vaelab import VaelabError

    model = vaelab.load(run)
    with pytest.raises(VaelabError, match=r"\(B, 1, 8, 8\)"):
        model.encode(torch.rand(2, 1, 9, 9))
    with pytest.raises(VaelabError, match=r"\(B, 4\)"):
        model.decode(torch.rand(2, 5))
    assert np.isfinite(model.sample(2).numpy()).all()
