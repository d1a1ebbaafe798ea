"""The explorer server: loopback by default, only its own names and origin, no paths from clients,
any request answered in JSON.

Body-size and pixel caps, bombs, static-file escapes and security headers are proven in
``tests/web/test_limits.py``, memory under hostile uploads in ``test_server_memory.py``; this
file adds what a client — or a web page the user visits — cannot do whatever it sends.
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

    def bind(h, port, listen=True):
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


# -- only its own names and origin ---------------------------------------------------------------
# The test client talks to "testserver" on port 80; a browser would say 127.0.0.1:PORT.
FOREIGN_HOSTS = ["evil.example", "evil.example:80", "testserver.evil.example", "localhost:8000", "testserver:8080",
                 "127.0.0.1:1", "", "evil.example@testserver", "testserver/x", "[::1]:81"]
OWN_HOSTS = ["testserver", "testserver:80", "TestServer", "localhost", "127.0.0.1", "[::1]", "[::1]:80"]


def png_upload(name: str = "digit.png") -> dict:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "PNG")
    return {"file": (name, buf.getvalue(), "image/png")}


def test_a_request_naming_another_host_is_refused_as_dns_rebinding(app_client):
    # A page on evil.example that rebinds its name to 127.0.0.1 reaches the socket, with its own Host
    for host in FOREIGN_HOSTS:
        response = app_client.get("/api/runs", headers={"host": host})
        assert response.status_code == 421, (host, response.status_code)
        message = response.json()["error"]
        assert "Host" in message and "--allowed-host" in message and "testserver:80" in message
    for host in OWN_HOSTS:
        assert app_client.get("/api/runs", headers={"host": host}).status_code == 200, host


@pytest.fixture
def work_done(monkeypatch):
    """Calls that reached the model (any endpoint that changes or computes something)."""
    from vaelab.web.explorer import ExplorerRun

    calls = []
    for method in ("reconstruct", "decode", "sample", "interpolate"):
        real = getattr(ExplorerRun, method)
        monkeypatch.setattr(ExplorerRun, method, lambda self, *a, _real=real, _m=method, **k:
                            (calls.append(_m), _real(self, *a, **k))[1])
    return calls


FOREIGN_ORIGINS = [{"origin": "http://evil.example"}, {"origin": "null"}, {"origin": "https://testserver"},
                   {"origin": "http://testserver:8080"}, {"origin": "http://testserver.evil.example"},
                   {"origin": "http://localhost"}, {"origin": ""}, {"referer": "http://evil.example/attack.html"},
                   {"origin": "http://evil.example", "referer": "http://testserver/"}]


def test_a_cross_origin_post_is_refused_before_it_does_anything(app_client, work_done):
    posts = [("/api/runs/0/upload", {"files": png_upload()}), ("/api/runs/0/decode", {"json": {"z": [0, 0, 0, 0]}}),
             ("/api/runs/0/samples", {"json": {"n": 1}}), ("/api/runs/0/interpolate", {"json": {"a": 0, "b": 1}})]
    for headers in FOREIGN_ORIGINS:
        for url, body in posts:
            response = app_client.post(url, headers=headers, **body)
            assert response.status_code == 403, (headers, url, response.status_code)
            assert "cross-origin" in response.json()["error"]
        assert app_client.put("/api/runs/0/decode", headers=headers).status_code == 403
        assert app_client.delete("/api/runs", headers=headers).status_code == 403
    assert work_done == []
    # the page's own origin, and clients that send none (curl, Python), are served
    for headers in [{"origin": "http://testserver"}, {"referer": "http://testserver/"}, {"origin": "http://TESTSERVER:80"},
                    {}]:
        for url, body in posts:
            assert app_client.post(url, headers=headers, **body).status_code == 200, (headers, url)
    assert work_done == ["reconstruct", "decode", "sample", "interpolate"] * 4


def test_reads_from_another_origin_are_answered_but_never_shared(app_client):
    # A GET changes nothing; without CORS headers the browser keeps the answer from the other page
    response = app_client.get("/api/runs", headers={"origin": "http://evil.example"})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.lower().startswith("access-control-")]


@pytest.mark.timeout(300)
def test_serve_answers_to_its_own_and_allowed_names_and_refuses_cross_origin_uploads(tiny_vae_run, loadtest):
    import httpx

    process, base = loadtest.start_server(tiny_vae_run, args=("--allowed-host", "mybox.test"))
    try:
        port = base.rsplit(":", 1)[1]
        upload = base + "/api/runs/0/upload"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"mybox.test:{port}"):
            assert httpx.get(base + "/api/runs", headers={"host": host}, timeout=30).status_code == 200, host
        for host in (f"evil.example:{port}", "mybox.test", f"mybox.test:{int(port) + 1}", f"mybox.test.evil:{port}"):
            refused = httpx.get(base + "/api/runs", headers={"host": host}, timeout=30)
            assert refused.status_code == 421 and "mybox.test" in refused.json()["error"], host
        # the attack: a multipart upload posted by a page on another origin
        attack = httpx.post(upload, files=png_upload(), headers={"origin": "http://evil.example"}, timeout=30)
        assert attack.status_code == 403 and "evil.example" in attack.json()["error"]
        own = httpx.post(upload, files=png_upload(), headers={"origin": base}, timeout=30)
        assert own.status_code == 200 and own.json()["name"] == "digit.png"
        allowed = httpx.post(upload, files=png_upload(), timeout=30,
                             headers={"host": f"mybox.test:{port}", "origin": f"http://mybox.test:{port}"})
        assert allowed.status_code == 200
    finally:
        assert loadtest.stop_server(process) == 0


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
