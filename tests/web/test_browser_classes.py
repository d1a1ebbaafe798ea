"""The Classes panel of a label-conditioned run (cond-vae) in Chromium: shown only for such runs,
its class picker re-decodes the same codes under the picked label."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def cond_run(cond_vae_run):
    """The session's cond-vae run (tests/conftest.py): latent 4 + 10 classes, 15 epochs on the 8×8 digits."""
    return cond_vae_run


@pytest.fixture(scope="module")
def cond_server(cond_run, tiny_vae_run):
    """The explorer serving the cond-vae run (id 0) and the plain tiny VAE (id 1)."""
    import torch

    from vaelab.web import BackgroundServer, create_app, prepare_runs

    torch.set_num_threads(1)
    with BackgroundServer(create_app(prepare_runs([cond_run, tiny_vae_run], max_points=200, progress=False))) as server:
        yield server


@pytest.fixture
def page(browser, cond_server, open_explorer):
    problems = []
    with open_explorer(browser, cond_server.url, problems) as page:
        yield page
    assert not problems, problems


def grid(page) -> list[str]:
    return page.eval_on_selector_all("#class-grid img", "nodes => nodes.map(n => n.src)")


def test_the_class_picker_redecodes_the_same_codes_under_the_picked_label(page, cond_run, pixels):
    import torch

    import vaelab

    assert page.is_visible("#tab-classes")
    page.click("#tab-classes")
    page.wait_for_function("() => document.querySelectorAll('#class-grid img').length === 16")
    options = page.eval_on_selector_all("#class-pick option", "nodes => nodes.map(n => n.textContent)")
    assert options == [f"{k}: {k}" for k in range(10)]
    first, seed = grid(page), page.get_attribute("#class-grid", "data-seed")
    page.select_option("#class-pick", "7")
    page.wait_for_function("(old) => document.querySelector('#class-grid img').src !== old", arg=first[0])
    sevens = grid(page)
    assert page.get_attribute("#class-grid", "data-seed") == seed         # the same codes z …
    assert page.get_attribute("#class-grid", "data-label") == "7"         # … under another label
    assert len(sevens) == 16 and sevens != first
    # what the page shows is a 7 for the model's classifier (decoded independently of vaelab)
    model = vaelab.load(cond_run)
    images = torch.from_numpy(np.stack([pixels(src) for src in sevens])).float().div(255)
    assert (model.classify(images).argmax(1) == 7).float().mean() > 0.8
    page.click("#class-new")                                                 # new codes, same class
    page.wait_for_function("(old) => document.querySelector('#class-grid img').src !== old", arg=sevens[0])
    assert page.get_attribute("#class-grid", "data-seed") != seed


def test_the_panel_is_hidden_for_a_run_without_labels(page, cond_server):
    page.click("#tab-classes")
    page.select_option("#run-select", "1")
    page.wait_for_selector("body[data-run='1']", state="attached")
    assert not page.is_visible("#tab-classes") and not page.is_visible("#panel-classes")
    assert page.is_visible("#panel-samples")
    answer = page.request.post(cond_server.url + "api/runs/1/samples", data={"n": 2, "label": 3})
    assert answer.status == 400 and "not conditioned on labels" in answer.json()["error"]
