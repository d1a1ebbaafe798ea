"""The explorer server: loopback by default, no paths from clients, any request answered in JSON.

Body-size and pixel caps, bombs, static-file escapes and security headers are proven in
``tests/web/test_limits.py``; this file adds what a client cannot do whatever it sends.
"""

from __future__ import annotations

import builtins
import inspect
import io
import json
import os
import socket
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaelab.errors import VaelabError


@pytest.fixture(scope="module")
def app_client(tiny_vae_run):
    import torch
    from fastapi.testclient import TestClient

    from vaelab.web import create_app, prepare_runs

    torch.set_num_threads(1)
    with TestClient(create_app(prepare_runs([tiny_vae_run], max_points=200, progress=False))) as client:
        yield client


# -- where it listens ----------------------------------------------------------------------------
def test_serve_and_the_background_server_default_to_loopback():
    from vaelab.cli.serve import command
    from vaelab.web import BackgroundServer

    (host,) = [p for p in command.params if p.name == "host"]
    assert host.default == "127.0.0.1"
    assert inspect.signature(BackgroundServer).parameters["host"].default == "127.0.0.1"


@pytest.mark.parametrize("host, warned", [(None, False), ("127.0.0.1", False), ("localhost", False),
                                          ("0.0.0.0", True), ("192.0.2.7", True)])
def test_serve_binds_where_asked_and_warns_when_not_loopback(monkeypatch, capfd, tiny_vae_run, host, warned):
    # The real bind is replaced by a loopback socket (nothing here listens on other interfaces);
    # loading the runs is replaced by an error, so the command stops right after its warning.
    import vaelab.web
    import vaelab.web.server
    from vaelab.cli import main

    asked = []

    def bind(h, port):
        asked.append(h)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        return sock

    def stop_here(*args, **kwargs):
        raise VaelabError("stopped by the test before loading runs")

    monkeypatch.setattr(vaelab.web.server, "bind_socket", bind)
    monkeypatch.setattr(vaelab.web, "prepare_runs", stop_here)
    args = ["serve", str(tiny_vae_run), "--port", "0", "-q"] + ([] if host is None else ["--host", host])
    assert main(args) == 2
    assert asked == [host or "127.0.0.1"]
    err = capfd.readouterr().err
    assert ("other machines can reach the explorer" in err) is warned
    assert err.strip().splitlines()[-1] == "vaelab: error: stopped by the test before loading runs"


# -- no paths from clients ----------------------------------------------------------------------
@pytest.fixture
def file_opens(monkeypatch):
    """Every path opened (builtins.open, io.open, os.open) while the test runs."""
    opened: list[str] = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        opened.append(os.fspath(file) if not isinstance(file, int) else f"fd {file}")
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return opened


PATHS = ["..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "..", "~", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
         "C:%5CWindows%5Cwin.ini", "file:%2F%2F%2Fetc%2Fpasswd", "%00", "0%2F..%2F..%2Fetc%2Fpasswd"]


@pytest.mark.parametrize("endpoint", ["", "/latent", "/map?n=5", "/thumbnails/0", "/images/0"])
def test_a_run_addressed_by_a_path_is_404_json_and_nothing_is_read(app_client, file_opens, endpoint):
    for run in PATHS:
        response = app_client.get(f"/api/runs/{run}{endpoint}")
        assert response.status_code in (404, 422), (run, response.status_code)
        assert isinstance(response.json()["error"], str)
    assert not [p for p in file_opens if "passwd" in p or "win.ini" in p or p.startswith("/etc")], file_opens


def test_paths_in_bodies_queries_and_file_names_are_never_opened(app_client, file_opens):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "PNG")
    for name in ["/etc/passwd", "../../../../etc/passwd", "C:\\Windows\\win.ini"]:
        response = app_client.post("/api/runs/0/upload", files={"file": (name, buf.getvalue(), "image/png")})
        assert response.status_code == 200 and "/" not in response.json()["name"]
    assert app_client.post("/api/runs/0/decode", json={"z": [0, 0, 0, 0], "run_dir": "/etc"}).status_code == 422
    assert app_client.get("/api/runs/0/map?n=5&path=/etc/passwd&run=/etc").status_code == 200  # ignored
    assert not [p for p in file_opens if "passwd" in p or "win.ini" in p or p.startswith("/etc")], file_opens


# -- any request: a JSON answer, never a 500 ------------------------------------------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                    max_leaves=12)
BODIES = {"decode": st.fixed_dictionaries({"z": st.lists(st.floats(), max_size=6) | JSON}, optional={"x": JSON}),
          "samples": st.fixed_dictionaries({}, optional={"n": JSON, "temperature": JSON, "seed": JSON}),
          "interpolate": st.fixed_dictionaries({}, optional={"a": JSON, "b": JSON, "steps": JSON, "slerp": JSON})}
SERVER_FUZZ = settings(max_examples=int(os.environ.get("VAELAB_FUZZ_EXAMPLES", "200")), deadline=timedelta(seconds=10),
                       database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def assert_answered(response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert isinstance(response.json()["error"], str)


@pytest.mark.timeout(600)
@SERVER_FUZZ
@given(data=st.data())
def test_random_json_bodies_get_a_json_answer_never_a_500(app_client, data):
    endpoint = data.draw(st.sampled_from(sorted(BODIES)))
    body = data.draw(BODIES[endpoint] | JSON)
    # sent as Python writes JSON, NaN and Infinity included (a strict client could not send them)
    assert_answered(app_client.post(f"/api/runs/0/{endpoint}", content=json.dumps(body).encode(),
                                    headers={"content-type": "application/json"}))


@pytest.mark.timeout(600)
@SERVER_FUZZ
@given(run=st.text(max_size=30), tail=st.sampled_from(["", "/latent", "/map", "/thumbnails/", "/images/"]),
       query=st.text(max_size=20), index=st.integers(-(2 ** 70), 2 ** 70) | st.text(max_size=8))
def test_random_urls_get_a_json_answer_never_a_500(app_client, run, tail, query, index):
    from urllib.parse import quote

    url = f"/api/runs/{quote(run, safe='')}{tail}"
    if tail.endswith("/"):
        url += quote(str(index), safe="")
    if tail == "/map":
        url += "?n=" + quote(query, safe="")
    assert_answered(app_client.get(url))


@pytest.mark.timeout(600)
@SERVER_FUZZ
@given(content=st.binary(max_size=2048), name=st.text(max_size=40))
def test_random_uploads_get_a_json_answer_never_a_500(app_client, content, name):
    response = app_client.post("/api/runs/0/upload", files={"file": (name or "x", content, "image/png")})
    assert_answered(response)
    assert response.status_code in (200, 400, 413, 422)
