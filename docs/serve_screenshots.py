"""Regenerate docs/img/serve-<panel>.png: one screenshot per panel of `vaelab serve runs/demo`.

    vaelab demo                                   # if runs/demo is missing
    nice -n 10 .venv/bin/python docs/serve_screenshots.py runs/demo docs/img

Drives Debian's Chromium through Playwright against the explorer served from a thread.
The "Your image" panel uploads a Fashion-MNIST ankle boot (from Debian's
dataset-fashion-mnist, if installed) to an MNIST model: an image from another data set.
"""

from __future__ import annotations

import gzip
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
FASHION_TEST = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def foreign_image(fallback: np.ndarray) -> bytes:
    """A 112×112 PNG of the first Fashion-MNIST test image (an ankle boot), else ``fallback`` inverted."""
    from PIL import Image

    if FASHION_TEST.exists():
        raw = gzip.decompress(FASHION_TEST.read_bytes())
        image = np.frombuffer(raw, dtype=np.uint8, offset=16, count=28 * 28).reshape(28, 28)
    else:
        image = 255 - fallback[0]
    buf = io.BytesIO()
    Image.fromarray(image).resize((112, 112), Image.Resampling.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def main(run_dir: str, out_dir: str) -> int:
    import torch
    from playwright.sync_api import sync_playwright

    from vaelab.web import BackgroundServer, create_app, prepare_runs

    torch.set_num_threads(1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = prepare_runs([run_dir])
    scratch = tempfile.TemporaryDirectory()
    upload = Path(scratch.name) / "ankle-boot.png"
    upload.write_bytes(foreign_image(runs[0].images[0]))
    written = []
    with scratch:
        with BackgroundServer(create_app(runs)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1180, "height": 760})
            page.set_default_timeout(30_000)
            page.goto(server.url)
            page.wait_for_selector("body[data-run='0']", state="attached")

            def shot(name: str) -> None:
                page.wait_for_timeout(300)
                path = out / f"serve-{name}.png"
                page.screenshot(path=str(path))
                written.append(path)

            page.click("#tab-samples")
            page.wait_for_function("() => document.querySelectorAll('#samples-grid img').length === 36")
            shot("samples")

            page.click("#tab-map")
            page.wait_for_function("() => document.querySelectorAll('#map circle').length > 0")
            page.locator("#map circle").nth(5).click(force=True)
            page.wait_for_selector("#map-detail img")
            page.locator("#map circle").nth(40).hover(force=True)
            page.wait_for_function("() => document.querySelector('#map-tooltip img').naturalWidth > 0")
            shot("map")

            page.click("#map-detail button")  # "Explore in sliders" with that image's code
            page.wait_for_function("() => document.querySelectorAll('#slider-list input').length > 0")
            top = page.locator("#slider-list input").first
            top.focus()
            for _ in range(40):
                page.keyboard.press("ArrowRight")
            page.wait_for_timeout(500)
            shot("sliders")

            page.click("#tab-interpolate")
            page.wait_for_function("() => document.querySelectorAll('#interp-strip img').length === 10")
            page.click("#interp-gallery button[data-index='6']")
            page.click("#interp-gallery button[data-index='19']")
            page.wait_for_timeout(800)
            shot("interpolate")

            page.click("#tab-upload")
            page.set_input_files("#upload-file", str(upload))
            page.wait_for_selector("#upload-sizes")
            shot("upload")

            page.click("#tab-run")
            page.wait_for_selector("#run-metrics tr")
            shot("run")
            browser.close()
    for path in written:
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        raise SystemExit(2)
    raise SystemExit(main(sys.argv[1], sys.argv[2]))
