"""A wrongly shaped input is one VaelabError from every public entry point, for every model.

The model's own verbs check their input (``Model.check_input``/``check_latent``) before any
torch code runs; the applications, the evaluation and the codec check the uint8 batches they
are given. Nothing here may surface a raw torch error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vaelab import VaelabError
from vaelab.config import from_dict
from vaelab.models import ModelConfig, build_model, model_names

SHAPE = (1, 8, 8)
SMALL = {"conv-rd": {"hidden": [4, 4], "latent_channels": 2, "rd_lambdas": [0.5, 2.0]},
         "pixel-vae": {"latent_dim": 3, "ar_features": 4}}


def make(name):
    settings = SMALL.get(name, {"latent_dim": 3})
    torch.manual_seed(0)
    return build_model(from_dict(ModelConfig, {"name": name, **settings}), SHAPE).eval()


BAD_IMAGES = {
    "wrong size": torch.rand(2, 1, 9, 8),
    "wrong channels": torch.rand(2, 3, 8, 8),
    "no batch axis": torch.rand(1, 8, 8),
    "8-bit, not float": torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8),
    "a numpy array": np.random.default_rng(0).random((2, 1, 8, 8)),
}


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("bad", BAD_IMAGES)
@pytest.mark.parametrize("verb", ["encode", "encode_mean", "forward", "reconstruct"])
def test_the_model_verbs_refuse_wrong_images(name, bad, verb):
    model = make(name)
    x = BAD_IMAGES[bad]
    call = model if verb == "forward" else getattr(model, verb)
    with pytest.raises(VaelabError) as err, torch.no_grad():
        call(x)
    assert "\n" not in str(err.value) and "this model takes" in str(err.value)


@pytest.mark.parametrize("name", model_names())
def test_decode_refuses_latents_of_the_wrong_size(name):
    model = make(name)
    for z in (torch.rand(2, model.latent_dim + 1), torch.rand(model.latent_dim), torch.zeros(2, model.latent_dim,
                                                                                               dtype=torch.long)):
        with pytest.raises(VaelabError, match=rf"latent codes of shape \(B, {model.latent_dim}\)"), torch.no_grad():
            model.decode(z)


@pytest.mark.parametrize("name", model_names())
def test_the_verbs_accept_the_right_shape(name):
    model = make(name)
    with torch.no_grad():
        out = model(torch.rand(2, *SHAPE))
        assert out.x_hat.shape[0] == 2
        assert model.decode(torch.zeros(2, model.latent_dim)).shape[0] == 2


def _apps_calls(model, images):
    from vaelab.apps.anomaly import anomaly_scores
    from vaelab.apps.codec import compress
    from vaelab.apps.embedding import embed
    from vaelab.apps.inpainting import denoise, inpaint
    from vaelab.apps.interpolation import interpolate
    from vaelab.apps.reconstruction import reconstruct_images
    from vaelab.apps.traversal import traverse
    from vaelab.evaluation.image_pass import image_pass, latent_means
    from vaelab.evaluation.likelihood import iwae_bound

    mask = np.ones((8, 8), bool)
    calls = {
        "reconstruct_images": lambda: reconstruct_images(model, images),
        "embed": lambda: embed(model, images),
        "anomaly reconstruction": lambda: anomaly_scores(model, images, "reconstruction"),
        "interpolate": lambda: interpolate(model, images[0], images[0]),
        "inpaint": lambda: inpaint(model, images[0], mask),
        "denoise": lambda: denoise(model, images),
        "traverse": lambda: traverse(model, images[0]),
        "image_pass": lambda: image_pass(model, images),
        "latent_means": lambda: latent_means(model, images),
        "compress": lambda: compress(model, images),
    }
    if model.is_variational:
        calls["iwae_bound"] = lambda: iwae_bound(model, images, 2)
        calls["anomaly nll"] = lambda: anomaly_scores(model, images, "nll", samples=2)
    return calls


WRONG_UINT8 = {"wrong size": np.zeros((2, 1, 9, 9), np.uint8), "wrong channels": np.zeros((2, 3, 8, 8), np.uint8)}


@pytest.mark.parametrize("name", ["conv-vae", "mlp-ae", "conv-rd"])
@pytest.mark.parametrize("bad", WRONG_UINT8)
def test_applications_evaluation_and_codec_refuse_wrong_images(name, bad):
    model = make(name)
    for what, call in _apps_calls(model, WRONG_UINT8[bad]).items():
        try:
            call()
        except VaelabError as exc:
            assert "\n" not in str(exc), what
        except Exception as exc:  # noqa: BLE001 — the point is that nothing else escapes
            pytest.fail(f"{what} on {bad} images raised {type(exc).__name__}: {exc}")
        else:
            pytest.fail(f"{what} accepted {bad} images")
