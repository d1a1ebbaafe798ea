"""Request and response bodies of the explorer's JSON API (they make its OpenAPI schema).

Images travel as ``data:image/png;base64,…`` URLs at the model's resolution; the page
scales them up with pixelated rendering.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .explorer import MAX_SAMPLES, MAX_STEPS

PngDataUrl = Annotated[str, Field(description="a PNG image as a data: URL")]
LatentValue = Annotated[float, Field(ge=-1000.0, le=1000.0, allow_inf_nan=False)]


class ErrorBody(BaseModel):
    error: str = Field(description="one line saying what was wrong and what to do")


class RunSummary(BaseModel):
    id: int = Field(description="position in the server's list; use it (or the name) in /api/runs/{run}/…")
    name: str
    model: str
    data: str
    latent_dim: int
    image_shape: list[int] = Field(description="(C, H, W)")
    is_variational: bool
    test_images: int = Field(description="test images served (map points, thumbnails, galleries)")
    test_neg_elbo: float | None = Field(description="−ELBO on the test set in nats per image, if recorded")
    label_conditioned: bool = Field(False, description="the model generates under a class label (cond-vae): "
                                                       "samples take a `label`, the page shows the Classes panel")


class RunList(BaseModel):
    runs: list[RunSummary]


class ConfigRow(BaseModel):
    section: str
    key: str
    value: Any
    help: str


class CurvePoint(BaseModel):
    epoch: int | None
    train_loss: float | None
    val_loss: float | None


class RunDetails(RunSummary):
    data_description: str
    class_names: list[str]
    metrics: dict[str, bool | int | float | None] = Field(description="the final record of metrics.jsonl")
    curve: list[CurvePoint] = Field(description="training and validation loss per epoch")
    config: list[ConfigRow]
    startup_seconds: dict[str, float] = Field(description="what preparing this run took, per step")


class LatentInfo(BaseModel):
    dims: list[int] = Field(description="latent dimensions, most informative (highest KL) first")
    score: list[float] = Field(description="per dimension d: mean KL(q(z_d|x) ‖ N(0,1)) in nats (VAE) or the "
                                           "variance of the codes (AE)")
    score_name: str
    low: list[float] = Field(description="slider minimum per dimension d")
    high: list[float] = Field(description="slider maximum per dimension d")
    origin: list[float] = Field(description="the centre: the prior mean (VAE) or the training codes' mean (AE)")


class StrictBody(BaseModel):
    """Request bodies refuse unknown fields, so nothing (a path, say) is silently accepted."""

    model_config = ConfigDict(extra="forbid")


class SampleRequest(StrictBody):
    n: int = Field(36, ge=1, le=MAX_SAMPLES, description="how many images")
    temperature: float = Field(1.0, gt=0.0, le=3.0, description="scales the prior's standard deviation")
    seed: int | None = Field(None, ge=0, lt=2**32, description="omit for a fresh grid on every call")
    label: int | None = Field(None, ge=0, lt=1000, description="label-conditioned runs: the class to generate "
                                                             "(omit to draw it from p(y))")


class ImageList(BaseModel):
    images: list[PngDataUrl]
    seed: int | None = None


class DecodeRequest(StrictBody):
    z: list[LatentValue] = Field(max_length=4096, description="one latent code, latent_dim numbers")


class DecodeResult(BaseModel):
    image: PngDataUrl
    ms: float = Field(description="server time to decode and encode the image, in milliseconds")


class LatentMapResult(BaseModel):
    n: int = Field(description="points returned")
    available: int = Field(description="test images this run serves; n is capped by it")
    projection: str = Field(description="'latent' (the latent space is 1- or 2-D, drawn as is) or 'pca'")
    explained: list[float] = Field(description="fraction of the codes' variance along x and y")
    x: list[float]
    y: list[float]
    labels: list[int] | None
    class_names: list[str]


class ServedImage(BaseModel):
    index: int
    label: int | None
    label_name: str | None
    image: PngDataUrl
    reconstruction: PngDataUrl
    mse: float = Field(description="mean squared error per pixel on [0, 1]")
    code: list[float] = Field(description="the latent mean μ(x) (the map's point before projection)")


class InterpolateRequest(StrictBody):
    a: int = Field(ge=0, description="index of the first test image")
    b: int = Field(ge=0, description="index of the second test image")
    steps: int = Field(10, ge=2, le=MAX_STEPS, description="frames, ends included")
    slerp: bool = Field(False, description="spherical instead of straight-line interpolation")


class AnomalyScore(BaseModel):
    score_name: str = Field(description="one of vaelab.apps.score_names()")
    meaning: str
    score: float | None = Field(description="higher = more anomalous")
    threshold: float | None = Field(description="the quantile of the scores of the run's validation images")
    quantile: float
    fit_images: int | None
    is_anomaly: bool = Field(description="score above the threshold")


class SizeComparison(BaseModel):
    raw: int = Field(description="bytes of the uncompressed image (C·H·W)")
    png: int
    webp_lossless: int
    codec: int | None = Field(description="bytes of vaelab's learned codec file (None if it cannot run here)")
    codec_header: int | None = Field(description="of which the container's header and checksum")
    codec_coder: str | None
    codec_psnr: float | None = Field(description="dB; None when lossless")
    codec_error: str | None
    webp: int | None = Field(description="smallest lossy WebP at least as faithful as the codec")
    webp_quality: int | None
    webp_psnr: float | None
    settings: str


class UploadResult(BaseModel):
    name: str
    original_size: list[int] = Field(description="(C, H, W) of the upload before conversion")
    notices: list[str] = Field(description="how the upload was converted to the model's format")
    image: PngDataUrl = Field(description="the upload at the model's resolution (what the model sees)")
    reconstruction: PngDataUrl
    mse: float
    anomaly: list[AnomalyScore] = Field(description="nll, complexity and reconstruction for a VAE; "
                                                    "reconstruction for an AE")
    sizes: SizeComparison
    codec_image: PngDataUrl | None = Field(description="what the codec's bitstream decodes to")

