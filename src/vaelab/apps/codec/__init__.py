"""Compress images with an autoencoder: a real codec with a real bitstream (issue 6).

The thesis' first application of autoencoders (ch. 2): send an image's small code instead of
the image. ``compress`` quantises a model's latent and range-codes it with ``constriction``
under the density the model knows; ``decompress`` checks the file, decodes the integers and
runs the decoder network. See docs/codec.md.

    >>> import vaelab
    >>> from vaelab.apps import codec
    >>> model = vaelab.load("runs/codec-fmnist")
    >>> data = codec.compress(model, images)          # images: uint8 (N, C, H, W)
    >>> codec.inspect(data)["image_bytes"]            # bytes of each image's bitstream
    >>> codec.decompress(data, model)                 # uint8 (N, C, H, W)
    >>> data, quality, psnr = codec.compress_to_psnr(model, images, 32.0)   # a PSNR target instead
"""

from .api import coder_for, compress, compress_to_psnr, decompress, inspect
from .container import FORMAT_VERSION
from .pca import PCACoder

__all__ = ["FORMAT_VERSION", "PCACoder", "coder_for", "compress", "compress_to_psnr", "decompress", "inspect"]
