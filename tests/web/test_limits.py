"""What the explorer refuses: big bodies, bombs, non-images, unknown runs, paths — always as JSON."""

from __future__ import annotations

import io

import numpy as np
import pytest


def assert_json_error(response, status: int, *fragments: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture(scope="module")
def small_client(explorer_runs):
    """An app whose uploads are capped at 2,000 bytes and 400 pixels."""
    from fastapi.testclient import TestClient

    from vaelab.web import create_app

    with TestClient(create_app(explorer_runs, max_upload_bytes=2000, max_upload_pixels=400)) as test_client:
        yield test_client


def test_declared_oversized_body_is_refused_before_reading(small_client):
    from vaelab.web.app import MULTIPART_OVERHEAD

    body = b"\0" * (2000 + MULTIPART_OVERHEAD + 1)
    response = small_client.post("/api/runs/0/upload", content=body,
                                 headers={"content-type": "multipart/form-data; boundary=x"})
    assert_json_error(response, 413, "limit")


def test_streamed_body_is_cut_at_the_cap(small_client):
    from vaelab.web.app import MULTIPART_OVERHEAD

    chunks_sent = []

    def chunks():  # no Content-Length: the server must count while it reads
        for _ in range(40):
            chunks_sent.append(1)
            yield b"\0" * 4096

    assert (40 * 4096) > 2000 + MULTIPART_OVERHEAD
    response = small_client.post("/api/runs/0/upload", content=chunks(),
                                 headers={"content-type": "multipart/form-data; boundary=x"})
    assert_json_error(response, 413, "limit")


def test_streamed_json_body_is_cut_at_the_cap_too(small_client):
    def chunks():
        yield b'{"z": ['
        for _ in range(20000):
            yield b"0.0, "
        yield b"0.0]}"

    assert_json_error(small_client.post("/api/runs/0/decode", content=chunks(),
                                        headers={"content-type": "application/json"}), 413)


def test_file_over_the_upload_cap_is_refused(small_client, to_png):
    noise = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)  # ~3.6 kB of PNG
    response = small_client.post("/api/runs/0/upload", files={"file": ("noise.png", to_png(noise), "image/png")})
    assert_json_error(response, 400, "2,000-byte limit")


def test_too_many_pixels_are_refused_with_the_small_cap(small_client, to_png):
    flat = np.zeros((21, 20), dtype=np.uint8)  # 420 pixels > 400, tiny file
    response = small_client.post("/api/runs/0/upload", files={"file": ("flat.png", to_png(flat), "image/png")})
    assert_json_error(response, 400, "decompression bomb")


def test_a_real_decompression_bomb_is_refused_with_the_default_caps(client):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buf, format="PNG")  # 36 megapixels in a few kilobytes
    assert len(buf.getvalue()) < 50_000
    response = client.post("/api/runs/0/upload", files={"file": ("bomb.png", buf.getvalue(), "image/png")})
    assert_json_error(response, 400, "bomb")


@pytest.mark.parametrize("content, fragment", [
    (b"#!/bin/sh\necho not an image\n", "not an image"),
    (b"", "empty"),
])
def test_non_images_are_refused_whatever_their_name(client, content, fragment):
    response = client.post("/api/runs/0/upload", files={"file": ("looks-fine.png", content, "image/png")})
    assert_json_error(response, 400, fragment)


def test_a_truncated_png_is_refused(client, to_png):
    data = to_png(np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8))
    response = client.post("/api/runs/0/upload", files={"file": ("cut.png", data[: len(data) // 2], "image/png")})
    assert_json_error(response, 400, "cut.png")


def test_upload_without_a_file_is_a_json_422(client):
    assert_json_error(client.post("/api/runs/0/upload", data={"nothing": "here"}), 422, "file")


def test_client_file_names_are_shown_never_used_as_paths(client, to_png):
    data = to_png(np.zeros((8, 8), dtype=np.uint8))
    result = client.post("/api/runs/0/upload", files={"file": ("../../etc/passwd.png", data, "image/png")}).json()
    assert result["name"] == "passwd.png"
    windows = client.post("/api/runs/0/upload", files={"file": ("C:\\Windows\\x.png", data, "image/png")}).json()
    assert windows["name"] == "x.png"


@pytest.mark.parametrize("run", ["7", "nope", "~", "..", "runs%2Fdemo"])
def test_unknown_runs_are_404_json(client, run):
    assert_json_error(client.get(f"/api/runs/{run}/latent"), 404)


def test_an_unknown_run_name_lists_the_served_ones(client, explorer_runs):
    message = assert_json_error(client.get("/api/runs/nope"), 404, "served runs")
    assert all(run.name in message for run in explorer_runs)


def test_no_endpoint_takes_a_path(client):
    schema = client.get("/api/openapi.json").json()
    names = set()
    for operations in schema["paths"].values():
        for operation in operations.values():
            names |= {p["name"] for p in operation.get("parameters", [])}
    for component in schema["components"]["schemas"].values():
        names |= set(component.get("properties", {}))
    assert not {n for n in names if any(w in n.lower() for w in ("path", "dir", "url"))}
    # extra fields are refused, not ignored
    response = client.post("/api/runs/0/decode", json={"z": [0, 0, 0, 0], "path": "/etc/passwd"})
    assert_json_error(response, 422, "path")


def test_static_files_stay_inside_their_folder(client):
    for path in ("/static/..%2Fapp.py", "/static/%2E%2E/app.py", "/static/../../pyproject.toml"):
        response = client.get(path)
        assert response.status_code == 404
        assert "def create_app" not in response.text


def test_unknown_routes_and_methods_are_json(client):
    assert_json_error(client.get("/api/nothing"), 404)
    assert_json_error(client.delete("/api/runs"), 405)
    assert_json_error(client.post("/api/runs/0/decode", content=b"{not json",
                                  headers={"content-type": "application/json"}), 422)


def test_an_internal_error_is_a_generic_500_without_a_traceback(client, explorer_runs, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(explorer_runs[0], "latent_map", broken)
    with caplog.at_level("ERROR", logger="vaelab.web"):
        response = client.get("/api/runs/0/map?n=5")
    message = assert_json_error(response, 500, "server's log")
    assert "secret" not in message
    assert "secret internal detail" in caplog.text  # the traceback went to the server's log


def test_every_response_carries_the_security_headers(client):
    for response in (client.get("/"), client.get("/api/runs"), client.get("/api/runs/zzz")):
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
