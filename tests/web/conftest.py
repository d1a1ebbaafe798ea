"""Fixtures of the explorer tests: prepared runs, an ASGI test client, a live server, Chromium."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def explorer_runs(tiny_vae_run, tiny_ae_run):
    """The tiny VAE (id 0) and the tiny AE (id 1), prepared once for every web test."""
    import torch

    from vaelab.web import prepare_runs

    torch.set_num_threads(1)  # the machine is shared; these models are tiny
    return prepare_runs([tiny_vae_run, tiny_ae_run], progress=False)


@pytest.fixture(scope="session")
def client(explorer_runs):
    from fastapi.testclient import TestClient

    from vaelab.web import create_app

    with TestClient(create_app(explorer_runs)) as test_client:
        yield test_client


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    """(H, W) or (H, W, 3) uint8 -> PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def decode_data_url(url: str) -> np.ndarray:
    """A ``data:image/png;base64,`` URL -> (C, H, W) uint8, decoded independently of vaelab."""
    import base64

    from PIL import Image

    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        arr = np.asarray(im)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@pytest.fixture(scope="module")
def live_server(explorer_runs):
    """The explorer on a free 127.0.0.1 port in a background thread; stopped after the module."""
    from vaelab.web import BackgroundServer, create_app

    with BackgroundServer(create_app(explorer_runs)) as server:
        yield server
    assert not server.thread.is_alive(), "the server thread did not stop"


@pytest.fixture(scope="module")
def browser():
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def to_png():
    """The :func:`png_bytes` helper, as a fixture (test modules are not importable here)."""
    return png_bytes


@pytest.fixture(scope="session")
def pixels():
    """The :func:`decode_data_url` helper, as a fixture."""
    return decode_data_url


@contextlib.contextmanager
def explorer_page(browser, url: str, problems: list, foreign: list | None = None):
    """A fresh Chromium page on the explorer at ``url`` once its first run is shown; script and console
    errors go to ``problems``, requests off the server (data: URLs aside) to ``foreign`` when given."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    if foreign is not None:
        page.on("request", lambda request: foreign.append(request.url)
                if not request.url.startswith((url, "data:")) else None)
    page.goto(url)
    page.wait_for_selector("body[data-run='0']", state="attached")
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def open_explorer():
    """The :func:`explorer_page` helper, as a fixture."""
    return explorer_page
