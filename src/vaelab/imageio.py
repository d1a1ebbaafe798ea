"""Reading and writing images safely, and converting them to a model's format.

Every image that enters vaelab from a user (files, folders, ``.npy`` arrays, uploads) goes
through here. A file that is not an image, is truncated, empty, too large on disk, or
decompresses to too many pixels (a "decompression bomb") is refused with a one-line
:class:`VaelabError` naming it. Odd modes are normalised: palette → RGB(A), CMYK → RGB,
16-bit and float → 8-bit, alpha composited onto black (the background of the MNIST-style
data sets vaelab trains on).

Arrays at the edges are ``uint8`` shaped (C, H, W) or (N, C, H, W) (DESIGN.md §2;
Def. 1.3.1: C = 1 is black and white, C = 3 is RGB).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from .errors import VaelabError

MAX_FILE_BYTES = 64 << 20          # 64 MiB on disk
MAX_PIXELS = 16_000_000            # 16 megapixels decoded (a 4000×4000 image)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    """Bytes -> (H, W, C) uint8 with C ∈ {1, 3}."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise VaelabError("is empty (0 bytes), not an image", name)
    try:
        with warnings.catch_warnings():
            # Pillow's notes about damaged metadata (corrupt EXIF, TIFF tags past the end) would
            # print source lines around our one-line messages; damaged pixels still raise.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                if width < 1 or height < 1:
                    raise VaelabError("has no pixels", name)
                if width * height > max_pixels:
                    raise VaelabError(
                        f"is {width}×{height} = {width * height:,} pixels, over the {max_pixels:,}-pixel limit "
                        "(refused as a possible decompression bomb)", name)
                im.load()
                return _normalise(im, name)
    except VaelabError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise VaelabError(f"refused as a decompression bomb ({exc})", name) from exc
    except UnidentifiedImageError as exc:
        raise VaelabError("is not an image Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF)", name) from exc
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, MemoryError, OverflowError, struct.error) as exc:
        raise VaelabError(f"is a broken or truncated image ({exc.__class__.__name__}: {exc})", name) from exc


def _normalise(im, name: str) -> np.ndarray:
    from PIL import Image

    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)  # animated GIF/WebP/TIFF: the first frame
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255) else 255.0
        if mode == "F":
            top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        arr = np.clip(np.nan_to_num(arr) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return arr[:, :, None]
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("LA", "RGBA", "La", "RGBa"):
        im = im.convert("LA" if im.mode in ("LA", "La") else "RGBA")
        arr = np.asarray(im, dtype=np.float32)
        alpha = arr[:, :, -1:] / 255.0
        arr = arr[:, :, :-1] * alpha  # composite onto black
        return np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    arr = np.asarray(im, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def read_image(source: str | os.PathLike | bytes, name: str | None = None, *,
               max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file or its bytes -> (C, H, W) uint8 with C ∈ {1, 3}."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "uploaded image"
        if len(data) > max_bytes:
            raise VaelabError(f"is {len(data):,} bytes, over the {max_bytes:,}-byte limit", name)
    else:
        from .fileio import read_bytes

        name = name or os.fspath(source)
        data = read_bytes(source, "image", max_bytes)
    return np.ascontiguousarray(_decode(data, name, max_pixels).transpose(2, 0, 1))


def _npy_array(data: bytes, path) -> np.ndarray:
    """Parse ``.npy`` bytes without trusting the header: it must describe exactly the bytes that follow.

    ``np.load`` would allocate whatever shape the header declares before noticing the data is
    missing, and lets the header parser's own exceptions (SyntaxError, tokenize errors) escape.
    """
    import tokenize

    fmt = np.lib.format
    buf = io.BytesIO(data)
    try:
        version = fmt.read_magic(buf)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the header parser's SyntaxWarnings on damaged headers
            shape, fortran_order, dtype = read_header(buf)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise ValueError(f"holds {dtype} values, not plain numbers (nothing is unpickled)")
        count = 1
        for size in shape:
            count *= size
        remaining = len(data) - buf.tell()
        if count * dtype.itemsize != remaining:
            raise ValueError(f"its header declares shape {shape} of {dtype}, but {remaining:,} bytes follow")
        arr = np.frombuffer(data, dtype=dtype, count=count, offset=buf.tell())
        return arr.reshape(shape[::-1]).transpose() if fortran_order else arr.reshape(shape)
    except (ValueError, TypeError, SyntaxError, OverflowError, RecursionError, MemoryError, EOFError, OSError,
            tokenize.TokenError) as exc:
        reason = " ".join(str(exc).split())[:200] or exc.__class__.__name__
        raise VaelabError(f"is not a readable .npy array ({reason})", path) from None


def read_npy(path: str | os.PathLike, max_bytes: int = 1 << 30) -> np.ndarray:
    """A ``.npy`` array of images -> (N, C, H, W) uint8. Never unpickles.

    Accepted layouts: (H, W), (N, H, W), (N, C, H, W) and (N, H, W, C) with C ∈ {1, 3, 4};
    uint8 0–255 or floats in [0, 1].
    """
    from .fileio import read_bytes

    data = read_bytes(path, ".npy file", max_bytes)
    arr = _npy_array(data, path)
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "uif" or arr.size == 0:
        raise VaelabError(f"must hold a non-empty numeric array, found dtype {getattr(arr, 'dtype', '?')}", path)
    if arr.ndim == 2:
        arr = arr[None, None]
    elif arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4:
        if arr.shape[1] not in (1, 3, 4) and arr.shape[-1] in (1, 3, 4):
            arr = arr.transpose(0, 3, 1, 2)
    else:
        raise VaelabError(f"has shape {arr.shape}; expected (N, C, H, W), (N, H, W, C), (N, H, W) or (H, W)", path)
    if arr.shape[1] not in (1, 3, 4):
        raise VaelabError(f"has {arr.shape[1]} channels; images have 1 (grey), 3 (RGB) or 4 (RGBA)", path)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise VaelabError("contains NaN or infinite values", path)
        top = 1.0 if arr.max() <= 1.0 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255)
    elif arr.min() < 0 or arr.max() > 255:
        raise VaelabError("integer pixel values must lie in 0–255", path)
    arr = arr.astype(np.uint8)
    if arr.shape[1] == 4:  # RGBA: composite onto black, as for image files
        alpha = arr[:, 3:4].astype(np.float32) / 255.0
        arr = np.clip(arr[:, :3] * alpha + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def convert(image: np.ndarray, channels: int, size: tuple[int, int]) -> np.ndarray:
    """(C, H, W) uint8 -> (channels, size[0], size[1]) uint8: grey↔RGB and area/Lanczos resize."""
    from PIL import Image

    C, H, W = image.shape
    if C == 3 and channels == 1:
        # ITU-R 601 luma, the same weights as Pillow's "L" conversion
        grey = image[0] * 0.299 + image[1] * 0.587 + image[2] * 0.114
        image = np.clip(grey + 0.5, 0, 255).astype(np.uint8)[None]
    elif C == 1 and channels == 3:
        image = np.repeat(image, 3, axis=0)
    if (H, W) != tuple(size):
        planes = []
        for plane in image:
            pil = Image.fromarray(plane, mode="L")
            resample = Image.Resampling.BOX if H >= size[0] and W >= size[1] else Image.Resampling.LANCZOS
            planes.append(np.asarray(pil.resize((size[1], size[0]), resample=resample), dtype=np.uint8))
        image = np.stack(planes)
    return np.ascontiguousarray(image)


def list_image_files(folder: str | os.PathLike) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise VaelabError("is not a directory", folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise VaelabError(f"holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})", folder)
    return files


def load_images(sources: Iterable[str | os.PathLike], channels: int, size: tuple[int, int]) -> tuple[np.ndarray, list[str], list[str]]:
    """Files, folders and ``.npy`` arrays -> ((N, channels, H, W) uint8, names, notices).

    ``notices`` says once per kind of conversion what was done (resize, colour change), so the
    caller can tell the user.
    """
    images, names, notices = [], [], set()
    for source in sources:
        path = Path(source)
        if path.is_dir():
            items = [(p, read_image(p)) for p in list_image_files(path)]
            entries = [(str(p), img) for p, img in items]
        elif path.suffix.lower() == ".npy":
            arr = read_npy(path)
            entries = [(f"{path}[{i}]", img) for i, img in enumerate(arr)]
        else:
            entries = [(str(path), read_image(path))]
        for name, img in entries:
            C, H, W = img.shape
            if C != channels:
                notices.add(f"converted {'RGB' if C == 3 else 'grey'} input to {'RGB' if channels == 3 else 'grey'}")
            if (H, W) != tuple(size):
                notices.add(f"resized input from {H}×{W} to the model's {size[0]}×{size[1]}")
            images.append(convert(img, channels, size))
            names.append(name)
    if not images:
        raise VaelabError("no images given")
    return np.stack(images), names, sorted(notices)


def to_pil(image: np.ndarray):
    """(C, H, W) uint8 -> a PIL image (L or RGB)."""
    from PIL import Image

    if image.shape[0] == 1:
        return Image.fromarray(image[0], mode="L")
    return Image.fromarray(np.ascontiguousarray(image.transpose(1, 2, 0)), mode="RGB")


def encode_png(image: np.ndarray, optimize: bool = False) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", optimize=optimize)
    return buf.getvalue()


def save_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a (C, H, W) uint8 image atomically; the format follows the suffix."""
    from .fileio import atomic_open

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    with atomic_open(path, "wb") as handle:
        to_pil(image).save(handle, format=fmt)


def grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, scale: int = 1, value: int = 128) -> np.ndarray:
    """(N, C, H, W) uint8 -> one (C, H', W') uint8 mosaic with ``pad`` pixels between tiles."""
    N, C, H, W = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(N)))
    nrows = int(np.ceil(N / ncols))
    out = np.full((C, nrows * (H + pad) + pad, ncols * (W + pad) + pad), value, dtype=np.uint8)
    for i in range(N):
        r, c = divmod(i, ncols)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        out[:, y:y + H, x:x + W] = images[i]
    if scale > 1:
        out = out.repeat(scale, axis=1).repeat(scale, axis=2)
    return out


def to_uint8(x) -> np.ndarray:
    """Float tensor/array in [0, 1] -> uint8 array (rounded, clipped)."""
    import torch

    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    return np.clip(np.asarray(x) * 255.0 + 0.5, 0, 255).astype(np.uint8)
