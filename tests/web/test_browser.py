"""Click through every panel in Chromium (Playwright) and check what appears."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# Reads an <img>'s pixels through a canvas (data: and same-origin URLs do not taint it).
PIXELS_JS = """(selector) => {
  const img = document.querySelector(selector);
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
}"""
LOADED_JS = "(selector) => { const i = document.querySelector(selector); return !!i && i.naturalWidth > 0; }"
ALL_LOADED_JS = "(selector) => Array.from(document.querySelectorAll(selector)).every(i => i.naturalWidth > 0)"


@pytest.fixture
def problems():
    """Script errors and console errors of the page (a test that provokes one clears it)."""
    return []


@pytest.fixture
def page(browser, live_server, problems, open_explorer):
    """A fresh page on the explorer; fails the test on any script error or off-server request."""
    foreign = []
    with open_explorer(browser, live_server.url, problems, foreign) as page:
        yield page
    assert not problems, problems
    assert not foreign, f"requests left the server: {foreign}"


def open_panel(page, name: str) -> None:
    page.click(f"#tab-{name}")
    assert page.is_visible(f"#panel-{name}")


def srcs(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "nodes => nodes.map(n => n.src)")


def test_samples_grid_changes_on_click_and_follows_count_and_temperature(page):
    open_panel(page, "samples")
    page.wait_for_function("() => document.querySelectorAll('#samples-grid img').length === 36")
    first = srcs(page, "#samples-grid img")
    page.click("#samples-new")
    page.wait_for_function("(old) => document.querySelector('#samples-grid img').src !== old", arg=first[0])
    second = srcs(page, "#samples-grid img")
    assert len(second) == 36 and second != first
    seed = page.get_attribute("#samples-grid", "data-seed")
    page.fill("#samples-temperature", "0.3")  # same codes, scaled towards the prior's centre
    page.wait_for_function("(old) => document.querySelector('#samples-grid img').src !== old", arg=second[0])
    assert page.text_content("#samples-temperature-value") == "0.30"
    assert page.get_attribute("#samples-grid", "data-seed") == seed
    page.select_option("#samples-count", "16")
    page.wait_for_function("() => document.querySelectorAll('#samples-grid img').length === 16")


def test_moving_a_slider_changes_the_decoded_pixels(page, live_server):
    open_panel(page, "sliders")
    latent = page.request.get(live_server.url + "api/runs/0/latent").json()
    page.wait_for_function(LOADED_JS, arg="#slider-image")
    labels = page.eval_on_selector_all("#slider-list label", "nodes => nodes.map(n => n.textContent)")
    assert [label.split(" ")[0] for label in labels] == [f"z{d}" for d in latent["dims"]]  # ordered by KL
    before_src = page.get_attribute("#slider-image", "src")
    before = page.evaluate(PIXELS_JS, "#slider-image")
    top = page.locator("#slider-list input").first
    top.focus()
    page.keyboard.press("End")  # keyboard-operable: jump to the slider's maximum
    page.wait_for_function("(old) => document.querySelector('#slider-image').src !== old", arg=before_src)
    page.wait_for_function(LOADED_JS, arg="#slider-image")
    after = page.evaluate(PIXELS_JS, "#slider-image")
    assert len(after) == len(before) == 8 * 8 * 4
    assert after != before
    assert float(top.input_value()) == pytest.approx(latent["high"][latent["dims"][0]])
    assert "ms on the server" in page.text_content("#slider-timing")
    page.click("#slider-centre")
    page.wait_for_function("(old) => document.querySelector('#slider-image').src === old", arg=before_src)


def test_latent_map_has_the_requested_points_hover_and_click(page):
    open_panel(page, "map")
    page.wait_for_function("() => document.querySelector('#map').dataset.points === '500' || "
                           "document.querySelectorAll('#map circle').length > 0")
    page.select_option("#map-count", "100")
    page.click("#map-draw")
    page.wait_for_function("() => document.querySelector('#map').dataset.points === '100'")
    assert page.locator("#map circle").count() == 100
    assert "100 of" in page.text_content("#map-caption")
    # the last circle drawn lies on top of any it overlaps, so the pointer reaches it on every layout
    point = page.locator("#map circle").last
    index = point.get_attribute("data-index")
    point.hover()
    assert page.is_visible("#map-tooltip")
    page.wait_for_function(LOADED_JS, arg="#map-tooltip img")
    assert page.text_content("#map-tooltip span").startswith(f"#{index}")
    point.click(force=True)
    page.wait_for_selector("#map-detail img")
    page.wait_for_function(ALL_LOADED_JS, arg="#map-detail img")
    assert page.locator("#map-detail img").count() == 2
    assert f"Test image #{index}" in page.text_content("#map-detail h2")
    # the same detail by keyboard: type an index and press Enter
    page.fill("#map-index", "3")
    page.press("#map-index", "Enter")
    page.wait_for_function("() => document.querySelector('#map-detail h2').textContent.includes('#3')")


def test_interpolation_strip_has_steps_frames_between_picked_images(page):
    open_panel(page, "interpolate")
    page.wait_for_function("() => document.querySelectorAll('#interp-strip img').length === 10")
    page.fill("#interp-steps", "7")
    page.click("#interp-go")
    page.wait_for_function("() => document.querySelectorAll('#interp-strip img').length === 7")
    first_frames = srcs(page, "#interp-strip img")
    page.click("#interp-gallery button[data-index='3']")
    page.click("#interp-gallery button[data-index='5']")
    page.wait_for_function("(old) => document.querySelector('#interp-strip img').src !== old", arg=first_frames[0])
    assert page.locator("#interp-strip img").count() == 7
    assert "is-a" in page.get_attribute("#interp-gallery button[data-index='3']", "class")
    assert "is-b" in page.get_attribute("#interp-gallery button[data-index='5']", "class")


def test_upload_shows_reconstruction_score_and_sizes(page, tmp_path, explorer_runs, to_png):
    import numpy as np

    digit = np.kron(explorer_runs[0].images[4][0], np.ones((6, 6), dtype=np.uint8))  # 48×48 grey
    path = tmp_path / "my digit.png"
    path.write_bytes(to_png(digit))
    open_panel(page, "upload")
    page.set_input_files("#upload-file", str(path))
    page.wait_for_selector("#upload-sizes")
    page.wait_for_function(ALL_LOADED_JS, arg="#upload-result img")
    assert page.locator("#upload-result img").count() >= 2
    sizes = page.text_content("#upload-sizes")
    assert "PNG (lossless)" in sizes and "WebP lossless" in sizes and "vaelab codec" in sizes
    assert "my digit.png: resized from 48×48" in page.text_content("#upload-result")
    assert "complexity" in page.text_content("#upload-anomaly")


def test_upload_of_a_non_image_shows_the_servers_message(page, tmp_path, problems):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    open_panel(page, "upload")
    page.set_input_files("#upload-file", str(path))
    page.wait_for_function("() => document.querySelector('#upload-status').classList.contains('error')")
    assert "not an image" in page.text_content("#upload-status")
    assert problems == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    problems.clear()  # Chromium logs the refused upload; that 400 is the point of this test


def test_run_panel_shows_metrics_and_switches_runs(page):
    open_panel(page, "run")
    page.wait_for_selector("#run-metrics tr")
    assert "test neg elbo" in page.text_content("#run-metrics")
    assert "[model]" in page.text_content("#run-config")
    assert page.locator("#run-curve polyline").count() == 2
    page.click("#run-table button:has-text('switch')")
    page.wait_for_selector("body[data-run='1']", state="attached")
    assert page.input_value("#run-select") == "1"
    assert "mlp-ae" in page.text_content("#run-summary")
    current_name = "() => document.querySelector('#run-table tr.current td:nth-child(2)')?.textContent"
    page.wait_for_function(f"{current_name} === 'tiny-ae'")
    open_panel(page, "samples")  # the other panels now show the autoencoder
    page.wait_for_function("() => document.querySelectorAll('#samples-grid img').length === 36")
    open_panel(page, "sliders")
    page.wait_for_function("() => document.querySelector('#slider-list label')?.textContent.includes('code variance')")
    page.select_option("#run-select", "0")
    page.wait_for_selector("body[data-run='0']", state="attached")
    assert "conv-vae" in page.text_content("#run-summary")


def test_tabs_work_from_the_keyboard(page):
    page.focus("#tab-samples")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-sliders", "aria-selected") == "true"
    assert page.is_visible("#panel-sliders") and not page.is_visible("#panel-samples")
    page.keyboard.press("End")
    assert page.get_attribute("#tab-run", "aria-selected") == "true"
    page.keyboard.press("ArrowRight")  # wraps around
    assert page.get_attribute("#tab-samples", "aria-selected") == "true"


# A page on another site that posts to the explorer, as any site the user visits could: a
# "simple" fetch (no CORS preflight) and a multipart form submitted by script.
ATTACK_PAGE = """<!doctype html>
<form id="f" method="post" enctype="multipart/form-data" action="{explorer}api/runs/0/upload">
<input name="file" value="x"></form>
<script>
fetch("{explorer}api/runs/0/decode", {{method: "POST", mode: "no-cors", body: '{{"z": [0, 0, 0, 0]}}',
                                      headers: {{"content-type": "text/plain"}}}})
  .finally(() => document.getElementById("f").submit());
</script>"""


def test_pages_of_other_sites_cannot_post_to_the_explorer(browser, live_server):
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from vaelab.web import BackgroundServer

    page_html = ATTACK_PAGE.format(explorer=live_server.url)
    evil = Starlette(routes=[Route("/", lambda request: HTMLResponse(page_html))])
    with BackgroundServer(evil) as other_site:  # another port: another origin
        context = browser.new_context()
        page = context.new_page()
        answers = {}
        page.on("response", lambda r: answers.update({r.url: r.status}) if r.url.startswith(live_server.url) else None)
        page.goto(other_site.url)
        page.wait_for_url(live_server.url + "api/runs/0/upload")  # the form's answer is shown
        assert "cross-origin request refused" in page.text_content("body")
        context.close()
    assert answers == {live_server.url + "api/runs/0/decode": 403, live_server.url + "api/runs/0/upload": 403}


def test_a_name_rebound_to_loopback_is_refused_and_localhost_works(browser, live_server):
    # DNS rebinding: the browser resolves evil.test to 127.0.0.1 and believes the explorer is evil.test's
    port = live_server.url.rsplit(":", 1)[1].strip("/")
    chromium = browser.browser_type.launch(executable_path="/usr/bin/chromium",  # the browser fixture's
                                           args=["--no-sandbox", "--disable-gpu",
                                                 "--host-resolver-rules=MAP evil.test 127.0.0.1"])
    try:
        page = chromium.new_page()
        response = page.goto(f"http://evil.test:{port}/")
        assert response.status == 421 and "does not name this server" in page.text_content("body")
        page.goto(f"http://localhost:{port}/")  # the explorer's own names still work, posts included
        page.wait_for_selector("body[data-run='0']", state="attached")
        status = page.evaluate("""() => fetch("/api/runs/0/decode", {method: "POST",
            headers: {"content-type": "application/json"}, body: '{"z": [0, 0, 0, 0]}'}).then(r => r.status)""")
        assert status == 200
    finally:
        chromium.close()
