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


def _decode(data: bytes, name: str, max_pixels: int,
            fit: tuple[int, int] | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """Bytes -> ((H, W, C) uint8 with C ∈ {1, 3}, the file's own (height, width)).

    With ``fit=(H, W)`` the caller only needs H×W pixels, so a bigger image is never converted
    at full size: a JPEG is decoded at a reduced scale (libjpeg's DCT scaling, ``draft``) and
    anything else is reduced right after decoding (:func:`_shrink`), to no less than twice
    ``fit`` per side. Peak memory is then the decoded Pillow image (≤ 4 bytes a pixel) and one
    strip, instead of ~45 bytes a pixel for the full-size float compositing in :func:`_normalise`.
    """
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
                if fit is None:
                    im.load()
                    return _normalise(im, name), (height, width)
                im.draft(None, (SHRINK_MARGIN * fit[1], SHRINK_MARGIN * fit[0]))  # a no-op but for JPEG
                im.load()
                return _normalise(_shrink(im, fit), name), (height, width)
    except VaelabError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise VaelabError(f"refused as a decompression bomb ({exc})", name) from exc
    except UnidentifiedImageError as exc:
        raise VaelabError("is not an image Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF)", name) from exc
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, KeyError, EOFError,
            ZeroDivisionError, MemoryError, OverflowError, struct.error) as exc:
        raise VaelabError(f"is a broken or truncated image ({exc.__class__.__name__}: {exc})", name) from exc


SHRINK_MARGIN = 2         # shrinking stops at twice the caller's size; the caller's resize makes the last step
STRIP_PIXELS = 1 << 20    # pixels converted at a time while shrinking (a few MiB per strip)


def _shrink(im, fit: tuple[int, int]):
    """A decoded PIL image -> reduced by whole factors to no less than SHRINK_MARGIN × ``fit`` (H, W).

    Strip by strip and in Pillow's C code (box averages), so no full-size copy is ever made;
    the result is in a mode that :func:`_normalise` reads as it would have read ``im``.
    """
    from PIL import Image

    width, height = im.size
    fx = max(1, width // (SHRINK_MARGIN * fit[1]))
    fy = max(1, height // (SHRINK_MARGIN * fit[0]))
    if fx == fy == 1:
        return im
    mode = _reduce_mode(im)
    rows = fy * max(1, STRIP_PIXELS // (width * fy))  # whole blocks: strips average as the whole image would
    out = Image.new(mode, (-(-width // fx), -(-height // fy)))
    peak = None  # the maximum _normalise would see in the full image (NaN included), for modes I and F
    for top in range(0, height, rows):
        strip = _as_mode(im.crop((0, top, width, min(height, top + rows))), mode)
        if im.mode in ("I", "F"):
            strip_max = np.asarray(strip).max(initial=0)
            peak = strip_max if peak is None else np.maximum(peak, strip_max)
        out.paste(strip.reduce((fx, fy)), (0, top // fy))
    return _as_normalised(out, im.mode, peak)


def _reduce_mode(im) -> str:
    """The mode strips of ``im`` are averaged in: what _normalise reads it as, with alpha premultiplied.

    Averaging palette indices, CMYK ink or unpremultiplied colours would be wrong, and Pillow
    cannot average 1-bit or 16-bit modes. Premultiplied colour is the colour composited onto
    black, as _normalise composites: Pillow rounds c·a/255 exactly as its float code does.
    """
    mode = im.mode
    if mode == "P":
        return "RGBa" if "transparency" in im.info else "RGB"
    if mode in ("LA", "La"):
        return "La"
    if mode in ("RGBA", "RGBa", "PA"):
        return "RGBa"
    if mode.startswith("I;16"):
        return "I"
    if mode in ("L", "RGB", "I", "F"):
        return mode
    return "L" if mode == "1" else "RGB"


def _as_mode(strip, mode: str):
    if strip.mode == mode:
        return strip
    if mode in ("La", "RGBa") and strip.mode != mode.upper():
        strip = strip.convert(mode.upper())  # palette transparency and PA become alpha first
    return strip.convert(mode)


def _as_normalised(reduced, original_mode: str, peak):
    """The reduced image in the mode :func:`_normalise` gives the pixels of ``original_mode``.

    _normalise picks the 8-bit scale of I and F images from their maximum; block averages can
    only lower it, so the full image's maximum (``peak``) decides here.
    """
    from PIL import Image

    if reduced.mode == "La":
        return reduced.getchannel(0)  # premultiplied = composited onto black
    if reduced.mode == "RGBa":
        return Image.merge("RGB", reduced.split()[:3])  # not convert("RGB"): it would unpremultiply
    if original_mode.startswith("I;16") or (original_mode == "I" and peak > 255):
        return reduced.convert("I;16")  # the 0–65535 scale; Pillow clips as _normalise's formula does
    if original_mode == "F" and not peak <= 1.0 and np.asarray(reduced).max(initial=0) <= 1.0:
        return reduced.point(lambda v: v / 255.0)  # keeps the 0–255 scale the full image asks for
    return reduced


def _normalise(im, name: str) -> np.ndarray:
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
    data, name = _image_bytes(source, name, max_bytes)
    return np.ascontiguousarray(_decode(data, name, max_pixels)[0].transpose(2, 0, 1))


def read_image_for(source: str | os.PathLike | bytes, size: tuple[int, int], name: str | None = None, *,
                   max_bytes: int = MAX_FILE_BYTES,
                   max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, tuple[int, int, int]]:
    """:func:`read_image` for a caller that will resize to ``size`` (H, W), in bounded memory.

    Returns (the image, its (C, H, W) in the file). The image comes back at most four times
    ``size`` per side: a bigger one is shrunk by whole factors (box averages, alpha composited
    first) to no less than twice ``size``; one up to twice ``size`` is exactly what
    :func:`read_image` gives.
    """
    data, name = _image_bytes(source, name, max_bytes)
    image, (height, width) = _decode(data, name, max_pixels, fit=size)
    return np.ascontiguousarray(image.transpose(2, 0, 1)), (image.shape[2], height, width)


def _image_bytes(source, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "uploaded image"
        if len(data) > max_bytes:
            raise VaelabError(f"is {len(data):,} bytes, over the {max_bytes:,}-byte limit", name)
        return data, name
    from .fileio import read_bytes

    name = name or os.fspath(source)
    return read_bytes(source, "image", max_bytes), name


MAX_NPY_BYTES = 1 << 30            # an .npy file on disk
MAX_NPY_VALUES = 1 << 28           # N·C·H·W of one .npy input: 256 MiB as uint8 (e.g. 340,000 28×28 images)
_NPY_HEAD_BYTES = 1 << 16          # more than any header numpy reads (it refuses those over 10,000 bytes)
_NPY_CHUNK_VALUES = 1 << 24        # values converted at a time, so float inputs need no float64 copy of it all


def _npy_header(buf: io.BytesIO) -> tuple[tuple, bool, np.dtype]:
    """The magic and header of ``.npy`` bytes -> (shape, fortran_order, dtype); ValueError if unreadable."""
    fmt = np.lib.format
    version = fmt.read_magic(buf)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"format version {version[0]}.{version[1]} is not supported")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the header parser's SyntaxWarnings on damaged headers
        shape, fortran_order, dtype = read_header(buf)
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"holds {dtype} values, not plain numbers (nothing is unpickled)")
    return shape, fortran_order, dtype


def _npy_array(data: bytes, path, check=None, header_only: bool = False) -> np.ndarray | None:
    """Parse ``.npy`` bytes without trusting the header: it must describe exactly the bytes that follow.

    ``np.load`` would allocate whatever shape the header declares before noticing the data is
    missing, and lets the header parser's own exceptions (SyntaxError, tokenize errors) escape.
    ``check(shape, dtype)``, if given, vets the declared shape before any array exists;
    ``header_only`` stops there (returns None), for ``data`` that is only the file's first bytes.
    """
    import tokenize

    buf = io.BytesIO(data)
    try:
        shape, fortran_order, dtype = _npy_header(buf)
        if check is not None:
            check(shape, dtype)
        if header_only:
            return None
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


def _npy_layout(shape: tuple, dtype: np.dtype, path) -> tuple[int, int, int, int, bool]:
    """A declared shape -> (N, C, H, W, channels_last), refused unless it is images within the caps.

    Runs on the header alone: a 400-megapixel array is refused as an image file over
    MAX_PIXELS is, and N·C·H·W is capped by MAX_NPY_VALUES, before the array is read.
    """
    if dtype.kind not in "uif" or 0 in shape:
        raise VaelabError(f"must hold a non-empty numeric array, found dtype {dtype}", path)
    if any(size < 0 for size in shape):
        raise VaelabError(f"declares an impossible shape {shape}", path)
    last = False
    if len(shape) == 2:
        (H, W), N, C = shape, 1, 1
    elif len(shape) == 3:
        (N, H, W), C = shape, 1
    elif len(shape) == 4:
        last = shape[1] not in (1, 3, 4) and shape[-1] in (1, 3, 4)
        N, H, W, C = shape if last else (shape[0], shape[2], shape[3], shape[1])
    else:
        raise VaelabError(f"has shape {shape}; expected (N, C, H, W), (N, H, W, C), (N, H, W) or (H, W)", path)
    if C not in (1, 3, 4):
        raise VaelabError(f"has {C} channels; images have 1 (grey), 3 (RGB) or 4 (RGBA)", path)
    if H * W > MAX_PIXELS:
        raise VaelabError(f"holds images of {H}×{W} = {H * W:,} pixels, over the {MAX_PIXELS:,}-pixel limit "
                          "of an image", path)
    if N * C * H * W > MAX_NPY_VALUES:
        raise VaelabError(f"holds {N:,} images of {C}×{H}×{W}: {N * C * H * W:,} values, over the "
                          f"{MAX_NPY_VALUES:,}-value limit of one .npy input; split it into smaller files", path)
    return N, C, H, W, last


def _npy_images(data: bytes, path) -> np.ndarray:
    """``.npy`` bytes -> (N, C, H, W) uint8 (the layouts and values of :func:`read_npy`)."""
    layout = {}

    def check(shape, dtype):
        layout["nchw"] = _npy_layout(shape, dtype, path)

    arr = _npy_array(data, path, check)
    N, C, H, W, last = layout["nchw"]
    arr = arr.reshape(N, H, W, C).transpose(0, 3, 1, 2) if last else arr.reshape(N, C, H, W)
    step = max(1, _NPY_CHUNK_VALUES // (C * H * W))
    top = None
    if arr.dtype.kind == "f":
        if not all(np.isfinite(arr[i:i + step]).all() for i in range(0, N, step)):
            raise VaelabError("contains NaN or infinite values", path)
        top = 1.0 if arr.max() <= 1.0 else 255.0
    elif arr.min() < 0 or arr.max() > 255:
        raise VaelabError("integer pixel values must lie in 0–255", path)
    out = np.empty((N, min(C, 3), H, W), dtype=np.uint8)
    for start in range(0, N, step):
        part = arr[start:start + step]
        if top is not None:   # floats: [0, 1] or [0, 255], rounded to the nearest level
            with np.errstate(over="ignore"):   # float16 near its maximum overflows to inf: clipped to 255
                part = np.clip(part / top * 255.0 + 0.5, 0, 255)
        part = part.astype(np.uint8)
        if C == 4:  # RGBA: composite onto black, as for image files
            alpha = part[:, 3:4].astype(np.float32) / 255.0
            part = np.clip(part[:, :3] * alpha + 0.5, 0, 255).astype(np.uint8)
        out[start:start + step] = part
    return out


def read_npy(path: str | os.PathLike, max_bytes: int = MAX_NPY_BYTES) -> np.ndarray:
    """A ``.npy`` array of images -> (N, C, H, W) uint8. Never unpickles.

    Accepted layouts: (H, W), (N, H, W), (N, C, H, W) and (N, H, W, C) with C ∈ {1, 3, 4};
    uint8 0–255 or floats in [0, 1]. Each image obeys the pixel limit of image files
    (MAX_PIXELS) and the whole array MAX_NPY_VALUES; both are checked from the header, read
    first, so an array over them is refused before the rest of the file is read.
    """
    from .fileio import read_bytes, read_head

    _npy_array(read_head(path, ".npy file", _NPY_HEAD_BYTES), path,
               lambda shape, dtype: _npy_layout(shape, dtype, path), header_only=True)
    return _npy_images(read_bytes(path, ".npy file", max_bytes), path)


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


def _stdin_images() -> list[tuple[str, np.ndarray]]:
    """Standard input -> [(name, (C, H, W) uint8)]: a ``.npy`` array by its magic bytes, else one image."""
    from .fileio import STDIN, read_bytes

    data = read_bytes(STDIN, "image or .npy array", MAX_NPY_BYTES, stdin=True)
    if data.startswith(b"\x93NUMPY"):
        return [(f"stdin[{i}]", img) for i, img in enumerate(_npy_images(data, "standard input"))]
    return [("stdin", read_image(data, name="standard input"))]


def load_images(sources: Iterable[str | os.PathLike], channels: int, size: tuple[int, int]) -> tuple[np.ndarray, list[str], list[str]]:
    """Files, folders and ``.npy`` arrays -> ((N, channels, H, W) uint8, names, notices).

    ``-`` is standard input (once): an image or a ``.npy`` array, told apart by its content (a
    file named ``-`` needs a longer path: pathlib turns ``./-`` into ``-``). ``notices`` says once
    per kind of conversion what was done (resize, colour change), so the caller can tell the user.
    """
    images, names, noticed = [], [], {}
    stdin_read = False
    for source in sources:
        path = Path(source)
        if os.fspath(source) == "-":
            if stdin_read:  # a second read would find it empty
                raise VaelabError("'-' (standard input) can be given only once")
            stdin_read = True
            entries = _stdin_images()
        elif path.is_dir():
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
                kind = f"converted {'RGB' if C == 3 else 'grey'} input to {'RGB' if channels == 3 else 'grey'}"
                noticed.setdefault(kind, []).append(name)
            if (H, W) != tuple(size):
                noticed.setdefault(f"resized input from {H}×{W} to the model's {size[0]}×{size[1]}", []).append(name)
            images.append(convert(img, channels, size))
            names.append(name)
    if not images:
        raise VaelabError("no images given")
    return np.stack(images), names, sorted(_notice(kind, which) for kind, which in noticed.items())


def _notice(kind: str, names: list[str], shown: int = 3) -> str:
    """"resized input from 32×32 to the model's 28×28: a.png, b.png, c.png and 7 more"."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{kind}: {', '.join(names[:shown])}{more}"


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
