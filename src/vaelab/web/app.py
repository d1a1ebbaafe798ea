"""The explorer's ASGI application: JSON endpoints under ``/api`` and the static page at ``/``.

Runs are addressed by their position or name in the server's list — the client never
sends a path. Every error is JSON ``{"error": "..."}``: a :class:`VaelabError` (bad
image, index out of range, wrong latent size) is 400, validation 422, unknown run or
route 404, an oversized body 413, a request for another host 421 or from another origin 403
(DNS rebinding, cross-site posts), an upload past the concurrency limit 503 with
``Retry-After`` (see :mod:`.slots`), anything unexpected a generic 500 (see :mod:`.guard`).

An upload is read in bounded memory: it is decoded no bigger than four times the model's
size per side (JPEG at a reduced scale, anything else reduced strip by strip right after
decoding; :func:`vaelab.imageio.read_image_for`), so its peak is the decoded file (≤ 4 bytes a
pixel, capped by ``max_upload_pixels``) and at most ``upload_slots`` uploads run at once.
The OpenAPI schema is at ``/api/openapi.json``; the interactive docs are left out because
they load scripts from a CDN and the page must work offline.
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path, PurePosixPath
from typing import Annotated, Sequence

import numpy as np
from fastapi import FastAPI, File, HTTPException, Path as PathParam, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import VaelabError
from ..imageio import convert, encode_png, read_image_for
from . import schemas
from .explorer import MAP_POINTS, MAX_MAP_POINTS, ExplorerRun, NotFound
from .guard import Guard
from .slots import Slots

STATIC_DIR = Path(__file__).parent / "static"
MAX_UPLOAD_BYTES = 10 << 20         # an image file of up to 10 MiB
MAX_UPLOAD_PIXELS = 16_000_000      # decoded size cap: refuses decompression bombs
MULTIPART_OVERHEAD = 64 << 10       # form boundaries and headers around the file
UPLOAD_SLOTS = 2                    # uploads processed at once; each may hold ~70 MB (a 16 MP RGBA file)

RunKey = Annotated[str, PathParam(max_length=200, description="the run's id (0, 1, …) or name")]
ImageIndex = Annotated[int, PathParam(ge=0, description="index of a served test image")]


def png_url(image: np.ndarray) -> str:
    """(C, H, W) uint8 -> a ``data:image/png;base64,…`` URL."""
    return "data:image/png;base64," + base64.b64encode(encode_png(image)).decode("ascii")


def _display_name(filename: str | None) -> str:
    """A client's file name, reduced to something safe to show (never used as a path)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable())[:100]
    return name or "uploaded image"


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        loc = list(error.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):  # where it was, not what
            loc = loc[1:]
        where = ".".join(str(p) for p in loc)
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg", "invalid")))
    return "invalid request: " + "; ".join(parts)


def create_app(runs: Sequence[ExplorerRun], *, max_upload_bytes: int = MAX_UPLOAD_BYTES,
               max_upload_pixels: int = MAX_UPLOAD_PIXELS, upload_slots: int = UPLOAD_SLOTS,
               allowed_hosts: Sequence[str] = ()) -> FastAPI:
    """The explorer app serving prepared ``runs`` (see :func:`vaelab.web.prepare_runs`).

    ``allowed_hosts``: names the ``Host`` header may carry besides loopback and the bound address.
    """
    if not runs:
        raise VaelabError("no runs to serve")
    runs = list(runs)
    app = FastAPI(title="vaelab latent explorer", version=__version__,
                  description="Explore the latent space of trained vaelab runs.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.add_middleware(Guard, max_body_bytes=max_upload_bytes + MULTIPART_OVERHEAD, allowed_hosts=allowed_hosts)
    uploads = Slots(upload_slots)
    errors = {400: {"model": schemas.ErrorBody}, 404: {"model": schemas.ErrorBody},
              422: {"model": schemas.ErrorBody}}

    @app.exception_handler(VaelabError)
    async def _user_error(request: Request, exc: VaelabError):
        return JSONResponse({"error": str(exc)}, status_code=404 if isinstance(exc, NotFound) else 400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    def lookup(key: str) -> ExplorerRun:
        for index, run in enumerate(runs):
            if key == str(index) or key == run.name:
                return run
        served = ", ".join(f"{i} ({r.name})" for i, r in enumerate(runs))
        raise HTTPException(404, f"no run {key[:60]!r} is served here; served runs: {served}")

    # -- the page --------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # -- runs ------------------------------------------------------------------------------
    @app.get("/api/runs", response_model=schemas.RunList, summary="The runs this server explores")
    def list_runs():
        return {"runs": [run.summary(i) for i, run in enumerate(runs)]}

    @app.get("/api/runs/{run}", response_model=schemas.RunDetails, responses=errors,
             summary="A run's metrics, loss curve and config")
    def run_details(run: RunKey):
        explorer = lookup(run)
        return explorer.details(runs.index(explorer))

    # -- samples ---------------------------------------------------------------------------
    @app.post("/api/runs/{run}/samples", response_model=schemas.ImageList, responses=errors,
              summary="New images from the prior")
    def samples(run: RunKey, body: schemas.SampleRequest):
        explorer = lookup(run)
        seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
        images = explorer.sample(body.n, body.temperature, seed, body.label)
        return {"images": [png_url(img) for img in images], "seed": seed}

    # -- sliders ---------------------------------------------------------------------------
    @app.get("/api/runs/{run}/latent", response_model=schemas.LatentInfo, responses=errors,
             summary="Latent dimensions ordered by KL, with slider ranges")
    def latent(run: RunKey):
        explorer = lookup(run)
        return {"dims": explorer.dim_order, "score": explorer.dim_score.tolist(),
                "score_name": "KL (nats)" if explorer.model.is_variational else "code variance",
                "low": explorer.low.tolist(), "high": explorer.high.tolist(), "origin": explorer.origin.tolist()}

    @app.post("/api/runs/{run}/decode", response_model=schemas.DecodeResult, responses=errors,
              summary="Decode one latent code (the sliders' request)")
    def decode(run: RunKey, body: schemas.DecodeRequest):
        explorer = lookup(run)
        start = time.perf_counter()
        image = png_url(explorer.decode(body.z))
        return {"image": image, "ms": (time.perf_counter() - start) * 1000.0}

    # -- latent map ------------------------------------------------------------------------
    @app.get("/api/runs/{run}/map", response_model=schemas.LatentMapResult, responses=errors,
             summary="Test images' latent means in 2-D")
    def latent_map(run: RunKey, n: Annotated[int, Query(ge=1, le=MAX_MAP_POINTS)] = MAP_POINTS):
        return lookup(run).latent_map(n)

    @app.get("/api/runs/{run}/images/{index}", response_model=schemas.ServedImage, responses=errors,
             summary="A test image beside its reconstruction, with its code")
    def test_image(run: RunKey, index: ImageIndex):
        explorer = lookup(run)
        explorer.check_index(index)
        image = explorer.images[index]
        recon, mse = explorer.reconstruct(image[None])
        label = None if explorer.labels is None else int(explorer.labels[index])
        return {"index": index, "label": label, "label_name": explorer.label_name(index),
                "image": png_url(image), "reconstruction": png_url(recon[0]), "mse": float(mse[0]),
                "code": explorer.codes[index].tolist()}

    @app.get("/api/runs/{run}/thumbnails/{index}", response_class=Response, summary="A test image as PNG",
             responses={200: {"content": {"image/png": {}}}, **errors})
    def thumbnail(run: RunKey, index: ImageIndex):
        explorer = lookup(run)
        explorer.check_index(index)
        return Response(encode_png(explorer.images[index]), media_type="image/png",
                        headers={"cache-control": "max-age=3600"})

    # -- interpolation ---------------------------------------------------------------------
    @app.post("/api/runs/{run}/interpolate", response_model=schemas.ImageList, responses=errors,
              summary="Decoded path between two test images")
    def interpolate(run: RunKey, body: schemas.InterpolateRequest):
        frames = lookup(run).interpolate(body.a, body.b, body.steps, body.slerp)
        return {"images": [png_url(frame) for frame in frames]}

    # -- your image ------------------------------------------------------------------------
    @app.post("/api/runs/{run}/upload", response_model=schemas.UploadResult,
              responses={**errors, 413: {"model": schemas.ErrorBody}, 503: {"model": schemas.ErrorBody}},
              summary="Reconstruct, score and compress an uploaded PNG/JPEG")
    def upload(run: RunKey, file: Annotated[UploadFile, File(description="a PNG or JPEG image")]):
        explorer = lookup(run)
        with uploads.take():  # 503 past the limit: decoding and scoring cost memory and CPU per request
            return upload_result(explorer, _display_name(file.filename), file.file.read(max_upload_bytes + 1))

    def upload_result(explorer: ExplorerRun, name: str, data: bytes) -> dict:
        C, H, W = explorer.model.image_shape
        # read_image_for checks the content (not the name or declared type), refuses bombs, and
        # never holds more than the decoded file and a strip of it at once
        original, shape = read_image_for(data, (H, W), name=name, max_bytes=max_upload_bytes,
                                         max_pixels=max_upload_pixels)
        notices = []
        if shape[0] != C:
            notices.append(f"converted {'RGB' if shape[0] == 3 else 'grey'} to {'RGB' if C == 3 else 'grey'}")
        if shape[1:] != (H, W):
            notices.append(f"resized from {shape[1]}×{shape[2]} to the model's {H}×{W}")
        image = convert(original, C, (H, W)).copy()  # writable: torch warns on read-only arrays
        recon, mse = explorer.reconstruct(image[None])
        sizes, codec_image = explorer.compare_sizes(image)
        return {"name": name, "original_size": list(shape), "notices": notices,
                "image": png_url(image), "reconstruction": png_url(recon[0]), "mse": float(mse[0]),
                "anomaly": explorer.anomaly(image), "sizes": sizes,
                "codec_image": None if codec_image is None else png_url(codec_image)}

    return app
