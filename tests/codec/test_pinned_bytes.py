"""The codec writes the very bytes it wrote before the model-contract refactor (issue 19).

The runs in tests/data/format1 were written by vaelab at the start of stop 23 and the
SHA-256s below are of the files that vaelab wrote with them, for fixed images, at three
qualities each and with refinement. One run per coder, and the conv-rd ones cover every
option the recipes in configs/ use (context model, channel groups, residual blocks,
straight-through training). A change in any of the model's maths, the probability tables,
the range coder or the container changes a hash.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import vaelab
from vaelab.apps import codec

RUNS = Path(__file__).parent.parent / "data" / "format1"

# (run, quality or "refine") -> (file bytes, SHA-256 of the file, first 16 hex of the decoded images' SHA-256)
PINNED = {
    ("conv-rd", 1.0): (61, "5c64d4d1abfe7f314baa8c73519930ce28c4121d4bb46fc7436a20d4696e5ea8", "8899ece73a5db761"),
    ("conv-rd", 2.3): (483, "e6f9db84c3763938e82b5f07c1363c14896ce02c7a190694d7212eae90d69b62", "ca36300298045d1e"),
    ("conv-rd", 3.0): (815, "2bead0b7167003cdcc3c6a30c2ba4e335a0754141aced73dcc269d04a3ef1ea8", "ed4dbb185f84794a"),
    ("conv-rd", "refine"): (577, "1dbf620a86f9bc29f2eb5f599d7981636145247e9cef87357c2abfcbe3a7c6c3", None),
    ("conv-rd-context", 1.0): (351, "aba75a1a053b3aae52a7fc58a39dbde91b000a29a615589925dcb066dc5913ac", "06deac8cf4248845"),
    ("conv-rd-context", 2.3): (988, "b5271c66e64bfea2c01f1261594d8c17428b54a523534a0b4f6163e90d10de9b", "8da16e7b52281631"),
    ("conv-rd-context", 3.0): (1351, "d45a4aed5f2f1b34a19d9d828a02074f03f4f2e5a02f3d60dd8c33367661ee83", "8ca7b67b7ebbf273"),
    ("conv-rd-context", "refine"): (1068, "cf344af4a64b922b57dea7a920c8b052e426688f834b81a65e6c1c6a05c01ace", None),
    ("conv-rd-groups", 1.0): (348, "11c29b200bd1e8b3b34804f47062a0fd11486b94a5095754814068785c305244", "f9e003a9d6354dab"),
    ("conv-rd-groups", 2.3): (986, "e01ee2e6249ebc38b61be2be8570bb8fe0ae12370e9c2bc7f5dc6c95f3ed559b", "f1ee34bf200e27d6"),
    ("conv-rd-groups", 3.0): (1352, "d3d56d68d8dc92bbbdda1cf71ae037ff34258259f606b516c56f01be298528c2", "d5885dea46e3f16d"),
    ("conv-rd-groups", "refine"): (1067, "02aa5c2a49605efde4410db3d94b5e97652e4822bcabbc3470beab337331d2d0", None),
    ("conv-vae", 1.0): (49, "5ab36e34ca7748cf5c4310a6a8f01c0aa373f88141938e158548a8002720fd0d", "945b555d942e163c"),
    ("conv-vae", 10.8): (85, "6c758261f42c548ddea5f81798ebc8e0ec513316f50a7dc5cb28e54d996f36d2", "fc6e0f8ba3522588"),
    ("conv-vae", 20.0): (108, "b441d3fef0103841b171ce0d7161fbe3e7535cae6501f6b6495c9b16a60e8514", "8f3d98e209f71bd5"),
    ("mlp-ae", 1.0): (49, "6231f91735246ea2c8f9579a0c725c231c3b7c9d29f32856a0363ebdc2a13e91", "5ae6c9f7c62d7a48"),
    ("mlp-ae", 10.8): (85, "87e82699f3e762a093a8a1835b2296e7b9c6f976ebf220f62860b925106add23", "f0d5ecce8fefd067"),
    ("mlp-ae", 20.0): (108, "115e6a3ac526e10f0de802b830a559b63716507b71722e936fa0ac6744d6a59d", "7372f9f2da7f7695"),
}
REFINE = (2.5, 6)   # quality and steps of the refined files


def pinned_images() -> np.ndarray:
    """(12, 1, 28, 28) uint8: the first twelve 8×8 scikit-learn digits, scaled up bilinearly."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits().images[:12]                          # values 0..16
    return np.stack([np.asarray(Image.fromarray((d * 15).astype(np.uint8)).resize((28, 28), Image.BILINEAR))
                     for d in digits])[:, None]


@pytest.fixture(scope="module")
def images():
    x = pinned_images()
    assert hashlib.sha256(x.tobytes()).hexdigest().startswith("dab3d080398c0530"), "the pinned images changed"
    return x


@pytest.mark.parametrize("run, quality", list(PINNED), ids=[f"{r}-{q}" for r, q in PINNED])
def test_codec_bytes_are_the_pinned_ones(run, quality, images):
    model = vaelab.load(RUNS / run)
    size, digest, decoded_digest = PINNED[(run, quality)]
    if quality == "refine":
        data = codec.compress(model, images, quality=REFINE[0], refine=REFINE[1])
    else:
        data = codec.compress(model, images, quality=quality)
    assert (len(data), hashlib.sha256(data).hexdigest()) == (size, digest)
    if decoded_digest is not None:
        decoded = codec.decompress(data, model)
        assert hashlib.sha256(decoded.tobytes()).hexdigest().startswith(decoded_digest)
