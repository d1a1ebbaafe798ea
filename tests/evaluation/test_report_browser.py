"""The report opens in Chromium and every figure in it decodes."""

from __future__ import annotations

import pytest

from vaelab.report import write_report

SECTIONS = ["Configuration", "Metrics", "Training curves", "Reconstructions", "Samples", "Latent space",
            "KL per dimension"]


@pytest.mark.browser
def test_report_opens_in_chromium_with_its_figures(fmnist_vae_run):
    from playwright.sync_api import sync_playwright

    path = write_report(fmnist_vae_run)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(f"file://{path}")
            page.wait_for_load_state("load")
            headings = page.locator("h2").all_inner_texts()
            images = page.evaluate("() => Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        finally:
            browser.close()
    assert headings[:len(SECTIONS)] == SECTIONS
    # loss, ELBO/KL, reconstructions, samples, PCA map, t-SNE map, KL per dimension
    assert len(images) >= 7
    assert all(complete and width > 0 for _, complete, width in images), images
    assert all(url.startswith(("file:", "data:")) for url in requests)   # self-contained: no network
