"""The fingerprint a codec file carries of the model that wrote it."""

from __future__ import annotations

import hashlib
import json

import numpy as np

FINGERPRINT_BYTES = 8


def fingerprint_tensors(model_name: str, image_shape, tensors: dict) -> bytes:
    """8 bytes of SHA-256 over a model's name, image shape and every weight, in name order.

    ``tensors`` maps names to torch tensors or numpy arrays (a state dict or a weights file).
    Any changed weight — even one bit — changes the fingerprint.
    """
    h = hashlib.sha256(b"vaelab-codec-fingerprint\0")
    h.update(json.dumps([model_name, [int(s) for s in image_shape]]).encode())
    for name in sorted(tensors):
        value = tensors[name]
        array = value.detach().cpu().contiguous().numpy() if hasattr(value, "detach") else np.asarray(value)
        array = np.ascontiguousarray(array)
        h.update(json.dumps([name, str(array.dtype), list(array.shape)]).encode())
        h.update(array.tobytes())
    return h.digest()[:FINGERPRINT_BYTES]
